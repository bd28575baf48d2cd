"""A nanoGPT-style reference model for benchmarks/gpt_throughput.py.

Written for this course from nanoGPT's public description (Karpathy, github.com/karpathy/nanoGPT,
model.py as described in its README and the "Let's build GPT" lecture), not copied from it:
GPT-2's layout with pre-LayerNorm blocks, a fused query/key/value projection, flash attention
through F.scaled_dot_product_attention(is_causal=True), a GELU MLP of width 4C, learned
position embeddings, weight tying, optional biases (off here, as in nanoGPT's shakespeare_char
training), and GPT-2's initialisation. It is the yardstick course/gpt.py is measured against, so it
is deliberately independent of course/.
"""

import math

import torch
from torch import nn
from torch.nn import functional as F


class ReferenceSelfAttention(nn.Module):
    def __init__(self, width, heads, bias):
        super().__init__()
        self.heads = heads
        self.c_attn = nn.Linear(width, 3 * width, bias=bias)
        self.c_proj = nn.Linear(width, width, bias=bias)

    def forward(self, x):
        batch, length, width = x.size()
        query, key, value = self.c_attn(x).chunk(3, dim=-1)
        split = lambda t: t.reshape(batch, length, self.heads, width // self.heads).permute(0, 2, 1, 3)
        mixed = F.scaled_dot_product_attention(split(query), split(key), split(value), is_causal=True)
        return self.c_proj(mixed.permute(0, 2, 1, 3).reshape(batch, length, width))


class ReferenceBlock(nn.Module):
    def __init__(self, width, heads, bias):
        super().__init__()
        self.ln_1 = nn.LayerNorm(width, bias=bias)
        self.attn = ReferenceSelfAttention(width, heads, bias)
        self.ln_2 = nn.LayerNorm(width, bias=bias)
        self.c_fc = nn.Linear(width, 4 * width, bias=bias)
        self.c_proj = nn.Linear(4 * width, width, bias=bias)

    def forward(self, x):
        x = x + self.attn(self.ln_1(x))
        return x + self.c_proj(F.gelu(self.c_fc(self.ln_2(x))))


class ReferenceGPT(nn.Module):
    def __init__(self, vocab_size, block_size, n_layer, n_head, n_embd, bias=False):
        super().__init__()
        self.wte = nn.Embedding(vocab_size, n_embd)
        self.wpe = nn.Embedding(block_size, n_embd)
        self.h = nn.ModuleList([ReferenceBlock(n_embd, n_head, bias) for _ in range(n_layer)])
        self.ln_f = nn.LayerNorm(n_embd, bias=bias)
        self.lm_head = nn.Linear(n_embd, vocab_size, bias=False)
        self.wte.weight = self.lm_head.weight
        for name, p in self.named_parameters():
            if p.dim() >= 2:
                std = 0.02 / math.sqrt(2 * n_layer) if name.endswith("c_proj.weight") else 0.02
                nn.init.normal_(p, 0.0, std)
            elif name.endswith("bias"):
                nn.init.zeros_(p)

    def num_parameters(self):
        return sum(p.numel() for p in self.parameters()) - self.wpe.weight.numel()

    def forward(self, idx, targets=None):
        positions = torch.arange(idx.shape[1], device=idx.device)
        x = self.wte(idx) + self.wpe(positions)
        for block in self.h:
            x = block(x)
        logits = self.lm_head(self.ln_f(x))
        loss = None if targets is None else F.cross_entropy(logits.flatten(0, 1), targets.flatten())
        return logits, loss
