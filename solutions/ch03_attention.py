# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercises 3: attention as an operator
#
# Three functions that every later chapter builds on, and the gradients of the last one. Write each
# one with basic tensor operations (`exp`, `sum`, `max`, `@`, `masked_fill`, `where`, comparisons, ...).
#
# | exercise | points |
# | --- | --- |
# | 1. a numerically stable, masked softmax | 4 |
# | 2. padding masks and causal masks | 3 |
# | 3. scaled dot-product attention, batched and masked | 5 |
# | 4. the backward pass of attention, by hand | 5 |
# | 5. why a saturated softmax passes no gradient (written, graded by hand) | 2 |
#
# **How you are graded.** Each test cell below is worth points. The tests you see check the
# basics and say what went wrong; when the notebook is graded, further hidden tests compare
# your functions with the course's reference implementation on random shapes, `float32` and
# `float64`, masks and very large scores. Run every cell from the top (*Kernel → Restart & Run
# All*) before you submit.
#
# **Conventions** (as in chapter 3). A mask is a boolean tensor that broadcasts against the
# scores `(..., Tq, Tk)`: `True` means *this query may look at this key*, as in
# `torch.nn.functional.scaled_dot_product_attention`. A query whose keys are all masked gets
# all-zero weights (it looked at nothing) and a zero output, never `NaN`.

# %%
import math

import torch
import torch.nn.functional as F

from course.checks import check_close, check_shape

torch.manual_seed(0)

# %% [markdown]
# ## Exercise 1: a numerically stable, masked softmax (4 points)
#
# $$\mathrm{softmax}(s)_j = \frac{e^{s_j - m}}{\sum_k e^{s_k - m}}, \qquad m = \max_k s_k$$
#
# Subtracting the maximum $m$ changes nothing mathematically but keeps `exp` from overflowing
# when scores are large. Masked entries must get exactly zero weight; a row with every entry
# masked must come out as all zeros (not `NaN`, not uniform).

# %% solution="masked_softmax"
def masked_softmax(scores, mask=None, dim=-1):
    """Softmax of `scores` along `dim`, with masked-out entries given exactly zero weight.

    Args:
        scores: float tensor of any shape, e.g. (B, Tq, Tk).
        mask: optional bool tensor broadcastable to `scores`; True = keep, False = zero weight.
        dim: the axis to normalise over.

    Returns:
        A tensor of the same shape and dtype as `scores`; along `dim` each row sums to 1,
        except rows whose entries are all masked, which are all 0.

    Do not call torch.softmax, F.softmax, Tensor.softmax, torch.nn.Softmax or their log_ versions.
    """
    ### BEGIN SOLUTION
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    # The max of a fully masked row is -inf; shifting by it would give -inf - (-inf) = NaN.
    shift = scores.amax(dim=dim, keepdim=True).nan_to_num(neginf=0.0)
    exps = (scores - shift).exp()  # masked entries: exp(-inf) = 0
    total = exps.sum(dim=dim, keepdim=True)
    # A fully masked row sums to 0: dividing by the smallest positive number keeps it at 0.
    return exps / total.clamp_min(torch.finfo(exps.dtype).tiny)
    ### END SOLUTION


# %% tests="masked_softmax_visible" points=2
scores = torch.randn(2, 3, 5)
check_close(masked_softmax(scores), torch.softmax(scores, dim=-1), "masked_softmax(scores) vs torch.softmax")
check_close(masked_softmax(scores, dim=1), torch.softmax(scores, dim=1), "masked_softmax(scores, dim=1)")

huge = torch.tensor([[1000.0, 999.0, -1000.0]])
check_close(masked_softmax(huge), torch.softmax(huge, dim=-1), "masked_softmax of scores near 1000 (overflow?)")

mask = torch.tensor([[True, True, False, False, True]])
weights = masked_softmax(scores, mask)
assert (weights[..., ~mask[0]] == 0).all(), "masked positions must get exactly zero weight"
check_close(weights.sum(-1), torch.ones(2, 3), "each row of masked_softmax(scores, mask) must sum to 1")

