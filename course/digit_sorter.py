"""Chapter 6's digit sorter: an encoder-only transformer that learns to sort a sequence of digits.

Chapter 6 uses it to compare post-LN and pre-LN stacks (with and without warm-up). Its code is kept
here, not on the chapter's page, because chapter 6's third exercise asks for a model of the same
shape (embedding and positions, a stack of encoder blocks, a final LayerNorm, a linear read-out):
the page describes it in words and equations and uses it from here.

The second part holds what chapter 6's exercises 3 and 4 use: the task, the fixed budget, the grader's
copy of the exercise's model and the grader's measurement of a trained one.
"""

import math

import torch
import torch.nn as nn

from course.transformer import TransformerEncoderLayer, sinusoidal_positional_encoding


class DigitSorter(nn.Module):
    """An encoder-only transformer: digits in, the same digits sorted out, one prediction per position.

    h_0 = sqrt(D) * embed(digits) + sinusoidal positions; h_l = block_l(h_(l-1)) for l = 1..num_layers
    (TransformerEncoderLayer, post-LN or pre-LN by ``norm_first``); logits = output(final_norm(h_L)),
    where final_norm is a LayerNorm for pre-LN and the identity for post-LN (whose blocks end normalised).
    digits (B, T) long -> logits (B, T, 10).
    """

    def __init__(self, norm_first, num_layers, d_model=64, num_heads=4, length=12):
        super().__init__()
        self.d_model = d_model
        self.embedding = nn.Embedding(10, d_model)
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)  # times sqrt(D) below: entries of size ~1
        self.register_buffer("positions", sinusoidal_positional_encoding(length, d_model))
        self.blocks = nn.ModuleList(
            TransformerEncoderLayer(d_model, num_heads, 4 * d_model, norm_first=norm_first) for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()  # post-LN already ends normalised
        self.output = nn.Linear(d_model, 10)

    def forward(self, digits):  # (B, T) -> (B, T, 10)
        x = self.embedding(digits) * math.sqrt(self.d_model) + self.positions
        for block in self.blocks:
            x = block(x)
        return self.output(self.final_norm(x))


# --------------------------------------------------------------------------------------------
# Chapter 6's exercises: the sorter a student builds (exercise 3) and trains with a loop of their
# own (exercise 4), and how the grader judges the trained model
# --------------------------------------------------------------------------------------------
# The task: 8 random digits in, the same digits sorted out. What is fixed: the model
# (``SETTINGS``: one pre-LN encoder block of width 32 with 4 heads), the number of optimizer steps
# (``STEPS``) and the batch (at most ``MAX_BATCH`` sequences a step, drawn from the task it is
# given). The trained model must sort ``TARGET`` of new sequences exactly.
#
# No number the student's kernel states is believed. The tests report the trained model's weights
# (``flat_weights``: every entry of its state dict, in the order of the sorted names); the grader
# rebuilds the model from them in a process of its own with ``ExerciseSorter`` and counts the
# held-out sequences it sorts (``held_out_accuracy``, run by grading/metrics.py), so a loop that
# patches the model's forward, its decoding or the kernel's measurement changes nothing there. The
# hidden test trains on a *relabelled* task (the digits sorted in another order, a permutation drawn
# from ``RELABEL_SEED``), so that weights trained beforehand on the ordinary order do not fit.

DIGITS, LENGTH = 10, 8
SETTINGS = dict(vocab_size=DIGITS, d_model=32, num_heads=4, d_ff=64, num_layers=1, max_len=LENGTH)
STEPS = 200  # optimizer steps
MAX_BATCH = 64  # sequences per step
TARGET = 0.95  # the fraction of held-out sequences sorted exactly
# (python benchmarks/sorter_exercise.py: the solution's loop reached 98.7 % to 99.6 % over five seeds on the relabelled
# digits; Adam at 3e-3 without warm-up or decay 93 % to 94 %, a tutorial's Adam at 1e-3 with batches of 32 10 % to 14 %)
RELABEL_SEED = 606
HELD_OUT_SEQUENCES = 2000
HELD_OUT_SEED = 6006


def relabelling(seed: int = RELABEL_SEED):
    """The permutation of the digits that the relabelled task uses: token ``order[d]`` stands for digit d."""
    return torch.randperm(DIGITS, generator=torch.Generator().manual_seed(seed))


def sorting_batch(batch_size: int, generator, order=None):
    """(B, 8) random tokens and the same tokens sorted, drawn from ``generator``.

    With ``order`` (a permutation of the digits) token ``order[d]`` stands for digit d: the targets are
    the tokens sorted by the digits they stand for, not by their own values.
    """
    digits = torch.randint(0, DIGITS, (batch_size, LENGTH), generator=generator)
    targets = digits.sort(dim=-1).values
    if order is None:
        return digits, targets
    return order[digits], order[targets]


class SortingTask:
    """The exercise's data: ``task(batch_size)`` -> (tokens (B, 8) long, targets (B, 8) long), fresh random sequences
    drawn from a generator seeded with ``seed``; relabelled (another order of the digits) when ``relabel``."""

    def __init__(self, seed: int, relabel: bool = False):
        self.generator = torch.Generator().manual_seed(seed)
        self.order = relabelling() if relabel else None
        self.sequences = 0  # how many sequences have been drawn

    def __call__(self, batch_size: int):
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batches of 1 to {MAX_BATCH} sequences, not {batch_size}")
        self.sequences += batch_size
        return sorting_batch(batch_size, self.generator, self.order)


class ExerciseSorter(nn.Module):
    """The model of exercise 3 (the grader's copy): tokens (B, T) -> logits (B, T, vocab_size).

    h_0 = embedding(tokens) + positions(0..T-1) (no positions when ``positions=False``), num_layers
    pre-LN TransformerEncoderLayer blocks, then output(norm(h)).
    """

    def __init__(self, vocab_size, d_model, num_heads, d_ff, num_layers, max_len, positions=True):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, d_model)
        self.positions = nn.Embedding(max_len, d_model) if positions else None
        self.blocks = nn.ModuleList([TransformerEncoderLayer(d_model, num_heads, d_ff, norm_first=True)
                                     for _ in range(num_layers)])
        self.norm = nn.LayerNorm(d_model)
        self.output = nn.Linear(d_model, vocab_size)

    def forward(self, tokens):
        state = self.embedding(tokens)
        if self.positions is not None:
            state = state + self.positions.weight[: tokens.shape[-1]]
        for block in self.blocks:
            state = block(state)
        return self.output(self.norm(state))


