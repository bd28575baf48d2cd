"""A Vision Transformer (ViT) for small images, in reading order (chapter 9).

    patchify             cut images into non-overlapping p x p patches, one flat vector per patch
    PatchEmbedding       a linear map of each patch to D numbers: the image's "tokens"
    VisionTransformer    patch tokens + a class token + learned positions -> chapter 6's encoder -> a class
    load_digits          scikit-learn's 8 x 8 handwritten digits, as tensors, split once and for all
    subsample            a stratified, seeded share of a split (the training-size sweep)
    train_classifier     the training loop: a fixed number of steps, AdamW, warm-up and cosine schedule
    train_together       the same loop for several models of one architecture at once (torch.func.vmap)
    train_vit, accuracy  the loop counted in epochs, and the test metric
    SmallCNN             the baseline that assumes what a ViT must learn: locality and translation
    logistic_regression_accuracy   the other baseline: a linear classifier of the raw pixels

The model is the one of Dosovitskiy et al. (2021), "An Image is Worth 16x16 Words", at toy size:
the encoder is ``course.transformer.TransformerEncoderLayer`` (pre-LN, GELU), unchanged; only the
input differs from a sentence. Shapes: B batch, C channels, H x W image, p patch side,
N = (H / p) (W / p) patches, D model width, K classes.
"""

import copy
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


def subsample(split: ImageSplit, fraction: float, seed: int = 0) -> ImageSplit:
    """A random ``fraction`` of ``split``, the same share of each digit, fixed by ``seed``."""
    if fraction >= 1:
        return split
    generator = torch.Generator().manual_seed(seed)
    keep = []
    for digit in split.labels.unique():
        members = torch.nonzero(split.labels == digit).flatten()
        keep.append(members[torch.randperm(len(members), generator=generator)[: max(1, round(fraction * len(members)))]])
    keep = torch.cat(keep).sort().values
    return ImageSplit(split.images[keep], split.labels[keep])


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


def _batches(size: int, batch_size: int, seed: int):
    """Index batches of ``batch_size`` forever: the images in a seeded random order, epoch after epoch.

    A batch that reaches the end of an epoch is completed from the next one, so every batch is full
    (``train_together`` needs equal batches) and only the seed decides the order.
    """
    generator = torch.Generator().manual_seed(seed)
    order = torch.empty(0, dtype=torch.long)
    while True:
        while len(order) < batch_size:
            order = torch.cat([order, torch.randperm(size, generator=generator)])
        yield order[:batch_size]
        order = order[batch_size:]


def _warmup_cosine(optimizer, steps: int, warmup_steps: int):
    """Linear warm-up over ``warmup_steps``, then cosine decay to zero at ``steps``."""

    def rate(step):
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(1, steps - warmup_steps)))

    return torch.optim.lr_scheduler.LambdaLR(optimizer, rate)