nothing = torch.zeros(1, 5, dtype=torch.bool)
check_close(masked_softmax(scores, nothing), torch.zeros(2, 3, 5), "a fully masked row must be all zeros")
print("Exercise 1: visible tests passed.")
### BEGIN HIDDEN TESTS
# The same checks on the grader's own inputs; the grader compares the results with the reference's, outside this notebook.
# A built-in softmax that runs here costs this test too.
from course.checks import forbidden_calls, report

NO_SOFTMAX = ((torch, "softmax"), (torch, "log_softmax"), (torch.Tensor, "softmax"), (torch.Tensor, "log_softmax"),
              (F, "softmax"), (F, "log_softmax"), (torch.special, "softmax"))
generator = torch.Generator().manual_seed(30)
scores = torch.randn(2, 3, 5, generator=generator)
with forbidden_calls(*NO_SOFTMAX):
    got = {"plain": masked_softmax(scores), "dim1": masked_softmax(scores, dim=1),
           "huge": masked_softmax(torch.tensor([[1000.0, 999.0, -1000.0]])),
           "masked": masked_softmax(scores, torch.tensor([[True, True, False, False, True]])),
           "all_masked": masked_softmax(scores, torch.zeros(1, 5, dtype=torch.bool))}
for label, value in got.items():
    report(f"masked_softmax/visible/{label}", value)
### END HIDDEN TESTS

# %% tests="masked_softmax_hidden" points=2
# Hidden tests, run when the notebook is graded: random shapes and axes, float32 and float64,
# random masks, extreme scores, and no call to a built-in softmax.
### BEGIN HIDDEN TESTS
from course.checks import forbidden_calls, report

NO_SOFTMAX = ((torch, "softmax"), (torch, "log_softmax"), (torch.Tensor, "softmax"), (torch.Tensor, "log_softmax"),
              (F, "softmax"), (F, "log_softmax"), (torch.special, "softmax"))
generator = torch.Generator().manual_seed(31)
case = 0  # report names number the cases: a name never holds the input (nor the answer that follows from it)
for dtype in (torch.float32, torch.float64):
    for shape, dim in [((7,), 0), ((4, 6), 0), ((2, 3, 8), -1), ((2, 5, 3, 4), 2)]:
        scores = 10 * torch.randn(shape, generator=generator, dtype=dtype)
        mask = torch.rand(shape, generator=generator) > 0.4
        with forbidden_calls(*NO_SOFTMAX):
            got_plain = masked_softmax(scores, dim=dim)
            got_masked = masked_softmax(scores, mask, dim=dim)
        case += 1
        report(f"masked_softmax/hidden/plain/case{case}", got_plain, atol=1e-6)
        report(f"masked_softmax/hidden/masked/case{case}", got_masked, atol=1e-6)

extreme = torch.tensor([[3e4, -3e4, 2e4], [-1e30, -1e30, -1e30]], dtype=torch.float64)
row_mask = torch.tensor([[False, False, False], [True, False, True]])
with forbidden_calls(*NO_SOFTMAX):
    got_plain, got_masked = masked_softmax(extreme), masked_softmax(extreme, row_mask)
report("masked_softmax/hidden/extreme", got_plain, atol=1e-9)
report("masked_softmax/hidden/extreme_masked", got_masked, atol=1e-9)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 2: padding masks and causal masks (3 points)
#
# *Padding.* A batch holds sequences of different lengths, padded to the longest. Given the
# lengths `(B,)`, build the key mask `(B, 1, T)` that is `True` at real positions: position `j` of
# sequence `b` is real when `j < lengths[b]`. The axis of size 1 lets it broadcast over every query.
#
# *Causal.* In autoregressive models query `i` may only see keys `j <= i`: a `(T, T)` lower-triangular mask.

# %% solution="masks"
def padding_mask(lengths, max_len=None):
    """(B,) int lengths -> (B, 1, max_len) bool mask, True where position < length.

    If max_len is None, use the largest length. Do not loop over the batch in Python.
    """
    ### BEGIN SOLUTION
    max_len = int(lengths.max()) if max_len is None else max_len
    positions = torch.arange(max_len, device=lengths.device)
    return (positions[None, :] < lengths[:, None])[:, None, :]
    ### END SOLUTION


