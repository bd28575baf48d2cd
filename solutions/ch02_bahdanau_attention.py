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
# The three parts of one decoder step with attention, as in chapter 2; the decoder over a whole
# target; then a training loop of your own, and an experiment of your own.
#
# | exercise | points |
# | --- | --- |
# | 1. additive alignment scores | 3 |
# | 2. attention weights with the padding masked | 3 |
# | 3. one step of the attention decoder | 4 |
# | 4. the decoder over a whole target, with teacher forcing | 3 |
# | 5. your own training loop: 150 steps to 70 % of new strings reversed | 4 |
# | 6. what you chose, and one thing you changed (written, graded by hand) | 2 |
# | 7. an experiment of your own: it runs and reports (1), your report (5, graded by hand) | 6 |
#
# **How you are graded.** Each test cell below is worth points. The tests you see check the
# basics and say what went wrong; when the notebook is graded, further hidden tests compare
# your functions with the course's reference implementation (`course.rnn`) on random shapes,
# `float32` and `float64`, and check that padded positions get exactly zero weight and that the
# weights really depend on the encoder states; exercise 5's hidden test trains a model with your
# loop from another seed, and the grader measures what it learned from its weights. Exercise 5
# trains twice for about 10 s each, exercise 7 for about a minute. Run every cell from the top
# (*Kernel → Restart & Run All*) before you submit.
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
# ## Exercise 4: the decoder over a whole target, with teacher forcing (3 points)
#
# Write `teacher_forcing(model, batch)`: the decoder run over a whole target with teacher forcing,
# one call of **your** `attention_decoder_step` per target position, fed the true previous token
# `batch.tgt_in[:, t]` (not its own prediction). The model is chapter 2's `course.rnn.attention_model`:
#
# * `encoded = model.encoder(batch.src, batch.src_lengths)` gives `encoded.states` `(B, S, C)` and
#   `encoded.final` `(B, C)`, the summary of the source;
# * the first decoder state is `model.decoder.init_state(encoded.final)` `(B, H)`;
# * step $t$ takes the previous state and returns the next one, which step $t+1$ takes.
#
# Return the logits of every step stacked `(B, T, V)` and the attention weights of every step
# stacked `(B, T, S)`.

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
# Read-only: the exercise's task, model and budget (course/reversal_exercise.py), used from here on.
import random
import time

import torch.nn.functional as F

from course import reversal_exercise
from course.rnn import attention_model, fixed_context_model
from course.seq2seq_data import PAD, REVERSAL_VOCAB, make_batch, reversal_pairs

# A model this small trains fastest on one thread: on a busy machine, torch's threads mostly wait
# for each other (the sorter of chapter 6: 5 s on one thread, 39 s on two, measured on a loaded 2-core machine).
torch.set_num_threads(1)


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
print("Exercise 4: visible tests passed.")
### BEGIN HIDDEN TESTS
# What the visible checks saw, handed to the grader: compared with the reference's outside this notebook.
from course.checks import report

report("teacher_forcing/visible/logits", logits.detach(), atol=1e-4)
report("teacher_forcing/visible/weights", weights.detach(), atol=1e-5)
### END HIDDEN TESTS

# %% tests="teacher_forcing_hidden" points=1
# Hidden tests, run when the notebook is graded: another model, longer and shorter sources, against the reference.
### BEGIN HIDDEN TESTS
from course.checks import report

torch.manual_seed(3)  # the model's initial weights: the same in the reference's run
model = attention_model(len(REVERSAL_VOCAB), len(REVERSAL_VOCAB), embed_dim=8, hidden_size=12, attention_size=5)
batch = make_batch(reversal_pairs(6, 1, 11, seed=30), REVERSAL_VOCAB, REVERSAL_VOCAB)
with torch.no_grad():
    logits, weights = teacher_forcing(model, batch)
report("teacher_forcing/hidden/logits", logits, atol=1e-4)
report("teacher_forcing/hidden/weights", weights, atol=1e-5)
### END HIDDEN TESTS


