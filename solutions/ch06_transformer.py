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
# The two blocks of chapter 6, each equal to its `torch.nn` counterpart given the same weights; an
# encoder that sorts digits, trained by a loop you write and tune; and the LayerNorm inside the blocks
# written out by hand, backward pass included.
#
# | exercise | points |
# | --- | --- |
# | 1. the encoder block, post-LN and pre-LN | 5 |
# | 2. the decoder block: causal self-attention, cross-attention, feed-forward | 5 |
# | 3. an encoder that sorts digits, with and without positions | 2 |
# | 4. your own training loop: the sorter to 95 % in 200 steps | 4 |
# | 5. written: why the sorter without positions fails (graded by your instructor) | 2 |
# | 6. written: what you chose, and what one change did (graded by your instructor) | 2 |
# | 7. LayerNorm, forward and backward, by hand | 5 |
#
# **How you are graded.** Each test cell below is worth points. The tests you see check the
# basics and say what went wrong; when the notebook is graded, further hidden tests compare
# your blocks with the course's reference implementation and with `torch.nn.TransformerEncoderLayer`
# / `torch.nn.TransformerDecoderLayer` on random shapes, `float32` and `float64`, with masks,
# and check that a decoder block never looks at the future; exercise 4 trains a fresh model with your
# loop from another seed, and the grader measures what it learned from its weights. Exercises 5 and 6
# are short written answers that your instructor reads and grades. Run every cell from the top
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


# %% [markdown]
# ## Exercise 3: an encoder that sorts digits (2 points)
#
# Your encoder block now gets a task. The input is 8 random digits, the target the same digits
# sorted: `[3, 9, 0, 3, 7, 1, 1, 5] -> [0, 1, 1, 3, 3, 5, 7, 9]`. An encoder-only model predicts
# output $i$ at position $i$ (one classification per position, cross-entropy, no decoder):
#
# $$h^{(0)}_i = \mathrm{embed}(x_i) + p_i, \qquad h^{(\ell)} = \mathrm{block}_\ell(h^{(\ell-1)}), \qquad
# \mathrm{logits}_i = W_{out}\, \mathrm{LN}(h^{(L)}_i) + b_{out}$$
#
# with a learned positional embedding $p_i$ (`nn.Embedding(max_len, d_model)`, position $i$'s row)
# and $L$ of **your** `TransformerEncoderLayer`s (pre-LN, no mask). With `positions=False` the model
# has no $p_i$ at all: $h^{(0)}_i = \mathrm{embed}(x_i)$.
#
# Write the model here; exercise 4 trains it. The tests give your model weights of their own (by the
# attribute names below, so use exactly those) and compare its logits with the course's, and check
# that without positions it is what chapter 4 says self-attention alone is: permutation-equivariant
# (permute the input, and the outputs are permuted the same way).

# %% solution="sorter"
class Sorter(nn.Module):
    """Encoder-only model: tokens (B, T) long -> logits (B, T, vocab_size).

    Attributes: embedding = nn.Embedding(vocab_size, d_model); positions = nn.Embedding(max_len, d_model)
    when positions=True, else None; blocks = nn.ModuleList of num_layers TransformerEncoderLayer(d_model,
    num_heads, d_ff, norm_first=True) (yours, exercise 1); norm = nn.LayerNorm(d_model);
    output = nn.Linear(d_model, vocab_size).
    """

    def __init__(self, vocab_size, d_model, num_heads, d_ff, num_layers, max_len, positions=True):
        super().__init__()
        ### BEGIN SOLUTION
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.positions = nn.Embedding(max_len, d_model) if positions else None
        self.blocks = nn.ModuleList(TransformerEncoderLayer(d_model, num_heads, d_ff, norm_first=True) for _ in range(num_layers))
        self.norm = nn.LayerNorm(d_model)
        self.output = nn.Linear(d_model, vocab_size)
        ### END SOLUTION

    def forward(self, tokens):
        ### BEGIN SOLUTION
        B, T = tokens.shape
        h = self.embedding(tokens)  # (B, T, D)
        if self.positions is not None:
            h = h + self.positions(torch.arange(T, device=tokens.device))  # (T, D) broadcasts over the batch
        for block in self.blocks:
            h = block(h)
        return self.output(self.norm(h))  # (B, T, V)
        ### END SOLUTION