def causal_mask(size):
    """(size, size) bool mask, True where key position <= query position.

    Do not call torch.tril or torch.triu (build it from comparisons of positions).
    """
    ### BEGIN SOLUTION
    positions = torch.arange(size)
    return positions[None, :] <= positions[:, None]
    ### END SOLUTION


# %% tests="masks_visible" points=1
got = padding_mask(torch.tensor([2, 4, 1]))
check_shape(got, (3, 1, 4), "padding_mask([2, 4, 1])")
assert got.dtype == torch.bool, f"padding_mask must return a bool tensor, got {got.dtype}"
expected = torch.tensor([[[True, True, False, False]], [[True, True, True, True]], [[True, False, False, False]]])
assert torch.equal(got, expected), f"padding_mask([2, 4, 1]) should be\n{expected}\ngot\n{got}"

got = causal_mask(3)
expected = torch.tensor([[True, False, False], [True, True, False], [True, True, True]])
assert isinstance(got, torch.Tensor) and got.dtype == torch.bool, "causal_mask must return a bool tensor"
check_close(got.float(), expected.float(), "causal_mask(3), as 0/1",
            hint=f"row i is query i, column j key j: True where j <= i. Expected\n{expected.int()}\ngot\n{got.int()}")
print("Exercise 2: visible tests passed.")
### BEGIN HIDDEN TESTS
from course.checks import forbidden_calls, report

report("masks/visible/padding", padding_mask(torch.tensor([2, 4, 1])))
report("masks/visible/padding_max_len", padding_mask(torch.tensor([3, 1]), 5))
with forbidden_calls((torch, "tril"), (torch, "triu"), (torch.Tensor, "tril"), (torch.Tensor, "triu")):
    got = causal_mask(3), causal_mask(4)
report("masks/visible/causal", got[0])
report("masks/visible/causal_larger", got[1])
### END HIDDEN TESTS

# %% tests="masks_hidden" points=2
# Hidden tests, run when the notebook is graded: random lengths and sizes, no torch.tril/triu.
### BEGIN HIDDEN TESTS
from course.checks import forbidden_calls, report

generator = torch.Generator().manual_seed(32)
case = 0  # report names number the cases: a name never holds the input (a size gives the whole causal mask)
for batch in (1, 5, 9):
    lengths = torch.randint(1, 12, (batch,), generator=generator)
    for max_len in (None, 15):
        case += 1
        report(f"masks/hidden/padding/case{case}", padding_mask(lengths, max_len))
for case, size in enumerate((1, 2, 7, 33)):
    with forbidden_calls((torch, "tril"), (torch, "triu"), (torch.Tensor, "tril"), (torch.Tensor, "triu")):
        got = causal_mask(size)
    report(f"masks/hidden/causal/case{case}", got)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 3: scaled dot-product attention (5 points)
#
# $$\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\!\left(\frac{Q K^\top}{\sqrt{d}}\right) V$$
#
# Batched over any number of leading dimensions: `queries (..., Tq, d)`, `keys (..., Tk, d)`,
# `values (..., Tk, dv)`. The optional boolean `mask` broadcasts against the scores `(..., Tq, Tk)`.
# Return both the outputs and the weights. You may use your `masked_softmax` from exercise 1.

# %% solution="scaled_dot_product_attention"
def scaled_dot_product_attention(queries, keys, values, mask=None):
    """Returns (outputs (..., Tq, dv), weights (..., Tq, Tk)).

    Do not call torch.nn.functional.scaled_dot_product_attention or torch.nn.MultiheadAttention.
    """
    ### BEGIN SOLUTION
    d = queries.shape[-1]
    scores = queries @ keys.transpose(-2, -1) / math.sqrt(d)
    weights = masked_softmax(scores, mask, dim=-1)
    return weights @ values, weights
    ### END SOLUTION


