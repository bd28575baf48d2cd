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
# # Exercises 1: sequence modelling with RNNs
#
# Three pieces of chapter 1: the recurrent cell that both halves of the encoder-decoder are made
# of, the loop that turns a trained decoder into a generator of output sequences, and the gated
# cell whose state carries information (and gradients) across many steps.
#
# | exercise | points |
# | --- | --- |
# | 1. an Elman RNN cell, equal to `torch.nn.RNNCell` | 3 |
# | 2. greedy decoding | 4 |
# | 3. an LSTM cell from its gates, equal to `torch.nn.LSTMCell` | 5 |
# | 4. why the keep gate carries the gradient (written, graded by hand) | 2 |
#
# **How you are graded.** Each test cell below is worth points. The tests you see check the
# basics and say what went wrong; when the notebook is graded, further hidden tests compare
# your functions with the course's reference implementation (`course.rnn`) on random shapes,
# `float32` and `float64`. Run every cell from the top (*Kernel → Restart & Run All*) before
# you submit.
#
# **Token ids** (as in chapter 1): `PAD = 0`, `BOS = 1` (begin of sequence), `EOS = 2` (end of sequence).

# %%
import torch

from course.checks import check_close, check_shape
from course.seq2seq_data import BOS, EOS, PAD

torch.manual_seed(0)

# %% [markdown]
# ## Exercise 1: an RNN cell from scratch (3 points)
#
# $$h_t = \tanh\left(W_{ih}\, x_t + b_{ih} + W_{hh}\, h_{t-1} + b_{hh}\right)$$
#
# A batch of inputs `x (B, I)` and of previous states `h (B, H)`; the weights are stored the way
# PyTorch stores them, `weight_ih (H, I)` and `weight_hh (H, H)`, so a row of $W$ produces one unit
# of the state. Either bias may be `None` (no bias).

# %% solution="rnn_cell"
def rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """One step of an Elman RNN: the new state h' (B, H).

    Args:
        x: (B, I) inputs at this step.
        h: (B, H) previous states.
        weight_ih: (H, I); weight_hh: (H, H); bias_ih, bias_hh: (H,) or None.

    Returns:
        (B, H), same dtype as x.

    Do not call torch.nn.RNNCell, torch.nn.RNN, torch.rnn_tanh_cell or torch.nn.functional.linear;
    use matrix products (@), + and torch.tanh.
    """
    ### BEGIN SOLUTION
    pre_activation = x @ weight_ih.T + h @ weight_hh.T  # (B, H)
    for bias in (bias_ih, bias_hh):
        if bias is not None:
            pre_activation = pre_activation + bias  # (H,) broadcasts over the batch
    return torch.tanh(pre_activation)
    ### END SOLUTION


# %% tests="rnn_cell_visible" points=1
torch_cell = torch.nn.RNNCell(4, 3)
x, h = torch.randn(2, 4), torch.randn(2, 3)
got = rnn_cell(x, h, torch_cell.weight_ih, torch_cell.weight_hh, torch_cell.bias_ih, torch_cell.bias_hh)
check_shape(got, (2, 3), "rnn_cell(x (2, 4), h (2, 3))")
check_close(got, torch_cell(x, h), "rnn_cell vs torch.nn.RNNCell with the same weights")
print("Exercise 1: visible tests passed.")
### BEGIN HIDDEN TESTS
# The same check on the grader's own weights and inputs; the grader compares the result with the reference's.
from course.checks import report

generator = torch.Generator().manual_seed(10)
weights = [torch.randn(3, 4, generator=generator), torch.randn(3, 3, generator=generator),
           torch.randn(3, generator=generator), torch.randn(3, generator=generator)]
x, h = torch.randn(2, 4, generator=generator), torch.randn(2, 3, generator=generator)
report("rnn_cell/visible", rnn_cell(x, h, *weights))
### END HIDDEN TESTS

# %% tests="rnn_cell_hidden" points=2
# Hidden tests, run when the notebook is graded: random sizes, float64, no biases, a run of many
# steps (errors would grow along the sequence), and no call to PyTorch's own RNN.
### BEGIN HIDDEN TESTS
import torch.nn.functional as F

