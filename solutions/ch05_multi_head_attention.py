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
# # Exercises 5: multi-head attention
#
# The batched multi-head attention layer of chapter 5, equal to `torch.nn.MultiheadAttention`
# given the same weights.
#
# | exercise | points |
# | --- | --- |
# | 1. splitting into heads and merging them back | 3 |
# | 2. multi-head attention: fused QKV, batched heads, output projection, masks, cross-attention | 7 |
# | 3. predict, then measure: attention without the $1/\sqrt{D_h}$ | 3 |
# | 4. written: what the scale is for (graded by your instructor) | 2 |
# | 5. an experiment of your own: do several heads help? (it runs and reports, within the budget) | 1 |
# | 6. written: your experiment's report (graded by your instructor) | 5 |
#
# **How you are graded.** Each test cell below is worth points. The tests you see check the
# basics and say what went wrong; when the notebook is graded, further hidden tests compare
# your code with the course's reference implementation and with `torch.nn.MultiheadAttention`
# on random shapes, `float32` and `float64`, padding and causal masks. Exercise 4 is a short written
# answer, and exercise 6 the report of your own experiment (exercise 5), that your instructor reads and
# grades. Run every cell from the
# top (*Kernel → Restart & Run All*) before you submit.
#
# **Conventions.** Letters: `B` batch, `T` length, `D` model width, `H` heads, `Dh = D / H`.
# Our masks are boolean with `True` = *may attend*, broadcast against `(B, Tq, Tk)`.
# `torch.nn.MultiheadAttention` uses the opposite convention (`True` = *masked out*), hence the
# `~` in the tests. You may use `scaled_dot_product_attention` from `course.attention`.

# %%
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from course.attention import causal_mask, padding_mask, scaled_dot_product_attention
from course.checks import check_close, check_shape

torch.manual_seed(0)

# %% [markdown]
# ## Exercise 1: splitting into heads and merging them back (3 points)
#
# Head $h$ works in its own slice of the features, columns $h \cdot D_h$ to $(h+1) \cdot D_h - 1$.
# `split_heads` turns `(B, T, D)` into `(B, H, T, Dh)` so that one batched matrix product
# handles every head at once; `merge_heads` is its inverse, `(B, H, T, Dh) -> (B, T, H*Dh)`,
# which places the heads' outputs side by side: the concatenation.
#
# Hint: `view` (or `reshape`) then `transpose`. Mind the order: a plain `x.view(B, H, T, Dh)`
# has the right shape and the wrong contents.

# %% solution="heads"
def split_heads(x, num_heads):
    """(B, T, D) -> (B, H, T, D // H); out[:, h] holds the columns h*Dh .. (h+1)*Dh - 1 of x."""
    ### BEGIN SOLUTION
    return x.unflatten(-1, (num_heads, -1)).permute(0, 2, 1, 3)  # (B, T, H, Dh) -> (B, H, T, Dh)
    ### END SOLUTION


def merge_heads(x):
    """(B, H, T, Dh) -> (B, T, H * Dh), the inverse of split_heads."""
    ### BEGIN SOLUTION
    return x.permute(0, 2, 1, 3).flatten(-2)  # (B, T, H, Dh) -> (B, T, H * Dh)
    ### END SOLUTION


# %% tests="heads_visible" points=1
x = torch.arange(2 * 3 * 6, dtype=torch.float32).view(2, 3, 6)
heads = split_heads(x, 2)
check_shape(heads, (2, 2, 3, 3), "split_heads(x of shape (2, 3, 6), 2)")
check_close(heads, torch.stack([x[..., 0:3], x[..., 3:6]], dim=1), "split_heads(x, 2): head h should hold columns 3h..3h+2 of x",
            mistakes={"x is split with x.view(B, H, T, Dh), which regroups the entries in memory order": x.view(2, 2, 3, 3)})
check_close(merge_heads(heads), x, "merge_heads(split_heads(x)) should give x back")
print("Exercise 1: visible tests passed.")
### BEGIN HIDDEN TESTS
# The same checks on the grader's own inputs; the grader compares the results with the reference's.
from course.checks import report

generator = torch.Generator().manual_seed(50)
x = torch.randn(2, 3, 6, generator=generator)
report("heads/visible/split", split_heads(x, 2), atol=0, rtol=0)
report("heads/visible/merge", merge_heads(split_heads(x, 3)), atol=0, rtol=0)
### END HIDDEN TESTS

# %% tests="heads_hidden" points=2
# Hidden tests, run when the notebook is graded: random shapes, equal to the reference.
### BEGIN HIDDEN TESTS
from course.checks import report

