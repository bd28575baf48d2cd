"""The recurrent models of chapters 1-2: cells equal PyTorch's, attention masks padding and reads the encoder, models learn."""

import pytest
import torch

from course.rnn import (
    AttentionDecoder,
    BahdanauAttention,
    Encoder,
    GRUCell,
    LastStateClassifier,
    LSTMCell,
    RNNCell,
    additive_scores,
    attention_decoder_step,
    attention_model,
    attention_weights,
    first_vector_task,
    fixed_context_model,
    gradient_by_distance,
    greedy_search,
    gru_cell,
    lstm_cell,
    open_gates,
    relative_gradients,
    rnn_cell,
    run_cell,
    train_memory_task,
)
from course.seq2seq_data import EOS, PAD, REVERSAL_VOCAB, make_batch, reversal_pairs
from course.seq2seq_training import exact_match_by_length, sequence_loss, train_seq2seq


def test_rnn_cell_equals_torch_rnn_cell():
    torch.manual_seed(0)
    reference = torch.nn.RNNCell(5, 7)
    x, h = torch.randn(4, 5), torch.randn(4, 7)
    got = rnn_cell(x, h, reference.weight_ih, reference.weight_hh, reference.bias_ih, reference.bias_hh)
    torch.testing.assert_close(got, reference(x, h))
    ours = RNNCell(5, 7)
    ours.load_state_dict(reference.state_dict())
    torch.testing.assert_close(ours(x), reference(x))


def test_gru_cell_equals_torch_gru_cell_and_loops_equal_torch_gru():
    torch.manual_seed(1)
    reference = torch.nn.GRUCell(3, 6)
    x, h = torch.randn(2, 3), torch.randn(2, 6)
    ours = GRUCell(3, 6)
    ours.load_state_dict(reference.state_dict())
    torch.testing.assert_close(ours(x, h), reference(x, h))
    gru = torch.nn.GRU(3, 6, batch_first=True)
    ours.load_state_dict({name[:-3]: value for name, value in gru.state_dict().items()})  # weight_ih_l0 -> weight_ih
    inputs = torch.randn(2, 9, 3)
    torch.testing.assert_close(run_cell(ours, inputs, h), gru(inputs, h[None])[0])


@pytest.mark.parametrize("cell_class", [RNNCell, GRUCell])
def test_cells_pass_gradcheck_in_float64(cell_class):
    torch.manual_seed(2)
    cell = cell_class(3, 4).double()
    x = torch.randn(2, 3, dtype=torch.float64, requires_grad=True)
    h = torch.randn(2, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, h, w: cell_class.forward(cell, x, h) if w is None else cell(x, h), (x, h, None))
    function = gru_cell if cell_class is GRUCell else rnn_cell
    parameters = [p.detach().clone().requires_grad_() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]
    assert torch.autograd.gradcheck(function, (x, h, *parameters))


def test_lstm_cell_equals_torch_lstm_cell_and_loops_equal_torch_lstm():
    torch.manual_seed(4)
    reference = torch.nn.LSTMCell(3, 5)
    x, h, c = torch.randn(2, 3), torch.randn(2, 5), torch.randn(2, 5)
    ours = LSTMCell(3, 5)
    ours.load_state_dict(reference.state_dict())
    for got, expected in zip(ours(x, (h, c)), reference(x, (h, c))):
        torch.testing.assert_close(got, expected)
    for got, expected in zip(ours(x), reference(x)):  # no state: zeros, as in torch
        torch.testing.assert_close(got, expected)
    lstm = torch.nn.LSTM(3, 5, batch_first=True)
    ours.load_state_dict({name[:-3]: value for name, value in lstm.state_dict().items()})
    inputs, state, states = torch.randn(2, 8, 3), (h, c), []
    for t in range(8):
        state = ours(inputs[:, t], state)
        states.append(state[0])
    torch.testing.assert_close(torch.stack(states, dim=1), lstm(inputs, (h[None], c[None]))[0])


def test_lstm_cell_passes_gradcheck_in_float64():
    torch.manual_seed(5)
    cell = LSTMCell(3, 4).double()
    x, h, c = (torch.randn(2, size, dtype=torch.float64, requires_grad=True) for size in (3, 4, 4))
    parameters = [p.detach().clone().requires_grad_() for p in (cell.weight_ih, cell.weight_hh, cell.bias_ih, cell.bias_hh)]
    assert torch.autograd.gradcheck(lstm_cell, (x, h, c, *parameters))