# %%
# Read-only: the task, the fixed settings, and the helpers the tests use.
import math
import time

import torch.nn.functional as F

from course.digit_sorter import DIGITS, LENGTH, MAX_BATCH, SETTINGS, STEPS, TARGET, SortingTask, flat_weights, sorting_batch

# A model this small trains fastest on one thread: on a busy machine, torch's threads mostly wait
# for each other (the sorter of chapter 6: 5 s on one thread, 39 s on two, measured on a loaded 2-core machine).
torch.set_num_threads(1)


def sorter_settings(positions):
    """The exercise's model: one block of width 32 with 4 heads, d_ff = 64, sequences of 8 digits."""
    return dict(SETTINGS, positions=positions)


def seeded_weights(model, generator):
    """The grader's own weights in ``model``, by the names of its state dict (so the order in which the
    modules were created does not matter); LayerNorm gains near 1."""
    with torch.no_grad():
        for name, tensor in sorted(model.state_dict().items()):
            values = torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype) / max(1, tensor.shape[-1]) ** 0.5
            if "norm" in name and name.endswith("weight"):
                values = 1 + 0.3 * torch.randn(tensor.shape, generator=generator, dtype=tensor.dtype)
            tensor.copy_(values)
    return model


def exact_matches(model, tokens, targets):
    """The fraction of sequences the model sorts exactly (every position right)."""
    with torch.no_grad():
        return (model(tokens).argmax(dim=-1) == targets).all(dim=-1).float().mean().item()


# What a model may not call while it predicts: it must sort with what it learned.
NO_SORTING = ((torch, "sort"), (torch.Tensor, "sort"), (torch, "argsort"), (torch.Tensor, "argsort"), (torch, "msort"),
              (torch.Tensor, "msort"), (torch, "topk"), (torch.Tensor, "topk"), (torch, "kthvalue"), (torch.Tensor, "kthvalue"))
EXPECTED_NAMES = sorted(["embedding.weight", "positions.weight", "norm.weight", "norm.bias", "output.weight", "output.bias"]
                        + [f"blocks.0.{name}" for name in ("attention.qkv.weight", "attention.qkv.bias", "attention.out.weight",
                                                           "attention.out.bias", "norm1.weight", "norm1.bias", "norm2.weight",
                                                           "norm2.bias", "feed_forward.up.weight", "feed_forward.up.bias",
                                                           "feed_forward.down.weight", "feed_forward.down.bias")])


# %% tests="sorter_visible" points=1
torch.manual_seed(8)
sorter = Sorter(**sorter_settings(positions=True))
check_shape(sorter(torch.zeros(3, LENGTH, dtype=torch.long)), (3, LENGTH, DIGITS), "Sorter logits for tokens (3, 8)")
assert sum(isinstance(m, TransformerEncoderLayer) for m in sorter.modules()) == 1, "one TransformerEncoderLayer (yours) in sorter.blocks"
names = sorted(sorter.state_dict())
assert names == EXPECTED_NAMES, (f"the model's parameters should be named {EXPECTED_NAMES}; missing {sorted(set(EXPECTED_NAMES) - set(names))}, "
                                 f"unexpected {sorted(set(names) - set(EXPECTED_NAMES))}: use the attribute names of the docstring")
blind = Sorter(**sorter_settings(positions=False))
permutation = torch.randperm(LENGTH)
tokens, _ = sorting_batch(16, torch.Generator().manual_seed(3))
with torch.no_grad():
    check_close(blind(tokens[:, permutation]), blind(tokens)[:, permutation],
                "without positions, permuting the input should permute the logits the same way",
                hint="positions=False must leave out the positional embedding entirely")
    gap = (sorter(tokens[:, permutation]) - sorter(tokens)[:, permutation]).abs().max().item()
assert gap > 1e-3, "with positions, permuting the input should change more than the order of the logits: is p_i added?"
print("Exercise 3: visible tests passed.")
### BEGIN HIDDEN TESTS
# The model on the grader's weights, compared with the reference's outside this notebook.
from course.checks import forbidden_calls, report

