"""Rotary position embeddings (RoPE, Su et al., 2021) and a KV cache that slides (chapter 9).

    rope_angles        the angle t * theta_i by which pair i of a vector at position t is turned
    apply_rope         rotate each pair (x_2i, x_2i+1) of a query or key by its position's angles
    SlidingKVCache     a KV cache that keeps only the last keys and values: generation past block_size

Instead of adding a position vector to the token, RoPE turns the query and the key. Pair i of a
vector at position t is a point in the plane, rotated by the angle t * theta_i with
theta_i = base^(-2i / Dh), the frequencies of the sinusoidal table (chapter 4). A rotation R(a)
satisfies R(a)^T R(b) = R(b - a), so the score of a query at position t and a key at position u

    (R(t theta) q) . (R(u theta) k) = q . R((u - t) theta) k

depends on the offset u - t only: attention sees relative positions, and nothing in the model is
tied to an absolute position. That is what lets ``SlidingKVCache`` drop old keys and keep going.
Pairs are adjacent columns (2i, 2i + 1), as in the RoFormer paper; some libraries pair column i
with column i + Dh / 2 instead (the same idea, a permutation of the columns).
"""

import torch


def rope_angles(positions: torch.Tensor, head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """positions (T,) -> angles (T, head_dim / 2): entry (t, i) is positions[t] * base^(-2i / head_dim)."""
    if head_dim % 2:
        raise ValueError(f"RoPE rotates pairs of columns: head_dim must be even, not {head_dim}")
    frequencies = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # theta_i, (Dh/2,)
    return positions.to(torch.float64)[:, None] * frequencies  # (T, Dh/2), in float64: positions can be large


def apply_rope(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0) -> torch.Tensor:
    """Rotate pair i of x[..., t, :] by the angle positions[t] * theta_i.

    x (..., T, Dh) queries or keys, Dh even; positions (T,) integers (any start: 0, or the offset of
    a cache). Returns a tensor of x's shape and dtype. Each pair read as a complex number
    x_2i + j x_2i+1 is multiplied by exp(j t theta_i), which is the rotation.
    """
    angles = rope_angles(positions.to(x.device), x.shape[-1], base)  # (T, Dh/2)
    turn = torch.polar(torch.ones_like(angles), angles)  # exp(j angle), complex128, (T, Dh/2)
    pairs = torch.view_as_complex(x.to(torch.float64).reshape(*x.shape[:-1], -1, 2).contiguous())  # (..., T, Dh/2)
    return torch.view_as_real(pairs * turn).reshape(x.shape).to(x.dtype)


class SlidingKVCache:
    """Keys and values of the last ``window - 1`` tokens per layer, and the count of every token seen.

    The interface of ``course.gpt.KVCache``: ``len(cache)`` is the position of the next token (all
    tokens seen, not only those kept), so ``GPT.forward`` rotates new queries and keys by their true
    positions. ``append`` returns the kept past followed by the new keys, then forgets all but the
    last ``window - 1``: a new token attends to itself and the ``window - 1`` before it, as a
    ``GPT(position="rope")`` run over the whole sequence does (a sliding-window causal mask).
    Only rotary positions make this valid: cached keys were rotated once, by their own positions,
    and their scores with any later query depend on the offset alone, so they never need recomputing.
    """

    def __init__(self, n_layer: int, window: int):
        self.window = window
        self.keys = [None] * n_layer
        self.values = [None] * n_layer
        self.seen = 0

    def __len__(self):  # the position of the next token
        return self.seen

    def append(self, layer: int, k, v):
        """Add the new (B, H, T, Dh) keys and values; return the kept past and the new ones, (B, H, P + T, Dh)."""
        if layer == 0:
            self.seen += k.shape[-2]
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=-2)
            v = torch.cat([self.values[layer], v], dim=-2)
        first_kept = max(0, k.shape[-2] - (self.window - 1))
        self.keys[layer], self.values[layer] = k[..., first_kept:, :], v[..., first_kept:, :]
        return k, v
