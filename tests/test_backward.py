"""Backward passes by hand (the graded exercises of chapters 3 and 6), checked against autograd in float64.

The references ``course.attention.attention_backward`` and ``course.transformer.layer_norm_forward/backward``
must give what autograd gives through the forward passes they invert; ``course.checks.numerical_gradient``,
the central-difference check the exercises show students, must agree with autograd and tell a wrong gradient
apart; and ``forbidden_calls(allow_autograd=False)`` must refuse autograd by every door a student could open
(recording a graph, running a backward pass, calling a node's grad_fn, forward mode) while a hand-written
backward runs untouched.
"""

import math

import pytest
import torch
import torch.nn.functional as F

from course.attention import attention_backward, causal_mask, scaled_dot_product_attention
from course.checks import forbidden_calls, numerical_gradient
from course.transformer import layer_norm_backward, layer_norm_forward

D64 = torch.float64


def autograd_attention(q, k, v, grad_out, mask):
    leaves = [t.detach().clone().requires_grad_() for t in (q, k, v)]
    outputs, _ = scaled_dot_product_attention(*leaves, mask)
    return torch.autograd.grad(outputs, leaves, grad_out)


def random_attention(leading, tq, tk, d, dv, seed, dtype=D64):
    generator = torch.Generator().manual_seed(seed)
    q, k = torch.randn(*leading, tq, d, generator=generator, dtype=dtype), torch.randn(*leading, tk, d, generator=generator, dtype=dtype)
    v, grad_out = torch.randn(*leading, tk, dv, generator=generator, dtype=dtype), torch.randn(*leading, tq, dv, generator=generator, dtype=dtype)
    return q, k, v, grad_out, generator


@pytest.mark.parametrize("leading, tq, tk", [((), 1, 1), ((), 4, 6), ((3,), 5, 5), ((2, 3), 6, 4)])
@pytest.mark.parametrize("mask_kind", ["none", "random", "causal", "keys", "fully_masked_row"])
def test_attention_backward_equals_autograd(leading, tq, tk, mask_kind):
    q, k, v, grad_out, generator = random_attention(leading, tq, tk, 8, 3, seed=tq * 10 + tk)
    mask = {"none": None, "random": torch.rand(*leading, tq, tk, generator=generator) > 0.4,
            "causal": torch.ones(tq, tk, dtype=torch.bool).tril(), "keys": torch.arange(tk) != tk // 2,
            "fully_masked_row": (torch.arange(tq) != 0)[:, None].expand(tq, tk)}[mask_kind]
    got = attention_backward(q, k, v, grad_out, mask)
    for name, mine, expected, like in zip("qkv", got, autograd_attention(q, k, v, grad_out, mask), (q, k, v)):
        assert mine.shape == like.shape and mine.dtype == like.dtype, name
        assert torch.isfinite(mine).all(), name
        torch.testing.assert_close(mine, expected, atol=1e-12, rtol=1e-10, msg=f"d{name}, mask {mask_kind}")


def test_a_fully_masked_query_gets_no_gradient_and_gives_none():
    q, k, v, grad_out, _ = random_attention((2,), 4, 5, 8, 3, seed=1)
    mask = torch.ones(4, 5, dtype=torch.bool)
    mask[1] = False  # query 1 sees nothing: its output is the constant 0
    dq, dk, dv = attention_backward(q, k, v, grad_out, mask)
    assert (dq[:, 1] == 0).all()
    # query 1's incoming gradient reaches no key and no value
    changed = grad_out.clone()
    changed[:, 1] = 100 * torch.randn(2, 3, dtype=D64)
    again = attention_backward(q, k, v, changed, mask)
    torch.testing.assert_close(again[1], dk, atol=0, rtol=0)
    torch.testing.assert_close(again[2], dv, atol=0, rtol=0)


def test_attention_backward_sums_gradients_over_broadcast_leading_dimensions():
    generator = torch.Generator().manual_seed(2)
    q = torch.randn(2, 3, 4, 8, generator=generator, dtype=D64)
    k, v = torch.randn(3, 5, 8, generator=generator, dtype=D64), torch.randn(3, 5, 2, generator=generator, dtype=D64)
    grad_out = torch.randn(2, 3, 4, 2, generator=generator, dtype=D64)
    for mine, expected in zip(attention_backward(q, k, v, grad_out), autograd_attention(q, k, v, grad_out, None)):
        torch.testing.assert_close(mine, expected, atol=1e-12, rtol=1e-10)


