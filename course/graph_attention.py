"""Attention as message passing on a graph (chapter 9).

A graph neural network updates each node from messages sent along its edges. Attention is one such
network: node i receives value v_j from every node j with an edge j -> i, weighted by a softmax over
its incoming edges of the scores q_i . k_j / sqrt(d). On the complete graph (every j -> every i) it
is exactly ``softmax(Q K^T / sqrt(d)) V``; on any other graph it is attention with the mask "is
there an edge". The version here works edge by edge (scatter operations), as graph libraries do,
so that nothing but the edge list says who talks to whom.
"""

import math

import torch


def complete_graph(num_nodes: int) -> torch.Tensor:
    """Every edge j -> i, self-loops included: (2, N^2) rows (source j, target i)."""
    targets, sources = torch.meshgrid(torch.arange(num_nodes), torch.arange(num_nodes), indexing="ij")
    return torch.stack([sources.flatten(), targets.flatten()])


def message_passing_attention(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                              edges: torch.Tensor) -> torch.Tensor:
    """queries, keys (N, d), values (N, dv); edges (2, E) long, rows (source j, target i) -> (N, dv).

    Per edge a score q_i . k_j / sqrt(d); per target a softmax over its incoming edges; each target
    sums its incoming values weighted by them. A node without incoming edges receives zero.
    """
    source, target = edges
    N, d = queries.shape
    scores = (queries[target] * keys[source]).sum(-1) / math.sqrt(d)  # (E,): one score per edge
    largest = torch.full((N,), float("-inf"), dtype=scores.dtype).scatter_reduce(0, target, scores, "amax")
    exps = torch.exp(scores - largest[target])  # (E,): stable, each edge shifted by its target's max
    totals = torch.zeros(N, dtype=scores.dtype).index_add(0, target, exps)  # (N,)
    weights = exps / totals[target]  # (E,): sums to 1 over the edges into each node
    messages = weights[:, None] * values[source]  # (E, dv)
    return torch.zeros(N, values.shape[-1], dtype=values.dtype).index_add(0, target, messages)
