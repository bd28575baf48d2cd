"""The chapter-3 reference implementations that every later chapter relies on."""

import pytest
import torch
import torch.nn.functional as F

from course.attention import causal_mask, masked_softmax, padding_mask, scaled_dot_product_attention


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_masked_softmax_without_mask_equals_torch_softmax(dtype):
    scores = torch.randn(3, 4, 7, dtype=dtype)
    for dim in (0, 1, -1):
        torch.testing.assert_close(masked_softmax(scores, dim=dim), torch.softmax(scores, dim=dim))


def test_masked_softmax_survives_huge_scores():
    weights = masked_softmax(torch.tensor([[1e4, 1e4 - 1.0, -1e4]]))
    assert torch.isfinite(weights).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(1))


def test_masked_keys_get_exactly_zero_weight_and_rows_sum_to_one():
    scores = torch.randn(2, 3, 5)
    mask = torch.tensor([True, False, True, True, False])
    weights = masked_softmax(scores, mask)
    assert (weights[..., ~mask] == 0).all()
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3))


def test_fully_masked_row_gives_zero_weights_and_zero_output():
    q, k, v = torch.randn(1, 2, 4), torch.randn(1, 3, 4), torch.randn(1, 3, 5)
    mask = torch.tensor([[True, False, True], [False, False, False]])
    outputs, weights = scaled_dot_product_attention(q, k, v, mask)
    assert torch.isfinite(outputs).all()
    assert (weights[0, 1] == 0).all() and (outputs[0, 1] == 0).all()
    torch.testing.assert_close(weights[0, 0].sum(), torch.tensor(1.0))


@pytest.mark.parametrize("mask_kind", ["none", "padding", "causal", "random"])
def test_attention_matches_torch_scaled_dot_product_attention(mask_kind):
    q, k, v = torch.randn(3, 2, 6, 8), torch.randn(3, 2, 6, 8), torch.randn(3, 2, 6, 5)
    mask = {
        "none": None,
        "padding": padding_mask(torch.tensor([6, 3, 1]))[:, None],  # (B, 1, 1, T) over heads and queries
        "causal": causal_mask(6),
        "random": (torch.rand(3, 2, 6, 6) > 0.5) | torch.eye(6, dtype=torch.bool),  # every row keeps a key
    }[mask_kind]
    outputs, _ = scaled_dot_product_attention(q, k, v, mask)
    torch.testing.assert_close(outputs, F.scaled_dot_product_attention(q, k, v, attn_mask=mask), atol=1e-5, rtol=1e-4)


def test_padding_mask_marks_real_positions():
    expected = torch.tensor([[[True, True, False]], [[True, True, True]], [[True, False, False]]])
    assert torch.equal(padding_mask(torch.tensor([2, 3, 1])), expected)
    assert padding_mask(torch.tensor([2]), max_len=5).shape == (1, 1, 5)


def test_causal_attention_outputs_do_not_depend_on_future_inputs():
    x = torch.randn(1, 6, 4)
    changed = x.clone()
    changed[:, 4:] = torch.randn(1, 2, 4)  # change only the last two positions
    before, _ = scaled_dot_product_attention(x, x, x, causal_mask(6))
    after, _ = scaled_dot_product_attention(changed, changed, changed, causal_mask(6))
    torch.testing.assert_close(before[:, :4], after[:, :4])
    assert not torch.allclose(before[:, 4:], after[:, 4:])


def test_attention_gradients_are_correct_in_float64():
    q, k, v = (torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True) for _ in range(3))
    mask = torch.tensor([True, True, False])
    assert torch.autograd.gradcheck(lambda q, k, v: scaled_dot_product_attention(q, k, v, mask)[0], (q, k, v))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("masked", [False, True])
def test_half_precision_attention_matches_torch_where_q_dot_k_overflows_float16(dtype, masked):
    # Scores (after dividing by sqrt(d)) near 1e4 at head width 64: q . k itself is near 8e4, past
    # float16's largest value 65504. Dividing after the product gave inf, then NaN; bfloat16 kept
    # the range but rounded the scores by units, which reshuffles a softmax this peaked.
    generator = torch.Generator().manual_seed(0)
    d = 64
    q = (36 + torch.randn(2, 3, 5, d, generator=generator)).to(dtype)
    k = (36 + torch.randn(2, 3, 7, d, generator=generator)).to(dtype)
    v = torch.randn(2, 3, 7, d, generator=generator).to(dtype)
    assert (q.double() @ k.double().transpose(-2, -1)).max() > torch.finfo(torch.float16).max
    mask = (torch.rand(2, 3, 5, 7, generator=generator) > 0.3) | (torch.arange(7) == 0) if masked else None
    outputs, weights = scaled_dot_product_attention(q, k, v, mask)
    expected = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert outputs.dtype == weights.dtype == dtype
    assert torch.isfinite(expected).all() and torch.isfinite(outputs).all()
    torch.testing.assert_close(outputs, expected, atol=0.05, rtol=0.02)
    torch.testing.assert_close(weights.float().sum(-1), torch.ones(2, 3, 5), atol=1e-2, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_masked_softmax_returns_the_input_dtype_and_sums_to_one(dtype):
    scores = (30 * torch.randn(4, 300)).to(dtype)
    mask = torch.rand(4, 300) > 0.5
    weights = masked_softmax(scores, mask)
    assert weights.dtype == dtype and (weights[~mask] == 0).all()
    expected = torch.softmax(scores.float().masked_fill(~mask, float("-inf")), dim=-1)
    torch.testing.assert_close(weights.float(), expected, atol=1e-3, rtol=1e-2)
    torch.testing.assert_close(weights.float().sum(-1), torch.ones(4), atol=1e-2, rtol=0)


def test_scaling_keeps_the_gradient_at_wide_queries():
    """Chapter 3's lesson, on the reference: at d = 1024, with the 1/sqrt(d) of scaled_dot_product_attention,
    no random query is left without gradient; with the scale undone, a large share of them is."""
    generator = torch.Generator().manual_seed(0)
    d, trials, keys = 1024, 500, 16
    q = torch.randn(trials, 1, d, generator=generator)
    k = torch.randn(trials, keys, d, generator=generator)
    readout = torch.randn(trials, 1, keys, generator=generator)
    gradient_norms = {}
    for scaled in (True, False):
        query = (q if scaled else q * d**0.5).clone().requires_grad_()  # q * sqrt(d) / sqrt(d) = q: unscaled scores
        _, weights = scaled_dot_product_attention(query, k, torch.zeros(trials, keys, 1))
        (weights * readout).sum().backward()
        gradient = query.grad.squeeze(1).norm(dim=-1)
        gradient_norms[scaled] = gradient * (d**0.5 if not scaled else 1.0)  # the gradient at q itself (chain rule)
    starved = {scaled: (norms < 1e-3).float().mean().item() for scaled, norms in gradient_norms.items()}
    assert starved[True] == 0.0, f"scaled: {starved[True]:.1%} of queries get a gradient below 1e-3"
    assert starved[False] > 0.3, f"unscaled: only {starved[False]:.1%} of queries get a gradient below 1e-3"
    assert gradient_norms[True].median() > 30 * gradient_norms[False].median()