# %% [markdown]
# ## Exercise 5: your own training loop (4 points)
#
# Now train the model yourself. Write `train_reverser(model, steps, seed, lengths=(3, 8))`: it trains
# `model` in place to reverse strings, `"abcde" -> "edcba"`, of `lengths[0]` to `lengths[1]` letters, and
# returns it. What is fixed:
#
# * **the model**: the tests build it with `reversal_exercise.make_model(seed)`, chapter 2's attention
#   model with embeddings of 16, a decoder state of 64 and an attention layer of 32;
# * **the task**: strings of 3 to 8 letters (the default `lengths`, which the tests use), drawn with
#   `reversal_pairs(n, *lengths, seed=...)` (course.seq2seq_data), batched with `make_batch`;
# * **the budget**: at most `steps` optimizer steps (the tests pass `reversal_exercise.STEPS`, **150**), each on
#   one batch of at most **64** strings (`reversal_exercise.MAX_BATCH`), and no more forward passes with
#   gradients on than steps (evaluate, if you do, under `torch.no_grad()`).
#
# What is yours: the optimizer and its learning rate, the batch size (up to 64), gradient clipping or
# none, how many pairs you draw and in what order (from `seed`, so that a run can be repeated). The
# loss is chapter 1's: the cross-entropy of each next token, padding excluded
# (`F.cross_entropy(..., ignore_index=PAD)`). Your loop may get the logits from your `teacher_forcing`
# or from the model itself, `model(batch.src, batch.src_lengths, batch.tgt_in)` (the same numbers,
# computed by the course; that form also trains chapter 1's model, which exercise 7 may want).
#
# The target: the trained model reverses at least **70 %** of new strings exactly
# (`reversal_exercise.TARGET`), and its attention has learned the alignment of reversal: output $t$ of a
# string of length $n$ should look at input $n - 1 - t$, so the largest weight of step $t$ should sit on
# that position (the anti-diagonal of the heatmap) for at least half of the steps. A loop of a dozen
# lines with well-chosen settings gets above 90 % on every seed we tried; a learning rate that suits
# a model trained for thousands of steps will not get there in 150.
#
# **How it is graded.** The visible test trains one model and checks the budget and the two targets.
# The hidden test trains a model from another seed and reports its *weights*; the grader rebuilds the
# model from them in its own process and decodes held-out strings itself, so nothing but the model you
# trained counts (and the same model untrained must reverse nothing). Each run takes about 10 s on one core.

# %% solution="train_reverser"
def train_reverser(model, steps, seed, lengths=(3, 8)):
    """Train ``model`` (a reversal_exercise.make_model) in place to reverse strings.

    At most ``steps`` optimizer steps, each on one batch of at most 64 strings; ``seed`` decides the data;
    the training strings have ``lengths[0]`` to ``lengths[1]`` letters (the tests keep the default, 3 to 8;
    exercise 7 may train on others). Returns the model, in eval mode.
    """
    ### BEGIN SOLUTION
    learning_rate, batch_size, clip_norm = 1e-2, 64, 1.0
    pairs = reversal_pairs(5000, *lengths, seed=seed)
    order = random.Random(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate)
    model.train()
    for _ in range(steps):
        batch = make_batch(order.sample(pairs, batch_size), REVERSAL_VOCAB, REVERSAL_VOCAB)
        logits = model(batch.src, batch.src_lengths, batch.tgt_in)  # (B, T, V)
        loss = F.cross_entropy(logits.flatten(0, 1), batch.tgt_out.flatten(), ignore_index=PAD)  # padding excluded
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()
    return model.eval()
    ### END SOLUTION


# %% tests="train_reverser_visible" points=1
start = time.perf_counter()
model = reversal_exercise.make_model(0)
trained = reversal_exercise.run_within_budget(lambda: train_reverser(model, reversal_exercise.STEPS, seed=0),
                                              reversal_exercise.STEPS)
assert trained is model, "train the model you are given, in place, and return it"
test_pairs = reversal_pairs(300, 3, 8, seed=100)
accuracy = reversal_exercise.exact_match(model, test_pairs)
aligned = reversal_exercise.on_anti_diagonal(model, test_pairs)
print(f"{time.perf_counter() - start:.1f} s: {accuracy:.1%} of new strings reversed exactly; "
      f"{aligned:.1%} of output steps attend most to the mirrored input")
assert accuracy >= reversal_exercise.TARGET, (
    f"the trained model reversed {accuracy:.1%} of new strings, expected at least {reversal_exercise.TARGET:.0%}. Likely causes: "
    "a learning rate too small for 150 steps (try several, a factor of 3 apart) or too large (the loss jumps up); "
    "zero_grad missing (gradients add up across steps); the padding counted in the loss; the model left in eval mode")
assert aligned >= reversal_exercise.ANTI_DIAGONAL, (
    f"only {aligned:.1%} of the steps put their largest weight on input n - 1 - t, expected at least 50 %")
print("Exercise 5: visible tests passed.")
### BEGIN HIDDEN TESTS
from course.checks import report

# the same model, measured again by the grader from its weights (no number of this kernel is believed)
report("train_reverser/visible/weights", reversal_exercise.flat_weights(model), bound=(">=", reversal_exercise.TARGET),
       metric="reverser_exact_match")
### END HIDDEN TESTS

# %% tests="train_reverser_hidden" points=3
# Hidden tests, run when the notebook is graded: your loop trains a model from another seed; the grader
# measures the model it leaves, from its weights.
### BEGIN HIDDEN TESTS
from course.checks import report