held_out, held_out_sorted = sorting_batch(1000, torch.Generator().manual_seed(1000))
for case, positions in enumerate((True, False)):
    model = seeded_weights(Sorter(**sorter_settings(positions=positions)), torch.Generator().manual_seed(66))
    with torch.no_grad(), forbidden_calls(*NO_SORTING):
        report(f"sorter/visible/logits/case{case}", model(held_out[:16]))
# The model untrained must not sort: what will sort is what the weights learn, not an algorithm in forward.
torch.manual_seed(9)
untrained = Sorter(**sorter_settings(positions=True))
with torch.no_grad(), forbidden_calls(*NO_SORTING):
    report("sorter/visible/untrained_predictions", untrained(held_out).argmax(dim=-1), bound=("<=", 0.05), targets=held_out_sorted)
### END HIDDEN TESTS

# %% tests="sorter_hidden" points=1
# Hidden tests, run when the notebook is graded: other sizes (several blocks, other widths and lengths),
# with and without positions, on the grader's weights; equivariance without positions.
### BEGIN HIDDEN TESTS
from course.checks import forbidden_calls, report

generator = torch.Generator().manual_seed(67)
for case, (D, H, d_ff, L, T, positions) in enumerate(((16, 2, 24, 2, 5, True), (24, 3, 32, 3, 8, True), (16, 4, 16, 2, 6, False))):
    model = seeded_weights(Sorter(DIGITS, D, H, d_ff, L, LENGTH, positions=positions), generator)
    tokens = torch.randint(0, DIGITS, (4, T), generator=generator)
    with torch.no_grad(), forbidden_calls(*NO_SORTING):
        report(f"sorter/hidden/logits/case{case}", model(tokens))
held_out, held_out_sorted = sorting_batch(1000, torch.Generator().manual_seed(1086))
torch.manual_seed(90)
untrained = Sorter(**sorter_settings(positions=True))
with torch.no_grad(), forbidden_calls(*NO_SORTING):
    report("sorter/untrained_predictions", untrained(held_out).argmax(dim=-1), bound=("<=", 0.05), targets=held_out_sorted)
torch.manual_seed(87)
blind = Sorter(**sorter_settings(positions=False))
tokens, _ = sorting_batch(32, torch.Generator().manual_seed(88))
permutation = torch.randperm(LENGTH, generator=torch.Generator().manual_seed(89))
with torch.no_grad():
    report("sorter/no_positions_equivariance_gap", (blind(tokens[:, permutation]) - blind(tokens)[:, permutation]).abs().max(),
           bound=("<=", 1e-4))
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 4: your own training loop for the sorter (4 points)
#
# Now train it, with a loop you write. What is fixed:
#
# * **the model**: your `Sorter` with `sorter_settings(positions=True)` (one block of width 32, 4 heads);
# * **the data**: a `task` object, `SortingTask` of `course.digit_sorter`: `task(batch_size)` returns a batch
#   of fresh random sequences, `(tokens, targets)`, each `(batch_size, 8)` long; draw every training batch from
#   it, at most **64 sequences** a step (`MAX_BATCH`); the tests count what you draw, so if your loop evaluates
#   as it goes, make those sequences with `sorting_batch(n, generator)` instead;
# * **the budget**: exactly **200 optimizer steps** (`STEPS`, passed to you as `steps`).
#
# The target: the trained model sorts at least **95 %** of new sequences exactly (`TARGET`; every one of the
# 8 positions right). Everything else is yours to choose: the optimizer, the learning rate and its schedule
# (a warm-up? a decay?), the batch size (up to 64), gradient clipping. A tutorial's default (Adam at
# $10^{-3}$, batches of 32) gets nowhere near the target in 200 steps; exercise 6 asks what you chose and
# what one change did. `train_sorter` returns the training loss of every step (a list of floats); it may take
# keyword arguments of your own (`**choices`, for instance a learning rate to compare in exercise 6), but the
# tests call it as `train_sorter(model, task, steps)`.
#
# **How it is graded.** The tests count the optimizer steps your loop makes and the sequences it draws. They do
# not believe a number this notebook prints: they report the trained model's *weights*, and the grader rebuilds
# the model from them in a process of its own (with the course's copy of exercise 3's model) and counts the
# held-out sequences it sorts. The hidden test trains a fresh model from another seed, on the digits relabelled
# (sorted in another order than 0 < 1 < ... < 9), so the loop must really train the model it is given. A run
# takes a few seconds on one core.
#
# **Predict first.** The visible test trains your model with positions, then the same model without them
# (`positions=False`), with your loop. Before it runs, write in the prediction cell below what share of new
# sequences you expect the model *without* positions to sort exactly (a number) and, in a few words, why.
# The test cell stops until you have; a wrong prediction costs no points.

