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
# # Exercises 2: Bahdanau (additive) attention
#
# The three parts of one decoder step with attention, as in chapter 2.
#
# | exercise | points |
# | --- | --- |
# | 1. additive alignment scores | 3 |
# | 2. attention weights with the padding masked | 3 |
# | 3. one step of the attention decoder | 4 |
# | 4. train it to reverse strings, and read its alignment | 4 |
#
# **How you are graded.** Each test cell below is worth points. The tests you see check the
# basics and say what went wrong; when the notebook is graded, further hidden tests compare
# your functions with the course's reference implementation (`course.rnn`) on random shapes,
# `float32` and `float64`, and check that padded positions get exactly zero weight and that the
# weights really depend on the encoder states; exercise 4 trains your decoder again from another
# seed and checks what it learned. Run every cell from the top (*Kernel → Restart &
# Run All*) before you submit.
#
# **Shapes.** `B` batch, `S` source length (padded), `H` decoder state width, `C` encoder state
# width, `A` attention width, `V` vocabulary size.

# %%
import torch

from course.checks import check_close, check_shape
from course.rnn import AttentionDecoder

torch.manual_seed(0)

# %% [markdown]
# ## Exercise 1: additive alignment scores (3 points)
#
# The score of encoder position $j$ for the decoder state $s$ is
#
# $$e_j = v^\top \tanh\left(W_q\, s + W_k\, h_j\right)$$
#
# with `query_weight` $W_q$ `(A, H)`, `key_weight` $W_k$ `(A, C)` and `score_weight` $v$ `(A,)`.
# Compute it for every position of every sequence of the batch at once (no Python loop over `j`).

# %% solution="additive_scores"
def additive_scores(query, encoder_states, query_weight, key_weight, score_weight):
    """Additive (Bahdanau) alignment scores.

    Args:
        query: (B, H) decoder states s.
        encoder_states: (B, S, C) encoder states h_1..h_S.
        query_weight: (A, H); key_weight: (A, C); score_weight: (A,).

    Returns:
        (B, S) scores e, same dtype as the inputs.

    Do not loop over the source positions in Python.
    """
    ### BEGIN SOLUTION
    projected_query = query @ query_weight.T  # (B, A)
    projected_keys = encoder_states @ key_weight.T  # (B, S, A)
    hidden = torch.tanh(projected_query.unsqueeze(1) + projected_keys)  # (B, 1, A) + (B, S, A) -> (B, S, A)
    return (hidden * score_weight).sum(dim=-1)  # (B, S)
    ### END SOLUTION


# %% tests="additive_scores_visible" points=1
query, states = torch.randn(2, 3), torch.randn(2, 4, 5)
W_q, W_k, v = torch.randn(6, 3), torch.randn(6, 5), torch.randn(6)
got = additive_scores(query, states, W_q, W_k, v)
check_shape(got, (2, 4), "additive_scores: query (2, 3), encoder_states (2, 4, 5)")
expected = torch.stack([torch.stack([v @ torch.tanh(W_q @ query[b] + W_k @ states[b, j]) for j in range(4)]) for b in range(2)])
check_close(got, expected, "additive_scores vs the formula computed one position at a time")
print("Exercise 1: visible tests passed.")
### BEGIN HIDDEN TESTS
# The same check on the grader's own inputs; the grader compares the result with the reference's.
from course.checks import report

generator = torch.Generator().manual_seed(20)
report("additive_scores/visible", additive_scores(torch.randn(2, 3, generator=generator), torch.randn(2, 4, 5, generator=generator),
                                                  torch.randn(6, 3, generator=generator), torch.randn(6, 5, generator=generator),
                                                  torch.randn(6, generator=generator)))
### END HIDDEN TESTS

# %% tests="additive_scores_hidden" points=2
# Hidden tests, run when the notebook is graded: random sizes, float32 and float64, against the reference solution.
### BEGIN HIDDEN TESTS
from course.checks import report