model = reversal_exercise.make_model(7)
reversal_exercise.run_within_budget(lambda: train_reverser(model, reversal_exercise.STEPS, seed=8), reversal_exercise.STEPS)
weights = reversal_exercise.flat_weights(model)
report("train_reverser/hidden/exact_match", weights, bound=(">=", reversal_exercise.TARGET), metric="reverser_exact_match")
report("train_reverser/hidden/anti_diagonal", weights, bound=(">=", reversal_exercise.ANTI_DIAGONAL), metric="reverser_anti_diagonal")
# The control: the same model untrained reverses nothing, measured the same way.
report("train_reverser/hidden/untrained", reversal_exercise.flat_weights(reversal_exercise.make_model(7)),
       bound=("<=", reversal_exercise.UNTRAINED), metric="reverser_exact_match")
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 6: what you chose, and one thing you changed (2 points, graded by your instructor)
#
# In the cell below: the values you chose in `train_reverser` (optimizer, learning rate, batch size,
# clipping, data), and **one** thing you changed while getting there, with the exact match of the run
# before and after the change, everything else equal (same seed, 150 steps; measure with
# `reversal_exercise.exact_match(model, test_pairs)`).

# %% [markdown] answer="training_choices" points=2
# ### BEGIN SOLUTION
# **Model answer.** Adam at a learning rate of 1e-2, constant; batches of 64 strings sampled without
# replacement from 5,000 pairs drawn with the seed; the global gradient norm clipped at 1. One change:
# the learning rate. With 1e-3 (PyTorch's default for Adam), everything else equal (model seed 0, data
# seed 0, 150 steps), the model reversed 31.7 % of the visible test's strings exactly; with 1e-2, 94.7 %
# (measured with the solution's loop: `python benchmarks/reversal_exercise.py --only change`). Ten times
# the rate, three times the exact match: 150 steps are too few for the small rate, which is still
# learning when the budget ends (one seed only: this says which rate to keep, not by how much it wins).
#
# **Rubric (2 points).** 1 point: the choices are stated (optimizer, learning rate, batch size,
# clipping) and are the ones the loop uses. 1 point: one change, with everything else equal (the same
# seed and number of steps), and the exact match before and after it. A change of two things at once,
# or numbers without the setting they come from, earns no point for the second part.
# ### END SOLUTION

# %% [markdown]
# ## Exercise 7: an experiment of your own (1 point for running and reporting, 5 points for the report)
#
# Chapters 1 and 2 made claims you can now test with your own loop, or raise questions they left
# open. Pick **one** question and design a controlled comparison that answers it:
#
# * Does attention beat chapter 1's fixed-context model (`fixed_context_model(len(REVERSAL_VOCAB),
#   len(REVERSAL_VOCAB), embed_dim=16, hidden_size=64)`) on longer strings, at equal steps?
# * Does the decoder's first state matter once it has attention (`attention_model(..., init="zeros")`
#   against the default `"learned"`)?
# * Does the width of the attention layer (`attention_size`) matter for reversal?
# * At an equal number of steps, are more steps on small batches better than fewer on large ones?
#   (Careful: that one changes the number of steps; say what you keep equal.)
# * Or a question of your own, on chapter 1 or 2's models and tasks.
#
# **The rules.** Change one thing and keep everything else equal (the steps, the data, the model's
# other settings). Run each condition with at least **2 seeds** (the model's and the data's), the same
# seeds for every condition. The compute budget, all runs together: at most **800 optimizer steps**
# (`reversal_exercise.EXPERIMENT_STEPS`), batches of at most 64 strings of at most **12 letters**
# (`reversal_exercise.EXPERIMENT_MAX_LEN`); that is about a minute on one core. Measure on held-out
# strings, drawn with another seed than the training strings.
#
# Write `experiment()` below: it runs the whole comparison and returns **`{condition: [one value per
# seed]}`**: at least two conditions (strings that name them, e.g. `"attention"`), the same number of
# seeds (at least 2) for each, every value a number between 0 and 1 (an exact-match accuracy, or the
# share of right characters), each measured on a model trained in the call. The test runs it once,
# checks the budget and that structure (1 point), and prints the table. Then write your report in the cell after it (5 points, graded by hand).

# %% solution="experiment"
def experiment():
    """The comparison: returns {condition: [one value in [0, 1] per seed]}."""
    ### BEGIN SOLUTION
    # Question: does attention beat the fixed-context model on strings of 9 to 12 letters, at equal steps?
    # One thing changes, the decoder (fixed context or attention); both are trained by train_reverser (its settings,
    # 150 steps) on the same strings of 3 to 12 letters, with the same seeds, and measured on the same held-out
    # strings of 9 to 12 letters (another seed). 2 conditions x 2 seeds x 150 steps = 600 optimizer steps.
    builders = {"fixed context": fixed_context_model, "attention": attention_model}
    held_out = reversal_pairs(300, 9, 12, seed=1000)
    results = {name: [] for name in builders}
    for seed in (0, 1):
        for name, build in builders.items():
            torch.manual_seed(seed)
            model = build(len(REVERSAL_VOCAB), len(REVERSAL_VOCAB), embed_dim=16, hidden_size=64)
            train_reverser(model, 150, seed, lengths=(3, reversal_exercise.EXPERIMENT_MAX_LEN))
            results[name].append(reversal_exercise.exact_match(model, held_out))
    return results
    ### END SOLUTION


