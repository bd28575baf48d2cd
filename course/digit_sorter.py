"""Chapter 6's digit sorter: an encoder-only transformer that learns to sort a sequence of digits.

Chapter 6 uses it to compare post-LN and pre-LN stacks (with and without warm-up). Its code is kept
here, not on the chapter's page, because chapter 6's third exercise asks for a model of the same
shape (embedding and positions, a stack of encoder blocks, a final LayerNorm, a linear read-out):
the page describes it in words and equations and uses it from here.
"""

import math

import torch.nn as nn

from course.transformer import TransformerEncoderLayer, sinusoidal_positional_encoding


class DigitSorter(nn.Module):
    """An encoder-only transformer: digits in, the same digits sorted out, one prediction per position.

    h_0 = sqrt(D) * embed(digits) + sinusoidal positions; h_l = block_l(h_(l-1)) for l = 1..num_layers
    (TransformerEncoderLayer, post-LN or pre-LN by ``norm_first``); logits = output(final_norm(h_L)),
    where final_norm is a LayerNorm for pre-LN and the identity for post-LN (whose blocks end normalised).
    digits (B, T) long -> logits (B, T, 10).
    """

    def __init__(self, norm_first, num_layers, d_model=64, num_heads=4, length=12):
        super().__init__()
        self.d_model = d_model
        self.embedding = nn.Embedding(10, d_model)
        nn.init.normal_(self.embedding.weight, std=d_model**-0.5)  # times sqrt(D) below: entries of size ~1
        self.register_buffer("positions", sinusoidal_positional_encoding(length, d_model))
        self.blocks = nn.ModuleList(
            TransformerEncoderLayer(d_model, num_heads, 4 * d_model, norm_first=norm_first) for _ in range(num_layers)
        )
        self.final_norm = nn.LayerNorm(d_model) if norm_first else nn.Identity()  # post-LN already ends normalised
        self.output = nn.Linear(d_model, 10)

    def forward(self, digits):  # (B, T) -> (B, T, 10)
        x = self.embedding(digits) * math.sqrt(self.d_model) + self.positions
        for block in self.blocks:
            x = block(x)
        return self.output(self.final_norm(x))
