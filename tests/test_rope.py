"""Rotary positions: the rotation, the relative-offset property, the GPT option and the sliding KV cache."""

import math

import pytest
import torch

from course.gpt import GPT, GPTConfig, KVCache
from course.rope import SlidingKVCache, apply_rope, rope_angles


def explicit_rotation(x, positions, base=10000.0):
    """The definition, pair by pair, with 2 x 2 rotation matrices."""
    out = torch.empty_like(x)
    for t, position in enumerate(positions.tolist()):
        for i in range(x.shape[-1] // 2):
            angle = position * base ** (-2 * i / x.shape[-1])
            c, s = math.cos(angle), math.sin(angle)
            a, b = x[..., t, 2 * i], x[..., t, 2 * i + 1]
            out[..., t, 2 * i], out[..., t, 2 * i + 1] = c * a - s * b, s * a + c * b
    return out


def test_apply_rope_is_the_pairwise_rotation():
    x = torch.randn(2, 3, 5, 8, dtype=torch.float64)
    positions = torch.tensor([0, 1, 7, 100, 4096])
    torch.testing.assert_close(apply_rope(x, positions), explicit_rotation(x, positions))


def test_rotation_keeps_lengths_and_position_zero_is_identity():
    x = torch.randn(4, 6, 16)
    torch.testing.assert_close(apply_rope(x, torch.arange(6)).norm(dim=-1), x.norm(dim=-1))
    torch.testing.assert_close(apply_rope(x, torch.zeros(6, dtype=torch.long)), x)
    assert apply_rope(x.double(), torch.arange(6)).dtype == torch.float64


@pytest.mark.parametrize("offset", [0, 1, 5, 300])
def test_score_depends_only_on_the_offset(offset):
    generator = torch.Generator().manual_seed(offset)
    q, k = torch.randn(2, 32, generator=generator, dtype=torch.float64)
    scores = []
    for t in (0, 3, 17, 1000):
        rotated_q = apply_rope(q[None], torch.tensor([t + offset]))[0]
        rotated_k = apply_rope(k[None], torch.tensor([t]))[0]
        scores.append(rotated_q @ rotated_k)
    torch.testing.assert_close(torch.stack(scores), scores[0].expand(4))


def test_odd_head_width_is_refused():
    with pytest.raises(ValueError):
        rope_angles(torch.arange(3), 5)


def small_gpt(position, n_layer=2, block_size=8, attention="sdpa"):
    torch.manual_seed(0)
    config = GPTConfig(vocab_size=11, block_size=block_size, n_layer=n_layer, n_head=2, n_embd=16, position=position,
                       attention=attention)
    return GPT(config).eval()


def test_default_gpt_keeps_learned_positions():
    assert GPTConfig().position == "learned"
    model = small_gpt("learned")
    assert model.position_embedding is not None
    with pytest.raises(AssertionError):
        model(torch.zeros(1, 9, dtype=torch.long))  # longer than block_size


def test_rope_gpt_has_no_position_table_and_manual_path_agrees():
    model = small_gpt("rope")
    assert model.position_embedding is None
    manual = small_gpt("rope", attention="manual")
    manual.load_state_dict(model.state_dict())
    idx = torch.randint(0, 11, (2, 20))  # longer than block_size: sliding-window mask
    with torch.no_grad():
        torch.testing.assert_close(model(idx)[0], manual(idx)[0], atol=1e-5, rtol=1e-4)


def test_rope_gpt_with_ordinary_cache_equals_recomputation():
    model = small_gpt("rope")
    idx = torch.randint(0, 11, (2, 8))
    cache = KVCache(model.config.n_layer)
    with torch.no_grad():
        full = model(idx)[0]
        stepwise = torch.cat([model(idx[:, :3], cache=cache)[0]] + [model(idx[:, t : t + 1], cache=cache)[0] for t in range(3, 8)], 1)
    torch.testing.assert_close(stepwise, full, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("n_layer", [1, 3])
def test_sliding_cache_equals_sliding_window_recomputation(n_layer):
    """Far past block_size, the sliding cache gives the logits of a full run with a sliding-window mask."""
    model = small_gpt("rope", n_layer=n_layer, block_size=6)
    idx = torch.randint(0, 11, (2, 25))
    cache = SlidingKVCache(n_layer, window=6)
    with torch.no_grad():
        full = model(idx)[0]  # (2, 25, V): every token sees itself and the 5 tokens before it
        steps = [model(idx[:, :4], cache=cache)[0]] + [model(idx[:, t : t + 1], cache=cache)[0] for t in range(4, 25)]
    assert len(cache) == 25 and cache.keys[0].shape[-2] == 5
    torch.testing.assert_close(torch.cat(steps, 1), full, atol=1e-5, rtol=1e-4)


def test_one_layer_sliding_cache_equals_recomputing_the_last_window():
    """With one layer a cached key depends on its token alone, so recomputing the window from position 0 agrees."""
    model = small_gpt("rope", n_layer=1, block_size=6)
    idx = torch.randint(0, 11, (1, 30))
    cache = SlidingKVCache(1, window=6)
    with torch.no_grad():
        model(idx[:, :29], cache=cache)
        sliding = model(idx[:, 29:], cache=cache)[0][:, -1]
        window = model(idx[:, -6:])[0][:, -1]  # positions 0..5, not 24..29: only offsets matter
    torch.testing.assert_close(sliding, window, atol=1e-5, rtol=1e-4)