def test_attention_backward_in_float32_and_half_stays_close_to_float64():
    q, k, v, grad_out, _ = random_attention((2,), 6, 7, 16, 4, seed=3)
    exact = attention_backward(q, k, v, grad_out, causal_mask(7)[:6])
    for dtype, tolerance in ((torch.float32, 1e-5), (torch.bfloat16, 5e-2)):
        got = attention_backward(*(t.to(dtype) for t in (q, k, v, grad_out)), causal_mask(7)[:6])
        for mine, reference in zip(got, exact):
            assert mine.dtype == dtype
            assert (mine.double() - reference).abs().max() <= tolerance * reference.abs().max()


@pytest.mark.parametrize("shape, eps", [((5,), 1e-5), ((4, 7), 1e-3), ((2, 3, 16), 0.1), ((2, 2, 3, 1), 1e-5)])
def test_layer_norm_forward_and_backward_equal_torch_and_autograd(shape, eps):
    generator = torch.Generator().manual_seed(len(shape))
    x = 3 * torch.randn(*shape, generator=generator, dtype=D64) + 2
    gamma = 1 + 0.5 * torch.randn(shape[-1], generator=generator, dtype=D64)
    beta = 0.3 * torch.randn(shape[-1], generator=generator, dtype=D64)
    grad_y = torch.randn(*shape, generator=generator, dtype=D64)
    y, cache = layer_norm_forward(x, gamma, beta, eps)
    torch.testing.assert_close(y, F.layer_norm(x, shape[-1:], gamma, beta, eps), atol=1e-12, rtol=1e-10)
    leaves = [t.clone().requires_grad_() for t in (x, gamma, beta)]
    expected = torch.autograd.grad(F.layer_norm(leaves[0], shape[-1:], leaves[1], leaves[2], eps), leaves, grad_y)
    got = layer_norm_backward(grad_y, cache)
    for name, mine, want in zip(("dx", "dgamma", "dbeta"), got, expected):
        assert mine.shape == want.shape, name
        torch.testing.assert_close(mine, want, atol=1e-12, rtol=1e-10, msg=name)
    torch.testing.assert_close(got[0].sum(-1), torch.zeros(shape[:-1], dtype=D64), atol=1e-12, rtol=0)  # a shift changes nothing


def test_layer_norm_in_float32_matches_torch():
    generator = torch.Generator().manual_seed(5)
    x, grad_y = torch.randn(3, 4, 32, generator=generator), torch.randn(3, 4, 32, generator=generator)
    gamma, beta = torch.rand(32, generator=generator) + 0.5, torch.randn(32, generator=generator)
    y, cache = layer_norm_forward(x, gamma, beta)
    torch.testing.assert_close(y, F.layer_norm(x, (32,), gamma, beta))
    leaves = [t.clone().requires_grad_() for t in (x, gamma, beta)]
    expected = torch.autograd.grad(F.layer_norm(leaves[0], (32,), leaves[1], leaves[2]), leaves, grad_y)
    for mine, want in zip(layer_norm_backward(grad_y, cache), expected):
        assert mine.dtype == torch.float32
        torch.testing.assert_close(mine, want, atol=1e-5, rtol=1e-4)


def test_numerical_gradient_agrees_with_autograd_and_tells_a_wrong_gradient_apart():
    generator = torch.Generator().manual_seed(6)
    x, grad_out = torch.randn(3, 4, generator=generator, dtype=D64), torch.randn(3, 4, generator=generator, dtype=D64)

    def function(t):
        return t.sin() * t.sum(dim=-1, keepdim=True)  # every output depends on its whole row

    leaf = x.clone().requires_grad_()
    exact, = torch.autograd.grad(function(leaf), leaf, grad_out)
    estimate = numerical_gradient(function, x, grad_out)
    assert (estimate - exact).abs().max() < 1e-8
    diagonal_only = grad_out * (x.cos() * x.sum(dim=-1, keepdim=True))  # forgets the row sum's dependence on x
    assert (estimate - diagonal_only).abs().max() > 1e-2
    assert torch.equal(x, x.clone()) and not x.requires_grad  # the input is left as it was