from course.checks import forbidden_calls, report

def seeded_weights(inputs, hidden, generator, dtype):
    """weight_ih, weight_hh, bias_ih, bias_hh, scaled as torch.nn.RNNCell initialises them."""
    scale = hidden ** -0.5
    return (scale * torch.randn(hidden, inputs, generator=generator, dtype=dtype),
            scale * torch.randn(hidden, hidden, generator=generator, dtype=dtype),
            scale * torch.randn(hidden, generator=generator, dtype=dtype),
            scale * torch.randn(hidden, generator=generator, dtype=dtype))

generator = torch.Generator().manual_seed(11)
for dtype in (torch.float32, torch.float64):
    for batch, inputs, hidden in [(1, 1, 1), (5, 3, 8), (7, 16, 4)]:
        weight_ih, weight_hh, bias_ih, bias_hh = seeded_weights(inputs, hidden, generator, dtype)
        x = torch.randn(batch, inputs, generator=generator, dtype=dtype)
        h = torch.randn(batch, hidden, generator=generator, dtype=dtype)
        with forbidden_calls((torch, "rnn_tanh_cell"), (F, "linear"), (torch.nn.RNNCell, "forward")):
            got = rnn_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh)
            got_no_bias = rnn_cell(x, h, weight_ih, weight_hh)
        case = f"{dtype}/B={batch} I={inputs} H={hidden}"
        report(f"rnn_cell/hidden/{case}", got)
        report(f"rnn_cell/hidden/no_bias/{case}", got_no_bias)

# Twenty steps, fed back into itself: errors would grow along the sequence.
weights = seeded_weights(3, 5, generator, torch.float64)
inputs = torch.randn(2, 20, 3, generator=generator, dtype=torch.float64)
state = torch.zeros(2, 5, dtype=torch.float64)
for t in range(20):
    state = rnn_cell(inputs[:, t], state, *weights)
report("rnn_cell/hidden/20_steps", state, atol=1e-10, rtol=1e-8)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 2: greedy decoding (4 points)
#
# A trained decoder gives, at each step, a score (logit) for every token of the vocabulary given
# the tokens so far. *Greedy* decoding feeds `BOS` first, then at every step picks the most likely
# token and feeds it back in:
#
# $$\hat y_t = \arg\max_v \; \text{logits}_t[v], \qquad \text{logits}_t, \text{state}_t = \text{step}(\hat y_{t-1}, \text{state}_{t-1})$$
#
# The whole batch is decoded at once. A sequence is *finished* once it has produced `EOS`; from
# then on its outputs are `PAD`. Stop as soon as every sequence is finished, or after `max_len`
# steps.
#
# `step(prev_tokens, state) -> (logits, state)` is given; you do not need to know what the state
# is (for chapter 1's decoder it holds the hidden state and the context vector), only pass it along.

# %% solution="greedy_decode"
def greedy_decode(step, state, batch_size, max_len):
    """Greedy decoding of a batch.

    Args:
        step: function (prev_tokens (B,) long, state) -> (logits (B, V), new state).
        state: the decoder's initial state (pass it to the first call of step).
        batch_size: B.
        max_len: the largest number of steps.

    Returns:
        (B, L) long tensor, L <= max_len, without the BOS: row b holds the tokens of sequence b,
        its EOS where it produced one, and PAD after it. L is the number of steps taken: stop at
        the first step after which every sequence has produced EOS.
    """
    ### BEGIN SOLUTION
    tokens = torch.full((batch_size, 1), BOS, dtype=torch.long)  # column 0 is the BOS, dropped at the end
    for _ in range(max_len):
        logits, state = step(tokens[:, -1], state)
        best = logits.argmax(dim=-1)  # (B,)
        done = (tokens[:, 1:] == EOS).any(dim=1)  # finished before this step
        best = torch.where(done, torch.full_like(best, PAD), best)
        tokens = torch.cat([tokens, best[:, None]], dim=1)
        if ((tokens[:, 1:] == EOS).any(dim=1)).all():
            break
    return tokens[:, 1:]
    ### END SOLUTION