# %% solution="sorter_training"
def train_sorter(model, task, steps, **choices):
    """Train ``model`` in place for exactly ``steps`` optimizer steps on batches drawn from ``task``
    (``task(batch_size)`` -> (tokens, targets), batch_size <= MAX_BATCH; at most steps * MAX_BATCH sequences
    drawn in all). Returns the loss of every step (a list of floats)."""
    ### BEGIN SOLUTION
    peak = choices.get("peak_lr", 2e-2)
    warmup = choices.get("warmup_steps", 30)
    batch_size, floor, clip_norm = 64, 0.1, 1.0  # the final learning rate: a tenth of the peak
    optimizer = torch.optim.Adam(model.parameters(), lr=peak)

    def rate(step):  # linear warm-up to the peak, then a cosine down to floor * peak at the last step
        if step < warmup:
            return peak * (step + 1) / warmup
        progress = (step - warmup) / max(1, steps - 1 - warmup)
        return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * progress)))

    losses = []
    model.train()
    for step in range(steps):
        for group in optimizer.param_groups:
            group["lr"] = rate(step)
        tokens, targets = task(batch_size)
        logits = model(tokens)  # (B, T, 10): one classification per position
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()
        losses.append(loss.item())
    model.eval()
    return losses
    ### END SOLUTION


# %% [markdown]
# The test cells count the budget with this helper (read-only).

# %%
from torch.optim.optimizer import register_optimizer_step_post_hook


def within_budget(model, task, run):
    """Run ``run()``, counting the optimizer steps, the sequences drawn from ``task`` and the batches ``model`` trains on."""
    steps, batches = [], []
    step_hook = register_optimizer_step_post_hook(lambda optimizer, args, kwargs: steps.append(1))
    batch_hook = model.register_forward_pre_hook(lambda module, inputs: batches.append(inputs[0].shape[0]) if module.training else None)
    try:
        result = run()
    finally:
        step_hook.remove()
        batch_hook.remove()
    assert len(steps) == STEPS, f"the loop made {len(steps)} optimizer steps; the budget is exactly {STEPS}"
    assert task.sequences <= STEPS * MAX_BATCH, f"the loop drew {task.sequences} sequences: at most {MAX_BATCH} a step"
    assert all(size <= MAX_BATCH for size in batches), f"a training batch of {max(batches)} sequences: at most {MAX_BATCH}"
    return result


# %% solution="sorter_prediction"
prediction = None  # your prediction, a string in place of None (and delete the raise): "about ... % of them, because ..."
### BEGIN SOLUTION
prediction = ("About 0 %: without positions every position sees the same bag of digits, so equal digits get equal "
              "outputs and position 0 cannot know that it must output the smallest digit.")
### END SOLUTION


# %% tests="sorter_training_visible" points=2
from course.checks import require_prediction

print("Your prediction:", require_prediction(prediction, needs_number=True))  # stops here until you have written one
held_out, held_out_sorted = sorting_batch(1000, torch.Generator().manual_seed(1000))
torch.manual_seed(8)
sorter = Sorter(**sorter_settings(positions=True))
task = SortingTask(seed=0)
start = time.perf_counter()
losses = within_budget(sorter, task, lambda: train_sorter(sorter, task, STEPS))
seconds = time.perf_counter() - start
assert isinstance(losses, list) and len(losses) == STEPS, f"return the loss of every step: a list of {STEPS} floats"
sorter.eval()
accuracy = exact_matches(sorter, held_out, held_out_sorted)
print(f"with positions: {accuracy:.1%} of new sequences sorted exactly ({seconds:.1f} s of training); "
      f"the loss went from {losses[0]:.3f} to {losses[-1]:.3f}")
