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
# # Exercises 9: images as tokens, attention in tiles, rotary positions
#
# Three pieces of chapter 9, each written with basic tensor operations.
#
# | exercise | points |
# | --- | --- |
# | 1. patch embedding: an image as a sequence of tokens | 4 |
# | 2. tiled attention with the online softmax (FlashAttention's idea) | 6 |
# | 3. rotary position embeddings | 4 |
# | 4. what the training-size sweep shows, and what it does not (written, graded by hand) | 2 |
#
# **How you are graded.** Each test cell below is worth points. The tests you see check the
# basics and say what went wrong; when the notebook is graded, further hidden tests compare
# your functions with the course's reference implementations on random shapes, `float32` and
# `float64`, masks and edge cases. Run every cell from the top (*Kernel → Restart & Run All*)
# before you submit.

# %%
import math

import torch
import torch.nn.functional as F

from course.checks import check_close, check_shape, largest_new_tensor

torch.manual_seed(0)

# %% [markdown]
# ## Exercise 1: patch embedding (4 points)
#
# A Vision Transformer reads an image as a sequence: it cuts the image `(B, C, H, W)` into
# non-overlapping `p × p` patches, `N = (H/p)(W/p)` of them, in row-major order (left to right, then
# top to bottom), flattens each patch into `C·p·p` numbers, and maps each to `D` numbers with one
# matrix, $x_n = W\,\mathrm{patch}_n + b$.
#
# Write `patchify(images, p) -> (B, N, C·p·p)`, each patch flattened in the order channel, row,
# column; then `embed_patches(images, weight, bias, p) -> (B, N, D)`, where `weight` has the shape of
# a `Conv2d` weight, `(D, C, p, p)`, and `bias` is `(D,)`. With that order, `embed_patches` equals a
# convolution with kernel `p` and stride `p` whose output `(B, D, H/p, W/p)` is flattened into a
# sequence: the tests check exactly that.

