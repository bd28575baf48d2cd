"""The transformer, one idea per module, in reading order (chapters 4 to 6; chapter 7 builds on it).

    SelfAttention                   chapter 4: one head, queries, keys and values from one fused matmul
    sinusoidal_positional_encoding  chapter 4: fixed positions, sin and cos at geometric frequencies
    LearnedPositionalEmbedding      chapter 4: one trained vector per position
    MultiHeadAttention              chapter 5: H heads side by side; self- and cross-attention
    layer_norm_forward/_backward    chapter 6: LayerNorm and its gradients by hand (the blocks use nn.LayerNorm)
    FeedForward                     chapter 6: the position-wise two-layer network
    TransformerEncoderLayer         chapter 6: attention + FFN, each with a residual and a LayerNorm
    TransformerDecoderLayer         chapter 6: causal self-attention + cross-attention + FFN
    EncoderDecoderTransformer       chapter 6: the 2017 translation model, with the seq2seq interface of chapters 1-2
    DecoderOnlyTransformer          chapter 6 -> 7: a stack of causal blocks, a language model

Shapes use these letters: B batch, T (or Tq, Tk) sequence lengths, S source length, D model width,
H heads, Dh = D / H the width of one head, V vocabulary size.

Masks follow ``course.attention``: boolean, True = "this query may look at this key", broadcast
against the scores (B, Tq, Tk). ``torch.nn`` uses the opposite convention (True = masked out); the
helpers at the end of this file translate weights, never masks.

Which normalisation? ``norm_first=False`` is post-LN, the 2017 paper (add, then normalise);
``norm_first=True`` is pre-LN (normalise the branch input, add afterwards), today's default, and
the default of the models here. Both match ``torch.nn.TransformerEncoderLayer(norm_first=...)``.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from course.attention import causal_mask, padding_mask, scaled_dot_product_attention

PAD, BOS, EOS = 0, 1, 2  # special tokens of the course's character vocabularies (chapters 1-2)


# --------------------------------------------------------------------------------------------
# Chapter 4: self-attention and positions
# --------------------------------------------------------------------------------------------


class SelfAttention(nn.Module):
    """Single-head self-attention: one input sequence supplies the queries, the keys and the values.

    The three projections x W_q, x W_k, x W_v are one matrix multiply with the stacked matrix
    [W_q | W_k | W_v]: a single ``Linear(D, 3 D)`` whose output is split in three.
    """

    def __init__(self, d_model: int, bias: bool = True):
        super().__init__()
        self.d_model = d_model
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """x (B, T, D), mask broadcastable to (B, T, T) -> outputs (B, T, D), weights (B, T, T)."""
        queries, keys, values = self.qkv(x).split(self.d_model, dim=-1)  # 3 x (B, T, D)
        return scaled_dot_product_attention(queries, keys, values, mask)


def sinusoidal_positional_encoding(length: int, d_model: int, base: float = 10000.0) -> torch.Tensor:
    """The fixed positional encodings of Vaswani et al. (2017), a (length, d_model) float32 table.

        PE[t, 2i]   = sin(t / base^(2i / d_model))
        PE[t, 2i+1] = cos(t / base^(2i / d_model))

    Each pair of columns is a clock hand turning at its own speed, from one radian per position
    (i = 0) to a full turn every ~2 pi base positions: nearby positions get similar rows, and
    PE[t + k] is a fixed rotation of PE[t], whatever t is.
    """
    positions = torch.arange(length, dtype=torch.float32)[:, None]  # (T, 1)
    even_columns = torch.arange(0, d_model, 2, dtype=torch.float32)  # (ceil(D/2),) the 2i
    frequencies = base ** (-even_columns / d_model)  # (ceil(D/2),)
    angles = positions * frequencies  # (T, ceil(D/2))
    encoding = torch.zeros(length, d_model)
    encoding[:, 0::2] = torch.sin(angles)
    encoding[:, 1::2] = torch.cos(angles[:, : d_model // 2])  # an odd width has one cos column fewer
    return encoding


class LearnedPositionalEmbedding(nn.Module):
    """One trained vector per position, added to the token vectors (as in BERT and GPT-2).

    It can represent any position pattern the data asks for, but knows nothing about positions
    beyond ``max_len``, which it never saw.
    """

    def __init__(self, max_len: int, d_model: int):
        super().__init__()
        self.table = nn.Embedding(max_len, d_model)
        nn.init.normal_(self.table.weight, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, T, D) -> x + P[:T], (B, T, D)."""
        T = x.shape[-2]
        if T > self.table.num_embeddings:
            raise ValueError(f"sequence of length {T} is longer than max_len={self.table.num_embeddings}")
        return x + self.table.weight[:T]