assert accuracy >= TARGET, (
    f"the sorter reached {accuracy:.1%} exact matches, the target is {TARGET:.0%}. Likely causes: a learning rate too "
    "small for 200 steps (try several, a factor of 3 apart) or too large (the loss jumps up); batches smaller than "
    "they may be; zero_grad missing (gradients add up across steps)")

torch.manual_seed(8)
blind = Sorter(**sorter_settings(positions=False))
blind_task = SortingTask(seed=0)
within_budget(blind, blind_task, lambda: train_sorter(blind, blind_task, STEPS))
blind.eval()
print(f"without positions: {exact_matches(blind, held_out, held_out_sorted):.1%} of new sequences sorted exactly")
print("Exercise 4: visible tests passed.")
### BEGIN HIDDEN TESTS
# The same model, measured again by the grader from its weights (no number of this kernel is believed).
from course.checks import report

report("sorter_training/visible/weights", flat_weights(sorter), bound=(">=", TARGET), metric="sorter_accuracy_plain")
permutation = torch.randperm(LENGTH, generator=torch.Generator().manual_seed(3))
with torch.no_grad():
    report("sorter_training/visible/no_positions_equivariance_gap",
           (blind(held_out[:64, permutation]) - blind(held_out[:64])[:, permutation]).abs().max(), bound=("<=", 1e-4))
### END HIDDEN TESTS

# %% tests="sorter_training_hidden" points=2
# Hidden tests, run when the notebook is graded: your loop trains a fresh model from another seed on the
# relabelled digits; the grader measures the model it leaves, from its weights.
### BEGIN HIDDEN TESTS
from course.checks import report

torch.manual_seed(86)
trained = Sorter(**sorter_settings(positions=True))
relabelled = SortingTask(seed=86, relabel=True)
within_budget(trained, relabelled, lambda: train_sorter(trained, relabelled, STEPS))
report("sorter_training/relabelled/weights", flat_weights(trained), bound=(">=", TARGET), metric="sorter_accuracy")
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 5: why the sorter without positions fails (2 points, graded by your instructor)
#
# In the cell below, in a few sentences:
#
# 1. how your prediction (exercise 4's prediction cell, written before the test ran) compares with
#    what you measured;
# 2. what you measured, and why: what can output $i$ of the model without positions depend on, and
#    why does that make sorting impossible (think of the property the test checks)?
# 3. one task on which the model without positions would do as well as the one with them.

# %% [markdown] answer="sorter_explained" points=2
# ### BEGIN SOLUTION
# **Model answer.** Without positions, the block is permutation-equivariant: output $i$ is a
# function of token $x_i$ and of the *multiset* of all tokens, never of $i$. Two positions holding
# the same digit get the same output, and position 0 cannot know it must emit the smallest digit
# while position 7 emits the largest: a sorted output is impossible unless the input was already
# sorted, so exact match is about 0 % (measured: a fraction of a percent; per-token accuracy well
# below 50 %). With learned positions the same model sorts almost every sequence. A task whose
# answer does not depend on where a token is works without positions, e.g. counting how often
# each position's digit occurs in the sequence (a histogram), or "is digit 7 present".
#
# **Rubric (2 points).**
# - 1 point: the explanation names equivariance / that without positions output $i$ cannot depend on $i$
#   (equal digits get equal outputs, the model sees a bag of tokens), so the sorted order cannot be produced;
#   the measured figure (near 0 %) is reported. A prediction that was wrong earns full marks if the
#   explanation is right.
# - 1 point: a correct task that needs no positions (histogram, presence, sum or maximum of the digits
#   at every position, ...), with a reason.
# - 0 points for a part that is missing, or that only restates the numbers without a reason.
# ### END SOLUTION

# %% [markdown]
# ## Exercise 6: what you chose, and what one change did (2 points, graded by your instructor)
#
# In the cell below:
#
# 1. the choices your loop makes (optimizer, learning rate and its schedule, batch size, clipping, ...);
# 2. **one change** and what it did: two runs of your loop that differ in that one choice only, each for the
#    200 steps, with the share of held-out sequences each sorts exactly (e.g. `exact_matches(model, held_out,
#    held_out_sorted)` after training a fresh `Sorter` with `torch.manual_seed(s)` and `SortingTask(seed=s)`),
#    for two seeds, and whether the difference is larger than the difference between the seeds.