# %% solution="patch_embedding"
def patchify(images, patch_size):
    """(B, C, H, W) -> (B, N, C * p * p) with N = (H / p) * (W / p), patches in row-major order.

    Each patch is flattened channel first, then row, then column (the order of a Conv2d weight).
    H and W are multiples of p. Do not call F.conv2d, F.unfold, torch.nn.Unfold or Tensor.unfold:
    use reshape (or view) and permute.
    """
    ### BEGIN SOLUTION
    B, C, H, W = images.shape
    p = patch_size
    grid = images.reshape(B, C, H // p, p, W // p, p)  # (B, C, row, r, column, c)
    grid = grid.permute(0, 2, 4, 1, 3, 5)  # (B, row, column, C, r, c)
    return grid.reshape(B, (H // p) * (W // p), C * p * p)
    ### END SOLUTION


def embed_patches(images, weight, bias, patch_size):
    """images (B, C, H, W), weight (D, C, p, p), bias (D,) -> tokens (B, N, D).

    Do not call F.conv2d, torch.conv2d or torch.nn.Conv2d.
    """
    ### BEGIN SOLUTION
    D = weight.shape[0]
    return patchify(images, patch_size) @ weight.reshape(D, -1).T + bias
    ### END SOLUTION


# %% tests="patch_embedding_visible" points=2
images = torch.arange(2 * 1 * 4 * 6, dtype=torch.float32).reshape(2, 1, 4, 6)
patches = patchify(images, 2)
check_shape(patches, (2, 6, 4), "patchify of (2, 1, 4, 6) images into 2 x 2 patches")
check_close(patches[0, 0], images[0, 0, :2, :2].flatten(), "patch 0 (top left)")
check_close(patches[0, 1], images[0, 0, :2, 2:4].flatten(), "patch 1 (the one to the right of patch 0)")
check_close(patches[1, 3], images[1, 0, 2:4, :2].flatten(), "patch 3 (second row, first column)")

images = torch.randn(3, 3, 8, 12)
weight, bias = torch.randn(16, 3, 4, 4), torch.randn(16)
tokens = embed_patches(images, weight, bias, 4)
check_shape(tokens, (3, 6, 16), "embed_patches with D = 16, p = 4 on (3, 3, 8, 12) images")
convolution = F.conv2d(images, weight, bias, stride=4)  # (B, D, 2, 3)
check_close(tokens, convolution.flatten(2).transpose(1, 2), "embed_patches vs Conv2d(stride = patch), flattened")
print("Exercise 1: visible tests passed.")
### BEGIN HIDDEN TESTS
# The same checks on the grader's own inputs; the grader compares the results with the reference's.
from course.checks import report

generator = torch.Generator().manual_seed(90)
images = torch.randn(3, 3, 8, 12, generator=generator)
report("patch_embedding/visible/patchify", patchify(images, 4))
report("patch_embedding/visible/embed", embed_patches(images, torch.randn(16, 3, 4, 4, generator=generator),
                                                      torch.randn(16, generator=generator), 4), atol=1e-4)
### END HIDDEN TESTS

# %% tests="patch_embedding_hidden" points=2
# Hidden tests, run when the notebook is graded: random sizes, channels, patch sizes and dtypes,
# compared with the reference solution, and no call to a convolution or unfold.
### BEGIN HIDDEN TESTS
from course.checks import forbidden_calls, report

generator = torch.Generator().manual_seed(91)
for dtype in (torch.float32, torch.float64):
    for B, C, H, W, p, D in [(1, 1, 2, 2, 2, 1), (2, 3, 6, 9, 3, 5), (4, 2, 8, 8, 1, 7), (1, 3, 16, 8, 8, 4)]:
        images = torch.randn(B, C, H, W, generator=generator, dtype=dtype)
        weight = torch.randn(D, C, p, p, generator=generator, dtype=dtype)
        bias = torch.randn(D, generator=generator, dtype=dtype)
        with forbidden_calls(
            (F, "conv2d"), (torch, "conv2d"), (torch.nn, "Conv2d"), (F, "unfold"), (torch.nn, "Unfold"),
            (torch.Tensor, "unfold"),
        ):
            got_patches = patchify(images, p)
            got_tokens = embed_patches(images, weight, bias, p)
        case = f"{dtype}/{(B, C, H, W)}/p={p}"
        report(f"patch_embedding/hidden/patchify/{case}", got_patches, atol=1e-6)
        report(f"patch_embedding/hidden/embed/{case}", got_tokens, atol=1e-4)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 2: tiled attention with the online softmax (6 points)
#
# Attention's outputs $\mathrm{softmax}(QK^\top/\sqrt d)\,V$ can be computed without ever holding the
# `(Tq, Tk)` score matrix: take the keys and values `block_size` at a time, and for every query keep
# three running quantities over the blocks seen so far,
#
# $$m = \max_j s_j, \qquad \ell = \sum_j e^{s_j - m}, \qquad a = \sum_j e^{s_j - m}\, v_j .$$
#
# When a block with scores $s'$ arrives, the new maximum is $m' = \max(m, \max_j s'_j)$ and the old
# sums, taken under $m$, are rescaled by $e^{m - m'}$:
#
# $$\ell \leftarrow e^{m - m'}\ell + \sum_j e^{s'_j - m'}, \qquad a \leftarrow e^{m - m'}a + \sum_j e^{s'_j - m'}\, v'_j .$$
#
# After the last block, the output is $a / \ell$. The optional boolean `mask` broadcasts against
# `(..., Tq, Tk)` (True = may attend); a query whose keys are all masked gets a zero output, never
# `NaN` (careful: while every key seen so far is masked, $m = -\infty$). `block_size` need not divide `Tk`.

# %% solution="tiled_attention"
def tiled_attention(queries, keys, values, mask=None, block_size=32):
    """queries (..., Tq, d), keys (..., Tk, d), values (..., Tk, dv) -> outputs (..., Tq, dv).

    The leading dimensions of the three are equal; mask is None or bool, broadcastable to (..., Tq, Tk).
    Never form a tensor with Tq x Tk entries per leading index: at most (..., Tq, block_size) at once.
    Do not call any softmax (torch.softmax, F.softmax, Tensor.softmax, ...) nor
    F.scaled_dot_product_attention.
    """
    ### BEGIN SOLUTION
    *leading, Tq, d = queries.shape
    Tk = keys.shape[-2]
    scaled_queries = queries / math.sqrt(d)
    running_max = torch.full((*leading, Tq, 1), -math.inf, dtype=queries.dtype)
    running_sum = torch.zeros(*leading, Tq, 1, dtype=queries.dtype)
    numerator = torch.zeros(*leading, Tq, values.shape[-1], dtype=queries.dtype)
    for start in range(0, Tk, block_size):
        stop = min(start + block_size, Tk)
        scores = scaled_queries @ keys[..., start:stop, :].transpose(-2, -1)  # (..., Tq, block)
        if mask is not None:
            allowed = torch.broadcast_to(mask, (*leading, Tq, Tk))[..., start:stop]
            scores = torch.where(allowed, scores, -math.inf)
        new_max = torch.maximum(running_max, scores.amax(dim=-1, keepdim=True))
        safe_max = torch.where(new_max == -math.inf, 0.0, new_max)  # rows with nothing seen yet
        exponentials = (scores - safe_max).exp()
        correction = (running_max - safe_max).exp()
        running_sum = correction * running_sum + exponentials.sum(dim=-1, keepdim=True)
        numerator = correction * numerator + exponentials @ values[..., start:stop, :]
        running_max = new_max
    return torch.where(running_sum > 0, numerator / running_sum, 0.0)
    ### END SOLUTION


# %% tests="tiled_attention_visible" points=3
q = torch.randn(2, 3, 20, 8, dtype=torch.float64)
k = torch.randn(2, 3, 29, 8, dtype=torch.float64)
v = torch.randn(2, 3, 29, 5, dtype=torch.float64)
outputs = tiled_attention(q, k, v, block_size=7)  # 7 does not divide 29: the last block is short
check_shape(outputs, (2, 3, 20, 5), "tiled_attention outputs")
check_close(outputs, F.scaled_dot_product_attention(q, k, v), "tiled_attention vs F.scaled_dot_product_attention",
            atol=1e-6, rtol=0)

key_mask = torch.rand(1, 29) > 0.5  # (1, Tk): the same keys hidden from every query
check_close(tiled_attention(q, k, v, key_mask, block_size=7), F.scaled_dot_product_attention(q, k, v, attn_mask=key_mask),
            "tiled_attention with a key mask vs torch", atol=1e-6, rtol=0)
nothing = torch.zeros(20, 29, dtype=torch.bool)
check_close(tiled_attention(q, k, v, nothing, block_size=7), torch.zeros(2, 3, 20, 5, dtype=torch.float64),
            "queries whose keys are all masked must get zero outputs")

q, k, v = torch.randn(2, 40, 8), torch.randn(2, 300, 8), torch.randn(2, 300, 8)
with largest_new_tensor() as watch:
    tiled_attention(q, k, v, block_size=16)
assert watch.numel < 2 * 40 * 300, (
    f"tiled_attention formed a tensor of shape {watch.shape} ({watch.operation}): as large as the full "
    f"(2, 40, 300) score matrix, which tiling must avoid"
)
print("Exercise 2: visible tests passed.")
### BEGIN HIDDEN TESTS
from course.checks import report

generator = torch.Generator().manual_seed(94)
q, k, v = (torch.randn(2, 3, length, width, generator=generator, dtype=torch.float64) for length, width in ((20, 8), (29, 8), (29, 5)))
report("tiled_attention/visible/plain", tiled_attention(q, k, v, block_size=7), atol=1e-6, rtol=0)
report("tiled_attention/visible/key_mask", tiled_attention(q, k, v, torch.rand(1, 29, generator=generator) > 0.5, block_size=7),
       atol=1e-6, rtol=0)
report("tiled_attention/visible/nothing", tiled_attention(q, k, v, torch.zeros(20, 29, dtype=torch.bool), block_size=7))
### END HIDDEN TESTS

# %% tests="tiled_attention_hidden" points=3
# Hidden tests, run when the notebook is graded: random shapes and block sizes (dividing Tk or not,
# larger than Tk), float32 and float64, random, causal and fully masked rows, huge scores, no
# built-in softmax or attention, and no tensor as large as the score matrix.
### BEGIN HIDDEN TESTS
from course.checks import forbidden_calls, report

generator = torch.Generator().manual_seed(92)
forbidden = (
    (torch, "softmax"), (torch, "log_softmax"), (torch.Tensor, "softmax"), (torch.Tensor, "log_softmax"),
    (F, "softmax"), (F, "log_softmax"), (torch.special, "softmax"), (F, "scaled_dot_product_attention"),
)
for dtype, atol in ((torch.float32, 1e-5), (torch.float64, 1e-10)):
    for leading, tq, tk, d, dv, block in [((), 1, 1, 1, 1, 1), ((3,), 9, 13, 16, 4, 5), ((2, 2), 17, 17, 8, 8, 17),
                                          ((2,), 6, 40, 32, 3, 64), ((1, 3), 33, 50, 4, 6, 8)]:
        q = torch.randn(*leading, tq, d, generator=generator, dtype=dtype)
        k = torch.randn(*leading, tk, d, generator=generator, dtype=dtype)
        v = torch.randn(*leading, tk, dv, generator=generator, dtype=dtype)
        random_mask = torch.rand(*leading, tq, tk, generator=generator) > 0.5
        random_mask[..., 0, :] = False  # one query sees nothing
        causal = torch.ones(tq, tk, dtype=torch.bool).tril()
        for mask_name, mask in (("none", None), ("random", random_mask), ("causal", causal)):
            with forbidden_calls(*forbidden):
                got = tiled_attention(q, k, v, mask, block_size=block)
            report(f"tiled_attention/hidden/{dtype}/q {tuple(q.shape)} k {tuple(k.shape)} block {block}/mask {mask_name}", got, atol=atol)

huge = 1e3 * torch.randn(2, 12, 16, generator=generator)
causal = torch.ones(12, 12, dtype=torch.bool).tril()
report("tiled_attention/hidden/causal_huge", tiled_attention(huge, huge, huge, causal, block_size=5), atol=1e-2, rtol=1e-4)

for dtype in (torch.float32, torch.float64):
    q = torch.randn(3, 25, 4, generator=generator, dtype=dtype)
    k = torch.randn(3, 400, 4, generator=generator, dtype=dtype)
    v = torch.randn(3, 400, 4, generator=generator, dtype=dtype)
    with largest_new_tensor() as watch:
        got = tiled_attention(q, k, v, block_size=20)
    assert watch.numel <= 3 * 25 * 20 * 4, f"a tensor of shape {watch.shape} ({watch.operation}) is too large for tiles of 20 keys"
    report(f"tiled_attention/hidden/long_keys/{dtype}", got, atol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 3: rotary position embeddings (4 points)
#
# RoPE turns each pair of columns $(x_{2i}, x_{2i+1})$ of a query or key at position $t$ by the angle
# $t\,\theta_i$, with $\theta_i = \mathrm{base}^{-2i/D_h}$:
#
# $$\begin{pmatrix} x'_{2i} \\ x'_{2i+1} \end{pmatrix} =
#   \begin{pmatrix} \cos t\theta_i & -\sin t\theta_i \\ \sin t\theta_i & \cos t\theta_i \end{pmatrix}
#   \begin{pmatrix} x_{2i} \\ x_{2i+1} \end{pmatrix}.$$
#
# Because rotations compose, the score of a rotated query at position $t$ and a rotated key at
# position $u$ depends only on the offset $u - t$. Write `apply_rope(x, positions)`.

# %% solution="apply_rope"
def apply_rope(x, positions, base=10000.0):
    """x (..., T, Dh) with Dh even, positions (T,) integers -> the rotated x, same shape and dtype.

    Pair i of x[..., t, :] (columns 2i and 2i + 1) is rotated by positions[t] * base ** (-2i / Dh).
    Compute the angles in float64 (positions may be large), then return x's dtype.
    """
    ### BEGIN SOLUTION
    Dh = x.shape[-1]
    theta = base ** (-torch.arange(0, Dh, 2, dtype=torch.float64) / Dh)  # (Dh/2,)
    angles = positions.to(torch.float64)[:, None] * theta  # (T, Dh/2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    even, odd = x[..., 0::2], x[..., 1::2]
    rotated = torch.empty_like(x)
    rotated[..., 0::2] = even * cos - odd * sin
    rotated[..., 1::2] = even * sin + odd * cos
    return rotated
    ### END SOLUTION


# %% tests="apply_rope_visible" points=2
x = torch.tensor([[1.0, 0.0, 1.0, 0.0]], dtype=torch.float64)  # one position, Dh = 4
got = apply_rope(x, torch.tensor([1]))
check_shape(got, (1, 4), "apply_rope of a (1, 4) input")
expected = torch.tensor([[math.cos(1), math.sin(1), math.cos(0.01), math.sin(0.01)]], dtype=torch.float64)
check_close(got, expected, "pair 0 turns by 1 radian, pair 1 by 1 / 100 (base 10000, Dh = 4)")

x = torch.randn(2, 6, 16)
check_close(apply_rope(x, torch.zeros(6, dtype=torch.long)), x, "position 0 must leave x unchanged")
check_close(apply_rope(x, torch.arange(6)).norm(dim=-1), x.norm(dim=-1), "a rotation keeps each vector's length")

q, k = torch.randn(2, 1, 32, dtype=torch.float64)
scores = [(apply_rope(q, torch.tensor([t + 4])) * apply_rope(k, torch.tensor([t]))).sum() for t in (0, 10, 500)]
check_close(torch.stack(scores), scores[0].expand(3), "q.k at offset 4 must not depend on the absolute position")
print("Exercise 3: visible tests passed.")
### BEGIN HIDDEN TESTS
from course.checks import report

generator = torch.Generator().manual_seed(95)
x = torch.randn(2, 6, 16, generator=generator, dtype=torch.float64)
report("apply_rope/visible/arange", apply_rope(x, torch.arange(6)))
report("apply_rope/visible/far", apply_rope(x, torch.arange(6) + 300))
### END HIDDEN TESTS

# %% tests="apply_rope_hidden" points=2
# Hidden tests, run when the notebook is graded: random shapes, widths and positions, float32 and
# float64, other bases, compared with the reference; the relative-offset property at random offsets.
### BEGIN HIDDEN TESTS
from course.checks import report

generator = torch.Generator().manual_seed(93)
for dtype, atol in ((torch.float32, 1e-5), (torch.float64, 1e-10)):
    for shape, base in [((1, 2), 10000.0), ((3, 7, 8), 10000.0), ((2, 4, 5, 64), 500.0), ((9, 6), 1e6)]:
        x = torch.randn(shape, generator=generator, dtype=dtype)
        positions = torch.randint(0, 1000, (shape[-2],), generator=generator)
        report(f"apply_rope/hidden/{dtype}/{shape}/base {base}", apply_rope(x, positions, base), atol=atol)
for case, offset in enumerate((0, 3, 77)):
    q, k = torch.randn(2, 5, 16, generator=generator, dtype=torch.float64)
    starts = torch.tensor([0, 41, 900])
    scores = torch.stack([
        (apply_rope(q, torch.arange(5) + s + offset) * apply_rope(k, torch.arange(5) + s)).sum(-1) for s in starts
    ])
    report(f"apply_rope/hidden/offset/case{case}", scores, atol=1e-10)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 4: what the training-size sweep shows, and what it does not (2 points, graded by your instructor)
#
# In chapter 9 (section *Images as sequences of patches*, the figure of test accuracy against the number
# of training images and the two paragraphs after it) a ViT, a small CNN and logistic regression on the raw
# pixels are trained on a tenth, a quarter, half and all of the training split of scikit-learn's digits,
# three seeds each, the two networks with the same recipe (the same number of AdamW steps whatever the size
# of the training set). Answer in a few sentences, quoting the chapter's measured figures:
#
# 1. How does the ViT's accuracy compare with the two baselines at the smallest and at the full training
#    set, and how does the CNN's lead change? What does that suggest about the value of an inductive bias
#    (which assumptions about images does each model build in, and which must the ViT learn from data)?
# 2. What does the sweep **not** show? Name at least two differences between the models other than their
#    assumptions that the experiment does not control, and one experiment (within this course's budget or
#    not) that would separate the inductive bias from them.

# %% [markdown] answer="sweep_explained" points=2
# ### BEGIN SOLUTION
# **Model answer.** With 136 training images (a tenth of the split) the ViT classifies 79.1 % to 82.4 %
# of the 450 test digits (lowest and highest of three seeds), against 92.7 % to 96.0 % for the CNN and
# 92.7 % to 93.8 % for logistic regression; with all 1,347 images it reaches 95.6 % to 97.6 %, the CNN
# 98.4 % to 99.1 %, logistic regression 97.8 %. The CNN's lead over the ViT shrinks from 13 points to
# 2.3 as the training set grows tenfold (mean of three seeds; the text after the figure). The CNN
# builds in that nearby pixels belong together (small kernels) and that a pattern means the same thing
# anywhere (shared weights, pooling); logistic regression builds in almost nothing but has few weights to
# fit. The ViT knows neither locality nor translation: it must learn from the images which patches relate,
# through learned positions, so it needs more data to reach the same accuracy. The gap closing as data
# grows is what one expects if built-in assumptions are worth data, and it agrees with the ViT paper.
# What it does not show: the networks also differ in size (6,090 weights for the CNN against the ViT's
# 18,218), in depth and architecture beyond the assumptions, and in how well one recipe (500 AdamW steps,
# one learning rate and schedule, chosen for both) suits each; only the number of images was varied, so
# the sweep cannot attribute the gap to inductive bias alone, nor say whether or where the curves would
# cross with more images than this data set has (it stops at 1,347). To separate them: tune each model's
# learning rate and steps on a validation split; match the parameter counts; or give the ViT a
# convolutional stem / the CNN global mixing while keeping the rest fixed, and sweep again over seeds.
#
# **Rubric (2 points).**
# - 1 point: the measured comparison at both ends (the ViT far behind both baselines with a tenth of the
#   split, still behind with all of it, the CNN's lead shrinking from about 13 points to about 2), with the
#   figures quoted from the chapter, and the reading that the CNN's built-in locality and translation
#   equivariance substitute for data the ViT must learn them from.
# - 1 point: at least two uncontrolled differences (parameter count, depth or architecture, one shared
#   training recipe and budget not tuned per model, the range of sizes that stops at this data set's size)
#   and a concrete experiment that would control one of them. Saying only that "more data would help the
#   ViT" earns no point here.
# ### END SOLUTION
