"""Recurrent sequence-to-sequence models: the reference implementations of chapters 1 and 2.

    rnn_cell, gru_cell, lstm_cell
                                 one step of a recurrent cell, from scratch (chapter 1)
    RNNCell, GRUCell, LSTMCell   the same as modules, parameter names as in torch.nn
    open_gates, gradient_by_distance, relative_gradients, first_vector_task, LastStateClassifier,
    train_memory_task
                                 chapter 1: how far back a gradient reaches, and a task that needs it to
    Encoder                      bidirectional GRU over the source: one state per source token
    FixedContextDecoder          chapter 1: every step sees the same context vector
    additive_scores, attention_weights, BahdanauAttention
                                 chapter 2: v^T tanh(W_q s + W_k h_j), softmax over real positions
    AttentionDecoder             chapter 2: a fresh context vector at every step
    greedy_search                the decoding loop shared by every model of the course
    Seq2Seq                      encoder + decoder behind the course's model interface

The model interface, shared with chapter 6's transformer:

    model(src, src_lengths, tgt_in) -> logits (B, T, V)                 teacher forcing
    model.greedy_decode(src, src_lengths, max_len) -> (B, <= max_len)   generation; stops at EOS

Shapes: B batch, S source length, T target length, E embedding width, H decoder state width,
C = context width (the encoder state width), A attention width, V vocabulary size.
"""

import math
from typing import NamedTuple

import course

import torch
import torch.nn as nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from course.attention import masked_softmax, padding_mask
from course.seq2seq_data import BOS, EOS, PAD

# ----------------------------------------------------------------------------------------------
# Cells, from scratch


def rnn_cell(x, h, weight_ih, weight_hh, bias_ih=None, bias_hh=None):
    """Elman cell: h' = tanh(W_ih x + b_ih + W_hh h + b_hh), the computation of torch.nn.RNNCell.

    x (B, I), h (B, H), weight_ih (H, I), weight_hh (H, H), biases (H,) or None -> h' (B, H).
    """
    pre_activation = torch.nn.functional.linear(x, weight_ih, bias_ih) + torch.nn.functional.linear(h, weight_hh, bias_hh)
    return torch.tanh(pre_activation)


def gru_cell(x, h, weight_ih, weight_hh, bias_ih, bias_hh):
    """Gated recurrent unit, the computation of torch.nn.GRUCell (gates stacked in the order r, z, n).

    r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)          reset gate: how much of h the candidate sees
    z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)          update gate: how much of h is kept
    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))        candidate state
    h' = (1 - z) * n + z * h

    x (B, I), h (B, H), weight_ih (3H, I), weight_hh (3H, H), biases (3H,) -> h' (B, H).
    """
    from_input = x @ weight_ih.T + bias_ih  # (B, 3H)
    from_state = h @ weight_hh.T + bias_hh  # (B, 3H)
    input_r, input_z, input_n = from_input.chunk(3, dim=-1)  # three (B, H)
    state_r, state_z, state_n = from_state.chunk(3, dim=-1)
    reset = torch.sigmoid(input_r + state_r)
    update = torch.sigmoid(input_z + state_z)
    candidate = torch.tanh(input_n + reset * state_n)
    return (1 - update) * candidate + update * h


