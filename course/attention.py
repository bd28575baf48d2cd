"""Attention as an operator: the reference implementations of chapter 3.

Every later chapter imports attention from here, so that the whole course runs on one
definition. Shapes use these letters:

    B  batch (any number of leading dimensions may stand in its place)
    Tq number of queries, Tk number of keys (= number of values)
    d  width of queries and keys, dv width of values

Masks are boolean and broadcast against the scores (..., Tq, Tk): True means "this query
may look at this key", the same convention as ``torch.nn.functional.scaled_dot_product_attention``.
A query whose every key is masked gets all-zero weights and a zero output: it looked at
nothing, so it returns nothing (rather than NaN, or a uniform average of padding).

Half precision (float16, bfloat16) is safe: the queries are scaled by 1/sqrt(d) *before* the
product with the keys, so a score is never held at sqrt(d) times its final size (float16 ends at
65504), and scores and softmax are computed in float32; weights and outputs come back in the
input dtype.
"""

import math

import torch

HALF_DTYPES = (torch.float16, torch.bfloat16)


def masked_softmax(scores: torch.Tensor, mask: torch.Tensor | None = None, dim: int = -1) -> torch.Tensor:
    """Softmax of ``scores`` along ``dim``, with masked-out entries given exactly zero weight.

    Subtracting the row maximum before ``exp`` leaves the result unchanged
    (softmax(x) = softmax(x - c)) and keeps ``exp`` from overflowing for large scores.
    Half-precision scores are exponentiated and summed in float32; the weights are returned in the
    dtype of ``scores``.
    """
    input_dtype = scores.dtype
    if input_dtype in HALF_DTYPES:
        scores = scores.float()  # 16-bit sums of many exponentials lose the small weights
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    row_max = scores.amax(dim=dim, keepdim=True)
    # A fully masked row has max -inf; shift it by 0 instead so that exp gives zeros, not NaN.
    row_max = torch.where(torch.isfinite(row_max), row_max, torch.zeros_like(row_max))
    exps = torch.exp(scores - row_max)
    total = exps.sum(dim=dim, keepdim=True)
    return (exps / torch.where(total > 0, total, torch.ones_like(total))).to(input_dtype)


def scaled_dot_product_attention(
    queries: torch.Tensor,  # (..., Tq, d)
    keys: torch.Tensor,  # (..., Tk, d)
    values: torch.Tensor,  # (..., Tk, dv)
    mask: torch.Tensor | None = None,  # bool, broadcastable to (..., Tq, Tk)
) -> tuple[torch.Tensor, torch.Tensor]:
    """softmax(Q K^T / sqrt(d)) V. Returns the outputs (..., Tq, dv) and the weights (..., Tq, Tk)."""
    d = queries.shape[-1]
    # Half precision: float16 ends at 65504, and near 1e4 it rounds to multiples of 8, so the scores
    # are computed and normalised in float32 (as fused kernels do); the result returns in the input dtype.
    work_dtype = torch.float32 if queries.dtype in HALF_DTYPES else queries.dtype
    # Scale first: (q / sqrt(d)) . k is the same score as (q . k) / sqrt(d), but it never exists at
    # sqrt(d) times its size (where a 16-bit product, e.g. under autocast, would overflow to inf).
    scaled_queries = queries.to(work_dtype) / math.sqrt(d)
    scores = scaled_queries @ keys.to(work_dtype).transpose(-2, -1)  # (..., Tq, Tk)
    weights = masked_softmax(scores, mask, dim=-1).to(values.dtype)
    return weights @ values, weights


def attention_backward(
    queries: torch.Tensor,  # (..., Tq, d)
    keys: torch.Tensor,  # (..., Tk, d)
    values: torch.Tensor,  # (..., Tk, dv)
    grad_outputs: torch.Tensor,  # (..., Tq, dv): dL/d(outputs)
    mask: torch.Tensor | None = None,  # bool, broadcastable to (..., Tq, Tk)
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The backward pass of ``scaled_dot_product_attention``, by hand: (dL/dQ, dL/dK, dL/dV) given dL/dO.

    The forward pass is S = Q K^T / sqrt(d), P = softmax(S) row by row (masked), O = P V. Back through it:

        dV = P^T dO,    dP = dO V^T,
        dS_ij = P_ij (dP_ij - sum_k P_ik dP_ik)     the softmax's Jacobian (diag(p) - p p^T) times dP, per row
        dQ = dS K / sqrt(d),    dK = dS^T Q / sqrt(d).

    A masked entry has P_ij = 0, hence dS_ij = 0: it passes no gradient to its query or key; a fully masked
    query (P's row all zero, its output the constant 0) gets a zero gradient. Inputs whose leading dimensions
    were broadcast in the forward pass get their gradient summed back to their own shape.
    """
    d = queries.shape[-1]
    work_dtype = torch.float32 if queries.dtype in HALF_DTYPES else queries.dtype
    q, k, v, grad = (t.to(work_dtype) for t in (queries, keys, values, grad_outputs))
    weights = masked_softmax(torch.einsum("...qd,...kd->...qk", q, k) / math.sqrt(d), mask, dim=-1)  # P
    grad_values = torch.einsum("...qk,...qv->...kv", weights, grad)  # P^T dO
    grad_weights = torch.einsum("...qv,...kv->...qk", grad, v)  # dO V^T
    # the row's weighted mean of dP, subtracted: what the normalisation takes back (the -p p^T of the Jacobian)
    grad_scores = weights * (grad_weights - torch.einsum("...qk,...qk->...q", weights, grad_weights)[..., None])
    grad_queries = torch.einsum("...qk,...kd->...qd", grad_scores, k) / math.sqrt(d)
    grad_keys = torch.einsum("...qk,...qd->...kd", grad_scores, q) / math.sqrt(d)
    return tuple(g.sum_to_size(t.shape).to(t.dtype)
                 for g, t in ((grad_queries, queries), (grad_keys, keys), (grad_values, values)))


def padding_mask(lengths: torch.Tensor, max_len: int | None = None) -> torch.Tensor:
    """Key mask from sequence lengths: (B,) -> (B, 1, T), True at the real (non-padding) positions.

    The middle axis of size 1 lets the mask broadcast over every query of a score matrix (B, Tq, T).
    """
    max_len = int(lengths.max()) if max_len is None else max_len
    positions = torch.arange(max_len, device=lengths.device)  # (T,)
    return (positions[None, :] < lengths[:, None])[:, None, :]  # (B, 1, T)


def causal_mask(size: int, device: torch.device | str | None = None) -> torch.Tensor:
    """(T, T) mask, True where key position <= query position: no query sees its future."""
    return torch.ones(size, size, dtype=torch.bool, device=device).tril()