def test_open_gates_raises_the_forget_gate_of_an_lstm_and_the_update_gate_of_a_gru():
    torch.manual_seed(6)
    x, h, c = torch.randn(3, 2), torch.randn(3, 4), torch.randn(3, 4)
    lstm = open_gates(LSTMCell(2, 4), 50.0)  # forget gate 1: c' = c + i * g, whatever the rest
    with torch.no_grad():
        gates = (x @ lstm.weight_ih.T + lstm.bias_ih + h @ lstm.weight_hh.T + lstm.bias_hh).chunk(4, dim=-1)
        _, c_next = lstm(x, (h, c))
    torch.testing.assert_close(c_next, c + torch.sigmoid(gates[0]) * torch.tanh(gates[2]))
    gru = open_gates(GRUCell(2, 4), 50.0)  # update gate 1: the state is copied
    torch.testing.assert_close(gru(x, h), h)
    module = torch.nn.LSTM(2, 4)
    before = module.bias_hh_l0.detach().clone()
    open_gates(module, 3.0)
    torch.testing.assert_close(module.bias_hh_l0 - before, torch.tensor([0.0] * 4 + [3.0] * 4 + [0.0] * 8))


def test_gradient_by_distance_is_the_norm_of_each_inputs_gradient():
    torch.manual_seed(7)
    rnn = torch.nn.GRU(3, 4, batch_first=True)
    inputs = torch.randn(2, 6, 3)
    got = gradient_by_distance(rnn, inputs)
    assert got.shape == (6,)
    for b in range(2):  # one sequence at a time: the batch does not mix them
        single = inputs[b:b + 1].clone().requires_grad_()
        rnn(single)[0][:, -1].sum().backward()
        if b == 0:
            expected = single.grad[0].norm(dim=-1).flip(0) / 2
        else:
            expected = expected + single.grad[0].norm(dim=-1).flip(0) / 2
    torch.testing.assert_close(got, expected)
    ratios = relative_gradients("rnn", length=12, batch_size=4)
    assert ratios.shape == (12,) and ratios[1] == 1.0


def test_gradient_of_a_plain_rnn_vanishes_and_an_open_gate_keeps_it():
    rnn = relative_gradients("rnn", 0, length=40)
    lstm = relative_gradients("lstm", 0, gate_bias=3.0, length=40)
    assert rnn[30:].max() < 1e-5 < 1e-2 < lstm[30:].min()


def test_first_vector_task_writes_the_class_in_the_first_vector_only():
    inputs, labels = first_vector_task(5, 7, 4, 6, 3.0, torch.Generator().manual_seed(0))
    assert inputs.shape == (5, 7, 6) and labels.shape == (5,)
    expected_first = torch.zeros(5, 6)
    expected_first[torch.arange(5), labels] = 3.0
    torch.testing.assert_close(inputs[:, 0], expected_first)
    assert (inputs[:, 1:] != 0).all()  # noise in every entry of every later vector


def test_last_state_classifier_reads_only_the_last_state_and_memory_task_is_seeded():
    model = LastStateClassifier("lstm", 3, 4, 2, gate_bias=1.0)
    inputs = torch.randn(2, 5, 3)
    torch.testing.assert_close(model(inputs), model.output(model.rnn(inputs)[0][:, -1]))
    with pytest.raises(ValueError):
        LastStateClassifier("rnn", 3, 4, 2, gate_bias=1.0)
    short = dict(task=dict(length=6), training=dict(steps=3, test_size=20))
    first, again = train_memory_task("gru", 1, **short), train_memory_task("gru", 1, **short)
    assert first["accuracy"] == again["accuracy"] and first["loss"] == again["loss"]
    assert 0.0 <= first["accuracy"] <= 1.0


def make_encoded(batch=3, source=7, context=8, lengths=(7, 4, 1)):
    torch.manual_seed(3)
    states = torch.randn(batch, source, context)
    return states, torch.tensor(lengths)


