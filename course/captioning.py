"""Attention between modalities: a text decoder that cross-attends to image patches (chapter 9).

    compose_pairs         two digits of a split side by side, one 8 x 16 image, with the two labels
    caption_tokens        the caption "<left digit name> <right digit name>" as word ids: BOS w1 w2 EOS
    caption_text          word ids back to words
    ImageCaptioner        a ViT-style encoder (patches, learned positions, chapter 6's encoder layers)
                          and chapter 6's decoder layers, whose cross-attention reads the patch features
    train_captioner       a fixed number of AdamW steps on freshly composed pairs, seeded
    exact_match           share of captions decoded exactly right (greedy)
    attention_on_halves   the share of cross-attention mass on the left and right halves of the image
                          while each word is produced

The task is built so that the cross-attention has something to find: the first word names the left
digit and the second the right one, so a decoder that reads the image must look at one half, then
at the other. Nothing tells it where to look; only the captions are supervised. Shapes: B batch,
D model width, H heads, T caption length, N patches (a grid of rows x columns).
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from course.transformer import (BOS, EOS, PAD, LearnedPositionalEmbedding, TokenEmbedding, TransformerDecoderLayer,
                                TransformerEncoderLayer)
from course.vit import ImageSplit, PatchEmbedding, _warmup_cosine

WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FIRST_WORD = 3  # word ids follow the special tokens PAD, BOS, EOS: digit d is id 3 + d
VOCAB_SIZE = FIRST_WORD + len(WORDS)


@dataclass
class CaptionSplit:
    images: torch.Tensor  # (n, 1, 8, 16) float32 in [0, 1]: two digits side by side
    digits: torch.Tensor  # (n, 2) int64: the left digit and the right digit


def compose_pairs(split: ImageSplit, n: int, generator: torch.Generator) -> CaptionSplit:
    """``n`` images made of two digits of ``split`` drawn at random (with replacement), left and right.

    The two draws are independent, so the left digit says nothing about the right one: every one of
    the 100 captions is about equally likely, and a decoder that cannot see the image can do no
    better than guess the most frequent caption.
    """
    index = torch.randint(len(split.labels), (n, 2), generator=generator)  # (n, 2): which images, left and right
    images = torch.cat([split.images[index[:, 0]], split.images[index[:, 1]]], dim=-1)  # (n, 1, 8, 16)
    return CaptionSplit(images, split.labels[index])


def caption_tokens(digits: torch.Tensor) -> torch.Tensor:
    """(n, 2) digits -> (n, 4) word ids: BOS, the left digit's name, the right digit's name, EOS."""
    n = digits.shape[0]
    return torch.cat([torch.full((n, 1), BOS), FIRST_WORD + digits, torch.full((n, 1), EOS)], dim=1)


def caption_text(tokens: torch.Tensor) -> str:
    """Word ids (a 1-d tensor, BOS optional) -> "three seven"; stops at EOS, skips what is not a word."""
    words = []
    for token in tokens.tolist():
        if token == EOS:
            break
        if token >= FIRST_WORD:
            words.append(WORDS[token - FIRST_WORD])
    return " ".join(words)


class ImageCaptioner(nn.Module):
    """Image -> patch features (encoder) -> caption, word by word (decoder with cross-attention).

    The encoder is the ViT's, without a class token (nothing is classified): patches, learned
    positions, pre-LN ``TransformerEncoderLayer``s, a final LayerNorm; its outputs, one vector per
    patch, are the decoder's *memory*. The decoder is chapter 6's: word embeddings with sinusoidal
    positions, ``TransformerDecoderLayer``s (causal self-attention over the words so far,
    cross-attention to the patch features, a feed-forward network), a linear map to the vocabulary.

    ``see_image=False`` is the control: the decoder's memory is all zeros, whatever the image, so
    it can learn only the captions' statistics (the same architecture and training otherwise).
    """

    def __init__(self, image_size: tuple[int, int] = (8, 16), patch_size: int = 2, in_channels: int = 1,
                 d_model: int = 32, num_heads: int = 4, encoder_layers: int = 1, decoder_layers: int = 1,
                 d_ff: int = 64, see_image: bool = True):
        super().__init__()
        height, width = image_size
        self.grid = (height // patch_size, width // patch_size)  # patch rows, patch columns
        self.see_image = see_image
        self.patches = PatchEmbedding(patch_size, in_channels, d_model)
        self.positions = LearnedPositionalEmbedding(self.grid[0] * self.grid[1], d_model)
        self.encoder = nn.ModuleList(
            TransformerEncoderLayer(d_model, num_heads, d_ff, norm_first=True, activation="gelu")
            for _ in range(encoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(d_model)
        self.words = TokenEmbedding(VOCAB_SIZE, d_model, max_len=8)
        self.decoder = nn.ModuleList(
            TransformerDecoderLayer(d_model, num_heads, d_ff, norm_first=True) for _ in range(decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(d_model)
        self.output = nn.Linear(d_model, VOCAB_SIZE)

    def encode(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> patch features (B, N, D), patches in row-major order (zeros if blind)."""
        if not self.see_image:  # the control: no image reaches the decoder
            return images.new_zeros(images.shape[0], self.grid[0] * self.grid[1], self.output.in_features)
        x = self.positions(self.patches(images))
        for layer in self.encoder:
            x = layer(x)  # no mask: every patch may look at every patch
        return self.encoder_norm(x)

    def decode(self, words_in: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """words_in (B, T) -> logits (B, T, V); position t sees words 0..t and every patch."""
        x = self.words(words_in)
        for layer in self.decoder:
            x = layer(x, memory)
        return self.output(self.decoder_norm(x))

    def forward(self, images: torch.Tensor, words_in: torch.Tensor) -> torch.Tensor:
        return self.decode(words_in, self.encode(images))

    @torch.no_grad()
    def greedy_caption(self, images: torch.Tensor, max_words: int = 3) -> torch.Tensor:
        """The most likely word at each step, fed back in: (B, max_words + 1) ids, BOS first.

        Afterwards each decoder layer's ``cross_attention_weights`` (B, H, T, N) are those of the
        caption it produced: row t is what the decoder looked at while producing word t + 1.
        """
        memory = self.encode(images)
        words = torch.full((images.shape[0], 1), BOS, dtype=torch.long, device=images.device)
        for _ in range(max_words):
            next_word = self.decode(words, memory)[:, -1].argmax(-1)  # (B,)
            words = torch.cat([words, next_word[:, None]], dim=1)
        self.decode(words[:, :-1], memory)  # once more on the whole caption, for its attention weights
        return words

    def cross_attention(self) -> torch.Tensor:
        """After a forward pass: the decoder's cross-attention, mean over layers and heads, (B, T, rows, columns)."""
        weights = torch.stack([layer.cross_attention_weights for layer in self.decoder]).mean(dim=(0, 2))  # (B, T, N)
        return weights.unflatten(-1, self.grid)


def train_captioner(model: ImageCaptioner, train: ImageSplit, steps: int, batch_size: int = 64,
                    learning_rate: float = 3e-3, weight_decay: float = 0.01, seed: int = 0) -> list[float]:
    """``steps`` AdamW updates (warm-up over a tenth, then cosine), each on ``batch_size`` new pairs of ``train``.

    The pairs are composed afresh at every step by a generator seeded with ``seed``, so what the
    model learns depends only on its initial weights, ``seed`` and ``steps``. The loss is the
    cross-entropy of the three words to predict (both names and EOS), teacher-forced.
    Returns the loss of every step.
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    schedule = _warmup_cosine(optimizer, steps, max(1, steps // 10))
    losses = []
    model.train()
    for _ in range(steps):
        batch = compose_pairs(train, batch_size, generator)
        tokens = caption_tokens(batch.digits)  # (B, 4)
        logits = model(batch.images, tokens[:, :-1])  # (B, 3, V): predict tokens[:, 1:]
        loss = F.cross_entropy(logits.flatten(0, 1), tokens[:, 1:].flatten(), ignore_index=PAD)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    model.eval()
    return losses


@torch.no_grad()
def exact_match(model: ImageCaptioner, split: CaptionSplit) -> float:
    """Share of images whose greedy caption (both words and the EOS after them) is exactly right."""
    model.eval()
    produced = model.greedy_caption(split.images)[:, 1:]  # (n, 3)
    return (produced == caption_tokens(split.digits)[:, 1:]).all(dim=1).float().mean().item()


@torch.no_grad()
def attention_on_halves(model: ImageCaptioner, split: CaptionSplit) -> dict[str, float]:
    """Where the cross-attention goes while the model writes its own caption, over all of ``split``.

    ``left_first``: the share of the attention mass on the left half of the patches while the first
    word is produced (query 0, after BOS); ``right_second``: on the right half while the second word
    is produced. Each is the mean over images of a share in [0, 1]; attention that ignored the image
    and spread evenly over the patches would give exactly 0.5 to each half.
    """
    model.eval()
    model.greedy_caption(split.images)
    weights = model.cross_attention()  # (n, T, rows, columns)
    half = weights.shape[-1] // 2
    left = weights[..., :half].sum(dim=(-2, -1)) / weights.sum(dim=(-2, -1))  # (n, T)
    return {"left_first": left[:, 0].mean().item(), "right_second": (1 - left[:, 1]).mean().item()}