def test_numerical_gradient_checks_attention_backward():
    q, k, v, grad_out, _ = random_attention((2,), 3, 4, 5, 2, seed=7)
    mask = torch.tensor([True, False, True, True])
    dq, dk, dv = attention_backward(q, k, v, grad_out, mask)
    checks = ((dq, lambda x: scaled_dot_product_attention(x, k, v, mask)[0], q),
              (dk, lambda x: scaled_dot_product_attention(q, x, v, mask)[0], k),
              (dv, lambda x: scaled_dot_product_attention(q, k, x, mask)[0], v))
    for mine, function, x in checks:
        assert (mine - numerical_gradient(function, x, grad_out)).abs().max() < 1e-8


# --- autograd refused where a backward pass is to be written by hand --------------------------------------

def _attention(q, k, v):
    return scaled_dot_product_attention(q, k, v)[0]


def _graph_then_grad(q, k, v, g):
    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    with torch.enable_grad():
        return torch.autograd.grad(_attention(*leaves), leaves, g)


def _parameters_then_backward(q, k, v, g):
    leaves = [torch.nn.Parameter(t.clone()) for t in (q, k, v)]
    with torch.enable_grad():
        _attention(*leaves).backward(g)
    return tuple(leaf.grad for leaf in leaves)


def _grad_fn_by_hand(q, k, v, g):
    leaf = q.clone()
    leaf.requires_grad = True
    with torch.enable_grad():
        return _attention(leaf, k, v).grad_fn(g)


def _engine_directly(q, k, v, g):
    from torch.autograd import Variable

    leaves = [t.detach().requires_grad_() for t in (q, k, v)]
    with torch.enable_grad():
        outputs = _attention(*leaves)
    return Variable._execution_engine.run_backward((outputs,), (g,), False, False, tuple(leaves), False, False)


CHEATS = {
    "autograd.grad": _graph_then_grad,
    "backward()": _parameters_then_backward,
    "grad_fn called by hand": _grad_fn_by_hand,
    "the engine called directly": _engine_directly,
    "torch.func.vjp": lambda q, k, v, g: torch.func.vjp(_attention, q, k, v)[1](g),
    "torch.func.grad": lambda q, k, v, g: torch.func.grad(lambda a: (_attention(a, k, v) * g).sum())(q),
    "torch.func.jacfwd": lambda q, k, v, g: torch.func.jacfwd(_attention)(q, k, v),
    "torch.autograd.functional.vjp": lambda q, k, v, g: torch.autograd.functional.vjp(_attention, (q, k, v), g),
    "forward-mode dual tensors": lambda q, k, v, g: _forward_mode(q, k, v),
}


def _forward_mode(q, k, v):
    import torch.autograd.forward_ad as forward_ad

    with forward_ad.dual_level():
        dual = forward_ad.make_dual(q, torch.ones_like(q))
        return forward_ad.unpack_dual(_attention(dual, k, v)).tangent


@pytest.mark.parametrize("cheat", CHEATS)
def test_autograd_is_refused_by_every_door(cheat):
    q, k, v, grad_out, _ = random_attention((2,), 3, 4, 5, 2, seed=8)
    with pytest.raises(Exception, match="may not call autograd"):
        with forbidden_calls(allow_autograd=False):
            CHEATS[cheat](q, k, v, grad_out)
    # outside the block, and inside one that allows it (the default), the same code runs
    with forbidden_calls():
        CHEATS[cheat](q, k, v, grad_out)


def test_a_hand_written_backward_runs_where_autograd_is_refused():
    q, k, v, grad_out, _ = random_attention((2,), 3, 4, 5, 2, seed=9)
    x, gamma, beta = q, torch.ones(5, dtype=D64), torch.zeros(5, dtype=D64)
    with forbidden_calls((torch, "_softmax_backward_data"), allow_autograd=False):
        with torch.enable_grad():  # grad mode alone records nothing: no input requires grad
            attention_backward(q, k, v, grad_out, causal_mask(4)[:3])
        layer_norm_backward(grad_out.new_ones(x.shape), layer_norm_forward(x, gamma, beta)[1])


def test_the_softmax_backward_built_in_is_refused_under_any_name():
    g = torch.randn(3, 4)
    captured = torch._softmax_backward_data
    with pytest.raises(AssertionError, match="may not call _softmax_backward_data"):
        with forbidden_calls((torch, "_softmax_backward_data")):
            captured(g, g.softmax(-1), -1, g.dtype)