def test_additive_scores_equal_the_module():
    attention = BahdanauAttention(5, 8, 6)
    states, lengths = make_encoded()
    query = torch.randn(3, 5)
    scores = additive_scores(query, states, attention.query_projection.weight, attention.key_projection.weight,
                             attention.score.weight[0])
    mask = torch.ones(3, 1, 7, dtype=torch.bool)
    _, weights = attention(query, states, mask)
    torch.testing.assert_close(torch.softmax(scores, dim=-1), weights)


def test_padding_gets_exactly_zero_weight_and_padded_states_do_not_matter():
    attention = BahdanauAttention(5, 8, 6)
    states, lengths = make_encoded()
    query = torch.randn(3, 5)
    mask = torch.arange(7)[None, None, :] < lengths[:, None, None]  # (3, 1, 7)
    context, weights = attention(query, states, mask)
    assert (weights[~mask[:, 0]] == 0).all(), "padded positions must get exactly zero weight"
    torch.testing.assert_close(weights.sum(-1), torch.ones(3))
    scrambled = states.clone()
    scrambled[~mask[:, 0]] = 1e3 * torch.randn_like(scrambled[~mask[:, 0]])
    context_again, weights_again = attention(query, scrambled, mask)
    torch.testing.assert_close(context_again, context)
    torch.testing.assert_close(weights_again, weights)
    scores = torch.randn(3, 7)
    assert (attention_weights(scores, lengths)[~mask[:, 0]] == 0).all()


def test_attention_weights_depend_on_the_encoder_states():
    """The bug of a famous tutorial: 'attention' computed from the decoder alone. Ours reads every h_j."""
    torch.manual_seed(4)
    decoder = AttentionDecoder(vocab_size=9, embed_dim=4, hidden_size=6, context_size=8, attention_size=5)
    states, lengths = make_encoded()
    previous, hidden = torch.tensor([1, 1, 1]), torch.randn(3, 6)
    _, _, weights = attention_decoder_step(decoder, previous, hidden, states, lengths)
    _, _, weights_other = attention_decoder_step(decoder, previous, hidden, torch.randn_like(states), lengths)
    changed = (weights - weights_other).abs().amax(dim=-1)
    assert (changed[lengths > 1] > 1e-3).all(), "the weights must change when the encoder states change"


def test_greedy_search_stops_at_eos_and_pads_after_it():
    # A toy decoder whose state is a step counter: sequence b says EOS at step b + 1.
    def step(previous, counter):
        logits = torch.zeros(3, 5)
        logits[:, 3] = 1.0
        logits[torch.arange(3) <= counter, EOS] = 2.0
        return logits, counter + 1

    tokens = greedy_search(step, 0, batch_size=3, max_len=10)
    assert tokens.tolist() == [[EOS, PAD, PAD], [3, EOS, PAD], [3, 3, EOS]]
    assert greedy_search(step, -100, batch_size=3, max_len=4).shape == (3, 4)


@pytest.mark.parametrize("make_model", [fixed_context_model, attention_model])
@pytest.mark.parametrize("init", ["zeros", "final", "learned"])
def test_model_interface_shapes(make_model, init):
    torch.manual_seed(5)
    model = make_model(len(REVERSAL_VOCAB), len(REVERSAL_VOCAB), embed_dim=8, hidden_size=16, init=init)
    batch = make_batch(reversal_pairs(4, 2, 6, seed=0), REVERSAL_VOCAB, REVERSAL_VOCAB)
    logits = model(batch.src, batch.src_lengths, batch.tgt_in)
    assert logits.shape == (*batch.tgt_in.shape, len(REVERSAL_VOCAB))
    tokens = model.greedy_decode(batch.src, batch.src_lengths, max_len=5)
    assert tokens.dtype == torch.long and tokens.shape[0] == 4 and tokens.shape[1] <= 5
    if make_model is attention_model:
        tokens, weights = model.greedy_decode(batch.src, batch.src_lengths, max_len=5, return_attention=True)
        assert weights.shape == (4, tokens.shape[1], batch.src.shape[1])
        padded = torch.arange(batch.src.shape[1])[None, :] >= batch.src_lengths[:, None]  # (B, S)
        assert (weights.permute(1, 0, 2)[:, padded] == 0).all()


