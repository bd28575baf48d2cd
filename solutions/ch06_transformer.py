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
# # Exercises 6: the transformer
#
# The two blocks of chapter 6, each equal to its `torch.nn` counterpart given the same weights.
#
# | exercise | points |
# | --- | --- |
# | 1. the encoder block, post-LN and pre-LN | 5 |
# | 2. the decoder block: causal self-attention, cross-attention, feed-forward | 5 |
#
# **How you are graded.** Each test cell below is worth points. The tests you see check the
# basics and say what went wrong; when the notebook is graded, further hidden tests compare
# your blocks with the course's reference implementation and with `torch.nn.TransformerEncoderLayer`
# / `torch.nn.TransformerDecoderLayer` on random shapes, `float32` and `float64`, with masks,
# and check that a decoder block never looks at the future. Run every cell from the top
# (*Kernel → Restart & Run All*) before you submit.
#
# **Building blocks.** Use the course's `MultiHeadAttention` (your exercise 5; it returns
# `(outputs, per-head weights)`) and `FeedForward` (`Linear(D, d_ff)`, ReLU, `Linear(d_ff, D)`),
# imported below. Masks are boolean with `True` = *may attend*; `torch.nn` uses `True` =
# *masked out*, hence the `~` in the tests.

# %%
import torch
import torch.nn as nn

from course.attention import causal_mask, padding_mask
from course.checks import check_close, check_shape
from course.transformer import FeedForward, MultiHeadAttention, load_from_torch

torch.manual_seed(0)

# %% [markdown]
# ## Exercise 1: the encoder block (5 points)
#
# Two sub-layers, self-attention and the feed-forward network, each with a residual connection
# and a LayerNorm. Where the LayerNorm sits is the difference between the two variants:
#
# | | attention sub-layer | feed-forward sub-layer |
# | --- | --- | --- |
# | post-LN, `norm_first=False` (2017) | $x \leftarrow \mathrm{LN}_1(x + \mathrm{MHA}(x))$ | $x \leftarrow \mathrm{LN}_2(x + \mathrm{FFN}(x))$ |
# | pre-LN, `norm_first=True` | $x \leftarrow x + \mathrm{MHA}(\mathrm{LN}_1(x))$ | $x \leftarrow x + \mathrm{FFN}(\mathrm{LN}_2(x))$ |
#
# The tests copy weights into your block by attribute name, so create exactly:
# `self.attention = MultiHeadAttention(d_model, num_heads)`, `self.norm1 = nn.LayerNorm(d_model)`,
# `self.feed_forward = FeedForward(d_model, d_ff)`, `self.norm2 = nn.LayerNorm(d_model)`, and keep
# `self.norm_first`. `forward(x, mask=None)` takes `x (B, T, D)` and an optional bool mask
# broadcastable to `(B, T, T)`, and returns `(B, T, D)`.

