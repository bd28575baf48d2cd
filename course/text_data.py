"""Tiny Shakespeare as characters: read, encode, split 90/10, draw random windows (chapter 7).

The split is nanoGPT's shakespeare_char: the first 90% of the text trains, the last 10%
validates, so validation losses compare with its published 1.4697.
"""

from pathlib import Path

import torch

DATA_PATH = Path(__file__).resolve().parent.parent / "data" / "tinyshakespeare.txt"


class CharTokenizer:
    """One token per distinct character of the text, numbered in sorted order (65 for tiny Shakespeare)."""

    def __init__(self, text: str):
        self.characters = sorted(set(text))
        self.index = {character: i for i, character in enumerate(self.characters)}

    @property
    def vocab_size(self) -> int:
        return len(self.characters)

    def encode(self, text: str) -> torch.Tensor:
        return torch.tensor([self.index[character] for character in text], dtype=torch.long)

    def decode(self, ids) -> str:
        return "".join(self.characters[i] for i in (ids.tolist() if torch.is_tensor(ids) else ids))


def load_shakespeare(path=DATA_PATH, train_fraction: float = 0.9):
    """Returns (tokenizer, train_ids, val_ids): a deterministic split by position, never shuffled,
    so that no window of the validation text was seen in training."""
    text = Path(path).read_text(encoding="utf-8")
    tokenizer = CharTokenizer(text)
    ids = tokenizer.encode(text)  # (N,)
    cut = int(len(ids) * train_fraction)
    return tokenizer, ids[:cut], ids[cut:]


def random_batch(ids, batch_size: int, block_size: int, generator=None, device="cpu", rank: int = 0, world_size: int = 1):
    """batch_size random windows of block_size + 1 tokens -> inputs x and targets y, both (B, T).

    y is x shifted one step left: at every position the model is trained to predict the next token.
    With several processes (``world_size``), every process draws the starts of the whole global batch
    of ``batch_size * world_size`` windows from the same generator and keeps its own slice, ``rank``:
    together the processes train on exactly the windows one process would draw with the larger batch.
    """
    starts = torch.randint(len(ids) - block_size, (batch_size * world_size,), generator=generator)  # (W * B,)
    starts = starts[rank * batch_size : (rank + 1) * batch_size]  # (B,): this process's part
    offsets = torch.arange(block_size + 1)  # (T + 1,)
    windows = ids[starts[:, None] + offsets[None, :]]  # (B, T + 1)
    x, y = windows[:, :-1], windows[:, 1:]
    if str(device).startswith("cuda"):  # pinned memory lets the copy overlap with the GPU's work
        return x.pin_memory().to(device, non_blocking=True), y.pin_memory().to(device, non_blocking=True)
    return x.to(device), y.to(device)
