"""A Vision Transformer (ViT) for small images, in reading order (chapter 9).

    patchify             cut images into non-overlapping p x p patches, one flat vector per patch
    PatchEmbedding       a linear map of each patch to D numbers: the image's "tokens"
    VisionTransformer    patch tokens + a class token + learned positions -> chapter 6's encoder -> a class
    load_digits          scikit-learn's 8 x 8 handwritten digits, as tensors, split once and for all
    train_vit, accuracy  the training loop (AdamW, warm-up and cosine schedule) and the test metric

The model is the one of Dosovitskiy et al. (2021), "An Image is Worth 16x16 Words", at toy size:
the encoder is ``course.transformer.TransformerEncoderLayer`` (pre-LN, GELU), unchanged; only the
input differs from a sentence. Shapes: B batch, C channels, H x W image, p patch side,
N = (H / p) (W / p) patches, D model width, K classes.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

from course.transformer import LearnedPositionalEmbedding, TransformerEncoderLayer


def patchify(images: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(B, C, H, W) -> (B, N, C p p): patches in row-major order, each flattened channel, row, column.

    That order of a patch's numbers is the order of a ``Conv2d`` weight (D, C, p, p) flattened, so
    ``PatchEmbedding`` is exactly a convolution with kernel p and stride p.
    """
    B, C, H, W = images.shape
    if H % patch_size or W % patch_size:
        raise ValueError(f"image of {H} x {W} pixels does not split into {patch_size} x {patch_size} patches")
    columns = F.unfold(images, kernel_size=patch_size, stride=patch_size)  # (B, C p p, N): one column per patch
    return columns.transpose(1, 2)  # (B, N, C p p)


class PatchEmbedding(nn.Module):
    """Each patch, flattened, times one matrix: x_n = W patch_n + b, a (B, N, D) sequence of tokens."""

    def __init__(self, patch_size: int, in_channels: int, d_model: int):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Linear(in_channels * patch_size**2, d_model)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.proj(patchify(images, self.patch_size))  # (B, N, D)

    def as_conv2d(self) -> nn.Conv2d:
        """The same map as a Conv2d(kernel = stride = p), sharing nothing: for checking."""
        d_model, features = self.proj.weight.shape
        channels = features // self.patch_size**2
        conv = nn.Conv2d(channels, d_model, self.patch_size, stride=self.patch_size)
        with torch.no_grad():
            conv.weight.copy_(self.proj.weight.view(d_model, channels, self.patch_size, self.patch_size))
            conv.bias.copy_(self.proj.bias)
        return conv