def test_teacher_forcing_and_step_by_step_decoding_agree():
    torch.manual_seed(6)
    for model in (fixed_context_model(len(REVERSAL_VOCAB), len(REVERSAL_VOCAB), 8, 16),
                  attention_model(len(REVERSAL_VOCAB), len(REVERSAL_VOCAB), 8, 16)):
        batch = make_batch(reversal_pairs(3, 2, 7, seed=1), REVERSAL_VOCAB, REVERSAL_VOCAB)
        logits = model(batch.src, batch.src_lengths, batch.tgt_in)
        state = model.decoder.start(model.encoder(batch.src, batch.src_lengths))
        for t in range(batch.tgt_in.shape[1]):
            step_logits, state = model.decoder.step(batch.tgt_in[:, t], state)
            torch.testing.assert_close(step_logits, logits[:, t], atol=1e-5, rtol=1e-4)


def test_encoder_ignores_padding():
    torch.manual_seed(7)
    encoder = Encoder(len(REVERSAL_VOCAB), 8, 6)
    batch = make_batch([("abc", "cba"), ("abcdefg", "gfedcba")], REVERSAL_VOCAB, REVERSAL_VOCAB)
    alone = encoder(batch.src[:1, :3], batch.src_lengths[:1])
    together = encoder(batch.src, batch.src_lengths)
    torch.testing.assert_close(together.final[:1], alone.final)
    torch.testing.assert_close(together.states[:1, :3], alone.states)
    assert (together.states[0, 3:] == 0).all()


def test_a_tiny_model_learns():
    torch.manual_seed(8)
    pairs = reversal_pairs(500, 2, 5, seed=0)
    model = attention_model(len(REVERSAL_VOCAB), len(REVERSAL_VOCAB), embed_dim=16, hidden_size=32)
    history = train_seq2seq(model, pairs, REVERSAL_VOCAB, REVERSAL_VOCAB, steps=60, batch_size=32, lr=1e-2)
    assert len(history["loss"]) == 60 and history["seconds"] > 0
    assert sum(history["loss"][-10:]) / 10 < 0.6 * sum(history["loss"][:3]) / 3
    accuracy = exact_match_by_length(model, pairs[:50], REVERSAL_VOCAB, REVERSAL_VOCAB)
    assert set(accuracy) <= {2, 3, 4, 5} and all(0 <= a <= 1 for a in accuracy.values())


def test_training_evaluates_at_the_requested_steps():
    torch.manual_seed(8)
    pairs = reversal_pairs(200, 2, 5, seed=0)
    model = attention_model(len(REVERSAL_VOCAB), len(REVERSAL_VOCAB), embed_dim=8, hidden_size=16)
    calls = []

    def evaluate(m):
        calls.append(m.training)
        return float(len(calls))

    history = train_seq2seq(model, pairs, REVERSAL_VOCAB, REVERSAL_VOCAB, steps=6, batch_size=8,
                            evaluate=evaluate, evaluate_at=(2, 4))
    assert history["steps"] == 6 and list(history["evaluations"]) == [2, 4, 6]
    assert calls == [False, False, False], "evaluation must run in eval mode"


def test_a_checkpoint_of_a_longer_run_is_the_shorter_run():
    """Without decay, the model after k of n steps is the model trained for k steps: chapter 6 reads
    equal-time results from checkpoints of fixed-step runs."""
    pairs = reversal_pairs(200, 2, 5, seed=0)

    def trained(steps):
        torch.manual_seed(8)
        model = attention_model(len(REVERSAL_VOCAB), len(REVERSAL_VOCAB), embed_dim=8, hidden_size=16)
        snapshots = {}
        train_seq2seq(model, pairs, REVERSAL_VOCAB, REVERSAL_VOCAB, steps=steps, batch_size=8, seed=3,
                      evaluate=lambda m: snapshots.setdefault("w", [p.detach().clone() for p in m.parameters()]) and 0.0,
                      evaluate_at=(4,))
        return snapshots["w"]

    assert all(torch.equal(a, b) for a, b in zip(trained(4), trained(9)))


def test_sequence_loss_ignores_padding():
    logits = torch.randn(2, 3, 5)
    targets = torch.tensor([[3, 4, EOS], [3, EOS, PAD]])
    changed = logits.clone()
    changed[1, 2] = 100 * torch.randn(5)
    assert sequence_loss(logits, targets) == sequence_loss(changed, targets)