generator = torch.Generator().manual_seed(21)
for dtype in (torch.float32, torch.float64):
    for B, S, H, C, A in [(1, 1, 1, 1, 1), (3, 7, 4, 6, 5), (5, 13, 8, 2, 9)]:
        args = (torch.randn(B, H, generator=generator, dtype=dtype), torch.randn(B, S, C, generator=generator, dtype=dtype),
                torch.randn(A, H, generator=generator, dtype=dtype), torch.randn(A, C, generator=generator, dtype=dtype),
                torch.randn(A, generator=generator, dtype=dtype))
        report(f"additive_scores/hidden/{dtype}/B={B} S={S} H={H} C={C} A={A}", additive_scores(*args))
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 2: attention weights with the padding masked (3 points)
#
# The sources of a batch have different lengths and are padded to the longest. The weights are a
# softmax over the *real* positions only:
#
# $$\alpha_j = \frac{\exp(e_j)}{\sum_{k < \text{length}} \exp(e_k)} \quad (j < \text{length}), \qquad \alpha_j = 0 \quad (j \ge \text{length})$$
#
# Padded positions must get **exactly** zero weight, whatever their scores (a padded score may be
# huge, or `NaN`-free garbage): give them a score of $-\infty$ before the softmax. Every length is at least 1.

# %% solution="attention_weights"
def attention_weights(scores, src_lengths):
    """Softmax over the real source positions.

    Args:
        scores: (B, S) float alignment scores.
        src_lengths: (B,) long, the number of real positions of each source (1 <= length <= S).

    Returns:
        (B, S) weights, same dtype as scores: each row sums to 1, and is exactly 0 at j >= length.

    You may use torch.softmax; build the mask from the lengths without a Python loop over the batch.
    """
    ### BEGIN SOLUTION
    positions = torch.arange(scores.shape[1], device=scores.device)  # (S,)
    is_padding = positions[None, :] >= src_lengths[:, None]  # (B, S)
    return torch.softmax(scores.masked_fill(is_padding, float("-inf")), dim=-1)
    ### END SOLUTION


# %% tests="attention_weights_visible" points=1
scores = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 1e4, -1e4]])
got = attention_weights(scores, torch.tensor([4, 2]))
check_shape(got, (2, 4), "attention_weights(scores (2, 4), lengths [4, 2])")
expected = torch.stack([torch.softmax(scores[0], dim=0), torch.cat([torch.softmax(scores[1, :2], dim=0), torch.zeros(2)])])
check_close(got, expected, "attention_weights(scores, lengths [4, 2]) (row 0: nothing is padding; row 1: the last two are)",
            hint="one softmax per row, over the source positions (dim=-1), with the padded scores set to -inf first")
assert (got[1, 2:] == 0).all(), f"padded positions must get exactly zero weight, got {got[1, 2:].tolist()}"
print("Exercise 2: visible tests passed.")
### BEGIN HIDDEN TESTS
from course.checks import report

generator = torch.Generator().manual_seed(24)
report("attention_weights/visible", attention_weights(3 * torch.randn(3, 5, generator=generator), torch.tensor([5, 2, 1])))
### END HIDDEN TESTS

# %% tests="attention_weights_hidden" points=2
# Hidden tests, run when the notebook is graded: random lengths, float64, large scores at padding.
### BEGIN HIDDEN TESTS
from course.checks import report

