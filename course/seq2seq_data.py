"""The two sequence-to-sequence tasks of chapters 1, 2 and 6, generated in code (nothing to download).

* **Dates** (:func:`date_pairs`): a date written one of the many ways people write it,
  ``"Tuesday, 3 March 1998"``, ``"03/03/98"``, ``"March 3rd, 1998"``, ``"3 mar 1998"``, ... ->
  its ISO form ``"1998-03-03"``, one character per token. Its alignment heatmaps are easy to read.
* **Reversal** (:func:`reversal_pairs`): a random string of the letters a-j -> the same string backwards.
  Its length is chosen freely, so accuracy can be plotted against input length.
* **Copying** (:func:`copy_pairs`): a long random string of the same letters -> the same string.
  Output character t is input character t, an alignment fixed in absolute positions; reversal's,
  n - 1 - t, depends on the length n.

Conventions, fixed once so that no input is ambiguous:

* numeric dates are **day first** (``03/04/1998`` is 3 April), as in most of the world;
* years lie in 1950-2049, so a two-digit year ``yy`` means 19yy when yy >= 50 and 20yy otherwise.

Token ids: ``PAD = 0`` (padding), ``BOS = 1`` (begin of sequence, fed to the decoder first),
``EOS = 2`` (end of sequence, the decoder's last output). A batch (:func:`make_batch`) holds

    src          (B, S) long   source ids, padded with PAD
    src_lengths  (B,)   long   number of real tokens in each source
    tgt_in       (B, T) long   BOS + target ids    (what the decoder reads, teacher forcing)
    tgt_out      (B, T) long   target ids + EOS    (what the decoder must predict)
"""

import datetime
import random
import string
from dataclasses import dataclass

import torch

PAD, BOS, EOS = 0, 1, 2
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>")


class Vocabulary:
    """Characters <-> integer ids; ids 0, 1, 2 are PAD, BOS and EOS."""

    def __init__(self, characters):
        self.tokens = list(SPECIAL_TOKENS) + sorted(set(characters))
        self.index = {token: i for i, token in enumerate(self.tokens)}

    def __len__(self):
        return len(self.tokens)

    def encode(self, text: str) -> list[int]:
        return [self.index[character] for character in text]

    def decode(self, ids) -> str:
        """Ids -> text, stopping at the first EOS and skipping PAD and BOS."""
        characters = []
        for i in (ids.tolist() if isinstance(ids, torch.Tensor) else ids):
            if i == EOS:
                break
            if i not in (PAD, BOS):
                characters.append(self.tokens[i])
        return "".join(characters)

    def labels(self, ids) -> list[str]:
        """One readable label per id, for the axes of a heatmap; a space shows as an open box."""
        ids = ids.tolist() if isinstance(ids, torch.Tensor) else ids
        return ["\u2423" if self.tokens[i] == " " else self.tokens[i] for i in ids]


# ----------------------------------------------------------------------------------------------
# Task 1: dates

FIRST_YEAR, LAST_YEAR = 1950, 2049
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"]
WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def ordinal(day: int) -> str:
    """1 -> '1st', 2 -> '2nd', 3 -> '3rd', 11 -> '11th', 22 -> '22nd'."""
    if 11 <= day % 100 <= 13:
        return f"{day}th"
    return f"{day}{ {1: 'st', 2: 'nd', 3: 'rd'}.get(day % 10, 'th')}"


# Each format turns a datetime.date into text. Numeric formats are day first; month and weekday
# names are English and spelled out here (not strftime, whose names depend on the machine's locale).
DATE_FORMATS = {
    "weekday, day month year": lambda d: f"{WEEKDAYS[d.weekday()]}, {d.day} {MONTHS[d.month - 1]} {d.year}",
    "day month year": lambda d: f"{d.day} {MONTHS[d.month - 1]} {d.year}",
    "month day, year": lambda d: f"{MONTHS[d.month - 1]} {d.day}, {d.year}",
    "month dayth, year": lambda d: f"{MONTHS[d.month - 1]} {ordinal(d.day)}, {d.year}",
    "dayth of month year": lambda d: f"{ordinal(d.day)} of {MONTHS[d.month - 1]} {d.year}",
    "day mon year (lower case)": lambda d: f"{d.day} {MONTHS[d.month - 1][:3].lower()} {d.year}",
    "day Mon yy": lambda d: f"{d.day} {MONTHS[d.month - 1][:3]} {d.year % 100:02d}",
    "Wkd day Mon year": lambda d: f"{WEEKDAYS[d.weekday()][:3]} {d.day} {MONTHS[d.month - 1][:3]} {d.year}",
    "MONTH DAY, YEAR": lambda d: f"{MONTHS[d.month - 1].upper()} {d.day}, {d.year}",
    "dd-Mon-yyyy": lambda d: f"{d.day:02d}-{MONTHS[d.month - 1][:3]}-{d.year}",
    "dd/mm/yyyy": lambda d: f"{d.day:02d}/{d.month:02d}/{d.year}",
    "dd/mm/yy": lambda d: f"{d.day:02d}/{d.month:02d}/{d.year % 100:02d}",
    "d.m.yyyy": lambda d: f"{d.day}.{d.month}.{d.year}",
    "yyyy/mm/dd": lambda d: f"{d.year}/{d.month:02d}/{d.day:02d}",
    "yyyy-mm-dd": lambda d: d.isoformat(),
}

DATE_SOURCE_VOCAB = Vocabulary(string.ascii_letters + string.digits + " ,./-")
DATE_TARGET_VOCAB = Vocabulary(string.digits + "-")


