"""course/transformer.py: equal to torch.nn where torch has the same module, and the properties the course claims.

torch.nn masks use the opposite convention to the course (True = masked out), hence the ``~``.
"""

import pytest
import torch
import torch.nn as nn

from course.attention import causal_mask, padding_mask
from course.checks import check_close
from course.transformer import (
    DecoderOnlyTransformer,
    EncoderDecoderTransformer,
    LearnedPositionalEmbedding,
    MultiHeadAttention,
    SelfAttention,
    TransformerDecoderLayer,
    TransformerEncoderLayer,
    load_from_torch,
    merge_heads,
    sinusoidal_positional_encoding,
    split_heads,
    to_torch,
)

B, T, D, H, D_FF = 3, 7, 16, 4, 32
LENGTHS = torch.tensor([7, 4, 1])  # a full row, a padded one, and one with a single real token
TOLERANCE = {torch.float32: dict(atol=1e-5, rtol=1e-4), torch.float64: dict(atol=1e-12, rtol=1e-10)}


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def inputs(*shape, dtype=torch.float32):
    return torch.randn(*shape, dtype=dtype)


# --- multi-head attention against torch.nn.MultiheadAttention ----------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("masking", ["none", "padding", "causal", "both"])
def test_multi_head_self_attention_equals_torch(dtype, masking):
    ours = MultiHeadAttention(D, H).to(dtype)
    theirs = to_torch(ours)
    x = inputs(B, T, D, dtype=dtype)
    keys_ok = padding_mask(LENGTHS, T)  # (B, 1, T)
    mask = {"none": None, "padding": keys_ok, "causal": causal_mask(T), "both": keys_ok & causal_mask(T)}[masking]
    torch_options = {
        "none": {},
        "padding": {"key_padding_mask": ~keys_ok[:, 0]},
        "causal": {"attn_mask": ~causal_mask(T)},
        "both": {"key_padding_mask": ~keys_ok[:, 0], "attn_mask": ~causal_mask(T)},
    }[masking]
    out, weights = ours(x, mask=mask)
    want_out, want_weights = theirs(x, x, x, average_attn_weights=False, **torch_options)
    _, want_average = theirs(x, x, x, average_attn_weights=True, **torch_options)
    assert weights.shape == (B, H, T, T), f"per-head weights should be (B, H, T, T), got {tuple(weights.shape)}"
    check_close(out, want_out, f"outputs, {masking} mask", **TOLERANCE[dtype])
    check_close(weights, want_weights, f"per-head weights, {masking} mask", **TOLERANCE[dtype])
    check_close(weights.mean(dim=1), want_average, f"head-averaged weights, {masking} mask", **TOLERANCE[dtype])


def test_multi_head_cross_attention_equals_torch():
    ours = MultiHeadAttention(D, H)
    theirs = to_torch(ours)
    x, memory = inputs(B, T, D), inputs(B, 5, D)
    memory_ok = padding_mask(torch.tensor([5, 2, 3]), 5)
    out, weights = ours(x, memory, mask=memory_ok)
    want_out, want_weights = theirs(x, memory, memory, key_padding_mask=~memory_ok[:, 0], average_attn_weights=False)
    check_close(out, want_out, "cross-attention outputs")
    check_close(weights, want_weights, "cross-attention weights")
    assert (weights[1, :, :, 2:] == 0).all(), "padded memory positions must get exactly zero weight"


@pytest.mark.parametrize("masking", ["none", "causal", "padding"])
def test_fused_kernel_path_equals_the_teaching_path(masking):
    teaching = MultiHeadAttention(D, H)
    fused = MultiHeadAttention(D, H, fused=True)
    fused.load_state_dict(teaching.state_dict())
    x = inputs(B, T, D)
    mask = {"none": None, "causal": causal_mask(T), "padding": padding_mask(LENGTHS, T)}[masking]
    out, weights = fused(x, mask=mask)
    assert weights is None, "the fused path does not compute the weights"
    check_close(out, teaching(x, mask=mask)[0], f"fused vs teaching path, {masking} mask")
    model = DecoderOnlyTransformer(vocab_size=11, d_model=D, num_heads=H, num_layers=2, max_len=T)
    fused_model = DecoderOnlyTransformer(vocab_size=11, d_model=D, num_heads=H, num_layers=2, max_len=T, fused_attention=True)
    fused_model.load_state_dict(model.state_dict())
    tokens = torch.randint(0, 11, (B, T))
    check_close(fused_model(tokens), model(tokens), "decoder-only model, fused vs teaching attention")