generator = torch.Generator().manual_seed(22)
for dtype in (torch.float32, torch.float64):
    for B, S in [(1, 1), (4, 6), (9, 17)]:
        scores = 20 * torch.randn(B, S, generator=generator, dtype=dtype)
        lengths = torch.randint(1, S + 1, (B,), generator=generator)
        padding = torch.arange(S)[None, :] >= lengths[:, None]
        scores[padding] = 1e6  # huge scores at padding must still get nothing
        got = attention_weights(scores, lengths)
        report(f"attention_weights/hidden/{dtype}/B={B} S={S}", got)
        report(f"attention_weights/hidden/{dtype}/B={B} S={S}/padding_is_zero", bool((got[padding] == 0).all()))
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 3: one step of the attention decoder (4 points)
#
# Chapter 2's decoder, at step $t$, with the previous token $y_{t-1}$ and previous state $s_{t-1}$:
#
# 1. scores $e_j = v^\top \tanh(W_q s_{t-1} + W_k h_j)$ and weights $\alpha = $ masked softmax of $e$;
# 2. context $c_t = \sum_j \alpha_j h_j$;
# 3. new state $s_t = \mathrm{GRUCell}([\,\mathrm{embed}(y_{t-1});\ c_t\,],\ s_{t-1})$;
# 4. logits $= W_{out}\,[\,s_t;\ c_t\,] + b_{out}$.
#
# The parameters live in a `course.rnn.AttentionDecoder` called `decoder`:
#
# | piece | in the decoder |
# | --- | --- |
# | embedding | `decoder.embedding` (an `nn.Embedding`, call it on the token ids) |
# | $W_q$, $W_k$, $v$ | `decoder.attention.query_projection.weight` `(A, H)`, `decoder.attention.key_projection.weight` `(A, C)`, `decoder.attention.score.weight[0]` `(A,)` |
# | GRU cell | `decoder.cell` (an `nn.GRUCell`, call it as `decoder.cell(input, state)`) |
# | output layer | `decoder.output` (an `nn.Linear`) |
#
# Use your `additive_scores` and `attention_weights`; the concatenations `[a; b]` are along the last axis.

# %% solution="attention_step"
def attention_decoder_step(decoder, prev_tokens, hidden, encoder_states, src_lengths):
    """One decoder step with Bahdanau attention.

    Args:
        decoder: a course.rnn.AttentionDecoder (parameters only; do not call decoder.step or decoder.attention).
        prev_tokens: (B,) long, the previous output tokens y_{t-1}.
        hidden: (B, H) the previous decoder state s_{t-1}.
        encoder_states: (B, S, C) h_1..h_S (zeros at padding).
        src_lengths: (B,) long.

    Returns:
        logits (B, V), the new state s_t (B, H), the attention weights alpha (B, S).
    """
    ### BEGIN SOLUTION
    attention = decoder.attention
    scores = additive_scores(hidden, encoder_states, attention.query_projection.weight,
                             attention.key_projection.weight, attention.score.weight[0])  # (B, S)
    weights = attention_weights(scores, src_lengths)  # (B, S)
    context = torch.einsum("bs,bsc->bc", weights, encoder_states)  # (B, C)
    new_hidden = decoder.cell(torch.cat([decoder.embedding(prev_tokens), context], dim=-1), hidden)  # (B, H)
    logits = decoder.output(torch.cat([new_hidden, context], dim=-1))  # (B, V)
    return logits, new_hidden, weights
    ### END SOLUTION


# %% tests="attention_step_visible" points=2
torch.manual_seed(1)
decoder = AttentionDecoder(vocab_size=11, embed_dim=4, hidden_size=6, context_size=8, attention_size=5)
states, lengths = torch.randn(3, 7, 8), torch.tensor([7, 3, 1])
states[torch.arange(7)[None, :] >= lengths[:, None]] = 0.0  # the encoder leaves zeros at padding
prev_tokens, hidden = torch.tensor([1, 5, 9]), torch.randn(3, 6)
logits, new_hidden, weights = attention_decoder_step(decoder, prev_tokens, hidden, states, lengths)
check_shape(logits, (3, 11), "logits")
check_shape(new_hidden, (3, 6), "new hidden state")
check_shape(weights, (3, 7), "attention weights")
assert (weights[1, 3:] == 0).all() and (weights[2, 1:] == 0).all(), "padded positions must get zero weight"
check_close(weights.sum(-1), torch.ones(3), "the weights of each row must sum to 1")
check_close(weights[2], torch.eye(7)[0], "a source of length 1: all the weight on position 0")
print("Exercise 3: visible tests passed.")
### BEGIN HIDDEN TESTS
from course.checks import report