# %% tests="experiment_visible" points=1
start = time.perf_counter()
counts = {}
measurements = reversal_exercise.run_within_budget(experiment, reversal_exercise.EXPERIMENT_STEPS,
                                                   max_len=reversal_exercise.EXPERIMENT_MAX_LEN, counts=counts)
seconds = time.perf_counter() - start
assert isinstance(measurements, dict) and len(measurements) >= 2, "return a dict with at least two conditions"
assert all(isinstance(name, str) for name in measurements), "name each condition with a string"
seeds = {len(values) if isinstance(values, (list, tuple)) else 0 for values in measurements.values()}
assert len(seeds) == 1 and min(seeds) >= 2, "give each condition a list with one value per seed: the same seeds (at least 2) for each"
values = [value for row in measurements.values() for value in row]
assert all(isinstance(value, (int, float)) and 0 <= value <= 1 for value in values), "every value a number between 0 and 1"
assert counts["steps"] >= len(values), (f"{counts['steps']} optimizer steps for {len(values)} values: each value should "
                                        "come from a model trained in this call")
for name, row in measurements.items():
    print(f"{name:>24}: " + "  ".join(f"{value:.3f}" for value in row) + f"   (mean {sum(row) / len(row):.3f}, "
          f"spread {max(row) - min(row):.3f})")
print(f"Exercise 7: the experiment ran in {seconds:.0f} s within its budget and returned {len(measurements)} conditions "
      f"x {min(seeds)} seeds.")
### BEGIN HIDDEN TESTS
from course.checks import report

report("experiment/ran_and_reported", True)
### END HIDDEN TESTS

# %% [markdown]
# Your report, in the cell below, in this order:
#
# 1. the question, and the one thing your conditions change;
# 2. what you kept equal (steps, data, sizes, seeds) and the budget you used;
# 3. the numbers: the value of each condition for each seed, and for each condition the mean and the
#    spread between seeds;
# 4. your conclusion, and how sure it can be: is the difference between conditions larger than the
#    difference between seeds of the same condition? What would make it firmer?

# %% [markdown] answer="experiment_report" points=5
# ### BEGIN SOLUTION
# **Model answer.** *Question:* does attention beat chapter 1's fixed-context decoder on strings of 9
# to 12 letters, at an equal number of steps? *The one change:* the decoder, fixed context or
# attention; the encoder, the widths (embeddings 16, states 64), the loop (train_reverser's: Adam at
# 1e-2, batches of 64, clipping at 1), the training strings (3 to 12 letters, drawn from the seed) and
# the 150 steps are the same. *Seeds:* 0 and 1 for the weights and the data, the same for both
# conditions; 600 of the 800 steps of the budget. *Measured* on 300 held-out strings of 9 to 12
# letters (seed 1000), exact match:
#
# | decoder | seed 0 | seed 1 | mean | spread |
# | --- | --- | --- | --- | --- |
# | fixed context | 0.003 | 0.020 | 0.012 | 0.017 |
# | attention | 0.697 | 0.770 | 0.733 | 0.073 |
#
# (from `python benchmarks/reversal_exercise.py --only experiment`, which runs this solution's
# `experiment()` on one thread.)
#
# *Conclusion:* with attention the model reversed about 73 % of the long strings; without it, about
# 1 %. The difference, 0.72, is about ten times the largest spread between the two seeds of a
# condition (0.073, attention's), so with two seeds the direction is not in doubt; its size is less
# certain: two seeds estimate the spread poorly, and 150 steps are far from convergence (the
# fixed-context model might catch up partly with more steps, which this budget cannot tell). A third
# seed, and the same comparison at twice the steps, would make it firmer.
#
# **Rubric (5 points).** 1 point: the question and the **one** thing changed are stated, and the code
# changes only that. 1 point: what is kept equal is said, with the number of steps equal for every
# condition, within the budget. 1 point: at least 2 seeds per condition, the same for each condition,
# and the spread between seeds reported. 1 point: the numbers, per seed and condition, the ones the
# code returned, on held-out strings. 1 point: a conclusion that compares the difference between
# conditions with the spread between seeds and says how sure it is (and what would make it surer). A
# conclusion is not marked on whether it matches ours: a careful null result earns every point.
# ### END SOLUTION