def equivariance_gap(f, x: torch.Tensor, permutation: torch.Tensor) -> float:
    """max |f(x permuted) - f(x) permuted| over every entry: rounding level for a permutation-equivariant f.

    ``f`` maps (B, T, D) to (B, T, ...), with positions on axis 1; ``permutation`` is (T,).
    """
    permuted_input, permuted_output = x[:, permutation], f(x)[:, permutation]
    return float((f(permuted_input) - permuted_output).abs().amax())


# --------------------------------------------------------------------------------------------
# Chapter 5: multi-head attention
# --------------------------------------------------------------------------------------------


def split_heads(x: torch.Tensor, num_heads: int) -> torch.Tensor:
    """(B, T, D) -> (B, H, T, Dh): head h owns the columns h*Dh ... (h+1)*Dh - 1."""
    B, T, D = x.shape
    return x.view(B, T, num_heads, D // num_heads).transpose(1, 2)  # (B, H, T, Dh)


def merge_heads(x: torch.Tensor) -> torch.Tensor:
    """(B, H, T, Dh) -> (B, T, H * Dh): the heads' outputs side by side (the concatenation)."""
    B, H, T, Dh = x.shape
    return x.transpose(1, 2).reshape(B, T, H * Dh)  # (B, T, D)


class MultiHeadAttention(nn.Module):
    """H attention heads in parallel, each in its own Dh = D / H dimensional subspace.

    Self-attention (``memory=None``): one fused ``Linear(D, 3 D)`` gives Q, K and V.
    Cross-attention (``memory`` given): queries come from ``x``, keys and values from ``memory``;
    the same stacked weight is used, its first D rows on ``x`` and the other 2 D rows on
    ``memory``, which is the layout of ``torch.nn.MultiheadAttention.in_proj_weight``.

    ``fused=True`` swaps the teaching path (``course.attention``, weights returned) for PyTorch's
    fused kernel ``F.scaled_dot_product_attention`` (same outputs, weights not computed: ``None``;
    a query that may see no key gets NaN there instead of zeros). Chapter 7 uses it for speed.
    """

    def __init__(self, d_model: int, num_heads: int, bias: bool = True, fused: bool = False):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"d_model={d_model} is not divisible by num_heads={num_heads}")
        self.d_model, self.num_heads, self.fused = d_model, num_heads, fused
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)  # [W_q | W_k | W_v], stacked
        self.out = nn.Linear(d_model, d_model, bias=bias)  # W_o: mixes the concatenated heads

    def project(self, x: torch.Tensor, memory: torch.Tensor | None):
        """Queries from x; keys and values from memory, or from x itself in self-attention."""
        if memory is None:
            return self.qkv(x).split(self.d_model, dim=-1)  # 3 x (B, T, D)
        D = self.d_model
        bias = self.qkv.bias if self.qkv.bias is not None else torch.zeros(3 * D, dtype=x.dtype, device=x.device)
        queries = F.linear(x, self.qkv.weight[:D], bias[:D])  # (B, Tq, D)
        keys, values = F.linear(memory, self.qkv.weight[D:], bias[D:]).split(D, dim=-1)  # 2 x (B, Tk, D)
        return queries, keys, values

    def forward(
        self,
        x: torch.Tensor,  # (B, Tq, D)
        memory: torch.Tensor | None = None,  # (B, Tk, D), or None for self-attention
        mask: torch.Tensor | None = None,  # bool, broadcastable to (B, Tq, Tk), the same for every head
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Returns the outputs (B, Tq, D) and every head's weights (B, H, Tq, Tk), or None if fused."""
        queries, keys, values = self.project(x, memory)
        queries, keys, values = (split_heads(t, self.num_heads) for t in (queries, keys, values))  # (B, H, T, Dh)
        if mask is not None and mask.dim() >= 3:
            mask = mask.unsqueeze(-3)  # (B, 1, Tq, Tk): one mask, broadcast over the heads
        if self.fused:
            heads, weights = F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask), None
        else:
            heads, weights = scaled_dot_product_attention(queries, keys, values, mask)  # (B, H, Tq, Dh), (B, H, Tq, Tk)
        return self.out(merge_heads(heads)), weights