class RNNCell(nn.Module):
    """:func:`rnn_cell` with its parameters, named and initialised as in torch.nn.RNNCell."""

    gates = 1

    def __init__(self, input_size: int, hidden_size: int):
        super().__init__()
        self.input_size, self.hidden_size = input_size, hidden_size
        self.weight_ih = nn.Parameter(torch.empty(self.gates * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(self.gates * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(self.gates * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(self.gates * hidden_size))
        bound = 1 / math.sqrt(hidden_size)  # PyTorch's initialisation: uniform in +-1/sqrt(H)
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -bound, bound)

    def forward(self, x, h=None):
        h = x.new_zeros(x.shape[0], self.hidden_size) if h is None else h
        return rnn_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


class GRUCell(RNNCell):
    """:func:`gru_cell` with its parameters, named and initialised as in torch.nn.GRUCell."""

    gates = 3

    def forward(self, x, h=None):
        h = x.new_zeros(x.shape[0], self.hidden_size) if h is None else h
        return gru_cell(x, h, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


def lstm_cell(x, h, c, weight_ih, weight_hh, bias_ih, bias_hh):
    """Long short-term memory, the computation of torch.nn.LSTMCell (gates stacked in the order i, f, g, o).

    i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)          input gate: how much of the candidate is written
    f = sigmoid(W_if x + b_if + W_hf h + b_hf)          forget gate: how much of the cell state c is kept
    g = tanh(W_ig x + b_ig + W_hg h + b_hg)             candidate
    o = sigmoid(W_io x + b_io + W_ho h + b_ho)          output gate: how much of the cell state is shown
    c' = f * c + i * g
    h' = o * tanh(c')

    x (B, I), h (B, H), c (B, H), weight_ih (4H, I), weight_hh (4H, H), biases (4H,) -> h' (B, H), c' (B, H).
    """
    pre_activation = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh  # (B, 4H)
    i, f, g, o = pre_activation.chunk(4, dim=-1)  # four (B, H)
    i, f, g, o = torch.sigmoid(i), torch.sigmoid(f), torch.tanh(g), torch.sigmoid(o)
    c_next = f * c + i * g  # the cell state: kept where f is near 1, written where i is
    return o * torch.tanh(c_next), c_next


class LSTMCell(RNNCell):
    """:func:`lstm_cell` with its parameters, named and initialised as in torch.nn.LSTMCell.

    Like torch.nn.LSTMCell it takes and returns the state as a pair: ``cell(x, (h, c)) -> (h', c')``.
    """

    gates = 4

    def forward(self, x, state=None):
        if state is None:
            zeros = x.new_zeros(x.shape[0], self.hidden_size)
            state = (zeros, zeros)
        return lstm_cell(x, *state, self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh)


def run_cell(cell, inputs, h0=None):
    """Apply a cell along time: inputs (B, T, I) -> all states (B, T, H). The recurrence is a plain loop."""
    h = h0
    states = []
    for t in range(inputs.shape[1]):
        h = cell(inputs[:, t], h)
        states.append(h)
    return torch.stack(states, dim=1)


# ----------------------------------------------------------------------------------------------
# How far back a gradient reaches (chapter 1)


def open_gates(recurrent: nn.Module, bias: float) -> nn.Module:
    """Add ``bias`` to the gate that keeps the state: the LSTM's forget gate f, the GRU's update gate z.

    Both are the second of the stacked gates (i, f, g, o and r, z, n), so rows H..2H of ``bias_hh``
    (``bias_hh_l0`` in torch.nn.LSTM and torch.nn.GRU). At bias b the gate starts near sigmoid(b)
    instead of sigmoid(0) = 1/2. Returns ``recurrent``, changed in place.
    """
    name = "bias_hh" if hasattr(recurrent, "bias_hh") else "bias_hh_l0"
    with torch.no_grad():
        getattr(recurrent, name)[recurrent.hidden_size:2 * recurrent.hidden_size] += bias
    return recurrent


RECURRENT = {"rnn": nn.RNN, "gru": nn.GRU, "lstm": nn.LSTM}  # tanh RNN and the two gated cells, C++ loops


def gradient_by_distance(recurrent: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """How much the last state depends on each input: (T,) where entry d is the norm of
    d(sum of h_T) / d x_{T-d}, averaged over the batch (d = 0 is the last input).

    recurrent: a batch_first torch.nn.RNN, GRU or LSTM; inputs (B, T, I). Sequences of a batch do not
    interact, so one backward pass of the sum over the batch gives each sequence's own gradient.
    """
    inputs = inputs.detach().clone().requires_grad_()
    states = recurrent(inputs)[0]  # (B, T, H)
    states[:, -1].sum().backward()
    return inputs.grad.norm(dim=-1).mean(dim=0).flip(0)  # (T,), index = distance T - t


def relative_gradients(cell: str, seed_offset: int = 0, gate_bias: float = 0.0, length: int = 60,
                       batch_size: int = 64, input_size: int = 8, hidden_size: int = 32) -> torch.Tensor:
    """:func:`gradient_by_distance` of a freshly initialised ``cell`` (``"rnn"``, ``"gru"``, ``"lstm"``),
    divided by its value at distance 1: (length,), entry 1 equal to 1.

    Weights from ``course.training_setup(seed_offset)`` (PyTorch's initialisation, then
    :func:`open_gates` with ``gate_bias`` for a gated cell); inputs N(0, 1) from the same seed.
    """
    seed = course.training_setup(seed_offset)
    recurrent = RECURRENT[cell](input_size, hidden_size, batch_first=True)
    if gate_bias:
        open_gates(recurrent, gate_bias)
    inputs = torch.randn(batch_size, length, input_size, generator=torch.Generator().manual_seed(seed))
    gradients = gradient_by_distance(recurrent, inputs)
    return gradients / gradients[1]


# The task whose answer lies at the far end of the sequence, and the budget every cell gets for it.
MEMORY_TASK = dict(length=40, classes=4, input_size=8, signal=3.0)
MEMORY_TRAINING = dict(steps=300, batch_size=32, lr=1e-2, hidden_size=32, test_size=1000)
MEMORY_TEST_SEED = 12_345  # the test sequences: the same for every cell and every seed


def first_vector_task(batch_size: int, length: int, classes: int, input_size: int, signal: float,
                      generator: torch.Generator):
    """Sequences whose class is written in their first vector only; the other length - 1 vectors are noise.

    The first vector is ``signal`` times the one-hot code of the class (in its first ``classes``
    entries, zeros elsewhere); every later vector is N(0, 1) in every entry, the class entries
    included, so no fixed input weight can filter the noise out without filtering out the class.
    -> inputs (B, T, I), labels (B,) long.
    """
    labels = torch.randint(0, classes, (batch_size,), generator=generator)
    inputs = torch.randn(batch_size, length, input_size, generator=generator)
    inputs[:, 0] = 0.0
    inputs[torch.arange(batch_size), 0, labels] = signal
    return inputs, labels


class LastStateClassifier(nn.Module):
    """A recurrent layer (``"rnn"``, ``"gru"`` or ``"lstm"``) read only at its last state, then a linear layer to class scores.

    ``gate_bias`` is passed to :func:`open_gates` (gated cells only; 0 is PyTorch's initialisation).
    """

    def __init__(self, cell: str, input_size: int, hidden_size: int, classes: int, gate_bias: float = 0.0):
        super().__init__()
        self.rnn = RECURRENT[cell](input_size, hidden_size, batch_first=True)
        if gate_bias:
            if cell == "rnn":
                raise ValueError("a plain RNN has no gate to open")
            open_gates(self.rnn, gate_bias)
        self.output = nn.Linear(hidden_size, classes)

    def forward(self, inputs: torch.Tensor) -> torch.Tensor:
        """inputs (B, T, I) -> class scores (B, classes), from h_T alone."""
        return self.output(self.rnn(inputs)[0][:, -1])


def train_memory_task(cell: str, seed_offset: int = 0, gate_bias: float = 0.0, task: dict | None = None,
                      training: dict | None = None) -> dict:
    """Train a :class:`LastStateClassifier` on :func:`first_vector_task` for a fixed number of steps.

    Seeded by ``course.training_setup(seed_offset)`` (its weights, and the training batches, from
    ``course.SEED + seed_offset``; ``course.TRAIN_THREADS`` threads); Adam, gradient norm clipped to 1.
    The test set is the same for every run. Returns dict(cell, seed, gate_bias, accuracy, loss, model).
    """
    task, training = dict(MEMORY_TASK, **(task or {})), dict(MEMORY_TRAINING, **(training or {}))
    seed = course.training_setup(seed_offset)
    model = LastStateClassifier(cell, task["input_size"], training["hidden_size"], task["classes"], gate_bias)
    optimiser = torch.optim.Adam(model.parameters(), lr=training["lr"])
    generator = torch.Generator().manual_seed(seed)
    for _ in range(training["steps"]):
        inputs, labels = first_vector_task(training["batch_size"], generator=generator, **task)
        loss = nn.functional.cross_entropy(model(inputs), labels)
        optimiser.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimiser.step()
    inputs, labels = first_vector_task(training["test_size"], generator=torch.Generator().manual_seed(MEMORY_TEST_SEED), **task)
    with torch.no_grad():
        accuracy = (model(inputs).argmax(dim=-1) == labels).float().mean().item()
    return dict(cell=cell, seed=seed, gate_bias=gate_bias, accuracy=accuracy, loss=loss.item(), model=model)


# ----------------------------------------------------------------------------------------------
# Encoder


class EncoderOutput(NamedTuple):
    states: torch.Tensor  # (B, S, C) one state per source position, zeros at padding
    final: torch.Tensor  # (B, C) summary of the whole source: last forward state | last backward state
    mask: torch.Tensor  # (B, 1, S) bool, True at real source positions


class Encoder(nn.Module):
    """Embedding + bidirectional GRU. State j sees the source left of j (forward half) and right of j (backward half).

    ``torch.nn.GRU`` runs the same recurrence as a loop of :func:`gru_cell`, in C++. The source is
    *packed* so that the backward direction starts at each sequence's last real token, not at its padding.
    """

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.rnn = nn.GRU(embed_dim, hidden_size, batch_first=True, bidirectional=True)
        self.output_size = 2 * hidden_size

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor) -> EncoderOutput:
        embedded = self.embedding(src)  # (B, S, E)
        packed = pack_padded_sequence(embedded, src_lengths.cpu(), batch_first=True, enforce_sorted=False)
        packed_states, last = self.rnn(packed)  # last: (2 directions, B, C/2)
        states, _ = pad_packed_sequence(packed_states, batch_first=True, total_length=src.shape[1])  # (B, S, C)
        final = torch.cat([last[0], last[1]], dim=-1)  # (B, C)
        return EncoderOutput(states, final, padding_mask(src_lengths.to(src.device), src.shape[1]))


# ----------------------------------------------------------------------------------------------
# Decoder initialisation


class DecoderInit(nn.Module):
    """The decoder's first state s_0 from the encoder's summary (B, C) -> (B, H).

    ``"zeros"``: s_0 = 0, the decoder learns everything from the context it is fed;
    ``"final"``: s_0 = the encoder's final state itself (needs H == C);
    ``"learned"``: s_0 = tanh(W_init · final + b); Bahdanau et al. (2015) project only the backward
    encoder's state at the first position (half of ``final``) this way.
    """

    def __init__(self, mode: str, context_size: int, hidden_size: int):
        super().__init__()
        if mode not in ("zeros", "final", "learned"):
            raise ValueError(f"decoder init must be 'zeros', 'final' or 'learned', not {mode!r}")
        if mode == "final" and context_size != hidden_size:
            raise ValueError(f"init='final' needs hidden_size == context size, got {hidden_size} and {context_size}")
        self.mode, self.hidden_size = mode, hidden_size
        self.projection = nn.Linear(context_size, hidden_size) if mode == "learned" else None

    def forward(self, final: torch.Tensor) -> torch.Tensor:
        if self.mode == "zeros":
            return final.new_zeros(final.shape[0], self.hidden_size)
        if self.mode == "final":
            return final
        return torch.tanh(self.projection(final))


# ----------------------------------------------------------------------------------------------
# Chapter 1: the fixed-context decoder


class FixedContextState(NamedTuple):
    hidden: torch.Tensor  # (B, H)
    context: torch.Tensor  # (B, C) the same at every step


class FixedContextDecoder(nn.Module):
    """s_t = GRU([embed(y_{t-1}); c], s_{t-1}) and logits_t = W_out [s_t; c], with one context c = encoder's final state."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, context_size: int, init: str = "learned"):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.rnn = nn.GRU(embed_dim + context_size, hidden_size, batch_first=True)
        self.output = nn.Linear(hidden_size + context_size, vocab_size)
        self.init_state = DecoderInit(init, context_size, hidden_size)

    def start(self, encoded: EncoderOutput) -> FixedContextState:
        return FixedContextState(self.init_state(encoded.final), encoded.final)

    def step(self, prev_tokens: torch.Tensor, state: FixedContextState):
        """prev_tokens (B,) -> logits (B, V) for the next token, and the new state."""
        rnn_input = torch.cat([self.embedding(prev_tokens), state.context], dim=-1)  # (B, E + C)
        output, hidden = self.rnn(rnn_input[:, None], state.hidden[None])  # (B, 1, H), (1, B, H)
        logits = self.output(torch.cat([output[:, 0], state.context], dim=-1))  # (B, V)
        return logits, FixedContextState(hidden[0], state.context)

    def forward(self, tgt_in: torch.Tensor, encoded: EncoderOutput) -> torch.Tensor:
        """Teacher forcing: every step reads the true previous token, so all T steps run in one GRU call."""
        state = self.start(encoded)
        T = tgt_in.shape[1]
        context = state.context[:, None].expand(-1, T, -1)  # (B, T, C): the same c at every step
        rnn_input = torch.cat([self.embedding(tgt_in), context], dim=-1)  # (B, T, E + C)
        outputs, _ = self.rnn(rnn_input, state.hidden[None])  # (B, T, H)
        return self.output(torch.cat([outputs, context], dim=-1))  # (B, T, V)


# ----------------------------------------------------------------------------------------------
# Chapter 2: Bahdanau (additive) attention


def additive_scores(query, encoder_states, query_weight, key_weight, score_weight):
    """e_j = v^T tanh(W_q s + W_k h_j) for every encoder position j.

    query (B, H), encoder_states (B, S, C), query_weight W_q (A, H), key_weight W_k (A, C),
    score_weight v (A,) -> scores (B, S).
    """
    projected_query = torch.einsum("ah,bh->ba", query_weight, query)  # (B, A)
    projected_keys = torch.einsum("ac,bsc->bsa", key_weight, encoder_states)  # (B, S, A)
    return torch.tanh(projected_query[:, None, :] + projected_keys) @ score_weight  # (B, S)


def attention_weights(scores, src_lengths):
    """Softmax over the real source positions: scores (B, S), lengths (B,) -> weights (B, S), zero at padding."""
    real = padding_mask(src_lengths.to(scores.device), scores.shape[-1])[:, 0, :]  # (B, S)
    return masked_softmax(scores, real, dim=-1)


class BahdanauAttention(nn.Module):
    """Additive attention: weights alpha = softmax_j(v^T tanh(W_q s + W_k h_j)), context = sum_j alpha_j h_j."""

    def __init__(self, query_size: int, key_size: int, attention_size: int):
        super().__init__()
        self.query_projection = nn.Linear(query_size, attention_size, bias=False)  # W_q
        self.key_projection = nn.Linear(key_size, attention_size, bias=False)  # W_k
        self.score = nn.Linear(attention_size, 1, bias=False)  # v

    def project_keys(self, encoder_states: torch.Tensor) -> torch.Tensor:
        """W_k h_j for every j, (B, S, C) -> (B, S, A): it does not depend on the step, so it is computed once."""
        return self.key_projection(encoder_states)

    def forward(self, query, encoder_states, mask, projected_keys=None):
        """query (B, H), encoder_states (B, S, C), mask (B, 1, S) -> context (B, C), weights (B, S)."""
        if projected_keys is None:
            projected_keys = self.project_keys(encoder_states)
        scores = self.score(torch.tanh(self.query_projection(query)[:, None, :] + projected_keys))[..., 0]  # (B, S)
        weights = masked_softmax(scores, mask[:, 0, :], dim=-1)  # (B, S), exactly 0 at padding
        context = (weights[:, None, :] @ encoder_states)[:, 0, :]  # (B, 1, S) @ (B, S, C) -> (B, C)
        return context, weights


class AttentionState(NamedTuple):
    hidden: torch.Tensor  # (B, H)
    encoder_states: torch.Tensor  # (B, S, C)
    projected_keys: torch.Tensor  # (B, S, A)
    mask: torch.Tensor  # (B, 1, S)
    weights: torch.Tensor | None = None  # (B, S) the attention weights of the last step


class AttentionDecoder(nn.Module):
    """Bahdanau's decoder: at step t, c_t = attention(s_{t-1}, h_1..h_S); s_t = GRU([embed(y_{t-1}); c_t], s_{t-1});
    logits_t = W_out [s_t; c_t]."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden_size: int, context_size: int,
                 attention_size: int = 64, init: str = "learned"):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, embed_dim, padding_idx=PAD)
        self.attention = BahdanauAttention(hidden_size, context_size, attention_size)
        self.cell = nn.GRUCell(embed_dim + context_size, hidden_size)
        self.output = nn.Linear(hidden_size + context_size, vocab_size)
        self.init_state = DecoderInit(init, context_size, hidden_size)

    def start(self, encoded: EncoderOutput) -> AttentionState:
        keys = self.attention.project_keys(encoded.states)
        return AttentionState(self.init_state(encoded.final), encoded.states, keys, encoded.mask)

    def step(self, prev_tokens: torch.Tensor, state: AttentionState):
        """prev_tokens (B,) -> logits (B, V), and the new state (which carries this step's weights (B, S))."""
        context, weights = self.attention(state.hidden, state.encoder_states, state.mask, state.projected_keys)
        hidden = self.cell(torch.cat([self.embedding(prev_tokens), context], dim=-1), state.hidden)  # (B, H)
        logits = self.output(torch.cat([hidden, context], dim=-1))  # (B, V)
        return logits, state._replace(hidden=hidden, weights=weights)

    def forward(self, tgt_in: torch.Tensor, encoded: EncoderOutput) -> torch.Tensor:
        """Teacher forcing. The context of step t depends on s_{t-1}, so the steps run one after another."""
        state = self.start(encoded)
        all_logits = []
        for t in range(tgt_in.shape[1]):
            logits, state = self.step(tgt_in[:, t], state)
            all_logits.append(logits)
        return torch.stack(all_logits, dim=1)  # (B, T, V)


def attention_decoder_step(decoder: AttentionDecoder, prev_tokens, hidden, encoder_states, src_lengths):
    """One step of ``decoder`` from its pieces: -> logits (B, V), new hidden (B, H), weights (B, S).

    The functional form of :meth:`AttentionDecoder.step` used by chapter 2's exercise.
    """
    mask = padding_mask(src_lengths.to(encoder_states.device), encoder_states.shape[1])
    state = AttentionState(hidden, encoder_states, decoder.attention.project_keys(encoder_states), mask)
    logits, state = decoder.step(prev_tokens, state)
    return logits, state.hidden, state.weights


# ----------------------------------------------------------------------------------------------
# Decoding and the model


def greedy_search(step, state, batch_size: int, max_len: int, device=None) -> torch.Tensor:
    """Feed BOS, then always the most likely token, until every sequence has produced EOS (or max_len steps).

    ``step(prev_tokens (B,), state) -> (logits (B, V), state)``. Returns (B, <= max_len) token ids,
    without the BOS; EOS is kept where it was produced and everything after it is PAD.
    """
    prev_tokens = torch.full((batch_size,), BOS, dtype=torch.long, device=device)
    finished = torch.zeros(batch_size, dtype=torch.bool, device=device)
    outputs = []
    for _ in range(max_len):
        logits, state = step(prev_tokens, state)
        prev_tokens = logits.argmax(dim=-1).masked_fill(finished, PAD)  # (B,)
        outputs.append(prev_tokens)
        finished = finished | (prev_tokens == EOS)
        if finished.all():
            break
    return torch.stack(outputs, dim=1) if outputs else torch.zeros(batch_size, 0, dtype=torch.long, device=device)


class Seq2Seq(nn.Module):
    """An encoder and a decoder behind the course's model interface (see the module docstring)."""

    def __init__(self, encoder: Encoder, decoder: nn.Module):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        """src (B, S), src_lengths (B,), tgt_in (B, T) -> logits (B, T, V)."""
        return self.decoder(tgt_in, self.encoder(src, src_lengths))

    @torch.no_grad()
    def greedy_decode(self, src, src_lengths, max_len: int, return_attention: bool = False):
        """-> tokens (B, <= max_len), and with ``return_attention=True`` also the weights (B, T_out, S)
        of every step (attention decoders only)."""
        state = self.decoder.start(self.encoder(src, src_lengths))
        recorded = []

        def step(prev_tokens, state):
            logits, state = self.decoder.step(prev_tokens, state)
            if return_attention:
                recorded.append(state.weights)
            return logits, state

        tokens = greedy_search(step, state, src.shape[0], max_len, src.device)
        if not return_attention:
            return tokens
        if not recorded or recorded[0] is None:
            raise ValueError("this decoder has no attention weights to return")
        return tokens, torch.stack(recorded, dim=1)  # (B, T_out, S)


def fixed_context_model(source_vocab_size: int, target_vocab_size: int, embed_dim: int = 32,
                        hidden_size: int = 128, init: str = "learned") -> Seq2Seq:
    """Chapter 1's model. The encoder has hidden_size // 2 units per direction, so C == H == hidden_size."""
    encoder = Encoder(source_vocab_size, embed_dim, hidden_size // 2)
    decoder = FixedContextDecoder(target_vocab_size, embed_dim, hidden_size, encoder.output_size, init)
    return Seq2Seq(encoder, decoder)


def attention_model(source_vocab_size: int, target_vocab_size: int, embed_dim: int = 32, hidden_size: int = 128,
                    attention_size: int = 64, init: str = "learned") -> Seq2Seq:
    """Chapter 2's model: the same encoder and sizes as :func:`fixed_context_model`, plus Bahdanau attention."""
    encoder = Encoder(source_vocab_size, embed_dim, hidden_size // 2)
    decoder = AttentionDecoder(target_vocab_size, embed_dim, hidden_size, encoder.output_size, attention_size, init)
    return Seq2Seq(encoder, decoder)