# %% tests="attention_visible" points=2
q, k, v = torch.randn(2, 4, 8), torch.randn(2, 6, 8), torch.randn(2, 6, 3)
outputs, weights = scaled_dot_product_attention(q, k, v)
check_shape(outputs, (2, 4, 3), "outputs")
check_shape(weights, (2, 4, 6), "weights")
# torch's attention over one-hot values returns the weights themselves; scale=1.0 leaves out the 1/√d.
one_hot = torch.eye(6).expand(2, 6, 6)
check_close(weights, F.scaled_dot_product_attention(q, k, one_hot), "weights vs F.scaled_dot_product_attention",
            mistakes={"the scores are not divided by √d (d = 8)": F.scaled_dot_product_attention(q, k, one_hot, scale=1.0),
                      "the scores are divided by d instead of √d": F.scaled_dot_product_attention(q, k, one_hot, scale=1 / 8)})
check_close(outputs, F.scaled_dot_product_attention(q, k, v), "outputs vs F.scaled_dot_product_attention",
            mistakes={"the scores are not divided by √d (d = 8)": F.scaled_dot_product_attention(q, k, v, scale=1.0)})

key_mask = torch.tensor([True, True, True, False, False, True])
outputs, weights = scaled_dot_product_attention(q, k, v, key_mask)
check_close(weights, F.scaled_dot_product_attention(q, k, one_hot, attn_mask=key_mask), "weights with keys 3 and 4 masked",
            hint="mask True means the query may look at the key; masked scores become -inf before the softmax")
assert (weights[..., ~key_mask] == 0).all(), "masked keys must get exactly zero weight"
check_close(outputs, F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask), "masked outputs vs torch")
print("Exercise 3: visible tests passed.")
### BEGIN HIDDEN TESTS
from course.checks import forbidden_calls, report

generator = torch.Generator().manual_seed(34)
q, k, v = (torch.randn(2, 4, 8, generator=generator), torch.randn(2, 6, 8, generator=generator),
           torch.randn(2, 6, 3, generator=generator))
for label, this_mask in (("plain", None), ("key_mask", torch.tensor([True, True, True, False, False, True]))):
    with forbidden_calls((F, "scaled_dot_product_attention"), (torch.nn, "MultiheadAttention")):
        outputs, weights = scaled_dot_product_attention(q, k, v, this_mask)
    report(f"attention/visible/{label}/outputs", outputs)
    report(f"attention/visible/{label}/weights", weights)
### END HIDDEN TESTS

# %% tests="attention_hidden" points=3
# Hidden tests, run when the notebook is graded: leading batch dimensions, float32 and float64,
# random and causal masks, huge activations, and no call to a built-in attention.
### BEGIN HIDDEN TESTS
from course.checks import forbidden_calls, report

generator = torch.Generator().manual_seed(33)
case = 0  # report names number the cases: a name never holds the input
for dtype, atol in ((torch.float32, 1e-5), (torch.float64, 1e-10)):
    for leading, tq, tk, d, dv in [((), 1, 1, 1, 1), ((3,), 5, 7, 16, 4), ((2, 3), 6, 6, 8, 8), ((2,), 9, 4, 64, 5)]:
        q = torch.randn(*leading, tq, d, generator=generator, dtype=dtype)
        k = torch.randn(*leading, tk, d, generator=generator, dtype=dtype)
        v = torch.randn(*leading, tk, dv, generator=generator, dtype=dtype)
        mask = torch.rand(*leading, tq, tk, generator=generator) > 0.3
        for label, this_mask in (("plain", None), ("masked", mask)):
            with forbidden_calls((F, "scaled_dot_product_attention"), (torch.nn, "MultiheadAttention")):
                got_out, got_w = scaled_dot_product_attention(q, k, v, this_mask)
            case += 1
            report(f"attention/hidden/weights/case{case}", got_w, atol=atol)
            report(f"attention/hidden/outputs/case{case}", got_out, atol=atol)

# causal self-attention with huge activations: no NaN, and the first query sees only itself
x = 1e3 * torch.randn(2, 5, 32, generator=generator)
causal = torch.arange(5)[None, :] <= torch.arange(5)[:, None]
with forbidden_calls((F, "scaled_dot_product_attention"), (torch.nn, "MultiheadAttention")):
    got_out, got_w = scaled_dot_product_attention(x, x, x, causal)
