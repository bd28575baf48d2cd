"""Byte-pair encoding (Sennrich, Haddow and Birch, 2016) from scratch: subwords for chapter 8's models.

    learn_merges          the merges, learned from word counts: start from characters and an end-of-word
                          marker, merge the most frequent adjacent pair everywhere, again and again
    segment               one word -> its subwords, applying the learned merges in the order learned
    merge_pair            one merge applied to a word's symbols: every occurrence of the pair joined, left to right
    BPEVocabulary         subwords <-> ids, with the word vocabulary's interface (encode words, decode to words)
    subword_data          chapter 8's TranslationData with both languages in subwords

A word is a token of ``course.translation.tokenize`` ("l'", "éternel", ","). It starts as its
characters followed by ``END_OF_WORD`` ("</w>"), so that "s" at the end of a word ("s</w>", a plural)
and "s" inside one are different symbols, and decoding knows where each word ends. Ties between
pairs of the same count go to the smallest pair in Python's string order: learning is deterministic.
"""

from __future__ import annotations

import heapq
import zlib
from collections import Counter, defaultdict

import torch

from course.seq2seq_data import BOS, EOS, PAD

END_OF_WORD = "</w>"
UNK = 3
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")


def learn_merges(word_counts: dict[str, int], num_merges: int) -> list[tuple[str, str]]:
    """The first ``num_merges`` merges of byte-pair encoding on ``word_counts`` ({word: count}).

    Each merge is the adjacent pair of symbols with the largest count, where a pair counts each place
    it occurs in a word times the word's count; ties go to the smallest pair (first symbol, then
    second, in string order). The pair is then merged everywhere, left to right without overlaps
    ("a a a" -> "aa a"). Stops early when no word has two symbols left.

    Incremental: the pair counts are kept (with a heap to find the largest) and only the words that
    contain the merged pair are counted again, so that thousands of merges take a second or two.
    """
    words = [list(word) + [END_OF_WORD] for word in word_counts]
    freqs = list(word_counts.values())
    counts: Counter = Counter()
    where: dict[tuple[str, str], set[int]] = defaultdict(set)  # pair -> the words that contain it
    for i, (symbols, freq) in enumerate(zip(words, freqs)):
        for pair in zip(symbols, symbols[1:]):
            counts[pair] += freq
            where[pair].add(i)
    heap = [(-count, pair) for pair, count in counts.items()]
    heapq.heapify(heap)
    merges = []
    while len(merges) < num_merges and heap:
        negative, pair = heapq.heappop(heap)
        if counts.get(pair, 0) != -negative or negative == 0:
            continue  # an entry left from before the pair's count changed
        merges.append(pair)
        first, second = pair
        changed = set()
        for i in sorted(where.pop(pair)):
            symbols, freq = words[i], freqs[i]
            merged = merge_pair(symbols, first, second)
            words[i] = merged
            before, after = Counter(zip(symbols, symbols[1:])), Counter(zip(merged, merged[1:]))
            for other in before.keys() | after.keys():  # only the pairs around the merged ones change
                if before[other] != after[other]:
                    counts[other] += (after[other] - before[other]) * freq
                    changed.add(other)
                    if after[other]:
                        where[other].add(i)
        for other in changed:
            if counts[other] > 0:
                heapq.heappush(heap, (-counts[other], other))
            else:
                del counts[other]
                where.pop(other, None)
    return merges


def merge_pair(symbols: list[str], first: str, second: str) -> list[str]:
    """``symbols`` with every occurrence of ``first`` followed by ``second`` joined into one, left to right
    (``a a a`` merged on ``(a, a)`` gives ``aa a``)."""
    merged, k = [], 0
    while k < len(symbols):
        if k + 1 < len(symbols) and symbols[k] == first and symbols[k + 1] == second:
            merged.append(first + second)
            k += 2
        else:
            merged.append(symbols[k])
            k += 1
    return merged


def segment(word: str, ranks: dict[tuple[str, str], int]) -> list[str]:
    """``word`` as subwords: its characters and END_OF_WORD, then each merge of ``ranks`` ({pair: its
    position in the learned order}) applied in that order, every occurrence, left to right.

    The same as trying every merge in turn, but only the pairs present are looked at: the next merge
    applied is the earliest-learned pair of the word that comes after the last merge applied.
    """
    symbols = list(word) + [END_OF_WORD]
    last = -1
    while len(symbols) > 1:
        candidates = [(ranks[pair], pair) for pair in zip(symbols, symbols[1:]) if ranks.get(pair, -1) > last]
        if not candidates:
            break
        last, (first, second) = min(candidates)
        symbols = merge_pair(symbols, first, second)
    return symbols


