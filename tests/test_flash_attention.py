"""Tiled attention with the online softmax equals attention, and its memory grows linearly."""

import pytest
import torch
import torch.nn.functional as F

from course.checks import largest_new_tensor
from course.flash_attention import naive_attention, peak_memory_bytes, tiled_attention


@pytest.mark.parametrize("block_size", [1, 7, 16, 64, 1000])
def test_tiled_equals_sdpa_in_float64(block_size):
    generator = torch.Generator().manual_seed(block_size)
    q = torch.randn(2, 3, 45, 16, generator=generator, dtype=torch.float64)
    k = torch.randn(2, 3, 61, 16, generator=generator, dtype=torch.float64)
    v = torch.randn(2, 3, 61, 8, generator=generator, dtype=torch.float64)
    expected = F.scaled_dot_product_attention(q, k, v)
    assert (tiled_attention(q, k, v, block_size=block_size) - expected).abs().max() < 1e-6
    assert (tiled_attention(q, k, v, block_size=block_size, query_block_size=5) - expected).abs().max() < 1e-12


@pytest.mark.parametrize("dtype, atol", [(torch.float32, 1e-5), (torch.float64, 1e-12)])
def test_tiled_with_masks_equals_naive(dtype, atol):
    generator = torch.Generator().manual_seed(3)
    q = torch.randn(4, 30, 8, generator=generator, dtype=dtype)
    k = torch.randn(4, 23, 8, generator=generator, dtype=dtype)
    v = torch.randn(4, 23, 5, generator=generator, dtype=dtype)
    random_mask = torch.rand(4, 30, 23, generator=generator) > 0.6
    random_mask[:, 2] = False  # fully masked rows: zero output
    random_mask[1, :, :9] = False  # masked keys across a whole first block
    causal = torch.ones(30, 23, dtype=torch.bool).tril()
    for mask in (random_mask, causal, torch.rand(23, generator=generator) > 0.5):
        got = tiled_attention(q, k, v, mask, block_size=6)
        assert got.dtype == dtype and torch.isfinite(got).all()
        torch.testing.assert_close(got, naive_attention(q, k, v, mask), atol=atol, rtol=1e-4)
    assert torch.equal(tiled_attention(q, k, v, random_mask, block_size=6)[:, 2], torch.zeros(4, 5, dtype=dtype))


def test_huge_scores_do_not_overflow():
    q = 300 * torch.randn(1, 12, 4)
    k = 300 * torch.randn(1, 12, 4)
    v = torch.randn(1, 12, 3)
    torch.testing.assert_close(tiled_attention(q, k, v, block_size=5), naive_attention(q, k, v), atol=1e-5, rtol=1e-4)


def test_tiled_never_forms_the_score_matrix():
    q, k, v = torch.randn(2, 50, 8), torch.randn(2, 300, 8), torch.randn(2, 300, 8)
    with largest_new_tensor() as watch:
        tiled_attention(q, k, v, block_size=16)
    assert watch.numel < 2 * 50 * 300 / 4, watch.shape
    with largest_new_tensor() as watch:
        naive_attention(q, k, v)
    assert watch.numel >= 2 * 50 * 300


def test_peak_memory_quadratic_for_naive_and_linear_for_tiled():
    def peaks(function, T, **options):
        q, k, v = torch.randn(3, 1, T, 32)
        return peak_memory_bytes(function, q, k, v, **options)

    naive_growth = peaks(naive_attention, 1024) / peaks(naive_attention, 256)
    tiled_growth = peaks(tiled_attention, 1024, block_size=128) / peaks(tiled_attention, 256, block_size=128)
    assert naive_growth > 14  # 16 for exact T^2
    assert tiled_growth < 4.5  # 4 for exact T
    assert peaks(naive_attention, 512) >= 3 * 512 * 512 * 4  # at least the scores, as float32