report("attention/hidden/causal_huge/weights", got_w, atol=1e-5)
report("attention/hidden/causal_huge/outputs", got_out, atol=1e-2, rtol=1e-4)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 4: the backward pass of attention, by hand (5 points)
#
# Training needs the gradient of the loss $L$ with respect to the queries, keys and values, and
# autograd works it out from the forward pass. Here you work it out yourself, as the authors of an
# attention kernel do. The forward pass has three steps,
#
# $$S = \frac{Q K^\top}{\sqrt d}, \qquad P = \mathrm{softmax}(S) \ \text{(row by row, masked)}, \qquad O = P V,$$
#
# and the layers above hand you $G = \partial L / \partial O$ (`grad_outputs`, the shape of the outputs).
# Go back through the steps in reverse order with the chain rule:
#
# 1. $O = PV$ is a matrix product: $\partial L / \partial V$ and $\partial L / \partial P$ are products of $G$ with
#    $P$ or $V$, one of them transposed (check the shapes: $\partial L / \partial V$ has the shape of $V$).
# 2. The softmax of one row $p = \mathrm{softmax}(s)$ has the Jacobian $\partial p_j / \partial s_k = p_j(\delta_{jk} - p_k)$.
#    Multiply it by the row's $\partial L / \partial p$ on paper first: the result needs no $T_k \times T_k$
#    matrix per query, only an elementwise product and one sum over the row.
# 3. $S = Q K^\top / \sqrt d$ gives $\partial L / \partial Q$ and $\partial L / \partial K$ from $\partial L / \partial S$
#    (the $1/\sqrt d$ stays in both).
#
# A masked entry has $P_{ij} = 0$: what does that make of its $\partial L / \partial S_{ij}$? A query that sees no
# key at all has the output $0$ whatever $Q$, $K$ and $V$ are, so its gradient is zero too (not `NaN`).
#
# **How a gradient is checked.** Nudge one entry $x_i$ of an input by $\pm\varepsilon$ and watch the loss
# $L = \sum O \odot G$ change: $(L(x + \varepsilon e_i) - L(x - \varepsilon e_i)) / 2\varepsilon$ approaches
# $\partial L / \partial x_i$ with an error that shrinks as $\varepsilon^2$. In `float64`, with $\varepsilon = 10^{-6}$,
# it agrees with the exact gradient to many digits. `course.checks.numerical_gradient` does exactly this, one
# entry at a time (read it: a dozen lines). The visible test compares your gradients with it, and with
# autograd's; the hidden tests check that your function does not call autograd.

# %% solution="attention_backward"
def attention_backward(queries, keys, values, grad_outputs, mask=None):
    """Gradients of the loss with respect to the inputs of scaled_dot_product_attention.

    Args:
        queries (..., Tq, d), keys (..., Tk, d), values (..., Tk, dv): the inputs of the forward pass.
        grad_outputs (..., Tq, dv): dL/d(outputs), the gradient arriving from the layers above.
        mask: optional bool tensor broadcastable to (..., Tq, Tk), True = may attend (as in the forward pass).

    Returns:
        (grad_queries, grad_keys, grad_values): dL/dQ, dL/dK, dL/dV, each of the shape and dtype of its input.

    Write it with tensor operations; you may call your scaled_dot_product_attention for the weights P.
    Do not use autograd (no .backward(), torch.autograd, torch.func, no tensor with requires_grad=True),
    torch._softmax_backward_data or torch.nn.functional.scaled_dot_product_attention.
    """
    ### BEGIN SOLUTION
    d = queries.shape[-1]
    _, weights = scaled_dot_product_attention(queries, keys, values, mask)  # the forward's intermediate P
    grad_values = weights.transpose(-2, -1) @ grad_outputs  # O = P V  ->  dL/dV = P^T G
    grad_weights = grad_outputs @ values.transpose(-2, -1)  # and dL/dP = G V^T
    # softmax, row by row: dL/dS_j = P_j (dL/dP_j - sum_k P_k dL/dP_k); where P_j = 0 (masked) no gradient passes
    weighted_mean = (weights * grad_weights).sum(dim=-1, keepdim=True)
    grad_scores = weights * (grad_weights - weighted_mean)
    grad_queries = grad_scores @ keys / math.sqrt(d)  # S = Q K^T / sqrt(d)
    grad_keys = grad_scores.transpose(-2, -1) @ queries / math.sqrt(d)
    return grad_queries, grad_keys, grad_values
    ### END SOLUTION


