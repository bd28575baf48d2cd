"""course/scaling.py: the arithmetic of chapter 10's "Scale" section, against course.gpt's own counts."""

import json
import math
from pathlib import Path

import pytest
import torch

from course.gpt import GPT, GPTConfig
from course.scaling import (PUBLISHED, approx_parameters, fit_power_law, fit_power_law_with_floor,
                            kv_cache_bytes_per_token, non_embedding_parameters, training_flops)

RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "scaling.json"


def meta_gpt(n_layer, n_head, n_embd, vocab_size=65, block_size=64):
    """A course.gpt model on the meta device: its parameters have shapes but no memory."""
    with torch.device("meta"):
        return GPT(GPTConfig(vocab_size=vocab_size, block_size=block_size, n_layer=n_layer, n_head=n_head, n_embd=n_embd))


@pytest.mark.parametrize("n_layer, n_head, n_embd", [(1, 4, 32), (3, 4, 96), (4, 4, 128), (6, 6, 384)])
def test_twelve_l_d_squared_is_the_blocks_matrices(n_layer, n_head, n_embd):
    """Without biases, course.gpt's non-embedding parameters are 12 L d^2 plus the LayerNorm gains: 2 per block, 1 final."""
    model = meta_gpt(n_layer, n_head, n_embd)
    assert non_embedding_parameters(model) == approx_parameters(n_layer, n_embd) + (2 * n_layer + 1) * n_embd


@pytest.mark.parametrize("name", ["GPT-2 small", "GPT-2 XL"])
def test_gpt2_shapes_give_their_published_size(name):
    """course.gpt built with GPT-2's shapes (50,257 tokens, 1,024 positions) has about the parameters GPT-2 reports."""
    shape = PUBLISHED[name]
    model = meta_gpt(shape["n_layer"], shape["n_head"], shape["d_model"], vocab_size=50257, block_size=shape["context"])
    total = model.num_parameters(non_embedding=False)
    blocks_and_embeddings = approx_parameters(shape["n_layer"], shape["d_model"]) + (50257 + 1024) * shape["d_model"]
    assert abs(total - blocks_and_embeddings) / total < 1e-3  # the LayerNorm gains are all that is left
    assert abs(total - shape["reported_parameters"]) / shape["reported_parameters"] < 0.07  # GPT-2 reports 117 M / 1,542 M


def test_kv_cache_bytes_match_a_real_cache():
    """2 x layers x KV heads x head width x bytes is what course.gpt's KVCache holds per token."""
    n_layer, n_head, n_embd, tokens = 3, 4, 96, 10
    model = GPT(GPTConfig(vocab_size=65, block_size=64, n_layer=n_layer, n_head=n_head, n_embd=n_embd)).to(torch.bfloat16)
    from course.gpt import KVCache

    cache = KVCache(n_layer)
    with torch.no_grad():
        model(torch.zeros(1, tokens, dtype=torch.long), cache=cache)
    held = sum(t.numel() * t.element_size() for t in cache.keys + cache.values)
    assert held == tokens * kv_cache_bytes_per_token(n_layer, n_head, n_embd // n_head, bytes_per_number=2)


def test_kv_cache_of_published_shapes():
    llama = PUBLISHED["Llama 2 70B"]
    head_dim = llama["d_model"] // llama["n_head"]
    assert head_dim == 128
    assert kv_cache_bytes_per_token(llama["n_layer"], llama["kv_heads"], head_dim) == 327_680  # 320 KiB in bf16
    assert kv_cache_bytes_per_token(llama["n_layer"], llama["n_head"], head_dim) == 8 * 327_680  # multi-head: 8x
    assert kv_cache_bytes_per_token(llama["n_layer"], 1, head_dim) == 327_680 // 8  # multi-query: 1 KV head
    small = PUBLISHED["GPT-2 small"]
    assert kv_cache_bytes_per_token(small["n_layer"], small["kv_heads"], small["d_model"] // small["n_head"]) == 36_864


def test_training_flops():
    assert training_flops(175e9, 300e9) == pytest.approx(3.15e23)  # GPT-3, as Kaplan's rule gives it


def test_fit_recovers_a_power_law():
    sizes = [1e4, 3e4, 1e5, 3e5, 1e6]
    losses = [(5e3 / n) ** 0.08 * 3 for n in sizes]  # 3 (5e3 / N)^0.08 = (N_c / N)^0.08 with N_c = 5e3 * 3^(1 / 0.08)
    fit = fit_power_law(sizes, losses)
    assert fit["alpha"] == pytest.approx(0.08, rel=1e-9)
    assert fit["N_c"] == pytest.approx(5e3 * 3 ** (1 / 0.08), rel=1e-6)
    floored = fit_power_law_with_floor(sizes, [1.0 + (2e3 / n) ** 0.3 for n in sizes])
    assert floored["E"] == pytest.approx(1.0, abs=0.01) and floored["alpha"] == pytest.approx(0.3, abs=0.02)


@pytest.mark.skipif(not RESULTS.exists(), reason="benchmarks/scaling.py has not been run")
def test_committed_results_are_complete():
    results = json.loads(RESULTS.read_text())
    for key in ("command", "date", "torch", "hardware", "recipe", "runs", "fit"):
        assert key in results
    sizes = {r["non_embedding_parameters"] for r in results["runs"]}
    assert len(sizes) >= 5
    assert all(math.isfinite(r["val_loss"]) for r in results["runs"])
    refit = fit_power_law([r["non_embedding_parameters"] for r in results["runs"]], [r["val_loss"] for r in results["runs"]])
    assert refit["alpha"] == pytest.approx(results["fit"]["power_law"]["alpha"], rel=1e-9)