# %% tests="greedy_decode_visible" points=2
# A toy decoder: its state counts the steps, and sequence b "wants" to say EOS at step b + 1;
# before that it prefers token 7.
def counting_step(prev_tokens, step_number):
    logits = torch.zeros(len(prev_tokens), 10)
    logits[:, 7] = 1.0
    logits[torch.arange(len(prev_tokens)) <= step_number, EOS] = 2.0
    return logits, step_number + 1

got = greedy_decode(counting_step, 0, batch_size=3, max_len=10)
expected = torch.tensor([[EOS, PAD, PAD], [7, EOS, PAD], [7, 7, EOS]])
assert isinstance(got, torch.Tensor) and got.dtype == torch.long, "greedy_decode must return a long tensor"
check_shape(got, (3, 3), "greedy_decode: it should stop once all three sequences have said EOS")
assert torch.equal(got, expected), f"expected\n{expected}\ngot\n{got}\n(EOS = {EOS}, PAD = {PAD})"
check_shape(greedy_decode(counting_step, -10, batch_size=3, max_len=4), (3, 4), "greedy_decode with max_len=4, no EOS")
print("Exercise 2: visible tests passed.")
### BEGIN HIDDEN TESTS
from course.checks import report

report("greedy_decode/visible/counting", greedy_decode(counting_step, 0, batch_size=4, max_len=10))
report("greedy_decode/visible/max_len", greedy_decode(counting_step, -10, batch_size=3, max_len=4))
### END HIDDEN TESTS

# %% tests="greedy_decode_hidden" points=2
# Hidden tests, run when the notebook is graded: a real (randomly initialised) chapter-1 decoder,
# compared with the course's reference; the step must be fed back its own previous choice.
### BEGIN HIDDEN TESTS
from course.checks import report
from course.rnn import fixed_context_model
from course.seq2seq_data import REVERSAL_VOCAB, make_batch, reversal_pairs

for seed in (1, 2, 3):
    torch.manual_seed(seed)  # the model's initial weights: the same in the reference's run
    model = fixed_context_model(len(REVERSAL_VOCAB), len(REVERSAL_VOCAB), embed_dim=8, hidden_size=16).eval()
    with torch.no_grad():
        model.decoder.output.bias[EOS] += 2.0 * seed  # make EOS likely enough that sequences end at different steps
    batch = make_batch(reversal_pairs(6, 2, 9, seed=seed), REVERSAL_VOCAB, REVERSAL_VOCAB)
    with torch.no_grad():
        start = model.decoder.start(model.encoder(batch.src, batch.src_lengths))
        got = greedy_decode(model.decoder.step, start, 6, 12)
    assert isinstance(got, torch.Tensor), f"seed {seed}: greedy_decode must return a tensor"
    report(f"greedy_decode/hidden/model/seed={seed}", got)

# The previous token must be the one just chosen: this toy step favours (previous token + 3) mod 12,
# so from BOS = 1 the answer is 4, 7, 10, 1, 4, 7 (never EOS).
def successor_step(prev_tokens, state):
    logits = torch.zeros(len(prev_tokens), 12)
    logits[torch.arange(len(prev_tokens)), (prev_tokens + 3) % 12] = 1.0
    return logits, state

report("greedy_decode/hidden/successor", greedy_decode(successor_step, None, batch_size=2, max_len=6))
### END HIDDEN TESTS


# %% [markdown]
# ## Exercise 3: an LSTM cell from its gates (5 points)
#
# The LSTM keeps two vectors, the state $h$ it shows and a *cell state* $c$ that only its gates
# touch. From $x$ and $h$ it computes an input gate $i$, a forget gate $f$, a candidate $g$ and an
# output gate $o$, each with its own weights:
#
# $$\begin{aligned}
# i &= \sigma\left(W_{ii}\, x + b_{ii} + W_{hi}\, h + b_{hi}\right), &
# f &= \sigma\left(W_{if}\, x + b_{if} + W_{hf}\, h + b_{hf}\right), \\
# g &= \tanh\left(W_{ig}\, x + b_{ig} + W_{hg}\, h + b_{hg}\right), &
# o &= \sigma\left(W_{io}\, x + b_{io} + W_{ho}\, h + b_{ho}\right), \\
# c' &= f \odot c + i \odot g, &
# h' &= o \odot \tanh(c').
# \end{aligned}$$
#
# PyTorch stores the four gates' weights stacked in one matrix, in the order $i, f, g, o$:
# `weight_ih (4H, I)` holds $W_{ii}$ in its rows `0:H`, $W_{if}$ in `H:2H`, $W_{ig}$ in `2H:3H` and
# $W_{io}$ in `3H:4H`; `weight_hh (4H, H)`, `bias_ih (4H,)` and `bias_hh (4H,)` the same way.
# $\sigma$ is the sigmoid and $\odot$ the product entry by entry.