# %% [markdown] answer="training_choices" points=2
# ### BEGIN SOLUTION
# **Model answer.** Adam, batches of 64 (the most allowed), a linear warm-up over 30 steps to a peak
# learning rate of 2e-2, then a cosine decay to a tenth of it at the last step, gradient clipping at norm 1.
# The change: the peak learning rate, 2e-2 against 3e-3 (warm-up, decay, batch and clipping unchanged),
# 200 steps each. With seed 0 the model sorts 99.3 % of the held-out sequences against 56.3 %; with seed 1,
# 98.5 % against 41.7 % (measured with `python benchmarks/sorter_exercise.py`, one core). The gap, 43 to 57
# points, is far larger than the difference between the two seeds (under one point at 2e-2, 15 points at
# 3e-3): in 200 steps the smaller rate has not finished learning, and only the larger one reaches the
# target. Two seeds say the direction firmly, since the gap dwarfs the spread; they say little about its
# exact size at 3e-3, where the two seeds already differ by 15 points.
#
# **Rubric (2 points).**
# - 1 point: the choices are stated, and they are the ones the loop uses.
# - 1 point: one change only, at 200 steps each, with both measured accuracies, for two seeds, and a
#   sentence that compares the difference with the difference between the seeds. Two runs that differ in
#   more than one choice, or a single seed, earn no point here.
# ### END SOLUTION

# %% [markdown]
# ## Exercise 7: LayerNorm, forward and backward, by hand (5 points)
#
# Every block above normalises with `nn.LayerNorm`. Write it yourself, and its backward pass too. Over
# the last dimension (size $D$) of $x$, each row is normalised, then scaled and shifted by the learned
# $\gamma, \beta \in \mathbb{R}^D$:
#
# $$\mu = \frac{1}{D}\sum_i x_i, \qquad \sigma^2 = \frac{1}{D}\sum_i (x_i - \mu)^2, \qquad
# \hat x_i = \frac{x_i - \mu}{\sqrt{\sigma^2 + \varepsilon}}, \qquad y_i = \gamma_i \hat x_i + \beta_i$$
#
# ($\sigma^2$ divides by $D$, not $D - 1$, as `nn.LayerNorm` does.) `layer_norm_forward` returns $y$ and a
# *cache*: whatever your backward pass needs from the forward pass (a tuple of tensors of your choice).
# `layer_norm_backward` gets $\partial L / \partial y$ and that cache, and returns
# $\partial L / \partial x$, $\partial L / \partial \gamma$, $\partial L / \partial \beta$. Inputs have any
# number of leading dimensions; $\gamma$ and $\beta$ are shared by every row, so their gradients add up
# the contributions of all rows.
#
# $\partial L / \partial \gamma$ and $\partial L / \partial \beta$ take a line each. $\partial L / \partial x$ is the
# exercise: $\mu$ and $\sigma$ depend on every entry of the row, so $x_j$ reaches $\hat x_i$ for every $i$.
# Start from $g = \partial L / \partial \hat x = \gamma \odot \partial L / \partial y$, write
# $\partial \hat x_i / \partial x_j$ (it has a $\delta_{ij}$ term, a $\mu$ term and a $\sigma$ term), and sum over $i$:
# the result is one line, with two means over the row. A check on paper: adding a constant to a row changes
# nothing, so each row of $\partial L / \partial x$ must sum to zero.
#
# The visible test compares your gradients with a central-difference numerical gradient
# (`course.checks.numerical_gradient`: nudge each entry by $\pm\varepsilon$, measure the change of the loss,
# divide by $2\varepsilon$) and with autograd through `torch.nn.functional.layer_norm`, both in `float64`.

# %% solution="layer_norm"
def layer_norm_forward(x, gamma, beta, eps=1e-5):
    """LayerNorm over the last dimension: x (..., D), gamma (D,), beta (D,) -> (y (..., D), cache).

    y equals torch.nn.functional.layer_norm(x, (D,), gamma, beta, eps). cache: what layer_norm_backward needs.
    Do not call F.layer_norm, nn.LayerNorm, torch.layer_norm or another normalisation built-in (batch_norm,
    group_norm, instance_norm).
    """
    ### BEGIN SOLUTION
    D = x.shape[-1]
    mean = x.sum(dim=-1, keepdim=True) / D
    variance = ((x - mean) ** 2).sum(dim=-1, keepdim=True) / D  # biased: divided by D
    std = torch.sqrt(variance + eps)
    x_hat = (x - mean) / std
    return gamma * x_hat + beta, (x_hat, std, gamma)
    ### END SOLUTION