# %% tests="attention_backward_visible" points=2
from course.checks import numerical_gradient

f64 = dict(dtype=torch.float64)  # gradient checks in float64: float32 rounding would hide a small error
names = ("grad_queries", "grad_keys", "grad_values")


def attention(q, k, v, mask):  # torch's, for the expected values
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


def typical_mistakes(q, k, v, g, mask):
    """{description: what that mistake gives} for each of the three gradients, from the weights P and dL/dP."""
    d, tk = q.shape[-1], k.shape[-2]
    P = attention(q, k, torch.eye(tk, **f64).expand(*k.shape[:-2], tk, tk), mask)  # one-hot values: the weights
    grad_P = g @ v.transpose(-2, -1)
    grad_S = P * (grad_P - (P * grad_P).sum(-1, keepdim=True))
    leaves = [x.clone().requires_grad_() for x in (q, k, v)]
    unmasked = torch.autograd.grad(attention(*leaves, None), leaves, g)
    no_sum, no_scale = "the softmax backward misses its row sum (P * dL/dP, without - sum_k P_k dL/dP_k)", "the 1/√d is missing"
    mistakes = ({no_sum: P * grad_P @ k / math.sqrt(d), no_scale: grad_S @ k},
                {no_sum: (P * grad_P).transpose(-2, -1) @ q / math.sqrt(d), no_scale: grad_S.transpose(-2, -1) @ q},
                {})
    for named, gradient in zip(mistakes, unmasked):
        named["the weights are recomputed without the mask"] = gradient
    if q.shape == k.shape:  # Tq = Tk: a missing transpose keeps the shape and changes the values
        mistakes[0]["dL/dS is transposed"] = grad_S.transpose(-2, -1) @ k / math.sqrt(d)
        mistakes[1]["dL/dK is dL/dS Q instead of (dL/dS)^T Q"] = grad_S @ q / math.sqrt(d)
        mistakes[2]["dL/dV is P G instead of P^T G"] = P @ g
    return mistakes


def check_gradients(got, q, k, v, g, mask, expected, label, atol):
    assert isinstance(got, tuple) and len(got) == 3, "attention_backward must return (grad_queries, grad_keys, grad_values)"
    for name, grad, x in zip(names, got, (q, k, v)):
        check_shape(grad, x.shape, f"{name}, {label}", hint="a gradient has the shape of its input: dL/dK is (..., Tk, d)")
    for name, grad, want, named in zip(names, got, expected, typical_mistakes(q, k, v, g, mask)):
        check_close(grad, want, f"{name}, {label}", atol=atol, rtol=atol, mistakes=named)


# 1. self-attention sizes (Tq = Tk = 5), causal, against autograd through torch's attention
torch.manual_seed(4)
q, k, v, g = (torch.randn(2, 5, 8, **f64) for _ in range(4))  # g = dL/d(outputs): the loss is L = sum(outputs * g)
causal = torch.ones(5, 5, dtype=torch.bool).tril()
leaves = [x.clone().requires_grad_() for x in (q, k, v)]
from_autograd = torch.autograd.grad(attention(*leaves, causal), leaves, g)  # the tests may use autograd; you may not
check_gradients(attention_backward(q, k, v, g, causal), q, k, v, g, causal, from_autograd, "causal self-attention vs autograd", 1e-8)

# 2. three queries, five keys, two of them masked, against the numerical gradient (course.checks.numerical_gradient)
q3, k3, v3, g3 = torch.randn(2, 3, 8, **f64), torch.randn(2, 5, 8, **f64), torch.randn(2, 5, 4, **f64), torch.randn(2, 3, 4, **f64)
key_mask = torch.tensor([True, True, False, True, False])
numerical = (numerical_gradient(lambda x: attention(x, k3, v3, key_mask), q3, g3),
             numerical_gradient(lambda x: attention(q3, x, v3, key_mask), k3, g3),
             numerical_gradient(lambda x: attention(q3, k3, x, key_mask), v3, g3))