generator = torch.Generator().manual_seed(51)
for B, T, H, Dh in ((1, 1, 1, 1), (2, 5, 4, 3), (3, 7, 8, 2), (1, 4, 1, 6)):
    x = torch.randn(B, T, H * Dh, generator=generator, dtype=torch.float64)
    report(f"heads/hidden/split/{tuple(x.shape)}/H={H}", split_heads(x, H), atol=0, rtol=0)
    y = torch.randn(B, H, T, Dh, generator=generator)
    report(f"heads/hidden/merge/{tuple(y.shape)}", merge_heads(y), atol=0, rtol=0)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 2: multi-head attention (7 points)
#
# $$\mathrm{head}_h = \mathrm{softmax}\!\left(\frac{Q_h K_h^\top}{\sqrt{D_h}}\right) V_h, \qquad
# \mathrm{MultiHead}(X) = [\mathrm{head}_1 \mid \dots \mid \mathrm{head}_H]\, W_o + b_o$$
#
# where $Q_h, K_h, V_h$ are head $h$'s slices of $Q = X W_q$, $K = X W_k$, $V = X W_v$.
#
# The module has exactly two linear layers, whose names the tests rely on:
#
# * `self.qkv = nn.Linear(D, 3 * D)`: the stacked $[W_q \mid W_k \mid W_v]$ (output columns: queries, then keys, then values);
# * `self.out = nn.Linear(D, D)`: the output projection $W_o$.
#
# `forward(x, memory=None, mask=None)`:
#
# * **self-attention** when `memory is None`: Q, K and V all come from `x`, with one call of `self.qkv`;
# * **cross-attention** when `memory` `(B, Tk, D)` is given: queries from `x` with the first `D`
#   rows of `self.qkv.weight` (and of its bias), keys and values from `memory` with the other `2 D` rows
#   (`F.linear(input, weight, bias)` applies a slice of a weight);
# * `mask`: bool, broadcastable to `(B, Tq, Tk)`, the same for every head. Before the heads
#   see it, give a 3-dimensional mask an axis for the heads (`mask.unsqueeze(-3)`: `(B, 1, Tq, Tk)`);
#   a 2-dimensional `(Tq, Tk)` mask already broadcasts;
# * returns the outputs `(B, Tq, D)` and **every head's** weights `(B, H, Tq, Tk)`.
#
# No loop over heads: split, one batched attention call, merge.