generator = torch.Generator().manual_seed(25)
torch.manual_seed(2)  # the decoder's initial weights: the same in the reference's run
decoder = AttentionDecoder(vocab_size=11, embed_dim=4, hidden_size=6, context_size=8, attention_size=5)
states, lengths = torch.randn(3, 7, 8, generator=generator), torch.tensor([7, 3, 1])
states[torch.arange(7)[None, :] >= lengths[:, None]] = 0.0
with torch.no_grad():
    got = attention_decoder_step(decoder, torch.tensor([1, 5, 9]), torch.randn(3, 6, generator=generator), states, lengths)
for name, value in zip(("logits", "new_hidden", "weights"), got):
    report(f"attention_step/visible/{name}", value)
### END HIDDEN TESTS

# %% tests="attention_step_hidden" points=2
# Hidden tests, run when the notebook is graded: against the reference solution's decoder step, float32 and
# float64; the weights must change with the encoder states; padded encoder states must not matter.
### BEGIN HIDDEN TESTS
from course.checks import report

generator = torch.Generator().manual_seed(23)
for dtype in (torch.float32, torch.float64):
    for B, S, V in [(1, 1, 5), (4, 9, 13)]:
        torch.manual_seed(B * S)  # the decoder's initial weights: the same in the reference's run
        decoder = AttentionDecoder(vocab_size=V, embed_dim=3, hidden_size=6, context_size=4, attention_size=5).to(dtype)
        states = torch.randn(B, S, 4, generator=generator, dtype=dtype)
        lengths = torch.randint(1, S + 1, (B,), generator=generator)
        prev_tokens = torch.randint(0, V, (B,), generator=generator)
        hidden = torch.randn(B, 6, generator=generator, dtype=dtype)
        with torch.no_grad():
            got = attention_decoder_step(decoder, prev_tokens, hidden, states, lengths)
        case = f"{dtype}/B={B} S={S}"
        for name, value in zip(("logits", "new_hidden", "weights"), got):
            report(f"attention_step/hidden/{name}/{case}", value)

        # Attention that ignores the encoder is no attention: new encoder states, new weights.
        other_states = torch.randn(B, S, 4, generator=generator, dtype=dtype)
        with torch.no_grad():
            _, _, other_weights = attention_decoder_step(decoder, prev_tokens, hidden, other_states, lengths)
        movable = lengths > 1  # a source of length 1 always puts all its weight on position 0
        report(f"attention_step/hidden/other_states/{case}", other_weights)
        if movable.any():
            report(f"attention_step/hidden/weights_move/{case}", bool(((other_weights - got[2]).abs().amax(-1)[movable] > 1e-6).all()))

        # What sits in the padding must not change anything.
        padding = torch.arange(S)[None, :] >= lengths[:, None]
        garbage = states.clone()
        garbage[padding] = 1e3
        with torch.no_grad():
            garbage_out = attention_decoder_step(decoder, prev_tokens, hidden, garbage, lengths)
        for name, value in zip(("logits", "new_hidden", "weights"), garbage_out):
            report(f"attention_step/hidden/garbage_padding/{name}/{case}", value)
### END HIDDEN TESTS


# %% [markdown]
# ## Exercise 4: train it to reverse strings, and read its alignment (4 points)
#
# Your decoder step now learns. Write `teacher_forcing(model, batch)`: the decoder run over a
# whole target with teacher forcing, one call of **your** `attention_decoder_step` per target position,
# fed the true previous token `batch.tgt_in[:, t]` (not its own prediction). The model is chapter 2's
# `course.rnn.attention_model`:
#
# * `encoded = model.encoder(batch.src, batch.src_lengths)` gives `encoded.states` `(B, S, C)` and
#   `encoded.final` `(B, C)`, the summary of the source;
# * the first decoder state is `model.decoder.init_state(encoded.final)` `(B, H)`;
# * step $t$ takes the previous state and returns the next one, which step $t+1$ takes.
#
# Return the logits of every step stacked `(B, T, V)` and the attention weights of every step
# stacked `(B, T, S)`. The read-only cell after it trains the model for 150 steps (about ten
# seconds) on reversal, `"abcde" -> "edcba"`, with lengths 3 to 8.
#
# The tests check that the model reverses at least 70 % of new strings exactly, and that its
# attention has learned the alignment of reversal: output $t$ of a string of length $n$ should look
# at input $n - 1 - t$, so in the weights of a well-trained model the largest weight of step $t$ sits
# on that position (the anti-diagonal of the heatmap) for at least half of the steps. (The reference
# reaches about 95 % and 90 %; training from other seeds, 85 % and 65 % at worst.)