check_gradients(attention_backward(q3, k3, v3, g3, key_mask), q3, k3, v3, g3, key_mask, numerical,
                "keys 2 and 4 masked, vs the numerical gradient", 1e-6)

# 3. a query that sees nothing: its output is the constant 0, whatever its inputs
blind = causal.clone()
blind[0] = False
grad_q_blind = attention_backward(q, k, v, g, blind)[0]
assert torch.isfinite(grad_q_blind).all() and (grad_q_blind[:, 0] == 0).all(), (
    "a query whose keys are all masked has the output 0 whatever its inputs: its gradient must be exactly 0, not NaN")
print("Exercise 4: visible tests passed.")
### BEGIN HIDDEN TESTS
# The same checks on the grader's own inputs, with autograd and the built-in backward refused.
from course.checks import forbidden_calls, report

NO_SHORTCUTS = ((F, "scaled_dot_product_attention"), (torch.nn, "MultiheadAttention"), (torch, "_softmax_backward_data"))
generator = torch.Generator().manual_seed(35)
q, k, v, g = (torch.randn(2, 5, 8, generator=generator, **f64) for _ in range(4))
q3, k3, v3, g3 = (torch.randn(2, 3, 8, generator=generator, **f64), torch.randn(2, 5, 8, generator=generator, **f64),
                  torch.randn(2, 5, 4, generator=generator, **f64), torch.randn(2, 3, 4, generator=generator, **f64))
for label, inputs, this_mask in (("causal", (q, k, v, g), causal), ("blind_query", (q, k, v, g), blind),
                                 ("plain", (q3, k3, v3, g3), None), ("key_mask", (q3, k3, v3, g3), key_mask)):
    with forbidden_calls(*NO_SHORTCUTS, allow_autograd=False):
        got = attention_backward(*inputs, this_mask)
    for name, grad in zip(names, got):
        report(f"attention_backward/visible/{label}/{name}", grad, atol=1e-10)
### END HIDDEN TESTS

# %% tests="attention_backward_hidden" points=3
# Hidden tests, run when the notebook is graded: leading batch dimensions, float32 and float64, random,
# key-only and causal masks, queries that see nothing, sharp softmaxes, and no autograd.
### BEGIN HIDDEN TESTS
from course.checks import forbidden_calls, report

NO_SHORTCUTS = ((F, "scaled_dot_product_attention"), (torch.nn, "MultiheadAttention"), (torch, "_softmax_backward_data"))
generator = torch.Generator().manual_seed(36)
case = 0  # report names number the cases: a name never holds the input
for dtype, atol in ((torch.float32, 1e-5), (torch.float64, 1e-10)):
    for leading, tq, tk, d, dv in [((), 1, 1, 1, 1), ((3,), 5, 7, 16, 4), ((2, 3), 6, 6, 8, 8), ((2,), 9, 4, 64, 5)]:
        q = torch.randn(*leading, tq, d, generator=generator, dtype=dtype)
        k = torch.randn(*leading, tk, d, generator=generator, dtype=dtype)
        v = torch.randn(*leading, tk, dv, generator=generator, dtype=dtype)
        grad_outputs = torch.randn(*leading, tq, dv, generator=generator, dtype=dtype)
        random_mask = torch.rand(*leading, tq, tk, generator=generator) > 0.3
        random_mask[..., 0, :] = False  # the first query sees nothing
        keys_only = torch.rand(tk, generator=generator) > 0.3  # broadcast over queries and batch
        causal = torch.ones(tq, tk, dtype=torch.bool).tril()
        for this_mask in (None, random_mask, keys_only, causal):
            with forbidden_calls(*NO_SHORTCUTS, allow_autograd=False):
                got = attention_backward(q, k, v, grad_outputs, this_mask)
            case += 1
            for name, grad in zip(("queries", "keys", "values"), got):
                report(f"attention_backward/hidden/grad_{name}/case{case}", grad, atol=atol)