# %% solution="multi_head_attention"
class MultiHeadAttention(nn.Module):
    """Multi-head attention equal to nn.MultiheadAttention(D, H, batch_first=True) with the same weights.

    Attributes: qkv = nn.Linear(D, 3 D) (like in_proj_weight / in_proj_bias), out = nn.Linear(D, D) (out_proj).
    forward(x (B, Tq, D), memory (B, Tk, D) or None, mask bool broadcastable to (B, Tq, Tk) or None)
        -> (outputs (B, Tq, D), weights (B, H, Tq, Tk))

    Do not use nn.MultiheadAttention, F.multi_head_attention_forward or F.scaled_dot_product_attention.
    """

    def __init__(self, d_model, num_heads):
        super().__init__()
        self.d_model, self.num_heads = d_model, num_heads
        ### BEGIN SOLUTION
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        ### END SOLUTION

    def forward(self, x, memory=None, mask=None):
        ### BEGIN SOLUTION
        D, H = self.d_model, self.num_heads
        if memory is None:
            queries, keys, values = self.qkv(x).chunk(3, dim=-1)
        else:  # the first D rows of the stacked weight project queries, the other 2D keys and values
            weight_q, weight_kv = self.qkv.weight.split([D, 2 * D])
            bias_q, bias_kv = self.qkv.bias.split([D, 2 * D])
            queries = F.linear(x, weight_q, bias_q)
            keys, values = F.linear(memory, weight_kv, bias_kv).chunk(2, dim=-1)
        q, k, v = split_heads(queries, H), split_heads(keys, H), split_heads(values, H)  # (B, H, T, Dh)
        scores = q @ k.transpose(-2, -1) / math.sqrt(D // H)  # (B, H, Tq, Tk)
        if mask is not None:
            head_mask = mask[..., None, :, :] if mask.dim() >= 3 else mask  # same mask for every head
            scores = scores.masked_fill(~head_mask, float("-inf"))
        weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # a query that sees nothing gets zeros
        return self.out(merge_heads(weights @ v)), weights
        ### END SOLUTION


# %% tests="multi_head_attention_visible" points=3
torch.manual_seed(5)
D, H = 12, 3
ours = MultiHeadAttention(D, H)
assert isinstance(getattr(ours, "qkv", None), nn.Linear) and ours.qkv.weight.shape == (3 * D, D), "qkv must be nn.Linear(D, 3 D)"
assert isinstance(getattr(ours, "out", None), nn.Linear) and ours.out.weight.shape == (D, D), "out must be nn.Linear(D, D)"

theirs = nn.MultiheadAttention(D, H, batch_first=True)
with torch.no_grad():  # the same weights in both modules
    theirs.in_proj_weight.copy_(ours.qkv.weight)
    theirs.in_proj_bias.copy_(ours.qkv.bias)
    theirs.out_proj.weight.copy_(ours.out.weight)
    theirs.out_proj.bias.copy_(ours.out.bias)

x = torch.randn(2, 5, D)
outputs, weights = ours(x)
check_shape(outputs, (2, 5, D), "outputs")
check_shape(weights, (2, H, 5, 5), "per-head weights")
want_outputs, want_weights = theirs(x, x, x, average_attn_weights=False)
check_close(outputs, want_outputs, "outputs vs nn.MultiheadAttention")
check_close(weights, want_weights, "per-head weights vs nn.MultiheadAttention(average_attn_weights=False)")

keys_ok = padding_mask(torch.tensor([5, 3]))  # (2, 1, 5)
outputs, weights = ours(x, mask=keys_ok)
want_outputs, _ = theirs(x, x, x, key_padding_mask=~keys_ok[:, 0])
check_close(outputs, want_outputs, "outputs with a padding mask")
assert (weights[1, :, :, 3:] == 0).all(), "padded keys must get exactly zero weight in every head"
print("Exercise 2: visible tests passed.")
### BEGIN HIDDEN TESTS
from course.checks import report

def seeded_weights(module, D, generator, dtype=torch.float32):
    """The grader's own weights in the student's module (qkv and out, as the exercise names them)."""
    with torch.no_grad():
        module.qkv.weight.copy_(torch.randn(3 * D, D, generator=generator, dtype=dtype) / math.sqrt(D))
        module.qkv.bias.copy_(0.1 * torch.randn(3 * D, generator=generator, dtype=dtype))
        module.out.weight.copy_(torch.randn(D, D, generator=generator, dtype=dtype) / math.sqrt(D))
        module.out.bias.copy_(0.1 * torch.randn(D, generator=generator, dtype=dtype))
    return module

generator = torch.Generator().manual_seed(53)
layer = seeded_weights(MultiHeadAttention(12, 3), 12, generator)
x = torch.randn(2, 5, 12, generator=generator)
for label, this_mask in (("plain", None), ("padding", padding_mask(torch.tensor([5, 3])))):
    outputs, weights = layer(x, mask=this_mask)
    report(f"mha/visible/{label}/outputs", outputs)
    report(f"mha/visible/{label}/weights", weights)
### END HIDDEN TESTS

# %% tests="multi_head_attention_hidden" points=4
# Hidden tests, run when the notebook is graded: random sizes, float32 and float64, padding,
# causal and combined masks, cross-attention, compared with the reference solution.
### BEGIN HIDDEN TESTS
from course.checks import forbidden_calls, report

def seeded_weights(module, D, generator, dtype=torch.float32):
    """The grader's own weights in the student's module (qkv and out, as the exercise names them)."""
    with torch.no_grad():
        module.qkv.weight.copy_(torch.randn(3 * D, D, generator=generator, dtype=dtype) / math.sqrt(D))
        module.qkv.bias.copy_(0.1 * torch.randn(3 * D, generator=generator, dtype=dtype))
        module.out.weight.copy_(torch.randn(D, D, generator=generator, dtype=dtype) / math.sqrt(D))
        module.out.bias.copy_(0.1 * torch.randn(D, generator=generator, dtype=dtype))
    return module

generator = torch.Generator().manual_seed(52)
for dtype, atol in ((torch.float32, 1e-5), (torch.float64, 1e-10)):
    for B, Tq, Tk, D, H in ((1, 1, 1, 2, 1), (3, 6, 6, 16, 4), (2, 4, 7, 12, 6), (2, 8, 5, 8, 8)):
        student = seeded_weights(MultiHeadAttention(D, H).to(dtype), D, generator, dtype)
        x = torch.randn(B, Tq, D, generator=generator, dtype=dtype)
        memory = torch.randn(B, Tk, D, generator=generator, dtype=dtype)
        lengths = torch.randint(1, Tk + 1, (B,), generator=generator)
        keys_ok = padding_mask(lengths, Tk)
        cases = [("padding", memory, keys_ok), ("cross, no mask", memory, None)]
        if Tq == Tk:
            self_keys_ok = padding_mask(lengths, Tq)
            cases += [("self, no mask", None, None), ("self, causal", None, causal_mask(Tq)),
                      ("self, padding", None, self_keys_ok), ("self, causal + padding", None, self_keys_ok & causal_mask(Tq))]
        for name, mem, mask in cases:
            with forbidden_calls((nn, "MultiheadAttention"), (F, "multi_head_attention_forward"), (F, "scaled_dot_product_attention")):
                got_out, got_w = student(x, mem, mask)
            case = f"{dtype}/B={B} Tq={Tq} Tk={Tk} D={D} H={H}/{name}"
            report(f"mha/hidden/weights/{case}", got_w, atol=atol)
            report(f"mha/hidden/outputs/{case}", got_out, atol=atol)
### END HIDDEN TESTS


# %% [markdown]
# ## Exercise 3: predict, then measure: attention without the $1/\sqrt{D_h}$ (3 points)
#
# Every head divides its scores by $\sqrt{D_h}$. Chapter 3 measured what leaving the scale out does to
# the weights (one key takes almost all of them) and to the gradient at the *queries* (most queries get
# almost none, yet the mean over queries rises). This exercise measures what chapter 3 did not: the
# gradient that reaches the **scores** themselves, $\partial L / \partial e$, through which every
# parameter before the softmax ($W_q$ and $W_k$ of every head) receives its share.
#
# **Predict first**, in the cell below, before you run anything: for queries and keys with independent
# standard normal entries, 64 keys and heads of width $D_h = 256$, is the mean absolute gradient at the
# scores larger or smaller without the scale than with it, and by about what factor? Write a number
# ("about 3 times larger", "100 times smaller") and a reason in a few words. The test cell that measures
# will not run until you have; a wrong prediction costs no points.
#
# Then measure. `attention_saturation(head_dim, scaled, generator)` draws, **in this order** from
# `generator`, in `float64`: queries `(256, head_dim)`, keys `(64, head_dim)` and an upstream gradient
# `(256, 64)`, all `torch.randn`. It computes the scores $QK^\top$, divided by $\sqrt{D_h}$ when
# `scaled`, the softmax weights over the keys, and returns three floats:
#
# 1. the standard deviation of the scores (`scores.std()`),
# 2. the mean over queries of the largest weight,
# 3. the mean absolute gradient of $\sum_{q,k} \text{weights}_{qk}\, \text{upstream}_{qk}$ with respect
#    to the scores (what backpropagation hands the scores when the layer above sends `upstream`;
#    make the scores a leaf with `requires_grad_()` and call `.backward()`, or write the softmax's
#    Jacobian-vector product by hand).

# %% solution="saturation_prediction"
prediction = None  # your prediction, a string in place of None (and delete the raise): "... by about ... times, because ..."
### BEGIN SOLUTION
prediction = ("Smaller without the scale, by about 5 times at D_h = 256: the unscaled scores spread 16 times wider, "
              "the softmax is nearly one-hot, and its Jacobian diag(p) - p p^T is then close to zero.")
### END SOLUTION


# %% [markdown]
# Now write the function that measures it.

# %% solution="saturation"
def attention_saturation(head_dim, scaled, generator, num_queries=256, num_keys=64):
    """-> (score standard deviation, mean largest weight, mean |d loss / d score|), three Python floats.

    queries (num_queries, head_dim), keys (num_keys, head_dim), upstream (num_queries, num_keys):
    torch.randn(..., generator=generator, dtype=torch.float64), drawn in that order.
    """
    ### BEGIN SOLUTION
    queries = torch.randn(num_queries, head_dim, generator=generator, dtype=torch.float64)
    keys = torch.randn(num_keys, head_dim, generator=generator, dtype=torch.float64)
    upstream = torch.randn(num_queries, num_keys, generator=generator, dtype=torch.float64)
    scores = queries @ keys.T  # (Q, K): a sum of head_dim products of unit variance, so variance head_dim
    if scaled:
        scores = scores / math.sqrt(head_dim)  # back to unit variance, whatever the head width
    scores.requires_grad_()
    weights = torch.softmax(scores, dim=-1)
    (weights * upstream).sum().backward()
    return scores.std().item(), weights.max(dim=-1).values.mean().item(), scores.grad.abs().mean().item()
    ### END SOLUTION


# %% tests="saturation_visible" points=1
from course.checks import require_prediction

print("Your prediction:", require_prediction(prediction, needs_number=True))  # stops here until you have written one
print(f"{'D_h':>5} | {'score std':>20} | {'mean largest weight':>20} | {'mean |gradient|':>22}")
print(f"{'':>5} | {'scaled   unscaled':>20} | {'scaled   unscaled':>20} | {'scaled     unscaled':>22}")
measured = {}
for head_dim in (4, 16, 64, 256, 1024):
    measured[head_dim] = {scaled: attention_saturation(head_dim, scaled, torch.Generator().manual_seed(0)) for scaled in (True, False)}
    (s_std, s_max, s_grad), (u_std, u_max, u_grad) = measured[head_dim][True], measured[head_dim][False]
    print(f"{head_dim:>5} | {s_std:8.2f} {u_std:10.2f} | {s_max:8.3f} {u_max:10.3f} | {s_grad:10.5f} {u_grad:10.5f}")

result = attention_saturation(16, True, torch.Generator().manual_seed(0))
assert isinstance(result, tuple) and len(result) == 3 and all(isinstance(v, float) for v in result), \
    f"attention_saturation must return a tuple of three Python floats (use .item()), got {result!r}"
generator = torch.Generator().manual_seed(0)
queries = torch.randn(256, 16, generator=generator, dtype=torch.float64)
keys = torch.randn(64, 16, generator=generator, dtype=torch.float64)
expected_std = (queries @ keys.T / 4).std().item()
assert abs(result[0] - expected_std) < 1e-9, (f"scaled score std at D_h=16: got {result[0]:.6f}, expected {expected_std:.6f}: "
                                              "are queries drawn before keys, from the generator, in float64, and divided by sqrt(16)?")
assert 0.9 < measured[256][True][0] < 1.1 and measured[256][False][0] > 10, "scaled scores should have std near 1, unscaled near sqrt(D_h)"
print("Exercise 3: visible tests passed.")
### BEGIN HIDDEN TESTS
# What the visible checks saw, handed to the grader: compared with the reference's outside this notebook.
from course.checks import report

report("saturation/visible/d16_scaled", torch.tensor(result, dtype=torch.float64), rtol=1e-6, atol=1e-9)
for case, head_dim in enumerate((4, 256)):
    for scaled in (True, False):
        report(f"saturation/visible/case{case}/{'scaled' if scaled else 'unscaled'}",
               torch.tensor(measured[head_dim][scaled], dtype=torch.float64), rtol=1e-6, atol=1e-9)
### END HIDDEN TESTS

# %% tests="saturation_hidden" points=2
# Hidden tests, run when the notebook is graded: the three numbers at other head widths and seeds,
# scaled and not, compared with the reference's.
### BEGIN HIDDEN TESTS
from course.checks import report

for case, (head_dim, seed) in enumerate(((1, 31), (8, 32), (128, 33), (512, 34))):
    for scaled in (True, False):
        got = attention_saturation(head_dim, scaled, torch.Generator().manual_seed(seed))
        report(f"saturation/case{case}/{'scaled' if scaled else 'unscaled'}", torch.tensor(got, dtype=torch.float64), rtol=1e-6, atol=1e-9)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 4: what the scale is for (2 points, graded by your instructor)
#
# In the cell below, in a few sentences:
#
# 1. how your prediction (exercise 3's prediction cell, written before you measured) compares with the
#    measured factor at $D_h = 256$, and what you would now reason differently;
# 2. what the table shows as $D_h$ grows, with and without the scale (quote two numbers), and why the
#    score's standard deviation grows as it does;
# 3. how the change you measured at the scores fits with what chapter 3 measured at the queries (the
#    median and the mean of the gradient there), and what the missing scale would do to training a
#    model whose heads are 256 wide.

# %% [markdown] answer="scale_explained" points=2
# ### BEGIN SOLUTION
# **Model answer.** A score $q\cdot k = \sum_{i=1}^{D_h} q_i k_i$ is a sum of $D_h$ independent products
# of variance 1, so its variance is $D_h$ and its standard deviation $\sqrt{D_h}$ (16 at $D_h = 256$).
# Unscaled, the scores spread further apart as heads widen, and the softmax turns large gaps into
# nearly one-hot weights: the mean largest weight goes from about 0.29 at $D_h = 4$ to about 0.9 at
# 256 and 0.95 at 1024, while scaled it stays near 0.1 at every width. A saturated softmax has a
# Jacobian near zero ($\mathrm{diag}(p) - pp^\top \to 0$ as $p$ becomes one-hot), so the mean
# gradient reaching the scores shrinks about tenfold between $D_h = 4$ and 1024 unscaled and does
# not change scaled; at $D_h = 256$ it is about 0.0027 unscaled against 0.012 scaled, between four and
# five times smaller (a prediction of "smaller, by a few times" was right; "larger", from chapter 3's
# mean gradient at the queries, was not, and item 3 says why). That is the gradient at the scores; what trains are the parameters. The gradient at
# a query is $\sum_j (\partial L/\partial e_j)\,k_j$ (divided by $\sqrt{D_h}$ when scaled), and unscaled
# the keys enter $\sqrt{D_h}$ times larger, so averaged over queries the gradient at $q$, and at $W_q$,
# can even be larger without the scale: the few queries whose two best keys score almost alike get
# large gradients. What the missing scale does is leave *most* queries with almost none (chapter 3
# measures it: the median gradient at $q$ falls by orders of magnitude and about half the queries get
# almost none, while the mean rises). Training without the scale would start with heads in which most
# queries attend to one arbitrary key and pass back almost no gradient, so $W_q$ and $W_k$ learn from a
# few queries only, and the wider the heads the worse: dividing by $\sqrt{D_h}$ keeps the scores at
# unit variance at initialisation, whatever the width.
#
# **Rubric (2 points).**
# - 1 point: the variance argument (sum of $D_h$ unit-variance products: std $\sqrt{D_h}$) and the
#   measured effect on the weights (nearly one-hot unscaled, flat and width-independent scaled) with
#   numbers from the table.
# - 1 point: the consequence for learning: a saturated softmax passes almost no gradient back for most
#   queries (the measured drop at the scores, from the table), so most queries, and the $W_q$, $W_k$
#   they would train, learn slowly or not at all; the scale keeps unit variance at any width.
#   It says why the two measurements differ: the gradient at a query sums the scores' gradients times
#   keys that enter $\sqrt{D_h}$ times larger unscaled, and the few queries with near-tied best keys get
#   large ones, so the *mean* at the queries can rise while the gradient at most scores, and most
#   queries, collapses. An answer that says the scale is needed because the *average* gradient of the
#   parameters vanishes earns half this point (chapter 3 shows it does not).
# - The prediction itself earns nothing and loses nothing: a wrong prediction with a right explanation
#   earns both points; item 1 asks only for an honest comparison. 0 for a part only restating numbers
#   without a reason.
# ### END SOLUTION


# %% [markdown]
# ## Exercise 5: an experiment of your own: do several heads help? (1 point)
#
# Chapter 5 argues that one softmax must split its weight between two things a query needs, and several heads
# need not. Test it: design a **controlled comparison** and run it, within a stated budget.
#
# **The task** (read-only cell below, `neighbour_sum_batch`): 8 random digits; the output at position $i$ is the sum,
# modulo 10, of the digits on its left and on its right (cyclically: position 0's left neighbour is position 7).
# Every output needs two other tokens at once. **The model** (`TinyEncoder(num_heads)`): learned positions, one
# pre-LN block built on **your** `MultiHeadAttention` (exercise 2) of width `d_model = 32`, a feed-forward network, a
# read-out of 10 logits per position. With 1 head, that head is 32 wide; with 4, each is 8 wide: the same number
# of parameters either way.
#
# **The budget**: at most **1,600 optimizer steps** over all your runs together (`EXPERIMENT_STEPS`), each on at
# most 64 sequences (`MAX_BATCH`), one thread. That is, for instance, 2 conditions × 2 seeds × 400 steps; a run of
# 400 steps takes a few seconds.
#
# **Your design.** What you compare (1 head against 4 is the obvious start; 2 heads, or another width, are
# yours to try), how you train (any optimizer and learning rate, the same for every run), what you measure on
# held-out sequences (`accuracy` below gives the share of positions right), and how many seeds. Change **one
# thing** between conditions and keep the rest equal: the same steps, the same learning rate, the same data order
# for a given seed. Run each condition with **at least 2 seeds** (`torch.manual_seed(seed)` before building the
# model, and the generator of the batches seeded with it too).
#
# Write `run_experiment()`: it trains and measures, and returns your measurements as
# `{condition name: [one value per seed]}`, e.g. `{"1 head": [0.31, 0.52], "4 heads": [0.97, 0.99]}`: at least 2
# conditions, at least 2 seeds each, every value a number between 0 and 1 (a share of the held-out positions right).
# **How it is graded**: the test runs it, counts the optimizer steps, the batches and the models trained (one for
# each value), and checks the structure (1 point: it runs and reports, within the budget). What it found is for
# your report, exercise 6, graded by your instructor.

# %%
# Read-only: the task, the model and the measurement of exercise 5.
EXPERIMENT_STEPS = 1600  # optimizer steps over all the runs of the experiment
MAX_BATCH = 64  # sequences per step
LENGTH, DIGITS = 8, 10


def neighbour_sum_batch(batch_size, generator):
    """(B, 8) random digits, and at each position the sum mod 10 of its left and right neighbours (cyclic)."""
    digits = torch.randint(0, DIGITS, (batch_size, LENGTH), generator=generator)
    return digits, (digits.roll(1, dims=1) + digits.roll(-1, dims=1)) % DIGITS


class TinyEncoder(nn.Module):
    """Digits (B, 8) -> logits (B, 8, 10): learned positions, one pre-LN block on your MultiHeadAttention, a read-out."""

    def __init__(self, num_heads, d_model=32):
        super().__init__()
        self.embedding = nn.Embedding(DIGITS, d_model)
        self.positions = nn.Embedding(LENGTH, d_model)
        self.norm1, self.attention = nn.LayerNorm(d_model), MultiHeadAttention(d_model, num_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.feed_forward = nn.Sequential(nn.Linear(d_model, 4 * d_model), nn.ReLU(), nn.Linear(4 * d_model, d_model))
        self.norm3, self.output = nn.LayerNorm(d_model), nn.Linear(d_model, DIGITS)

    def forward(self, digits):
        h = self.embedding(digits) + self.positions.weight[: digits.shape[1]]
        h = h + self.attention(self.norm1(h))[0]
        h = h + self.feed_forward(self.norm2(h))
        return self.output(self.norm3(h))


def accuracy(model, digits, targets):
    """The share of positions whose output is right (a float between 0 and 1)."""
    model.eval()
    with torch.no_grad():
        return (model(digits).argmax(dim=-1) == targets).float().mean().item()


torch.set_num_threads(1)  # a model this small trains fastest on one thread, and the budget assumes one

# %% solution="heads_experiment"
def run_experiment():
    """Train and measure your conditions within the budget; returns {condition name: [one value per seed]}."""
    ### BEGIN SOLUTION
    # One thing changes: the number of heads (1 against 4) at the same width 32. Equal for every run: 400 Adam steps
    # at 1e-2, batches of 64, and for a given seed the same initial weights (same shapes either way) and the same batches.
    steps, seeds = 400, (0, 1)
    held_out = neighbour_sum_batch(2000, torch.Generator().manual_seed(1234))  # the same held-out set for every run
    results = {}
    for heads in (1, 4):
        shares = []
        for seed in seeds:
            torch.manual_seed(seed)
            model = TinyEncoder(num_heads=heads)
            batches = torch.Generator().manual_seed(seed)
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
            model.train()
            for _ in range(steps):
                digits, targets = neighbour_sum_batch(64, batches)
                loss = F.cross_entropy(model(digits).reshape(-1, DIGITS), targets.reshape(-1))
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
            shares.append(accuracy(model, *held_out))
        results[f"{heads} head" + ("s" if heads > 1 else "")] = shares
    return results
    ### END SOLUTION


# %% tests="heads_experiment_visible" points=1
from torch.optim.optimizer import register_optimizer_step_post_hook

steps, batches, trained = [], [], []


def count_training_batch(module, inputs):
    if isinstance(module, TinyEncoder) and module.training:
        batches.append(inputs[0].shape[0])
        if not any(module is seen for seen in trained):
            trained.append(module)


step_hook = register_optimizer_step_post_hook(lambda optimizer, args, kwargs: steps.append(1))
batch_hook = nn.modules.module.register_module_forward_pre_hook(count_training_batch)
try:
    results = run_experiment()
finally:
    step_hook.remove()
    batch_hook.remove()
print("Your measurements:", results)
assert len(steps) <= EXPERIMENT_STEPS, f"the experiment made {len(steps)} optimizer steps; the budget is {EXPERIMENT_STEPS}"
assert all(size <= MAX_BATCH for size in batches), f"a training batch of {max(batches)} sequences: at most {MAX_BATCH}"
assert isinstance(results, dict) and len(results) >= 2, "return a dict {condition name: [one value per seed]} with at least 2 conditions"
for condition, values in results.items():
    assert isinstance(condition, str), f"name each condition with a string, not {condition!r}"
    assert isinstance(values, (list, tuple)) and len(values) >= 2, f"{condition!r}: a list of at least 2 values, one per seed"
    assert all(isinstance(v, float) and 0.0 <= v <= 1.0 for v in values), \
        f"{condition!r}: every value a float between 0 and 1 (a share of positions right), got {values!r}"
runs = sum(len(values) for values in results.values())
assert len(trained) >= runs and len(steps) >= runs, (
    f"{runs} values, but {len(trained)} TinyEncoder models trained here ({len(steps)} optimizer steps): each value should "
    "come from a model of its own, trained in run_experiment and measured on held-out sequences")
print(f"Exercise 5: visible tests passed: {len(results)} conditions, {len(steps)} optimizer steps of {EXPERIMENT_STEPS}.")
### BEGIN HIDDEN TESTS
# Running and reporting only: the structure and the budget, as this cell counted them (what the experiment found is
# graded by hand, exercise 6).
from course.checks import report

report("heads_experiment/conditions", torch.tensor(len(results)), bound=(">=", 2))
report("heads_experiment/fewest_seeds", torch.tensor(min(len(values) for values in results.values())), bound=(">=", 2))
report("heads_experiment/steps", torch.tensor(len(steps)), bound=("<=", EXPERIMENT_STEPS))
report("heads_experiment/models_trained_per_value", torch.tensor(len(trained) / runs), bound=(">=", 1.0))
report("heads_experiment/largest_batch", torch.tensor(max(batches, default=0)), bound=("<=", MAX_BATCH))
report("heads_experiment/smallest_value", torch.tensor(min(min(values) for values in results.values())), bound=(">=", 0.0))
report("heads_experiment/largest_value", torch.tensor(max(max(values) for values in results.values())), bound=("<=", 1.0))
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 6: your report (5 points, graded by your instructor)
#
# In the cell below, a short report of exercise 5 (a table and a few sentences):
#
# 1. the question, and the **one thing** your conditions change (and what you kept equal);
# 2. the budget each run had: the **same number of steps** for every run (and the learning rate, batch size);
# 3. the seeds: at least 2 per condition, and the **spread** between them;
# 4. **the numbers**: every value your `run_experiment` returned, condition by condition;
# 5. your **conclusion, and how sure it can be**: is the difference between conditions larger than the spread
#    between seeds? What would make you surer (more seeds, more steps), and what does the result not say (other
#    tasks, other widths)?

# %% [markdown] answer="heads_report" points=5
# ### BEGIN SOLUTION
# **Model answer.** *Question:* does a block of width 32 learn the neighbour-sum task faster with 4 heads of width 8
# than with 1 head of width 32? Only the number of heads changes; everything else is equal for every run: the model
# (`TinyEncoder`: the same parameters, and for a given seed the very same initial weights, since 1 head and 4 heads
# have matrices of the same shapes), 400 Adam steps at learning rate 1e-2, batches of 64, the same held-out set of
# 2,000 sequences, and for seed $s$ the same batches (`torch.manual_seed(s)`, the batch generator seeded with $s$).
# Two seeds per condition.
#
# | share of held-out positions right | seed 0 | seed 1 |
# | --- | --- | --- |
# | 1 head (width 32) | 0.177 | 0.499 |
# | 4 heads (width 8 each) | 0.991 | 1.000 |
#
# (measured by the solution's `run_experiment`: `python benchmarks/heads_experiment.py`, one thread.)
#
# With 4 heads both seeds learn the task almost perfectly (spread 0.01); with 1 head the two seeds differ by 0.32,
# one not far above chance (0.1) and one half-way. The lowest 4-head value is far above the highest 1-head value,
# and the gap between the means (0.996 against 0.338) is larger than either condition's spread, so in this budget
# 4 heads learn this task faster: the single head has to split one softmax between two positions, and how far it
# gets within 400 steps depends on the seed. How sure: two seeds per condition are few, especially for the 1-head
# runs whose spread is large; I would want 5 seeds before stating the size of the gap, and more steps would tell
# whether one head gets there eventually (the result is about learning within 400 steps, not about what one head
# can represent). It holds for this task and this width only.
#
# **Rubric (5 points, one each).**
# 1. *One thing changed*: the conditions differ in one choice only (here the number of heads), and the report says
#    what was kept equal (width, optimizer and learning rate, data). Conditions that differ in two things (e.g. the
#    heads and the learning rate) earn 0 here.
# 2. *Equal steps*: every run has the same number of optimizer steps, stated (and within the budget).
# 3. *Seeds and spread*: at least 2 seeds per condition, and the spread between them stated (a range, or each
#    seed's value side by side).
# 4. *The numbers*: every measured value, labelled by condition and seed, consistent with what `run_experiment`
#    returns.
# 5. *A conclusion that says how sure it can be*: it compares the difference between conditions with the spread
#    between seeds, and says what limits it (few seeds, one task, one budget) or what would make it firmer. A
#    conclusion stated as certain from one or two seeds, with no word of the spread, earns 0 here; a result of
#    "no clear difference", honestly argued, earns the point.
# ### END SOLUTION