# %% solution="teacher_forcing"
def teacher_forcing(model, batch):
    """Run model.decoder over batch.tgt_in with your attention_decoder_step.

    Args:
        model: a course.rnn.attention_model (model.encoder, model.decoder).
        batch: a course.seq2seq_data.Batch (src, src_lengths, tgt_in, tgt_out).

    Returns:
        logits (B, T, V) and attention weights (B, T, S), T = batch.tgt_in.shape[1].
    """
    ### BEGIN SOLUTION
    encoded = model.encoder(batch.src, batch.src_lengths)
    hidden = model.decoder.init_state(encoded.final)  # s_0 from the source's summary
    all_logits, all_weights = [], []
    for t in range(batch.tgt_in.shape[1]):
        logits, hidden, weights = attention_decoder_step(model.decoder, batch.tgt_in[:, t], hidden,
                                                         encoded.states, batch.src_lengths)
        all_logits.append(logits)
        all_weights.append(weights)
    return torch.stack(all_logits, dim=1), torch.stack(all_weights, dim=1)
    ### END SOLUTION


# %%
# Read-only: the task, the training loop and the two measurements the tests use.
import random
import time

import torch.nn.functional as F

from course.rnn import attention_model
from course.seq2seq_data import PAD, REVERSAL_VOCAB, make_batch, reversal_pairs

# A model this small trains fastest on one thread: on a busy machine, torch's threads mostly wait
# for each other (the sorter of chapter 6: 5 s on one thread, 39 s on two, measured on a loaded 2-core machine).
torch.set_num_threads(1)


def train_reverser(seed, steps=150):
    """A fresh attention model trained with your teacher_forcing; returns it (in eval mode)."""
    torch.manual_seed(seed)
    model = attention_model(len(REVERSAL_VOCAB), len(REVERSAL_VOCAB), embed_dim=16, hidden_size=64, attention_size=32)
    pairs, rng = reversal_pairs(5000, 3, 8, seed=seed), random.Random(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        batch = make_batch(rng.sample(pairs, 64), REVERSAL_VOCAB, REVERSAL_VOCAB)
        logits, _ = teacher_forcing(model, batch)
        loss = F.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD)  # padding excluded
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return model.eval()


def exact_match(model, pairs):
    """Fraction of sources whose greedy decoding is exactly the target."""
    batch = make_batch(pairs, REVERSAL_VOCAB, REVERSAL_VOCAB)
    outputs = model.greedy_decode(batch.src, batch.src_lengths, max_len=batch.tgt_out.shape[1] + 2)
    return sum(REVERSAL_VOCAB.decode(out) == target for out, (_, target) in zip(outputs, pairs)) / len(pairs)


def on_anti_diagonal(model, pairs):
    """Fraction of output positions t < n whose largest attention weight is on input n - 1 - t."""
    batch = make_batch(pairs, REVERSAL_VOCAB, REVERSAL_VOCAB)
    with torch.no_grad():
        _, weights = teacher_forcing(model, batch)  # (B, T, S)
    steps = torch.arange(weights.shape[1])[None, :]  # (1, T)
    mirrored = batch.src_lengths[:, None] - 1 - steps  # (B, T): the input position output t copies
    real = steps < batch.src_lengths[:, None]  # the last step predicts EOS and has no partner
    return (weights.argmax(dim=-1) == mirrored)[real].float().mean().item()