def random_date(rng: random.Random) -> datetime.date:
    first = datetime.date(FIRST_YEAR, 1, 1).toordinal()
    last = datetime.date(LAST_YEAR, 12, 31).toordinal()
    return datetime.date.fromordinal(rng.randint(first, last))


def date_pairs(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (written date, ISO date) pairs; each picks a random date and a random format."""
    rng = random.Random(seed)
    formats = list(DATE_FORMATS.values())
    pairs = []
    for _ in range(n):
        date = random_date(rng)
        pairs.append((rng.choice(formats)(date), date.isoformat()))
    return pairs


# ----------------------------------------------------------------------------------------------
# Task 2: reversal, with lengths under our control

# Ten letters: few enough that the fixed-context model of chapter 1 learns short strings within
# the book's training budget, enough to read the heatmaps.
REVERSAL_ALPHABET = "abcdefghij"
REVERSAL_VOCAB = Vocabulary(REVERSAL_ALPHABET)


def reversal_pairs(n: int, min_len: int, max_len: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (random letters, the same letters reversed) pairs, lengths uniform in [min_len, max_len]."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        length = rng.randint(min_len, max_len)
        text = "".join(rng.choice(REVERSAL_ALPHABET) for _ in range(length))
        pairs.append((text, text[::-1]))
    return pairs


def copy_pairs(n: int, min_len: int, max_len: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` (random letters, the same letters) pairs, lengths uniform in [min_len, max_len]."""
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        length = rng.randint(min_len, max_len)
        text = "".join(rng.choice(REVERSAL_ALPHABET) for _ in range(length))
        pairs.append((text, text))
    return pairs


# ----------------------------------------------------------------------------------------------
# Splits and batches


def split_pairs(pairs, val_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0) -> dict:
    """Split into ``{"train", "val", "test"}`` lists that share no target (hence no source either).

    The split is by *target*: all the ways of writing 3 March 1998 go to the same split, so the
    test set measures generalisation to dates never seen in training, not recall of a format.
    Deterministic: the same pairs and seed give the same split.
    """
    targets = sorted({target for _, target in pairs})
    random.Random(seed).shuffle(targets)
    n_val, n_test = round(val_fraction * len(targets)), round(test_fraction * len(targets))
    split_of = {}
    for i, target in enumerate(targets):
        split_of[target] = "val" if i < n_val else "test" if i < n_val + n_test else "train"
    splits = {"train": [], "val": [], "test": []}
    for pair in pairs:
        splits[split_of[pair[1]]].append(pair)
    return splits


@dataclass
class Batch:
    src: torch.Tensor  # (B, S) long
    src_lengths: torch.Tensor  # (B,) long
    tgt_in: torch.Tensor  # (B, T) long: BOS + target
    tgt_out: torch.Tensor  # (B, T) long: target + EOS

    def to(self, device):
        return Batch(self.src.to(device), self.src_lengths.to(device), self.tgt_in.to(device), self.tgt_out.to(device))


def pad(sequences: list[list[int]]) -> torch.Tensor:
    """List of id lists -> (B, longest) long tensor, padded with PAD on the right."""
    out = torch.full((len(sequences), max(len(s) for s in sequences)), PAD, dtype=torch.long)
    for row, sequence in enumerate(sequences):
        out[row, : len(sequence)] = torch.tensor(sequence, dtype=torch.long)
    return out


def make_batch(pairs, source_vocab: Vocabulary, target_vocab: Vocabulary) -> Batch:
    """(source text, target text) pairs -> a padded :class:`Batch`."""
    return collate([(source_vocab.encode(source), target_vocab.encode(target)) for source, target in pairs])


def collate(pairs: list[tuple[list[int], list[int]]]) -> Batch:
    """(source ids, target ids) pairs -> a Batch: src padded with PAD, the lengths, BOS + target, target + EOS."""
    sources = [list(source) for source, _ in pairs]
    targets = [list(target) for _, target in pairs]
    return Batch(
        src=pad(sources),
        src_lengths=torch.tensor([len(s) for s in sources], dtype=torch.long),
        tgt_in=pad([[BOS] + t for t in targets]),
        tgt_out=pad([t + [EOS] for t in targets]),
    )


@dataclass
class Task:
    """A task ready to train on: its splits and its two vocabularies."""

    name: str
    splits: dict
    source_vocab: Vocabulary
    target_vocab: Vocabulary


def date_task(n: int = 20_000, seed: int = 0) -> Task:
    """Dates: ``n`` pairs split 80/10/10 by date."""
    return Task("dates", split_pairs(date_pairs(n, seed), seed=seed), DATE_SOURCE_VOCAB, DATE_TARGET_VOCAB)


def reversal_task(n: int = 20_000, min_len: int = 4, max_len: int = 40, seed: int = 0) -> Task:
    """Reversal: ``n`` pairs with lengths uniform in [min_len, max_len], split 80/10/10."""
    return Task("reversal", split_pairs(reversal_pairs(n, min_len, max_len, seed), seed=seed), REVERSAL_VOCAB, REVERSAL_VOCAB)


def copy_task(n: int = 20_000, min_len: int = 64, max_len: int = 96, seed: int = 0) -> Task:
    """Copying long strings: ``n`` pairs with lengths uniform in [min_len, max_len], split 80/10/10."""
    return Task("copy", split_pairs(copy_pairs(n, min_len, max_len, seed), seed=seed), REVERSAL_VOCAB, REVERSAL_VOCAB)