# %% solution="encoder_block"
class TransformerEncoderLayer(nn.Module):
    """Encoder block equal to nn.TransformerEncoderLayer(d_model, num_heads, d_ff, dropout=0,
    batch_first=True, norm_first=norm_first) with the same weights.

    Do not use nn.TransformerEncoderLayer, nn.TransformerEncoder or nn.MultiheadAttention.
    """

    def __init__(self, d_model, num_heads, d_ff, norm_first=True):
        super().__init__()
        self.norm_first = norm_first
        ### BEGIN SOLUTION
        self.attention = MultiHeadAttention(d_model, num_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.feed_forward = FeedForward(d_model, d_ff)
        self.norm2 = nn.LayerNorm(d_model)
        ### END SOLUTION

    def forward(self, x, mask=None):
        ### BEGIN SOLUTION
        sublayers = [(lambda h: self.attention(h, mask=mask)[0], self.norm1), (self.feed_forward, self.norm2)]
        for sublayer, norm in sublayers:
            # pre-LN normalises what goes into the branch; post-LN normalises the sum
            x = x + sublayer(norm(x)) if self.norm_first else norm(x + sublayer(x))
        return x
        ### END SOLUTION


# %% tests="encoder_block_visible" points=2
torch.manual_seed(6)
x = torch.randn(2, 5, 8, requires_grad=True)
keys_ok = padding_mask(torch.tensor([5, 3]))  # (2, 1, 5)
for norm_first in (False, True):
    theirs = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    ours = load_from_torch(TransformerEncoderLayer(8, 2, 16, norm_first=norm_first), theirs)
    name = "pre-LN" if norm_first else "post-LN"
    check_shape(ours(x), (2, 5, 8), f"{name} output")
    check_close(ours(x), theirs(x), f"{name} output vs nn.TransformerEncoderLayer")
    check_close(ours(x, keys_ok), theirs(x, src_key_padding_mask=~keys_ok[:, 0]), f"{name} output with padding")
print("Exercise 1: visible tests passed.")
### BEGIN HIDDEN TESTS
# The same checks on the grader's own weights and inputs; the grader compares the results with the reference's.
from course.checks import report

generator = torch.Generator().manual_seed(60)
x = torch.randn(2, 5, 8, generator=generator)
for norm_first in (False, True):
    torch.manual_seed(60)  # the layer's weights: the same in the reference's run
    theirs = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    ours = load_from_torch(TransformerEncoderLayer(8, 2, 16, norm_first=norm_first), theirs)
    report(f"encoder_block/visible/norm_first={norm_first}", ours(x))
    report(f"encoder_block/visible/norm_first={norm_first}/padding", ours(x, keys_ok))
### END HIDDEN TESTS

# %% tests="encoder_block_hidden" points=3
# Hidden tests, run when the notebook is graded: random sizes, float32 and float64, padding and
# causal masks, both norm_first, compared with the reference solution.
### BEGIN HIDDEN TESTS
from course.checks import forbidden_calls, report

generator = torch.Generator().manual_seed(61)
for dtype, atol in ((torch.float32, 1e-5), (torch.float64, 1e-10)):
    for B, T, D, H, d_ff in ((1, 1, 2, 1, 3), (3, 6, 12, 3, 20), (2, 9, 16, 8, 8)):
        for norm_first in (False, True):
            torch.manual_seed(int(torch.randint(0, 10**6, (1,), generator=generator)))
            theirs = nn.TransformerEncoderLayer(D, H, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first).to(dtype).eval()
            with torch.no_grad():  # non-trivial LayerNorm parameters, so that mixing up norm1 and norm2 shows
                for norm in (theirs.norm1, theirs.norm2):
                    norm.weight.uniform_(0.5, 1.5)
                    norm.bias.normal_(0, 0.3)
            student = load_from_torch(TransformerEncoderLayer(D, H, d_ff, norm_first=norm_first).to(dtype), theirs)
            del theirs  # only its weights were needed
            x = torch.randn(B, T, D, generator=generator, dtype=dtype, requires_grad=True)
            keys_ok = padding_mask(torch.randint(1, T + 1, (B,), generator=generator), T)
            for mask_name, mask in (("no mask", None), ("padding", keys_ok), ("causal", causal_mask(T))):
                with forbidden_calls((nn, "TransformerEncoderLayer"), (nn, "TransformerEncoder"), (nn, "MultiheadAttention")):
                    got = student(x, mask)
                report(f"encoder_block/hidden/norm_first={norm_first}/{mask_name}/{dtype}/B={B} T={T} D={D} H={H}", got, atol=atol)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 2: the decoder block (5 points)
#
# Three sub-layers, each with its residual connection and LayerNorm, arranged post-LN or pre-LN
# exactly as in exercise 1:
#
# 1. **causal self-attention** over the target `x`: query $t$ sees positions $0..t$ only
#    (`causal_mask(T)`, combined with `&` with the optional `mask`); uses `norm1`;
# 2. **cross-attention**: queries from the target, keys and values from the encoder's `memory`
#    (`self.cross_attention(x, memory, mask=memory_mask)`); uses `norm2`;
# 3. the **feed-forward network**; uses `norm3`.
#
# In pre-LN only the query side is normalised before cross-attention: `memory` is passed as it is.
# Create exactly these attributes: `self_attention`, `norm1`, `cross_attention`, `norm2`,
# `feed_forward`, `norm3` (and keep `self.norm_first`).

# %% solution="decoder_block"
class TransformerDecoderLayer(nn.Module):
    """Decoder block equal to nn.TransformerDecoderLayer(d_model, num_heads, d_ff, dropout=0,
    batch_first=True, norm_first=norm_first) called with a causal tgt_mask.

    forward(x (B, T, D), memory (B, S, D), memory_mask bool broadcastable to (B, T, S) or None,
            mask bool broadcastable to (B, T, T) or None) -> (B, T, D)

    Do not use nn.TransformerDecoderLayer, nn.TransformerDecoder or nn.MultiheadAttention.
    """

    def __init__(self, d_model, num_heads, d_ff, norm_first=True):
        super().__init__()
        self.norm_first = norm_first
        ### BEGIN SOLUTION
        self.self_attention = MultiHeadAttention(d_model, num_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.cross_attention = MultiHeadAttention(d_model, num_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.feed_forward = FeedForward(d_model, d_ff)
        self.norm3 = nn.LayerNorm(d_model)
        ### END SOLUTION

    def forward(self, x, memory, memory_mask=None, mask=None):
        ### BEGIN SOLUTION
        T = x.shape[1]
        past = torch.ones(T, T, dtype=torch.bool, device=x.device).tril()  # query t sees keys 0..t
        self_mask = past if mask is None else past & mask
        sublayers = [
            (lambda h: self.self_attention(h, mask=self_mask)[0], self.norm1),
            (lambda h: self.cross_attention(h, memory, mask=memory_mask)[0], self.norm2),
            (self.feed_forward, self.norm3),
        ]
        for sublayer, norm in sublayers:
            x = x + sublayer(norm(x)) if self.norm_first else norm(x + sublayer(x))
        return x
        ### END SOLUTION


# %% tests="decoder_block_visible" points=2
torch.manual_seed(7)
x, memory = torch.randn(2, 5, 8), torch.randn(2, 4, 8)
memory_ok = padding_mask(torch.tensor([4, 2]))  # (2, 1, 4)
for norm_first in (False, True):
    theirs = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    ours = load_from_torch(TransformerDecoderLayer(8, 2, 16, norm_first=norm_first), theirs)
    name = "pre-LN" if norm_first else "post-LN"
    want = theirs(x, memory, tgt_mask=~causal_mask(5), tgt_is_causal=True, memory_key_padding_mask=~memory_ok[:, 0])
    check_close(ours(x, memory, memory_ok), want, f"{name} decoder block vs nn.TransformerDecoderLayer")

# the past must not see the future: change the last two target positions
changed = x.clone()
changed[:, 3:] = torch.randn(2, 2, 8)
check_close(ours(changed, memory)[:, :3], ours(x, memory)[:, :3], "outputs at positions 0..2 after changing positions 3..4")
print("Exercise 2: visible tests passed.")
### BEGIN HIDDEN TESTS
from course.checks import report

generator = torch.Generator().manual_seed(63)
x, memory = torch.randn(2, 5, 8, generator=generator), torch.randn(2, 4, 8, generator=generator)
for norm_first in (False, True):
    torch.manual_seed(63)  # the layer's weights: the same in the reference's run
    theirs = nn.TransformerDecoderLayer(8, 2, 16, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    ours = load_from_torch(TransformerDecoderLayer(8, 2, 16, norm_first=norm_first), theirs)
    report(f"decoder_block/visible/norm_first={norm_first}", ours(x, memory, memory_ok))
### END HIDDEN TESTS

# %% tests="decoder_block_hidden" points=3
# Hidden tests, run when the notebook is graded: random sizes, float32 and float64, both
# norm_first, memory padding, an extra target mask, and the causal property.
### BEGIN HIDDEN TESTS
from course.checks import forbidden_calls, report

generator = torch.Generator().manual_seed(62)
for dtype, atol in ((torch.float32, 1e-5), (torch.float64, 1e-10)):
    for B, T, S, D, H, d_ff in ((1, 1, 1, 2, 1, 3), (3, 6, 4, 12, 3, 20), (2, 7, 9, 16, 4, 8)):
        for norm_first in (False, True):
            torch.manual_seed(int(torch.randint(0, 10**6, (1,), generator=generator)))
            theirs = nn.TransformerDecoderLayer(D, H, d_ff, dropout=0.0, batch_first=True, norm_first=norm_first).to(dtype).eval()
            with torch.no_grad():
                for norm in (theirs.norm1, theirs.norm2, theirs.norm3):
                    norm.weight.uniform_(0.5, 1.5)
                    norm.bias.normal_(0, 0.3)
            student = load_from_torch(TransformerDecoderLayer(D, H, d_ff, norm_first=norm_first).to(dtype), theirs)
            del theirs  # only its weights were needed
            x = torch.randn(B, T, D, generator=generator, dtype=dtype)
            memory = torch.randn(B, S, D, generator=generator, dtype=dtype)
            memory_ok = padding_mask(torch.randint(1, S + 1, (B,), generator=generator), S)
            target_ok = padding_mask(torch.randint(1, T + 1, (B,), generator=generator), T)
            where = f"norm_first={norm_first}, {dtype}, B={B} T={T} S={S} D={D} H={H}"
            with forbidden_calls((nn, "TransformerDecoderLayer"), (nn, "TransformerDecoder"), (nn, "MultiheadAttention")):
                got = student(x, memory, memory_ok)
                got_masked = student(x, memory, memory_ok, target_ok)
            report(f"decoder_block/hidden/{where}", got, atol=atol)
            report(f"decoder_block/hidden/target_mask/{where}", got_masked, atol=atol)
            if T > 1:  # the past must not see the future
                cut = T // 2
                changed = x.clone()
                changed[:, cut:] = torch.randn(B, T - cut, D, generator=generator, dtype=dtype)
                report(f"decoder_block/hidden/causality/{where}", student(changed, memory, memory_ok)[:, :cut], atol=atol)
### END HIDDEN TESTS