# %% tests="teacher_forcing_visible" points=2
torch.manual_seed(2)
model = attention_model(len(REVERSAL_VOCAB), len(REVERSAL_VOCAB), embed_dim=16, hidden_size=64, attention_size=32)
batch = make_batch([("abc", "cba"), ("abcdef", "fedcba")], REVERSAL_VOCAB, REVERSAL_VOCAB)
logits, weights = teacher_forcing(model, batch)
check_shape(logits, (2, 7, len(REVERSAL_VOCAB)), "logits for 2 targets of up to 6 letters + EOS")
check_shape(weights, (2, 7, 6), "weights: one row per target step, one column per source position")
assert (weights[0, :, 3:] == 0).all(), "a source of 3 letters: positions 3.. are padding and get zero weight"
with torch.no_grad():
    want = model(batch.src, batch.src_lengths, batch.tgt_in)  # chapter 2's decoder, run by the course
check_close(logits.detach(), want, "logits vs the course's AttentionDecoder on the same model",
            hint="start from model.decoder.init_state(encoded.final), feed batch.tgt_in[:, t] at step t, and pass the new state on")

start = time.perf_counter()
model = train_reverser(seed=0)
test_pairs = reversal_pairs(300, 3, 8, seed=100)
accuracy, aligned = exact_match(model, test_pairs), on_anti_diagonal(model, test_pairs)
print(f"{time.perf_counter() - start:.1f} s: {accuracy:.1%} of new strings reversed exactly; "
      f"{aligned:.1%} of output steps attend most to the mirrored input")
assert accuracy >= 0.7, f"the trained model reversed {accuracy:.1%} of new strings, expected at least 70 %"
assert aligned >= 0.5, (f"only {aligned:.1%} of the steps put their largest weight on input n - 1 - t, expected at least 50 %: "
                        "does each step get the state the previous step returned?")
print("Exercise 4: visible tests passed.")
### BEGIN HIDDEN TESTS
# What the visible checks saw, handed to the grader: compared with the reference's outside this notebook.
from course.checks import report

report("teacher_forcing/visible/logits", logits.detach(), atol=1e-4)
report("teacher_forcing/visible/weights", weights.detach(), atol=1e-5)
### END HIDDEN TESTS

# %% tests="teacher_forcing_hidden" points=2
# Hidden tests, run when the notebook is graded: trained from another seed, the model must
# reverse new strings and attend along the anti-diagonal.
### BEGIN HIDDEN TESTS
from course.checks import report

model = train_reverser(seed=7)
test_pairs = reversal_pairs(300, 3, 8, seed=107)
# The trained model's reversals of held-out strings: the grader counts the exact matches itself.
test_batch = make_batch(test_pairs, REVERSAL_VOCAB, REVERSAL_VOCAB)
with torch.no_grad():
    outputs = model.greedy_decode(test_batch.src, test_batch.src_lengths, max_len=test_batch.tgt_out.shape[1] + 2)
report("teacher_forcing/predictions", [REVERSAL_VOCAB.decode(out) for out in outputs], bound=(">=", 0.7),
       targets=[target for _, target in test_pairs])
report("teacher_forcing/anti_diagonal", on_anti_diagonal(model, test_pairs), bound=(">=", 0.5))
# The same model untrained must not reverse: what reverses is what training learned, not code patched into decoding.
torch.manual_seed(8)
untrained = attention_model(len(REVERSAL_VOCAB), len(REVERSAL_VOCAB), embed_dim=16, hidden_size=64, attention_size=32).eval()
with torch.no_grad():
    outputs = untrained.greedy_decode(test_batch.src, test_batch.src_lengths, max_len=test_batch.tgt_out.shape[1] + 2)
report("teacher_forcing/untrained_predictions", [REVERSAL_VOCAB.decode(out) for out in outputs], bound=("<=", 0.05),
       targets=[target for _, target in test_pairs])
### END HIDDEN TESTS