# %% solution="lstm_cell"
def lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    """One step of an LSTM: the new state h' and cell state c', each (B, H).

    Args:
        x: (B, I) inputs at this step.
        h: (B, H) previous states; c: (B, H) previous cell states.
        weight_ih: (4H, I); weight_hh: (4H, H); bias_ih, bias_hh: (4H,). The rows of the gates
            i, f, g, o are stacked in that order (PyTorch's).

    Returns:
        the pair (h', c'), two (B, H) tensors, same dtype as x.

    Do not call torch.nn.LSTMCell, torch.nn.LSTM or torch.lstm_cell, nor the course's own
    course.rnn.lstm_cell or course.rnn.LSTMCell; use matrix products (@), +, *, torch.sigmoid
    and torch.tanh.
    """
    ### BEGIN SOLUTION
    pre_activation = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh  # (B, 4H)
    i, f, g, o = pre_activation.chunk(4, dim=-1)  # four (B, H), in PyTorch's order
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_next = f * c + i * g  # kept where f is near 1, written where i is
    return o * torch.tanh(c_next), c_next
    ### END SOLUTION


# %% tests="lstm_cell_visible" points=2
torch_lstm = torch.nn.LSTMCell(4, 3)
x, h, c = torch.randn(2, 4), torch.randn(2, 3), torch.randn(2, 3)
got = lstm_cell(x, h, c, torch_lstm.weight_ih, torch_lstm.weight_hh, torch_lstm.bias_ih, torch_lstm.bias_hh)
assert isinstance(got, tuple) and len(got) == 2, f"lstm_cell must return the pair (h', c'), got {type(got).__name__}"
expected_h, expected_c = torch_lstm(x, (h, c))


def torch_lstm_misread(order="ifgo", fixed_at_one="", without_bias_hh=False):
    """What torch.nn.LSTMCell gives, (h', c'), with its weights misread: the gates' rows taken in another
    order, the gates named in fixed_at_one equal to 1 (a bias of 50: its sigmoid is 1 in float32), or no bias_hh."""
    H, position = torch_lstm.hidden_size, "ifgo".index
    rows = torch.cat([torch.arange(position(gate) * H, (position(gate) + 1) * H) for gate in order])
    weights = {name: value.detach()[rows] for name, value in torch_lstm.named_parameters()}
    for gate in fixed_at_one:
        weights["bias_hh"][position(gate) * H:(position(gate) + 1) * H] += 50.0
    if without_bias_hh:
        weights["bias_hh"] = torch.zeros_like(weights["bias_hh"])
    return torch.func.functional_call(torch_lstm, weights, (x, (h, c)))


mistakes = {
    "the input and forget gates are swapped (PyTorch stacks the rows i, f, g, o)": torch_lstm_misread("figo"),
    "the candidate and the output gate are swapped (the rows read as i, f, o, g, CS231n's order)": torch_lstm_misread("ifog"),
    "the new cell state does not use the forget gate (c' = c + i * g)": torch_lstm_misread(fixed_at_one="f"),
    "the candidate is not multiplied by the input gate (c' = f * c + g)": torch_lstm_misread(fixed_at_one="i"),
    "h' does not use the output gate (h' = tanh(c'))": torch_lstm_misread(fixed_at_one="o"),
    "bias_hh is left out": torch_lstm_misread(without_bias_hh=True),
}
mistakes["h' and c' are returned the other way round"] = (expected_c, expected_h)
hint = "i, f and o go through a sigmoid, g through a tanh; c' = f * c + i * g; h' = o * tanh(c')"
check_close(got[1], expected_c, "c' of lstm_cell vs torch.nn.LSTMCell with the same weights", hint=hint,
            mistakes={cause: wrong[1] for cause, wrong in mistakes.items()})