def train_classifier(model: nn.Module, train: ImageSplit, steps: int, batch_size: int = 32, learning_rate: float = 3e-3,
                     weight_decay: float = 0.05, seed: int = 0, warmup_steps: int | None = None) -> list[float]:
    """``steps`` updates of AdamW on batches of ``batch_size`` images; warm-up (a tenth of the steps by default), then cosine.

    Everything it learns depends on the model's initial weights, ``seed`` (the data order) and the
    step count; returns the training loss of every step.
    """
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, weight_decay=weight_decay)
    schedule = _warmup_cosine(optimizer, steps, max(1, steps // 10) if warmup_steps is None else warmup_steps)
    batches = _batches(len(train.labels), batch_size, seed)
    losses = []
    model.train()
    for _ in range(steps):
        index = next(batches)
        loss = F.cross_entropy(model(train.images[index]), train.labels[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
    model.eval()
    return losses


def train_together(models: list[nn.Module], trains: list[ImageSplit], steps: int, seeds: list[int], batch_size: int = 32,
                   learning_rate: float = 3e-3, weight_decay: float = 0.05, warmup_steps: int | None = None) -> torch.Tensor:
    """``train_classifier`` for M models of one architecture at once: model m on ``trains[m]``, data order ``seeds[m]``.

    The models' weights are stacked along a new first axis (``torch.func.stack_module_state``) and
    one ``torch.func.vmap`` of the model runs all M forward passes as one batched computation, which
    on a CPU costs less than M small ones. The loss is the sum of the M models' mean losses, so each
    model gets the gradient of its own loss, and AdamW acts on every number separately: the same
    updates as M calls of ``train_classifier`` (without dropout, whose random draws differ), up to
    float rounding. The trained weights are written back into ``models``; returns the losses, (M, steps).
    """
    from torch.func import functional_call, stack_module_state, vmap

    params, buffers = stack_module_state(models)  # {name: (M, ...)}, new leaves that require grad
    template = copy.deepcopy(models[0]).to("meta")  # the architecture, without weights of its own

    def logits(p, b, images):
        return functional_call(template, (p, b), (images,))

    all_logits = vmap(logits, randomness="different")
    optimizer = torch.optim.AdamW(params.values(), lr=learning_rate, weight_decay=weight_decay)
    schedule = _warmup_cosine(optimizer, steps, max(1, steps // 10) if warmup_steps is None else warmup_steps)
    batches = [_batches(len(split.labels), batch_size, seed) for split, seed in zip(trains, seeds)]
    losses = torch.zeros(len(models), steps)
    template.train()
    for step in range(steps):
        indices = [next(b) for b in batches]
        images = torch.stack([split.images[i] for split, i in zip(trains, indices)])  # (M, batch, C, H, W)
        labels = torch.stack([split.labels[i] for split, i in zip(trains, indices)])  # (M, batch)
        out = all_logits(params, buffers, images)  # (M, batch, K)
        loss = F.cross_entropy(out.flatten(0, 1), labels.flatten(), reduction="none").view_as(labels).mean(1)  # (M,)
        optimizer.zero_grad()
        loss.sum().backward()
        optimizer.step()
        schedule.step()
        losses[:, step] = loss.detach()
    with torch.no_grad():
        for name, stacked in params.items():
            for m, model in enumerate(models):
                model.get_parameter(name).copy_(stacked[m])
    for model in models:
        model.eval()
    return losses


def train_vit(model: nn.Module, train: ImageSplit, epochs: int = 30, batch_size: int = 32, learning_rate: float = 3e-3,
              weight_decay: float = 0.05, seed: int = 0) -> dict:
    """``train_classifier`` for ``epochs`` epochs' worth of steps, with a one-epoch warm-up.

    Returns the history: the mean training loss of each epoch.
    """
    steps_per_epoch = math.ceil(len(train.labels) / batch_size)
    losses = train_classifier(model, train, epochs * steps_per_epoch, batch_size, learning_rate, weight_decay, seed,
                              warmup_steps=steps_per_epoch)
    return {"loss": [sum(losses[i : i + steps_per_epoch]) / steps_per_epoch for i in range(0, len(losses), steps_per_epoch)]}


# --------------------------------------------------------------------------------------------
# Baselines: what a ViT is compared with
# --------------------------------------------------------------------------------------------


class SmallCNN(nn.Module):
    """Two 3 x 3 convolutions, each with ReLU and 2 x 2 max-pooling, then a linear head (6,090 weights at the defaults).

    A convolution applies the same small kernel at every position: it assumes that nearby pixels
    belong together and that a pattern means the same anywhere in the image, the two assumptions a
    ViT does without. (B, C, 8, 8) -> (B, c1, 4, 4) -> (B, c2, 2, 2) -> logits (B, K).
    """

    def __init__(self, in_channels: int = 1, num_classes: int = 10, channels: tuple[int, int] = (16, 32), image_size: int = 8):
        super().__init__()
        c1, c2 = channels
        self.features = nn.Sequential(
            nn.Conv2d(in_channels, c1, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(c1, c2, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        )
        self.head = nn.Linear(c2 * (image_size // 4) ** 2, num_classes)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(images).flatten(1))


def logistic_regression_accuracy(train: ImageSplit, test: ImageSplit, C: float = 1.0) -> float:
    """Test accuracy of scikit-learn's multinomial logistic regression on the raw pixels (64 numbers per image).

    No notion of images at all: one weight per pixel and class. L-BFGS to convergence, deterministic.
    The fit runs on one BLAS thread: on a busy 2-core machine OpenBLAS's second thread, waiting for
    work, multiplied the CPU time of these small fits by 25 (the result is the same).
    """
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        classifier = LogisticRegression(C=C, max_iter=5000)
        classifier.fit(train.images.flatten(1).numpy(), train.labels.numpy())
        predicted = classifier.predict(test.images.flatten(1).numpy())
    return float((predicted == test.labels.numpy()).mean())