class BPEVocabulary:
    """Subwords <-> ids, learned from tokenised sentences, with :class:`course.translation.WordVocabulary`'s
    interface: ``encode`` takes a sentence's *words* and gives subword ids, ``decode`` gives words back.

    Ids 0-3 are PAD, BOS, EOS, UNK; then every symbol of the training words before any merge (their
    characters and END_OF_WORD), in string order; then one symbol per merge, in the order learned.
    ``size`` (the whole vocabulary, special tokens included) sets the number of merges. A character
    never seen in training becomes UNK: the only way a subword can be unknown.
    """

    def __init__(self, sentences: list[list[str]], size: int):
        counts = Counter(token for sentence in sentences for token in sentence)
        alphabet = sorted({character for word in counts for character in word} | {END_OF_WORD})
        num_merges = size - len(SPECIAL_TOKENS) - len(alphabet)
        if num_merges < 0:
            raise ValueError(f"size {size} is below the {len(SPECIAL_TOKENS) + len(alphabet)} symbols before any merge")
        self.merges = learn_merges(dict(sorted(counts.items())), num_merges)
        self.ranks = {pair: rank for rank, pair in enumerate(self.merges)}
        self.tokens = list(SPECIAL_TOKENS) + alphabet + [first + second for first, second in self.merges]
        self.index = {token: i for i, token in enumerate(self.tokens)}
        self._cache: dict[str, list[str]] = {}

    def __len__(self) -> int:
        return len(self.tokens)

    def subwords(self, word: str) -> list[str]:
        """The subwords of one word (kept: a corpus repeats its words)."""
        if word not in self._cache:
            self._cache[word] = segment(word, self.ranks)
        return self._cache[word]

    def encode(self, words: list[str]) -> list[int]:
        return [self.index.get(symbol, UNK) for word in words for symbol in self.subwords(word)]

    def decode(self, ids) -> list[str]:
        """Ids -> words, stopping at the first EOS, skipping PAD and BOS. A word ends with the subword that
        ends with END_OF_WORD; a last word left unfinished is kept as it is; UNK reads "<unk>"."""
        words, current = [], ""
        for i in ids.tolist() if isinstance(ids, torch.Tensor) else ids:
            if i == EOS:
                break
            if i in (PAD, BOS):
                continue
            symbol = self.tokens[i]
            if symbol.endswith(END_OF_WORD):
                words.append(current + symbol[: -len(END_OF_WORD)])
                current = ""
            else:
                current += symbol
        if current:
            words.append(current)
        return words

    def unknown_rate(self, sentences: list[list[str]]) -> float:
        """Fraction of the *words* of ``sentences`` whose subwords include UNK (comparable with
        :func:`course.translation.unknown_rate`, which counts the same words)."""
        total = sum(len(s) for s in sentences)
        unknown = sum(UNK in self.encode([word]) for s in sentences for word in s)
        return unknown / total if total else 0.0


def subword_data(words):
    """Chapter 8's :class:`course.translation.TranslationData` ``words`` re-encoded in subwords: one BPE
    vocabulary per language, learned on the training split's words, each as large as that language's
    word vocabulary (so a model has the same embedding and output sizes, the same parameter count)."""
    from course.translation import TranslationData, tokenize

    tokens = {name: ([tokenize(p.english) for p in split], [tokenize(p.french) for p in split])
              for name, split in words.pairs.items()}
    source_vocab = BPEVocabulary(tokens["train"][0], len(words.source_vocab))
    target_vocab = BPEVocabulary(tokens["train"][1], len(words.target_vocab))
    ids = {name: [(source_vocab.encode(s), target_vocab.encode(t)) for s, t in zip(*tokens[name])] for name in words.pairs}
    # what a saved model must have been trained with: the merges themselves, through a checksum
    merges = zlib.crc32(repr((source_vocab.merges, target_vocab.merges)).encode())
    settings = dict(words.settings, tokenizer="bpe", merges_crc32=merges)
    return TranslationData(words.pairs, ids, source_vocab, target_vocab, settings)