def flat_weights(model: nn.Module):
    """Every entry of ``model``'s state dict, the names in sorted order, as one float32 vector: what the tests report."""
    state = model.state_dict()
    return torch.cat([state[name].detach().reshape(-1).float() for name in sorted(state)])


def held_out_accuracy(weights, relabel: bool = True) -> float:
    """The grader's judgement: an ``ExerciseSorter(**SETTINGS)`` given these weights, the fraction of held-out
    sequences (relabelled, as the hidden test trains, or not) it sorts exactly. Raises ValueError when ``weights``
    cannot be that model's."""
    weights = torch.as_tensor(weights)
    if weights.dim() != 1 or not weights.dtype.is_floating_point:
        raise ValueError(f"expected one vector of floats, got shape {tuple(weights.shape)} of {weights.dtype}")
    model = ExerciseSorter(**SETTINGS)
    state = model.state_dict()
    expected = sum(tensor.numel() for tensor in state.values())
    if weights.numel() != expected:
        raise ValueError(f"expected the {expected} weights of the exercise's sorter, got {weights.numel()} numbers")
    if not torch.isfinite(weights).all():
        raise ValueError("the weights are not all finite")
    start = 0
    for name in sorted(state):
        size = state[name].numel()
        state[name] = weights[start : start + size].reshape(state[name].shape).to(state[name].dtype)
        start += size
    model.load_state_dict(state)
    model.eval()
    tokens, targets = sorting_batch(HELD_OUT_SEQUENCES, torch.Generator().manual_seed(HELD_OUT_SEED),
                                    relabelling() if relabel else None)
    with torch.no_grad():
        return (model(tokens).argmax(dim=-1) == targets).all(dim=-1).float().mean().item()


def held_out_accuracy_plain(weights) -> float:
    """``held_out_accuracy`` on the ordinary order of the digits (the visible test trains on it)."""
    return held_out_accuracy(weights, relabel=False)