def layer_norm_backward(grad_y, cache):
    """grad_y = dL/dy (..., D) and the forward's cache -> (dL/dx (..., D), dL/dgamma (D,), dL/dbeta (D,)).

    By hand: no autograd (no .backward(), torch.autograd, torch.func, no tensor with requires_grad=True).
    """
    ### BEGIN SOLUTION
    x_hat, std, gamma = cache
    D = x_hat.shape[-1]
    rows = grad_y.reshape(-1, D)  # every position, one row each: gamma and beta serve them all
    grad_beta = rows.sum(dim=0)
    grad_gamma = (rows * x_hat.reshape(-1, D)).sum(dim=0)
    g = grad_y * gamma  # dL/dx_hat
    # dx_hat_i/dx_j = (delta_ij - 1/D - x_hat_i x_hat_j / D) / std: the mean's and the variance's share of every x_j
    grad_x = (D * g - g.sum(dim=-1, keepdim=True) - x_hat * (g * x_hat).sum(dim=-1, keepdim=True)) / (D * std)
    return grad_x, grad_gamma, grad_beta
    ### END SOLUTION


# %% tests="layer_norm_visible" points=2
import torch.nn.functional as F

from course.checks import numerical_gradient

torch.manual_seed(10)
f64 = dict(dtype=torch.float64)  # gradient checks in float64: float32 rounding would hide a small error
x = 2 * torch.randn(2, 3, 6, **f64) + 1
gamma, beta = 1 + 0.5 * torch.randn(6, **f64), 0.3 * torch.randn(6, **f64)
grad_y = torch.randn(2, 3, 6, **f64)  # dL/dy: the loss is L = sum(y * grad_y)
eps = 1e-5

y, cache = layer_norm_forward(x, gamma, beta, eps)
centred = x - x.mean(-1, keepdim=True)
check_close(y, F.layer_norm(x, (6,), gamma, beta, eps), "layer_norm_forward vs F.layer_norm", atol=1e-10, rtol=1e-8,
            mistakes={"the variance divides by D - 1 (torch.var's default) instead of D":
                      gamma * centred / torch.sqrt(x.var(-1, keepdim=True) + eps) + beta,
                      "eps is added after the square root": gamma * centred / (x.std(-1, unbiased=False, keepdim=True) + eps) + beta})

got = layer_norm_backward(grad_y, cache)
assert isinstance(got, tuple) and len(got) == 3, "layer_norm_backward must return (grad_x, grad_gamma, grad_beta)"
names = ("grad_x", "grad_gamma", "grad_beta")
for name, grad, shape in zip(names, got, ((2, 3, 6), (6,), (6,))):
    check_shape(grad, shape, name, hint="gamma and beta are shared by every row: their gradients sum over the leading dimensions")

numerical = (numerical_gradient(lambda t: F.layer_norm(t, (6,), gamma, beta, eps), x, grad_y),
             numerical_gradient(lambda t: F.layer_norm(x, (6,), t, beta, eps), gamma, grad_y),
             numerical_gradient(lambda t: F.layer_norm(x, (6,), gamma, t, eps), beta, grad_y))
leaves = [t.clone().requires_grad_() for t in (x, gamma, beta)]
from_autograd = torch.autograd.grad(F.layer_norm(leaves[0], (6,), leaves[1], leaves[2], eps), leaves, grad_y)  # yours may not

# what the typical mistakes give for dL/dx
std = torch.sqrt(x.var(-1, unbiased=False, keepdim=True) + eps)
x_hat, g = centred / std, grad_y * gamma
mistakes = {"the mean and the variance are treated as constants (dL/dx = gamma * dL/dy / std)": g / std,
            "the variance is treated as a constant (only the mean's term is there)": (g - g.mean(-1, keepdim=True)) / std,
            "the mean is treated as a constant (only the variance's term is there)": (g - x_hat * (g * x_hat).mean(-1, keepdim=True)) / std,
            "gamma is left out (the gradient at x_hat is dL/dy * gamma)":
                (grad_y - grad_y.mean(-1, keepdim=True) - x_hat * (grad_y * x_hat).mean(-1, keepdim=True)) / std}