class VisionTransformer(nn.Module):
    """Patches -> tokens; a learned class token in front; learned positions; pre-LN encoder; a linear head.

    The class token is one extra trained vector, the same for every image. It has no pixels of its
    own, so everything it knows after the encoder it gathered by attending to the patches; its final
    state is what the head classifies. ``class_attention()`` returns what it looked at.
    """

    def __init__(self, image_size: int = 8, patch_size: int = 2, in_channels: int = 1, num_classes: int = 10,
                 d_model: int = 64, num_heads: int = 4, num_layers: int = 2, d_ff: int = 128, dropout: float = 0.1):
        super().__init__()
        self.grid = image_size // patch_size  # patches per side
        self.patches = PatchEmbedding(patch_size, in_channels, d_model)
        self.class_token = nn.Parameter(torch.zeros(1, 1, d_model))
        nn.init.normal_(self.class_token, std=0.02)
        self.positions = LearnedPositionalEmbedding(self.grid**2 + 1, d_model)  # the class token has a position too
        self.dropout = nn.Dropout(dropout)
        self.blocks = nn.ModuleList(
            TransformerEncoderLayer(d_model, num_heads, d_ff, norm_first=True, dropout=dropout, activation="gelu")
            for _ in range(num_layers)
        )
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W) -> logits (B, K)."""
        tokens = self.patches(images)  # (B, N, D)
        B = tokens.shape[0]
        x = torch.cat([self.class_token.expand(B, -1, -1), tokens], dim=1)  # (B, 1 + N, D)
        x = self.dropout(self.positions(x))
        for block in self.blocks:
            x = block(x)  # no mask: every patch may look at every patch
        return self.head(self.norm(x[:, 0]))  # the class token's final state, (B, D) -> (B, K)

    def class_attention(self, layer: int = -1) -> torch.Tensor:
        """After a forward pass: the class token's weights over the patches, (B, H, grid, grid).

        Row 0 of each head's (1 + N, 1 + N) weights, without the class token's weight on itself.
        """
        weights = self.blocks[layer].attention_weights  # (B, H, 1 + N, 1 + N)
        B, H = weights.shape[:2]
        return weights[:, :, 0, 1:].reshape(B, H, self.grid, self.grid)


# --------------------------------------------------------------------------------------------
# The data and the training loop
# --------------------------------------------------------------------------------------------


@dataclass
class ImageSplit:
    images: torch.Tensor  # (n, 1, 8, 8) float32 in [0, 1]
    labels: torch.Tensor  # (n,) int64 in 0 .. 9


def load_digits(test_fraction: float = 0.25, seed: int = 0) -> tuple[ImageSplit, ImageSplit]:
    """scikit-learn's handwritten digits (1,797 images of 8 x 8 pixels, 16 grey levels), train and test.

    The images ship inside scikit-learn (``sklearn.datasets.load_digits``: the test set of the
    UCI "Optical Recognition of Handwritten Digits" data, Alpaydin and Kaynak, 1998, CC BY 4.0), so
    nothing is downloaded. The split is random but fixed by ``seed``, and stratified: each digit
    keeps the same share of test images.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    digits = sklearn_digits()
    images = torch.tensor(digits.images, dtype=torch.float32)[:, None] / 16.0  # (n, 1, 8, 8) in [0, 1]
    labels = torch.tensor(digits.target, dtype=torch.long)
    generator = torch.Generator().manual_seed(seed)
    test_index = []
    for digit in range(10):
        members = torch.nonzero(labels == digit).flatten()
        members = members[torch.randperm(len(members), generator=generator)]
        test_index.append(members[: round(test_fraction * len(members))])
    is_test = torch.zeros(len(labels), dtype=torch.bool)
    is_test[torch.cat(test_index)] = True
    return ImageSplit(images[~is_test], labels[~is_test]), ImageSplit(images[is_test], labels[is_test])


@torch.no_grad()
def accuracy(model: nn.Module, split: ImageSplit, batch_size: int = 512) -> float:
    """Share of images whose most likely class is the right one (dropout off)."""
    was_training = model.training
    model.eval()
    correct = sum(
        (model(split.images[i : i + batch_size]).argmax(-1) == split.labels[i : i + batch_size]).sum().item()
        for i in range(0, len(split.labels), batch_size)
    )
    model.train(was_training)
    return correct / len(split.labels)


def train_vit(model: nn.Module, train: ImageSplit, epochs: int = 30, batch_size: int = 32, learning_rate: float = 3e-3,
              weight_decay: float = 0.05, seed: int = 0, test: ImageSplit | None = None) -> dict:
    """AdamW with a one-epoch linear warm-up, then cosine decay to zero.

    Returns the history: the mean training loss of each epoch, and the test accuracy after each if ``test`` is given.
    """
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    steps_per_epoch = math.ceil(len(train.labels) / batch_size)
    total, warmup = epochs * steps_per_epoch, steps_per_epoch

    def rate(step):
        if step < warmup:
            return (step + 1) / warmup
        return 0.5 * (1 + math.cos(math.pi * (step - warmup) / (total - warmup)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    history = {"loss": [], "test_accuracy": []}
    model.train()
    for _ in range(epochs):
        order = torch.randperm(len(train.labels), generator=generator)
        losses = []
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            loss = F.cross_entropy(model(train.images[index]), train.labels[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        history["loss"].append(sum(losses) / len(losses))
        if test is not None:
            history["test_accuracy"].append(accuracy(model, test))
    model.eval()
    return history