check_close(got[0], expected_h, "h' of lstm_cell vs torch.nn.LSTMCell with the same weights", hint=hint,
            mistakes={cause: wrong[0] for cause, wrong in mistakes.items()})
print("Exercise 3: visible tests passed.")
### BEGIN HIDDEN TESTS
# The same check on the grader's own weights and inputs, without PyTorch's own LSTM; the grader compares
# the result with the reference's.
from course.checks import forbidden_calls, report

generator = torch.Generator().manual_seed(30)
weights = [torch.randn(12, 4, generator=generator), torch.randn(12, 3, generator=generator),
           torch.randn(12, generator=generator), torch.randn(12, generator=generator)]
x = torch.randn(2, 4, generator=generator)
h, c = torch.randn(2, 3, generator=generator), torch.randn(2, 3, generator=generator)
with forbidden_calls((torch, "lstm_cell"), (torch, "lstm"), (torch.nn, "LSTMCell"), (torch.nn, "LSTM"),
                     (torch.nn.LSTMCell, "forward"), (torch.nn.LSTM, "forward")):
    h_next, c_next = lstm_cell(x, h, c, *weights)
report("lstm_cell/visible/h", h_next)
report("lstm_cell/visible/c", c_next)
### END HIDDEN TESTS

# %% tests="lstm_cell_hidden" points=3
# Hidden tests, run when the notebook is graded: random sizes, float64, a run of many steps with the
# forget gate held open (errors would be carried along the sequence), and no call to PyTorch's own LSTM.
### BEGIN HIDDEN TESTS
from course.checks import forbidden_calls, report

def seeded_lstm_weights(inputs, hidden, generator, dtype):
    """weight_ih (4H, I), weight_hh (4H, H), bias_ih, bias_hh (4H,), scaled as torch.nn.LSTMCell initialises them."""
    scale = hidden ** -0.5
    return (scale * torch.randn(4 * hidden, inputs, generator=generator, dtype=dtype),
            scale * torch.randn(4 * hidden, hidden, generator=generator, dtype=dtype),
            scale * torch.randn(4 * hidden, generator=generator, dtype=dtype),
            scale * torch.randn(4 * hidden, generator=generator, dtype=dtype))

generator = torch.Generator().manual_seed(31)
for dtype in (torch.float32, torch.float64):
    for batch, inputs, hidden in [(1, 1, 1), (5, 3, 8), (7, 16, 4)]:
        weights = seeded_lstm_weights(inputs, hidden, generator, dtype)
        x = torch.randn(batch, inputs, generator=generator, dtype=dtype)
        h = torch.randn(batch, hidden, generator=generator, dtype=dtype)
        c = torch.randn(batch, hidden, generator=generator, dtype=dtype)
        with forbidden_calls((torch, "lstm_cell"), (torch, "lstm"), (torch.nn, "LSTMCell"), (torch.nn, "LSTM"),
                             (torch.nn.LSTMCell, "forward"), (torch.nn.LSTM, "forward")):
            h_next, c_next = lstm_cell(x, h, c, *weights)
        case = f"{dtype}/B={batch} I={inputs} H={hidden}"
        report(f"lstm_cell/hidden/{case}/h", h_next)
        report(f"lstm_cell/hidden/{case}/c", c_next)

# Thirty steps, fed back into itself, with the forget gate's bias raised by 3 (as in chapter 1): the cell
# state carries what it holds along the sequence, and would carry an error too.
weight_ih, weight_hh, bias_ih, bias_hh = seeded_lstm_weights(3, 5, generator, torch.float64)
bias_hh[5:10] += 3.0  # the rows of f
inputs = torch.randn(2, 30, 3, generator=generator, dtype=torch.float64)
h, c = torch.zeros(2, 5, dtype=torch.float64), torch.zeros(2, 5, dtype=torch.float64)
for t in range(30):
    h, c = lstm_cell(inputs[:, t], h, c, weight_ih, weight_hh, bias_ih, bias_hh)