# --------------------------------------------------------------------------------------------
# Chapter 6: blocks
# --------------------------------------------------------------------------------------------


def layer_norm_forward(x: torch.Tensor, gamma: torch.Tensor, beta: torch.Tensor, eps: float = 1e-5):
    """LayerNorm over the last dimension, by hand: (y, cache), y equal to ``F.layer_norm(x, (D,), gamma, beta, eps)``.

    mu and sigma^2 (the biased variance, as ``nn.LayerNorm``) of each row of x (..., D), x_hat = (x - mu) / sqrt(sigma^2 + eps),
    y = gamma * x_hat + beta. The cache holds what ``layer_norm_backward`` needs: x_hat, 1 / sqrt(sigma^2 + eps) and gamma.
    """
    centred = x - x.mean(dim=-1, keepdim=True)
    inverse_std = torch.rsqrt(centred.pow(2).mean(dim=-1, keepdim=True) + eps)  # (..., 1)
    normalised = centred * inverse_std  # x_hat
    return normalised * gamma + beta, (normalised, inverse_std, gamma)


def layer_norm_backward(grad_y: torch.Tensor, cache) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The backward pass of ``layer_norm_forward``, by hand: (dL/dx, dL/dgamma, dL/dbeta) given dL/dy.

    gamma and beta are shared by every row: their gradients sum over the leading dimensions. Through x_hat, each
    row's mean and variance depend on the whole row, so with g = gamma * dL/dy (the gradient at x_hat):

        dL/dx = (g - mean(g) - x_hat * mean(g * x_hat)) / sqrt(sigma^2 + eps)

    (the two means, over the row, are what the mean and the variance take back; a row's dL/dx sums to 0).
    """
    normalised, inverse_std, gamma = cache
    width = grad_y.shape[-1]
    grad_beta = grad_y.reshape(-1, width).sum(dim=0)  # one row per position (sum(dim=()) would sum everything)
    grad_gamma = (grad_y * normalised).reshape(-1, width).sum(dim=0)
    g = grad_y * gamma
    grad_x = inverse_std * (g - g.mean(dim=-1, keepdim=True) - normalised * (g * normalised).mean(dim=-1, keepdim=True))
    return grad_x, grad_gamma, grad_beta


class FeedForward(nn.Module):
    """The same two-layer network applied to every position on its own: D -> d_ff -> D."""

    def __init__(self, d_model: int, d_ff: int, activation: str = "relu", dropout: float = 0.0):
        super().__init__()
        self.up = nn.Linear(d_model, d_ff)
        self.activation = {"relu": nn.ReLU(), "gelu": nn.GELU()}[activation]
        self.down = nn.Linear(d_ff, d_model)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.dropout(self.activation(self.up(x))))


class TransformerEncoderLayer(nn.Module):
    """Self-attention and a feed-forward network, each wrapped in a residual connection and a LayerNorm.

    post-LN (norm_first=False, the 2017 paper):   x = LN(x + attention(x));   x = LN(x + FFN(x))
    pre-LN  (norm_first=True, today's default):   x = x + attention(LN(x));   x = x + FFN(LN(x))

    Pre-LN leaves the residual path x -> x + ... -> x + ... untouched from the input to the output,
    so gradients reach every layer undiminished; post-LN normalises the residual path itself.
    The last attention weights (B, H, T, T) are kept in ``self.attention_weights`` for plotting.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, norm_first: bool = True, dropout: float = 0.0,
                 activation: str = "relu", fused_attention: bool = False):
        super().__init__()
        self.norm_first = norm_first
        self.attention = MultiHeadAttention(d_model, num_heads, fused=fused_attention)
        self.norm1 = nn.LayerNorm(d_model)
        self.feed_forward = FeedForward(d_model, d_ff, activation, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1, self.dropout2 = nn.Dropout(dropout), nn.Dropout(dropout)
        self.attention_weights = None

    def attend(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        out, weights = self.attention(x, mask=mask)
        self.attention_weights = None if weights is None else weights.detach()
        return self.dropout1(out)

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, D), mask broadcastable to (B, T, T) -> (B, T, D)."""
        if self.norm_first:
            x = x + self.attend(self.norm1(x), mask)
            x = x + self.dropout2(self.feed_forward(self.norm2(x)))
        else:
            x = self.norm1(x + self.attend(x, mask))
            x = self.norm2(x + self.dropout2(self.feed_forward(x)))
        return x


class TransformerDecoderLayer(nn.Module):
    """Causal self-attention over the target so far, cross-attention to the encoder's memory, an FFN.

    Each of the three sub-layers has its residual connection and LayerNorm, arranged post-LN or
    pre-LN as in ``TransformerEncoderLayer``. Matches ``torch.nn.TransformerDecoderLayer``.
    The last weights are kept in ``self.self_attention_weights`` and ``self.cross_attention_weights``.
    """

    def __init__(self, d_model: int, num_heads: int, d_ff: int, norm_first: bool = True, dropout: float = 0.0,
                 activation: str = "relu"):
        super().__init__()
        self.norm_first = norm_first
        self.self_attention = MultiHeadAttention(d_model, num_heads)
        self.norm1 = nn.LayerNorm(d_model)
        self.cross_attention = MultiHeadAttention(d_model, num_heads)
        self.norm2 = nn.LayerNorm(d_model)
        self.feed_forward = FeedForward(d_model, d_ff, activation, dropout)
        self.norm3 = nn.LayerNorm(d_model)
        self.dropout1, self.dropout2, self.dropout3 = nn.Dropout(dropout), nn.Dropout(dropout), nn.Dropout(dropout)
        self.self_attention_weights = self.cross_attention_weights = None

    def attend_to_past(self, x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        T = x.shape[-2]
        causal = causal_mask(T, device=x.device)  # (T, T): no query sees its future
        mask = causal if mask is None else causal & mask
        out, weights = self.self_attention(x, mask=mask)
        self.self_attention_weights = weights.detach()
        return self.dropout1(out)

    def attend_to_memory(self, x: torch.Tensor, memory: torch.Tensor, memory_mask: torch.Tensor | None) -> torch.Tensor:
        out, weights = self.cross_attention(x, memory, mask=memory_mask)
        self.cross_attention_weights = weights.detach()
        return self.dropout2(out)

    def forward(
        self,
        x: torch.Tensor,  # (B, T, D) the target so far
        memory: torch.Tensor,  # (B, S, D) the encoder's outputs
        memory_mask: torch.Tensor | None = None,  # bool, broadcastable to (B, T, S): source padding
        mask: torch.Tensor | None = None,  # bool, broadcastable to (B, T, T), combined with the causal mask
    ) -> torch.Tensor:
        if self.norm_first:
            x = x + self.attend_to_past(self.norm1(x), mask)
            x = x + self.attend_to_memory(self.norm2(x), memory, memory_mask)
            x = x + self.dropout3(self.feed_forward(self.norm3(x)))
        else:
            x = self.norm1(x + self.attend_to_past(x, mask))
            x = self.norm2(x + self.attend_to_memory(x, memory, memory_mask))
            x = self.norm3(x + self.dropout3(self.feed_forward(x)))
        return x


# --------------------------------------------------------------------------------------------
# Chapter 6: whole models
# --------------------------------------------------------------------------------------------


class TokenEmbedding(nn.Module):
    """Token vectors times sqrt(D), plus the sinusoidal position table (section 3.4 of the 2017 paper).

    Scaling by sqrt(D) makes token vectors (initialised with std 1/sqrt(D)) as large as the
    positional encodings (entries of size ~1), so that neither drowns the other.
    """

    def __init__(self, vocab_size: int, d_model: int, max_len: int):
        super().__init__()
        self.d_model = d_model
        self.tokens = nn.Embedding(vocab_size, d_model)
        nn.init.normal_(self.tokens.weight, std=d_model**-0.5)
        self.register_buffer("positions", sinusoidal_positional_encoding(max_len, d_model), persistent=False)

    def forward(self, tokens: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) token ids -> (B, T, D); ``positions`` (B, T), the index of each token's row of the
        table (default: 0, 1, ..., T - 1 for every sequence)."""
        T = tokens.shape[-1]
        if T > self.positions.shape[0]:
            raise ValueError(f"sequence of length {T} is longer than max_len={self.positions.shape[0]}")
        table = self.positions[:T] if positions is None else self.positions[positions]
        return self.tokens(tokens) * math.sqrt(self.d_model) + table


class EncoderDecoderTransformer(nn.Module):
    """The encoder-decoder transformer, with the seq2seq interface of chapters 1-2.

    ``model(src, src_lengths, tgt_in) -> logits (B, T, V)`` (teacher forcing), and
    ``model.greedy_decode(src, src_lengths, max_len)`` for generation. Pre-LN by default, so each
    stack ends with a final LayerNorm (its residual path is otherwise never normalised).

    ``source_positions="end"`` numbers each source's positions from its last token instead of its
    first (the last token gets the code of position 0, the one before it position 1, ...; padding
    keeps position 0 and is masked anyway): chapter 6's test of what absolute positions do to
    reversal. The target is always numbered from its start.
    """

    def __init__(self, src_vocab_size: int, tgt_vocab_size: int, d_model: int = 64, num_heads: int = 4,
                 num_layers: int = 2, d_ff: int = 128, max_len: int = 128, norm_first: bool = True,
                 dropout: float = 0.0, source_positions: str = "start"):
        super().__init__()
        if source_positions not in ("start", "end"):
            raise ValueError(f"source_positions must be 'start' or 'end', not {source_positions!r}")
        self.source_positions = source_positions
        self.source_embedding = TokenEmbedding(src_vocab_size, d_model, max_len)
        self.target_embedding = TokenEmbedding(tgt_vocab_size, d_model, max_len)
        self.encoder = nn.ModuleList(
            TransformerEncoderLayer(d_model, num_heads, d_ff, norm_first, dropout) for _ in range(num_layers)
        )
        self.decoder = nn.ModuleList(
            TransformerDecoderLayer(d_model, num_heads, d_ff, norm_first, dropout) for _ in range(num_layers)
        )
        # Pre-LN stacks need a LayerNorm at the end; a post-LN stack already ends with one.
        self.encoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.decoder_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()
        self.output = nn.Linear(d_model, tgt_vocab_size)

    def encode(self, src: torch.Tensor, src_lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """src (B, S) -> memory (B, S, D) and the source key mask (B, 1, S)."""
        source_mask = padding_mask(src_lengths.to(src.device), src.shape[1])  # (B, 1, S): padding is never a key
        positions = None
        if self.source_positions == "end":  # (B, S): n - 1 - j for the j-th of n tokens
            j = torch.arange(src.shape[1], device=src.device)
            positions = (src_lengths.to(src.device)[:, None] - 1 - j).clamp(min=0)
        x = self.source_embedding(src, positions)
        for layer in self.encoder:
            x = layer(x, source_mask)
        return self.encoder_norm(x), source_mask

    def decode(self, tgt_in: torch.Tensor, memory: torch.Tensor, source_mask: torch.Tensor) -> torch.Tensor:
        """tgt_in (B, T) -> logits (B, T, V). Causal: position t sees target tokens 0..t only."""
        x = self.target_embedding(tgt_in)
        for layer in self.decoder:
            x = layer(x, memory, source_mask)
        return self.output(self.decoder_norm(x))

    def forward(self, src: torch.Tensor, src_lengths: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        memory, source_mask = self.encode(src, src_lengths)
        return self.decode(tgt_in, memory, source_mask)

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, src_lengths: torch.Tensor, max_len: int) -> torch.Tensor:
        """Most likely token at each step, fed back in, until every sequence has produced EOS.

        Returns (B, <= max_len) token ids without the leading BOS; EOS is kept where it was produced.
        The decoder is re-run on the whole prefix at every step (chapter 7 caches it instead).
        """
        memory, source_mask = self.encode(src, src_lengths)
        B = src.shape[0]
        generated = torch.full((B, 1), BOS, dtype=torch.long, device=src.device)
        finished = torch.zeros(B, dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            logits = self.decode(generated, memory, source_mask)[:, -1]  # (B, V) the next token only
            next_token = logits.argmax(dim=-1).masked_fill(finished, PAD)  # (B,)
            generated = torch.cat([generated, next_token[:, None]], dim=1)
            finished |= next_token == EOS
            if finished.all():
                break
        return generated[:, 1:]


class DecoderOnlyTransformer(nn.Module):
    """A stack of causal pre-LN blocks over one token stream: a language model (GPT), the bridge to chapter 7.

    Without an encoder there is nothing to cross-attend to, so each block is an encoder layer
    with a causal mask: ``TransformerEncoderLayer`` applied with ``causal_mask(T)``.
    """

    def __init__(self, vocab_size: int, d_model: int = 64, num_heads: int = 4, num_layers: int = 2,
                 d_ff: int | None = None, max_len: int = 128, dropout: float = 0.0, fused_attention: bool = False):
        super().__init__()
        self.max_len = max_len
        self.tokens = nn.Embedding(vocab_size, d_model)
        self.positions = LearnedPositionalEmbedding(max_len, d_model)
        self.blocks = nn.ModuleList(
            TransformerEncoderLayer(d_model, num_heads, d_ff or 4 * d_model, norm_first=True, dropout=dropout,
                                    activation="gelu", fused_attention=fused_attention)
            for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(d_model)
        self.output = nn.Linear(d_model, vocab_size, bias=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, T) token ids -> (B, T, V) logits for the next token at every position."""
        T = tokens.shape[1]
        x = self.positions(self.tokens(tokens))  # (B, T, D)
        mask = causal_mask(T, device=tokens.device)  # (T, T)
        for block in self.blocks:
            x = block(x, mask)
        return self.output(self.final_norm(x))

    @torch.no_grad()
    def generate(self, tokens: torch.Tensor, num_new_tokens: int, temperature: float = 0.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        """Append ``num_new_tokens`` tokens to ``tokens`` (B, T): greedy if temperature is 0, else sampled."""
        for _ in range(num_new_tokens):
            logits = self(tokens[:, -self.max_len:])[:, -1]  # (B, V)
            if temperature == 0:
                next_token = logits.argmax(dim=-1, keepdim=True)
            else:
                probabilities = torch.softmax(logits / temperature, dim=-1)
                next_token = torch.multinomial(probabilities, 1, generator=generator)
            tokens = torch.cat([tokens, next_token], dim=1)
        return tokens


# --------------------------------------------------------------------------------------------
# Copying weights to and from torch.nn, so that equality can be tested
# --------------------------------------------------------------------------------------------


def _copy(target: torch.Tensor, source: torch.Tensor) -> None:
    if target.shape != source.shape:
        raise ValueError(f"cannot copy a tensor of shape {tuple(source.shape)} into one of shape {tuple(target.shape)}")
    with torch.no_grad():
        target.copy_(source)


def _mha_pairs(ours, theirs: nn.MultiheadAttention):
    pairs = [(ours.qkv.weight, theirs.in_proj_weight), (ours.out.weight, theirs.out_proj.weight)]
    if ours.qkv.bias is not None:
        pairs += [(ours.qkv.bias, theirs.in_proj_bias), (ours.out.bias, theirs.out_proj.bias)]
    return pairs


def _layer_pairs(ours, theirs):
    """(our tensor, torch's tensor) for every parameter of a MultiHeadAttention, encoder or decoder layer."""
    if isinstance(theirs, nn.MultiheadAttention):
        if not theirs._qkv_same_embed_dim:
            raise ValueError("only torch.nn.MultiheadAttention with kdim = vdim = embed_dim is supported")
        return _mha_pairs(ours, theirs)
    pairs = []
    if isinstance(theirs, nn.TransformerDecoderLayer):
        pairs += _mha_pairs(ours.self_attention, theirs.self_attn) + _mha_pairs(ours.cross_attention, theirs.multihead_attn)
        norms = (ours.norm1, theirs.norm1), (ours.norm2, theirs.norm2), (ours.norm3, theirs.norm3)
    elif isinstance(theirs, nn.TransformerEncoderLayer):
        pairs += _mha_pairs(ours.attention, theirs.self_attn)
        norms = (ours.norm1, theirs.norm1), (ours.norm2, theirs.norm2)
    else:
        raise TypeError(f"no weight mapping for {type(theirs).__name__}")
    if ours.norm_first != theirs.norm_first:
        raise ValueError(f"norm_first differs: ours {ours.norm_first}, torch's {theirs.norm_first}")
    for our_norm, their_norm in norms:
        pairs += [(our_norm.weight, their_norm.weight), (our_norm.bias, their_norm.bias)]
    ff = ours.feed_forward
    pairs += [(ff.up.weight, theirs.linear1.weight), (ff.up.bias, theirs.linear1.bias),
              (ff.down.weight, theirs.linear2.weight), (ff.down.bias, theirs.linear2.bias)]
    return pairs


def load_from_torch(ours: nn.Module, theirs: nn.Module) -> nn.Module:
    """Copy the weights of a torch.nn.MultiheadAttention / TransformerEncoderLayer / TransformerDecoderLayer into ours.

    Ours must have the matching class (MultiHeadAttention, TransformerEncoderLayer, TransformerDecoderLayer,
    or any module with the same attribute names). Returns ``ours``.
    """
    for target, source in _layer_pairs(ours, theirs):
        _copy(target, source)
    return ours


def to_torch(ours: nn.Module) -> nn.Module:
    """The torch.nn module equal to ours (batch_first, dropout 0), with our weights copied in."""
    if isinstance(ours, MultiHeadAttention):
        theirs = nn.MultiheadAttention(ours.d_model, ours.num_heads, bias=ours.qkv.bias is not None, batch_first=True)
    else:
        attention = ours.attention if isinstance(ours, TransformerEncoderLayer) else ours.self_attention
        options = dict(
            d_model=attention.d_model, nhead=attention.num_heads, dim_feedforward=ours.feed_forward.up.out_features,
            dropout=0.0, activation="gelu" if isinstance(ours.feed_forward.activation, nn.GELU) else "relu",
            batch_first=True, norm_first=ours.norm_first,
        )
        layer_class = nn.TransformerEncoderLayer if isinstance(ours, TransformerEncoderLayer) else nn.TransformerDecoderLayer
        theirs = layer_class(**options)
    theirs = theirs.to(dtype=next(ours.parameters()).dtype)
    for source, target in _layer_pairs(ours, theirs):
        _copy(target, source)
    return theirs.eval()
