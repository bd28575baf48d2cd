"""A decoder-only transformer (a GPT) in one file, in reading order (chapter 7).

    GPTConfig             the numbers that fix the shape of the model
    CausalSelfAttention   H heads, one fused QKV matmul, causal; fast (SDPA) or chapter 3's manual path
    MLP                   the position-wise feed-forward network
    Block                 pre-LN: x + attention(LN(x)), then x + MLP(LN(x))
    GPT                   token + position embeddings, the blocks, a final LN, a tied output layer
    KVCache               the keys and values of the tokens seen so far, one pair per layer
    next_token_loss       the causal language-model loss: position t predicts token t + 1
    learning_rate         linear warm-up, then cosine decay
    cached_attention_step one decoding step of attention that reuses the cached keys and values
    generate              temperature and top-k sampling, with or without the KV cache
    flops_per_token       the model FLOPs of one trained token, for the MFU

Shapes: B batch, T sequence length, C = n_embd channels, H heads, Dh = C / H head width,
V vocabulary size, P number of tokens already in the KV cache.

The structure follows nanoGPT (Karpathy) as publicly described: pre-LN blocks, GELU MLP of width
4C, weight tying, GPT-2 initialisation. The attention can run on chapter 3's reference
implementation (``attention="manual"``) so that the fast path can be checked against it.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from course.attention import causal_mask, scaled_dot_product_attention
from course.rope import apply_rope


@dataclass
class GPTConfig:
    vocab_size: int = 65  # tiny Shakespeare has 65 distinct characters
    block_size: int = 256  # the longest context the model can see
    n_layer: int = 6
    n_head: int = 6
    n_embd: int = 384
    dropout: float = 0.0
    bias: bool = False  # biases in Linear and LayerNorm; without them the model is a little faster
    attention: str = "sdpa"  # "sdpa": F.scaled_dot_product_attention; "manual": course.attention
    position: str = "learned"  # "learned": a trained vector per position; "rope": rotary positions (chapter 9)


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig, layer_index: int = 0):
        super().__init__()
        assert config.n_embd % config.n_head == 0, "n_embd must be a multiple of n_head"
        assert config.attention in ("sdpa", "manual"), f"unknown attention {config.attention!r}"
        self.n_head, self.attention, self.dropout = config.n_head, config.attention, config.dropout
        self.rope = config.position == "rope"
        self.window = config.block_size  # a query sees at most this many keys, itself included
        self.layer_index = layer_index  # which slot of a KVCache belongs to this layer
        self.qkv = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)  # one fused matmul
        self.proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.attn_dropout = nn.Dropout(config.dropout)
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(self, x, cache=None, positions=None):
        B, T, C = x.shape
        H = self.n_head
        q, k, v = self.qkv(x).split(C, dim=2)  # 3 x (B, T, C)
        q, k, v = (t.view(B, T, H, C // H).transpose(1, 2) for t in (q, k, v))  # 3 x (B, H, T, Dh)
        if self.rope:  # rotate queries and keys by their positions (T,); cached keys were rotated when they came
            q, k = apply_rope(q, positions), apply_rope(k, positions)
        if cache is not None:
            k, v = cache.append(self.layer_index, k, v)  # (B, H, P + T, Dh): the past, then the new tokens
        y = self.attend(q, k, v)  # (B, H, T, Dh)
        y = y.transpose(1, 2).contiguous().view(B, T, C)  # (B, T, C): heads side by side again
        return self.resid_dropout(self.proj(y))

    def attend(self, q, k, v):
        """Causal attention of T queries over the last T of Tk keys (Tk > T when a cache holds the past)."""
        T, Tk = q.shape[-2], k.shape[-2]
        dropout_p = self.dropout if self.training else 0.0
        if self.attention == "sdpa":
            if T == Tk and Tk <= self.window:  # the usual case in training: one fused, memory-efficient kernel
                return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
            # is_causal aligns the mask top-left; with a cache the queries are the LAST T positions
            mask = self.visible(T, Tk, q.device)  # (T, Tk)
            return F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=dropout_p)
        mask = self.visible(T, Tk, q.device)  # (T, Tk): query i is position Tk - T + i
        y, weights = scaled_dot_product_attention(q, k, v, mask)  # chapter 3, materialises (B, H, T, Tk)
        if dropout_p > 0:
            y = self.attn_dropout(weights) @ v
        return y

    def visible(self, T, Tk, device):
        """(T, Tk) causal mask of the last T of Tk positions; beyond ``window`` keys (rotary positions only,
        where a sequence may be longer than block_size) each query sees just the last ``window``: a sliding window."""
        mask = causal_mask(Tk, device=device)[Tk - T :]
        if Tk > self.window:
            key_positions = torch.arange(Tk, device=device)
            mask = mask & (key_positions[None, :] > key_positions[Tk - T :, None] - self.window)
        return mask


class MLP(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.up = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.down = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x):  # (B, T, C) -> (B, T, C), each position on its own
        return self.dropout(self.down(F.gelu(self.up(x))))


class Block(nn.Module):
    """Pre-LN: normalise the input of each branch, add the branch to the untouched residual stream."""

    def __init__(self, config: GPTConfig, layer_index: int = 0):
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config, layer_index)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(self, x, cache=None, positions=None):  # (B, T, C) -> (B, T, C)
        x = x + self.attn(self.ln_1(x), cache, positions)
        return x + self.mlp(self.ln_2(x))


class GPT(nn.Module):
    def __init__(self, config: GPTConfig):
        super().__init__()
        self.config = config
        self.token_embedding = nn.Embedding(config.vocab_size, config.n_embd)
        assert config.position in ("learned", "rope"), f"unknown position {config.position!r}"
        # With rotary positions (chapter 9) the attention turns queries and keys instead: no table to learn.
        self.position_embedding = nn.Embedding(config.block_size, config.n_embd) if config.position == "learned" else None
        self.dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config, i) for i in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        # Weight tying: the output layer scores a token with the same vector that embeds it.
        # Fewer parameters, and every token's vector is trained by both ends of the model.
        self.lm_head.weight = self.token_embedding.weight
        self.apply(self._init_weights)
        # GPT-2: each residual branch's last layer starts smaller, so that the sum of 2 * n_layer
        # branches keeps the residual stream's variance near 1 at initialisation.
        for name, parameter in self.named_parameters():
            if name.endswith("proj.weight") or name.endswith("down.weight"):
                nn.init.normal_(parameter, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module):
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def num_parameters(self, non_embedding: bool = True) -> int:
        """Parameters counted once (the tied matrix once); without position embeddings by default,
        since they cost no multiply-adds per token (the convention of the scaling-law papers)."""
        total = sum(p.numel() for p in self.parameters())
        if non_embedding and self.position_embedding is not None:
            return total - self.position_embedding.weight.numel()
        return total

    def forward(self, idx, targets=None, cache=None):
        """idx (B, T) token ids -> logits (B, T, V), and the loss if targets (B, T) are given.

        With a ``cache``, idx holds only the new tokens: they sit at positions P .. P + T - 1.
        With rotary positions a sequence may be longer than block_size: each token then attends to
        the last block_size tokens only (a sliding window), and a ``SlidingKVCache`` can follow it.
        """
        B, T = idx.shape
        start = len(cache) if cache is not None else 0
        positions = torch.arange(start, start + T, device=idx.device)  # (T,)
        x = self.token_embedding(idx)  # (B, T, C)
        if self.position_embedding is not None:
            assert start + T <= self.config.block_size, f"{start + T} tokens, but block_size is {self.config.block_size}"
            x = x + self.position_embedding(positions)
        x = self.dropout(x)
        for block in self.blocks:
            x = block(x, cache, positions)
        logits = self.lm_head(self.ln_f(x))  # (B, T, V)
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T))  # (B*T, V) against (B*T,)
        return logits, loss

    def configure_optimizer(self, weight_decay, learning_rate, betas, fused=False):
        """AdamW; weight decay only on matrices (embeddings, Linear weights), not on gains and biases."""
        matrices = [p for p in self.parameters() if p.requires_grad and p.dim() >= 2]
        vectors = [p for p in self.parameters() if p.requires_grad and p.dim() < 2]
        groups = [{"params": matrices, "weight_decay": weight_decay}, {"params": vectors, "weight_decay": 0.0}]
        return torch.optim.AdamW(groups, lr=learning_rate, betas=betas, fused=fused)


class KVCache:
    """Keys and values of every token seen so far, per layer: (B, H, P, Dh) each.

    During generation a new token only needs its own query; its keys and values are appended here
    and the attention reads the whole past from the cache instead of recomputing it.
    """

    def __init__(self, n_layer: int):
        self.keys = [None] * n_layer
        self.values = [None] * n_layer

    def __len__(self):  # P, the number of cached positions
        return 0 if self.keys[0] is None else self.keys[0].shape[-2]

    def append(self, layer: int, k, v):
        """Add the new (B, H, T, Dh) keys and values; return all of them, (B, H, P + T, Dh)."""
        if self.keys[layer] is not None:
            k = torch.cat([self.keys[layer], k], dim=-2)
            v = torch.cat([self.values[layer], v], dim=-2)
        self.keys[layer], self.values[layer] = k, v
        return k, v


def next_token_loss(logits, tokens):
    """Causal language-model loss of a model's outputs on a sequence of tokens.

    logits (B, T, V) were computed from tokens (B, T); position t predicts token t + 1, so the last
    position has no target and the first token is never predicted: mean cross-entropy over B * (T - 1).
    """
    predictions = logits[:, :-1, :]  # (B, T - 1, V)
    targets = tokens[:, 1:]  # (B, T - 1): the same sequence, shifted one step left
    return F.cross_entropy(predictions.reshape(-1, predictions.shape[-1]), targets.reshape(-1))


def learning_rate(step: int, max_lr: float, warmup_steps: int, decay_steps: int, min_lr: float) -> float:
    """Linear warm-up over ``warmup_steps``, cosine decay to ``min_lr`` at ``decay_steps``, then flat.

    Step 0 already has a non-zero rate, max_lr / warmup_steps; the peak is reached at step warmup_steps.
    """
    if step < warmup_steps:
        return max_lr * (step + 1) / warmup_steps
    if step >= decay_steps:
        return min_lr
    progress = (step - warmup_steps) / (decay_steps - warmup_steps)  # 0 -> 1
    return min_lr + 0.5 * (1.0 + math.cos(math.pi * progress)) * (max_lr - min_lr)


def cached_attention_step(query, new_key, new_value, past_keys=None, past_values=None):
    """One decoding step: the newest token's query attends to every key so far, its own included.

    query, new_key, new_value (B, H, 1, Dh); past_keys, past_values (B, H, P, Dh) or None.
    Returns (output (B, H, 1, Dh), keys (B, H, P + 1, Dh), values (B, H, P + 1, Dh)).
    No mask: the newest token may see the whole past, and there is no future in the cache.
    """
    keys = new_key if past_keys is None else torch.cat([past_keys, new_key], dim=-2)
    values = new_value if past_values is None else torch.cat([past_values, new_value], dim=-2)
    return F.scaled_dot_product_attention(query, keys, values), keys, values


def sample_next_token(logits, temperature: float = 1.0, top_k: int | None = None, generator=None):
    """logits (B, V) -> token ids (B, 1). temperature 0 means greedy (argmax)."""
    if temperature == 0:
        return logits.argmax(dim=-1, keepdim=True)
    logits = logits / temperature  # < 1 sharpens the distribution, > 1 flattens it
    if top_k is not None:
        kth_largest = torch.topk(logits, min(top_k, logits.shape[-1]), dim=-1).values[:, [-1]]  # (B, 1)
        logits = logits.masked_fill(logits < kth_largest, float("-inf"))  # only the k best may be drawn
    probabilities = torch.softmax(logits, dim=-1)
    return torch.multinomial(probabilities, num_samples=1, generator=generator)


@torch.no_grad()
def generate(model, idx, max_new_tokens, temperature=1.0, top_k=None, use_cache=True, generator=None):
    """Extend idx (B, T) by max_new_tokens sampled tokens -> (B, T + max_new_tokens).

    With the cache each step feeds only the newest token. When the context reaches block_size the
    window must slide, the positions of every cached token change, and we recompute the cache from
    the last block_size tokens: the same result as the uncached path, which always recomputes.
    """
    block_size = model.config.block_size
    cache = None
    for _ in range(max_new_tokens):
        if not use_cache:
            logits, _ = model(idx[:, -block_size:])
        elif cache is None or len(cache) >= block_size:
            cache = KVCache(model.config.n_layer)
            logits, _ = model(idx[:, -block_size:], cache=cache)
        else:
            logits, _ = model(idx[:, -1:], cache=cache)
        next_token = sample_next_token(logits[:, -1, :], temperature, top_k, generator)  # (B, 1)
        idx = torch.cat([idx, next_token], dim=1)
    return idx


def flops_per_token(config: GPTConfig, num_parameters: int) -> int:
    """Model FLOPs to train on one token: 6N for the matmuls with the weights (2 forward, 4 backward),
    plus the attention's own matmuls, Q K^T and weights @ V: 2 * 2 * T * C forward per layer, times 3
    with the backward pass (the PaLM paper's appendix B; the causal half that is skipped is counted)."""
    return 6 * num_parameters + 12 * config.n_layer * config.n_embd * config.block_size