# sharp weights (large scores, nearly one-hot rows), in float64
x = 30 * torch.randn(2, 6, 16, generator=generator, dtype=torch.float64)
grad_outputs = torch.randn(2, 6, 16, generator=generator, dtype=torch.float64)
with forbidden_calls(*NO_SHORTCUTS, allow_autograd=False):
    got = attention_backward(x, x, x, grad_outputs, torch.ones(6, 6, dtype=torch.bool).tril())
for name, grad in zip(("queries", "keys", "values"), got):
    report(f"attention_backward/hidden/sharp/grad_{name}", grad, atol=1e-8)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 5: why a saturated softmax passes no gradient (2 points, graded by your instructor)
#
# Chapter 3 (section *Dot-product similarity, and why divide by $\sqrt{d}$*: its four-panel figure and the
# paragraphs after it) measures,
# at width $d = 1024$, 2,000 random queries against 16 random keys: without the scale the largest softmax
# weight is on average almost 1 and about half of the queries get a gradient norm below 0.001; with it,
# none do, and the median query gets hundreds of times more gradient. Answer in a few sentences, using the
# formulas of **your** `attention_backward` (exercise 4):
#
# 1. Write the gradient at the scores of one row, $\partial L / \partial s_j$, as your code computes it. What
#    is it when the row's weights are (nearly) one-hot, for the winning key and for the others? Why does
#    the gradient at the query then (nearly) vanish, whatever $G$ is?
# 2. What does dividing by $\sqrt d$ change, in the forward pass and in your formula for
#    $\partial L / \partial Q$, and why is the chapter's *mean* gradient nonetheless larger without the scale?

# %% [markdown] answer="saturation_gradient" points=2
# ### BEGIN SOLUTION
# **Model answer.** My backward pass computes, row by row, $\partial L / \partial s_j = p_j\,(\partial L /
# \partial p_j - \sum_k p_k\, \partial L / \partial p_k)$ with $\partial L / \partial P = G V^\top$, then
# $\partial L / \partial Q = (\partial L / \partial S)\, K / \sqrt d$. If the row is one-hot on key $m$
# ($p_m = 1$, the others 0), the sum is $\partial L / \partial p_m$, so the winner gets $1 \cdot (\partial L
# / \partial p_m - \partial L / \partial p_m) = 0$ and every other key gets $0 \cdot (\dots) = 0$: the whole
# row of $\partial L / \partial S$ is zero, and so is $\partial L / \partial q$, a combination of the keys
# with those coefficients, whatever $G$ and $V$ are. Nearly one-hot gives nearly zero: each coefficient
# carries a factor $p_j$ or $1 - p_m$. That is what the chapter measures unscaled at $d = 1024$: the largest
# of 16 weights is 0.961 on average, and 53 % of the queries get a gradient norm below 0.001.
# Dividing by $\sqrt d$ brings the scores' standard deviation back to about 1 (from about $\sqrt d$), so
# the weights stay spread (largest 0.246 on average), the factors $p_j$ stay away from 0 and 1, and
# no query is starved (0 %); the median query gets 710 times more gradient. In the formula the scale also
# multiplies $\partial L / \partial Q$ by $1/\sqrt d$, and without it the keys summed into the gradient have
# length about $\sqrt d$: the few queries whose two best scores are nearly equal sit on the steep part of
# the softmax and get large gradients (the top tenth gets 85 % of the total), which is why the unscaled mean
# is 4.8 times larger even though most queries get almost nothing.
#
# **Rubric (2 points).**
# - 1 point: the softmax backward written as $p_j(\partial L/\partial p_j - \sum_k p_k \partial L/\partial p_k)$
#   (or the equivalent from their code), and shown to be zero for a one-hot row, both for the winner and
#   for the others, hence zero gradient at the query whatever $G$ is; linked to the chapter's measured share
#   of starved queries (about half) or its largest weight near 1.
# - 1 point: what $1/\sqrt d$ changes: the scores' spread back to about 1, so the softmax does not saturate
#   and (almost) no query is starved, with a measured figure from the chapter (0 % starved, or the median
#   hundreds of times larger); and the mean explained by a few unsaturated queries whose gradient is a sum
#   of long keys (not by the scale making every gradient smaller). An answer that says the scale only
#   "keeps gradients small" earns no point here.
# ### END SOLUTION