for name, grad, want, named in zip(names, got, numerical, (mistakes, {}, {})):
    check_close(grad, want, f"{name} vs the numerical gradient", atol=1e-6, rtol=1e-5, mistakes=named)
for name, grad, want in zip(names, got, from_autograd):
    check_close(grad, want, f"{name} vs autograd through F.layer_norm", atol=1e-10, rtol=1e-8)
print("Exercise 7: visible tests passed.")
### BEGIN HIDDEN TESTS
# The same checks on the grader's own inputs, with the built-in normalisations and autograd refused.
from course.checks import forbidden_calls, report

NO_NORMS = ((F, "layer_norm"), (torch, "layer_norm"), (torch, "native_layer_norm"), (nn, "LayerNorm"), (F, "group_norm"),
            (torch, "group_norm"), (torch, "native_group_norm"), (F, "batch_norm"), (torch, "batch_norm"),
            (torch, "native_batch_norm"), (F, "instance_norm"), (torch, "instance_norm"), (F, "rms_norm"))
generator = torch.Generator().manual_seed(64)
x = 2 * torch.randn(2, 3, 6, generator=generator, **f64) + 1
gamma, beta = 1 + 0.5 * torch.randn(6, generator=generator, **f64), 0.3 * torch.randn(6, generator=generator, **f64)
grad_y = torch.randn(2, 3, 6, generator=generator, **f64)
with forbidden_calls(*NO_NORMS, allow_autograd=False):
    y, cache = layer_norm_forward(x, gamma, beta, 1e-5)
    got = layer_norm_backward(grad_y, cache)
report("layer_norm/visible/y", y, atol=1e-10)
for name, grad in zip(names, got):
    report(f"layer_norm/visible/{name}", grad, atol=1e-10)
### END HIDDEN TESTS

# %% tests="layer_norm_hidden" points=3
# Hidden tests, run when the notebook is graded: other shapes (one row, many leading dimensions, D = 1),
# other eps, float32 and float64, rows far from zero, and no built-in normalisation or autograd.
### BEGIN HIDDEN TESTS
import torch.nn.functional as F

from course.checks import forbidden_calls, report

NO_NORMS = ((F, "layer_norm"), (torch, "layer_norm"), (torch, "native_layer_norm"), (nn, "LayerNorm"), (F, "group_norm"),
            (torch, "group_norm"), (torch, "native_group_norm"), (F, "batch_norm"), (torch, "batch_norm"),
            (torch, "native_batch_norm"), (F, "instance_norm"), (torch, "instance_norm"), (F, "rms_norm"))
generator = torch.Generator().manual_seed(65)
case = 0  # report names number the cases: a name never holds the input
for dtype, atol in ((torch.float32, 1e-4), (torch.float64, 1e-9)):
    for shape, eps, offset in (((7,), 1e-5, 0.0), ((4, 16), 1e-3, 5.0), ((2, 3, 32), 0.1, 0.0), ((2, 2, 3, 8), 1e-5, -3.0),
                               ((3, 1), 1e-5, 0.0)):
        D = shape[-1]
        x = offset + 2 * torch.randn(*shape, generator=generator, dtype=dtype)
        gamma = 1 + 0.5 * torch.randn(D, generator=generator, dtype=dtype)
        beta = 0.3 * torch.randn(D, generator=generator, dtype=dtype)
        grad_y = torch.randn(*shape, generator=generator, dtype=dtype)
        with forbidden_calls(*NO_NORMS, allow_autograd=False):
            y, cache = layer_norm_forward(x, gamma, beta, eps)
            got = layer_norm_backward(grad_y, cache)
        case += 1
        report(f"layer_norm/hidden/y/case{case}", y, atol=atol)
        for name, grad in zip(("grad_x", "grad_gamma", "grad_beta"), got):
            report(f"layer_norm/hidden/{name}/case{case}", grad, atol=atol)
### END HIDDEN TESTS
