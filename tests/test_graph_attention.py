"""Attention is message passing: on the complete graph it equals attention, on another graph masked attention."""

import torch
import torch.nn.functional as F

from course.attention import scaled_dot_product_attention
from course.graph_attention import complete_graph, message_passing_attention


def test_complete_graph_message_passing_equals_attention():
    q, k, v = torch.randn(3, 7, 5, dtype=torch.float64)
    got = message_passing_attention(q, k, v, complete_graph(7))
    torch.testing.assert_close(got, F.scaled_dot_product_attention(q, k, v))


def test_any_graph_is_attention_masked_by_its_adjacency():
    torch.manual_seed(1)
    q, k, v = torch.randn(3, 6, 4, dtype=torch.float64)
    edges = torch.tensor([[0, 1, 2, 3, 4, 5, 0, 2], [1, 2, 3, 4, 5, 0, 0, 5]])  # a ring plus two more edges
    adjacency = torch.zeros(6, 6, dtype=torch.bool)
    adjacency[edges[1], edges[0]] = True  # row = target (query), column = source (key)
    got = message_passing_attention(q, k, v, edges)
    torch.testing.assert_close(got, scaled_dot_product_attention(q, k, v, adjacency)[0])


def test_node_without_incoming_edges_receives_zero():
    q, k, v = torch.randn(3, 3, 2)
    got = message_passing_attention(q, k, v, torch.tensor([[0, 1], [1, 1]]))
    assert torch.equal(got[0], torch.zeros(2)) and torch.equal(got[2], torch.zeros(2))
