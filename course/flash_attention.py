"""FlashAttention's idea on a CPU: exact attention, one tile of scores at a time (chapter 9).

    naive_attention     softmax(Q K^T / sqrt(d)) V, the whole (Tq, Tk) score matrix in memory (chapter 3)
    tiled_attention     the same outputs from (Bq, Bk) tiles and an online softmax: memory O(T), not O(T^2)
    peak_memory_bytes   the most bytes torch's CPU allocator held at once during a call (torch.profiler)

The online softmax (Milakov and Gimelshein, 2018; Dao et al., 2022). For one query, keys arrive in
blocks. After the blocks seen so far keep three things: the largest score m, the sum of
exponentials l = sum_j exp(s_j - m), and the weighted sum of values a = sum_j exp(s_j - m) v_j.
A new block with scores s' and values V' updates them to

    m' = max(m, max s')
    l' = exp(m - m') l + sum_j exp(s'_j - m')
    a' = exp(m - m') a + sum_j exp(s'_j - m') v'_j

and after the last block the output is a / l: exactly softmax(s) V, though no row of weights was
ever complete. The factor exp(m - m') rescales what was summed under the old maximum.

Masks follow ``course.attention``: boolean, True = may attend, broadcast against (..., Tq, Tk); a
query whose keys are all masked gets a zero output.
"""

import contextlib
import math
import os
import sys

import torch

from course.attention import scaled_dot_product_attention


def naive_attention(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                    mask: torch.Tensor | None = None) -> torch.Tensor:
    """Chapter 3's attention, outputs only: (..., Tq, d), (..., Tk, d), (..., Tk, dv) -> (..., Tq, dv)."""
    return scaled_dot_product_attention(queries, keys, values, mask)[0]


def tiled_attention(queries: torch.Tensor, keys: torch.Tensor, values: torch.Tensor,
                    mask: torch.Tensor | None = None, block_size: int = 64,
                    query_block_size: int | None = None) -> torch.Tensor:
    """Exact attention computed tile by tile, as FlashAttention-2 orders the loops.

    queries (..., Tq, d), keys (..., Tk, d), values (..., Tk, dv) with the same leading dimensions;
    mask bool, broadcastable to (..., Tq, Tk). The outer loop takes ``query_block_size`` queries at a
    time (default ``block_size``), the inner loop ``block_size`` keys at a time; the largest score
    tensor ever formed is (..., Bq, Bk). Returns (..., Tq, dv).
    """
    *leading, Tq, d = queries.shape
    Tk, dv = keys.shape[-2], values.shape[-1]
    Bq, Bk = query_block_size or block_size, block_size
    scale = 1.0 / math.sqrt(d)
    if mask is not None:
        mask = torch.broadcast_to(mask, (*leading, Tq, Tk))  # a view: no memory
    output = queries.new_empty(*leading, Tq, dv)
    for i in range(0, Tq, Bq):  # one tile of queries: its rows of the output are finished in here
        q = queries[..., i : i + Bq, :] * scale  # (..., bq, d)
        m = q.new_full((*q.shape[:-1], 1), float("-inf"))  # largest score so far, (..., bq, 1)
        l = q.new_zeros(*q.shape[:-1], 1)  # sum of exp(score - m), (..., bq, 1)
        a = q.new_zeros(*q.shape[:-1], dv)  # sum of exp(score - m) * value, (..., bq, dv)
        for j in range(0, Tk, Bk):
            s = q @ keys[..., j : j + Bk, :].transpose(-2, -1)  # (..., bq, bk): one tile of scores
            if mask is not None:
                s = s.masked_fill(~mask[..., i : i + Bq, j : j + Bk], float("-inf"))
            m_new = torch.maximum(m, s.amax(dim=-1, keepdim=True))
            # While every key of a row is masked, m_new is -inf; shift by 0 instead (exp(-inf) = 0 still).
            shift = torch.where(torch.isinf(m_new), torch.zeros_like(m_new), m_new)
            p = torch.exp(s - shift)  # (..., bq, bk)
            rescale = torch.exp(m - shift)  # exp(m - m'): the old sums were taken under the old maximum
            l = rescale * l + p.sum(dim=-1, keepdim=True)
            a = rescale * a + p @ values[..., j : j + Bk, :]
            m = m_new
        output[..., i : i + Bq, :] = a / l.clamp_min(torch.finfo(l.dtype).tiny)  # all masked: 0 / tiny = 0
    return output


def peak_memory_bytes(function, *args, **kwargs) -> int:
    """The most bytes torch's CPU allocator held at once while ``function(*args, **kwargs)`` ran, beyond what it held before.

    Python's ``tracemalloc`` cannot see tensors: torch allocates their memory in C++, not through
    Python's allocator. ``torch.profiler`` with ``profile_memory=True`` records every allocation and
    every free of torch's CPU allocator, each at its time; the running sum of those records is the
    memory held by tensors created during the call, and its maximum is the peak. (The resolution is
    one aten operation: memory an operation allocates and frees inside itself is netted.)
    """
    from torch.profiler import ProfilerActivity, profile

    with _quiet_c_stderr(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as profiler:
        function(*args, **kwargs)
    records = sorted(
        (event.time_range.start, event.self_cpu_memory_usage)
        for event in profiler.events()
        if event.self_cpu_memory_usage != 0
    )
    held = peak = 0
    for _, change in records:
        held += change
        peak = max(peak, held)
    return peak


@contextlib.contextmanager
def _quiet_c_stderr():
    """Silence the C-level standard error: the profiler's backend (Kineto) logs two lines per run there."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 2)
    try:
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