def test_load_from_torch_copies_every_parameter():
    theirs = nn.MultiheadAttention(D, H, batch_first=True)
    ours = load_from_torch(MultiHeadAttention(D, H), theirs)
    x = inputs(B, T, D)
    check_close(ours(x)[0], theirs(x, x, x)[0], "MultiHeadAttention after load_from_torch")


def test_split_and_merge_heads_are_inverse():
    x = inputs(B, T, D)
    heads = split_heads(x, H)
    assert heads.shape == (B, H, T, D // H)
    assert torch.equal(heads[:, 1], x[..., D // H : 2 * D // H]), "head 1 must own columns Dh..2Dh-1"
    assert torch.equal(merge_heads(heads), x)


# --- blocks against torch.nn.TransformerEncoderLayer / TransformerDecoderLayer -------------------


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-LN", "pre-LN"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_encoder_layer_equals_torch(norm_first, dtype):
    theirs = nn.TransformerEncoderLayer(D, H, D_FF, dropout=0.0, batch_first=True, norm_first=norm_first).to(dtype).eval()
    ours = load_from_torch(TransformerEncoderLayer(D, H, D_FF, norm_first=norm_first).to(dtype), theirs)
    x = inputs(B, T, D, dtype=dtype).requires_grad_()  # gradients on: torch's slow path, the reference one
    keys_ok = padding_mask(LENGTHS, T)
    check_close(ours(x), theirs(x), f"encoder layer, norm_first={norm_first}", **TOLERANCE[dtype])
    check_close(ours(x, keys_ok), theirs(x, src_key_padding_mask=~keys_ok[:, 0]), "with padding", **TOLERANCE[dtype])
    causal = causal_mask(T)
    check_close(ours(x, causal), theirs(x, src_mask=~causal, is_causal=True), "with a causal mask", **TOLERANCE[dtype])


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-LN", "pre-LN"])
def test_decoder_layer_equals_torch(norm_first):
    theirs = nn.TransformerDecoderLayer(D, H, D_FF, dropout=0.0, batch_first=True, norm_first=norm_first).eval()
    ours = load_from_torch(TransformerDecoderLayer(D, H, D_FF, norm_first=norm_first), theirs)
    x, memory = inputs(B, T, D), inputs(B, 5, D)
    memory_ok = padding_mask(torch.tensor([5, 3, 1]), 5)
    want = theirs(x, memory, tgt_mask=~causal_mask(T), tgt_is_causal=True, memory_key_padding_mask=~memory_ok[:, 0])
    check_close(ours(x, memory, memory_ok), want, f"decoder layer, norm_first={norm_first}")


def test_to_torch_round_trip_for_encoder_layer():
    ours = TransformerEncoderLayer(D, H, D_FF, norm_first=True)
    theirs = to_torch(ours)
    assert isinstance(theirs, nn.TransformerEncoderLayer) and theirs.norm_first
    x = inputs(B, T, D).requires_grad_()
    check_close(ours(x), theirs(x), "to_torch(encoder layer)")


def test_pre_ln_and_post_ln_differ():
    post = TransformerEncoderLayer(D, H, D_FF, norm_first=False)
    pre = TransformerEncoderLayer(D, H, D_FF, norm_first=True)
    pre.load_state_dict(post.state_dict())
    x = inputs(B, T, D)
    assert not torch.allclose(pre(x), post(x)), "norm_first must change the computation"
    # post-LN ends with a LayerNorm: every output row has mean 0 and variance 1
    check_close(post(x).mean(-1), torch.zeros(B, T), "post-LN output row means", atol=1e-5)


# --- properties -----------------------------------------------------------------------------------


def test_self_attention_is_permutation_equivariant():
    layer = SelfAttention(D)
    x = inputs(B, T, D)
    permutation = torch.randperm(T)
    out, weights = layer(x)
    out_permuted, weights_permuted = layer(x[:, permutation])
    check_close(out_permuted, out[:, permutation], "SelfAttention(x[perm]) vs SelfAttention(x)[perm]")
    check_close(weights_permuted, weights[:, permutation][:, :, permutation], "weights of permuted input")


@pytest.mark.parametrize("layer_kind", ["multi-head", "encoder post-LN", "encoder pre-LN"])
def test_layers_without_positions_are_permutation_equivariant(layer_kind):
    layer = {
        "multi-head": lambda: MultiHeadAttention(D, H),
        "encoder post-LN": lambda: TransformerEncoderLayer(D, H, D_FF, norm_first=False),
        "encoder pre-LN": lambda: TransformerEncoderLayer(D, H, D_FF, norm_first=True),
    }[layer_kind]()
    run = (lambda x: layer(x)[0]) if layer_kind == "multi-head" else layer
    x = inputs(B, T, D)
    permutation = torch.randperm(T)
    check_close(run(x[:, permutation]), run(x)[:, permutation], f"{layer_kind}: f(x[perm]) vs f(x)[perm]")


def test_positional_encoding_breaks_permutation_equivariance():
    layer = SelfAttention(D)
    x = inputs(1, T, D)
    positions = sinusoidal_positional_encoding(T, D)
    permutation = torch.arange(T).flip(0)
    gap = (layer(x[:, permutation] + positions)[0] - layer(x + positions)[0][:, permutation]).abs().max()
    assert gap > 1e-2, f"with positions added, permuting the input should change more than the order (gap {gap:.1e})"


@pytest.mark.parametrize("layer_kind", ["single-head", "multi-head", "encoder layer", "decoder layer", "decoder-only"])
def test_changing_future_tokens_leaves_past_outputs_unchanged(layer_kind):
    cut = 4  # positions 0..3 are the past; 4.. are changed
    memory = inputs(B, 5, D)
    if layer_kind == "decoder-only":
        model = DecoderOnlyTransformer(vocab_size=11, d_model=D, num_heads=H, num_layers=2, max_len=T)
        tokens = torch.randint(0, 11, (B, T))
        changed = tokens.clone()
        changed[:, cut:] = (changed[:, cut:] + 1) % 11
        before, after = model(tokens), model(changed)
    else:
        run = {
            "single-head": lambda x: SelfAttention(D)(x, causal_mask(T))[0],
            "multi-head": lambda x: MultiHeadAttention(D, H)(x, mask=causal_mask(T))[0],
            "encoder layer": lambda x: TransformerEncoderLayer(D, H, D_FF)(x, causal_mask(T)),
            "decoder layer": lambda x: TransformerDecoderLayer(D, H, D_FF)(x, memory),
        }[layer_kind]
        x = inputs(B, T, D)
        changed = x.clone()
        changed[:, cut:] = inputs(B, T - cut, D)
        torch.manual_seed(1)
        before = run(x)
        torch.manual_seed(1)  # the same layer weights for both calls
        after = run(changed)
    check_close(after[:, :cut], before[:, :cut], f"{layer_kind}: outputs before position {cut}")
    assert not torch.allclose(after[:, cut:], before[:, cut:]), "the changed positions' outputs should change"


def test_padded_keys_get_exactly_zero_weight_and_encoder_ignores_padding_content():
    model = EncoderDecoderTransformer(src_vocab_size=13, tgt_vocab_size=9, d_model=D, num_heads=H, num_layers=2, d_ff=D_FF)
    src = torch.randint(3, 13, (2, 6))
    lengths = torch.tensor([6, 3])
    tgt_in = torch.randint(3, 9, (2, 4))
    logits = model(src, lengths, tgt_in)
    for layer in model.encoder:
        assert (layer.attention_weights[1, :, :, 3:] == 0).all(), "padding keys must get zero weight in the encoder"
    for layer in model.decoder:
        assert (layer.cross_attention_weights[1, :, :, 3:] == 0).all(), "padding keys must get zero cross-attention weight"
    other_padding = src.clone()
    other_padding[1, 3:] = 0
    check_close(model(other_padding, lengths, tgt_in)[1], logits[1], "outputs must not depend on what fills the padding")


def test_decoder_output_depends_on_the_encoder_states():
    model = EncoderDecoderTransformer(src_vocab_size=13, tgt_vocab_size=9, d_model=D, num_heads=H, num_layers=1, d_ff=D_FF)
    tgt_in = torch.randint(3, 9, (2, 4))
    lengths = torch.tensor([5, 5])
    a = model(torch.randint(3, 13, (2, 5)), lengths, tgt_in)
    b = model(torch.randint(3, 13, (2, 5)), lengths, tgt_in)
    assert (a - b).abs().max() > 1e-3, "the decoder's output must change when the source changes"


def test_sinusoidal_positional_encoding_values():
    table = sinusoidal_positional_encoding(50, 8)
    assert table.shape == (50, 8) and table.dtype == torch.float32
    t, i = 7, 1  # column 2i = 2 is sin(t / 10000^(2/8)), column 3 the cos
    check_close(table[t, 2], torch.tensor(torch.sin(torch.tensor(t / 10000 ** (2 / 8))).item()), "PE[7, 2]")
    check_close(table[t, 3], torch.tensor(torch.cos(torch.tensor(t / 10000 ** (2 / 8))).item()), "PE[7, 3]")
    check_close(table[0], torch.tensor([0.0, 1.0] * 4), "PE[0] = (sin 0, cos 0, ...)")
    assert sinusoidal_positional_encoding(5, 7).shape == (5, 7), "odd widths are allowed"
    # PE[t + k] is a rotation of PE[t]: the dot product depends only on the offset k
    dots = (table[:-3] * table[3:]).sum(-1)
    check_close(dots, dots[0].expand_as(dots), "PE[t] . PE[t+3] should not depend on t", atol=1e-4)


def test_learned_positional_embedding_adds_one_vector_per_position():
    embedding = LearnedPositionalEmbedding(10, D)
    x = torch.zeros(2, 6, D)
    check_close(embedding(x), embedding.table.weight[:6].expand(2, 6, D), "zeros + P[:6]")
    with pytest.raises(ValueError, match="longer than max_len"):
        embedding(torch.zeros(1, 11, D))


# --- gradients --------------------------------------------------------------------------------------


@pytest.mark.parametrize("module_kind", ["self-attention", "multi-head", "multi-head cross", "encoder post-LN", "encoder pre-LN", "decoder"])
def test_gradcheck_float64(module_kind):
    b, t, d, h = 2, 4, 8, 2
    memory = torch.randn(b, 3, d, dtype=torch.float64, requires_grad=True)
    mask = padding_mask(torch.tensor([4, 2]), t)
    module, run = {
        "self-attention": (m := SelfAttention(d), lambda x: m(x, mask)[0]),
        "multi-head": (m1 := MultiHeadAttention(d, h), lambda x: m1(x, mask=mask)[0]),
        "multi-head cross": (m2 := MultiHeadAttention(d, h), lambda x: m2(x, memory)[0]),
        "encoder post-LN": (m3 := TransformerEncoderLayer(d, h, 16, norm_first=False), lambda x: m3(x, mask)),
        "encoder pre-LN": (m4 := TransformerEncoderLayer(d, h, 16, norm_first=True), lambda x: m4(x, mask)),
        "decoder": (m5 := TransformerDecoderLayer(d, h, 16), lambda x: m5(x, memory)),
    }[module_kind]
    module.double()
    x = torch.randn(b, t, d, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(run, (x,), eps=1e-6, atol=1e-5), f"{module_kind}: analytic and numerical gradients differ"


# --- models ------------------------------------------------------------------------------------------


def test_encoder_decoder_shapes_and_greedy_decode():
    model = EncoderDecoderTransformer(src_vocab_size=20, tgt_vocab_size=15, d_model=D, num_heads=H, num_layers=2, d_ff=D_FF)
    src = torch.randint(3, 20, (4, 9))
    lengths = torch.tensor([9, 6, 4, 2])
    tgt_in = torch.randint(3, 15, (4, 6))
    assert model(src, lengths, tgt_in).shape == (4, 6, 15)
    decoded = model.greedy_decode(src, lengths, max_len=8)
    assert decoded.dtype == torch.long and decoded.shape[0] == 4 and decoded.shape[1] <= 8


def test_source_positions_from_the_end_number_each_source_from_its_last_token():
    torch.manual_seed(3)
    start = EncoderDecoderTransformer(src_vocab_size=20, tgt_vocab_size=15, d_model=D, num_heads=H, num_layers=2, d_ff=D_FF)
    end = EncoderDecoderTransformer(src_vocab_size=20, tgt_vocab_size=15, d_model=D, num_heads=H, num_layers=2, d_ff=D_FF,
                                    source_positions="end")
    end.load_state_dict(start.state_dict())
    src, lengths = torch.randint(3, 20, (2, 6)), torch.tensor([6, 4])
    table = start.source_embedding.positions
    tokens = start.source_embedding.tokens(src) * D**0.5
    # the last real token gets position 0, the one before it 1, ...; padding (masked) gets 0
    want = tokens + table[torch.tensor([[5, 4, 3, 2, 1, 0], [3, 2, 1, 0, 0, 0]])]
    memory_end, _ = end.encode(src, lengths)
    x = want
    mask = padding_mask(lengths, 6)
    for layer in end.encoder:
        x = layer(x, mask)
    torch.testing.assert_close(memory_end, end.encoder_norm(x))
    # with the same weights the two numberings give different encodings, except where they agree
    memory_start, _ = start.encode(src, lengths)
    assert not torch.allclose(memory_start[0], memory_end[0])
    # a source's encoding does not depend on the padding beside it (its own length fixes its positions)
    alone, _ = end.encode(src[1:, :4], lengths[1:])
    torch.testing.assert_close(alone[0], memory_end[1, :4])
    with pytest.raises(ValueError):
        EncoderDecoderTransformer(20, 15, source_positions="middle")


def test_greedy_decode_agrees_with_teacher_forced_argmax():
    model = EncoderDecoderTransformer(src_vocab_size=20, tgt_vocab_size=15, d_model=D, num_heads=H, num_layers=2, d_ff=D_FF)
    src, lengths = torch.randint(3, 20, (3, 7)), torch.tensor([7, 5, 3])
    decoded = model.greedy_decode(src, lengths, max_len=6)
    prefix = torch.cat([torch.ones(3, 1, dtype=torch.long), decoded[:, :-1]], dim=1)  # BOS + decoded tokens
    replayed = model(src, lengths, prefix).argmax(-1)
    for row in range(3):
        steps = decoded.shape[1]
        eos = (decoded[row] == 2).nonzero()
        steps = int(eos[0]) + 1 if len(eos) else steps
        assert torch.equal(replayed[row, :steps], decoded[row, :steps]), "greedy decoding must replay under teacher forcing"


def test_a_few_training_steps_lower_the_loss():
    model = EncoderDecoderTransformer(src_vocab_size=12, tgt_vocab_size=12, d_model=32, num_heads=4, num_layers=1, d_ff=64)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    src = torch.randint(3, 12, (16, 6))
    lengths = torch.full((16,), 6)
    tgt = torch.cat([torch.ones(16, 1, dtype=torch.long), src.flip(1), torch.full((16, 1), 2)], dim=1)  # reverse
    tgt_in, tgt_out = tgt[:, :-1], tgt[:, 1:]
    losses = []
    for _ in range(30):
        loss = nn.functional.cross_entropy(model(src, lengths, tgt_in).flatten(0, 1), tgt_out.flatten(), ignore_index=0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], f"30 Adam steps should lower the loss, went {losses[0]:.3f} -> {losses[-1]:.3f}"


def test_decoder_only_generate_appends_tokens():
    model = DecoderOnlyTransformer(vocab_size=17, d_model=D, num_heads=H, num_layers=2, max_len=12)
    start = torch.zeros(2, 3, dtype=torch.long)
    out = model.generate(start, 5)
    assert out.shape == (2, 8) and torch.equal(out[:, :3], start)
    sampled = model.generate(start, 15, temperature=1.0, generator=torch.Generator().manual_seed(0))
    assert sampled.shape == (2, 18), "generation beyond max_len must crop the context, not fail"