report("lstm_cell/hidden/30_steps/h", h, atol=1e-10, rtol=1e-8)
report("lstm_cell/hidden/30_steps/c", c, atol=1e-10, rtol=1e-8)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 4: why the keep gate carries the gradient (2 points, graded by your instructor)
#
# Chapter 1's figure "How far back the gradient of the last state reaches" (section *How far back does
# a gradient reach?*) measures, for each cell, the norm of the gradient of the last state with respect to
# the input $T - t$ steps back, relative to its value one step back. Read it, and the numbers printed
# under it, then answer in a few sentences, from the equations of the cell you wrote in exercise 3:
#
# 1. At distance 30 and beyond, the plain RNN's gradient is vanishingly small while the LSTM whose
#    forget-gate bias was raised by 3 keeps a sizeable fraction of it. What does the gradient pass
#    through on its way back one step in each cell ($h_{t-1} \to h_t$ for the RNN, $c_{t-1} \to c_t$ for
#    the LSTM), and why does that make one product of 30 factors vanish and not the other?
# 2. The same LSTM at PyTorch's initialisation (forget-gate bias not raised) loses its gradient too.
#    What does that say about where the LSTM's advantage comes from, and what did it change on the
#    chapter's memory task (the class given at the first of 40 steps)?

# %% [markdown] answer="keep_gate_gradient" points=2
# ### BEGIN SOLUTION
# **Model answer.** One step back, the plain RNN's gradient is multiplied by
# $\partial h_t / \partial h_{t-1} = \mathrm{diag}(1 - h_t^2)\, W_{hh}$: a weight matrix and the slope of
# $\tanh$ (at most 1) every step. At initialisation these factors shrink vectors, so over 30 steps the
# product shrinks geometrically: the chapter measures at most 1e-08 of the distance-1 gradient at distance
# 30 and beyond (the lines printed just above the figure, and the text after it). In the LSTM, $c_t = f \odot
# c_{t-1} + i \odot g$, so along the cell state $\partial c_t / \partial c_{t-1} = \mathrm{diag}(f)$: no
# weight matrix, no $\tanh$, only the forget gate. With its bias raised by 3, $f \approx \sigma(3) = 0.95$
# (the chapter's comment), and a product of 30 such factors is about $0.95^{30} \approx 0.2$ (arithmetic):
# the measured gradient stays at least 0.04 of its distance-1 value. At PyTorch's initialisation $f \approx
# \sigma(0) = 1/2$, and $(1/2)^{30}$ is about $10^{-9}$ (arithmetic): the measured gradient is at most
# 8e-07, only about 47 times the plain RNN's at distance 30. So the advantage is not the LSTM's
# architecture alone but a gate whose keeping is a parameter: set near 1, the path carries the gradient.
# On the memory task this is the difference between learning and not: with the bias raised the GRU and
# LSTM classify at least 99.7 % of the test sequences on every seed, the LSTM at PyTorch's initialisation
# stays within 2 % of chance (25 %).
#
# **Rubric (2 points).**
# - 1 point: the mechanism, from the equations: the RNN's step Jacobian contains $W_{hh}$ and $\tanh'$ and
#   the product of 30 of them shrinks geometrically, while the cell state's step is multiplied by $f$ alone
#   (no weight matrix, no $\tanh$), so with $f$ near 1 the product of 30 factors stays sizeable; the
#   measured values (RNN at most about 1e-08, LSTM with the raised bias at least about 0.04) are quoted
#   from the chapter.
# - 1 point: the default-initialisation LSTM explained by the same product ($f \approx 1/2$ per step, so
#   it vanishes too), the conclusion that the advantage lies in the gate's bias (a setting, learned),
#   not in gating as such, and its effect on the memory task (near chance against almost always right).
# - 0 points for a part that only restates the figure ("the LSTM has memory") without the product of
#   factors, or that quotes numbers the chapter does not show.
# ### END SOLUTION
