"""Translating real sentences (chapter 8): the corpus, words, batches, training, beam search and BLEU.

    load_corpus, split_corpus        the English-French Bible verses shipped in data/, deterministic splits
    tokenize, detokenize             lower-cased words, punctuation and French elisions as their own tokens
    WordVocabulary, unknown_rate     words seen at least ``min_count`` times in training; the rest is <unk>
    collate                          id sequences -> a padded Batch (course.seq2seq_data's, shared with chapters 1-6)
    translation_data                 all of the above at once: a TranslationData ready to train on
    train_translation                the training loop (Adam, clipping, optional warm-up), step budget
    decoder_steps                    any of the course's three models as step(prev_tokens, state) -> logits
    greedy_translate, beam_search    decoding, batched; beam search with length normalisation
    exhaustive_search                every hypothesis scored: what beam search approximates (tests)
    corpus_scores, bleu_by_length    BLEU and chrF with sacrebleu, overall and per source length
    paired_bootstrap                 a BLEU or chrF difference between two systems, with its 95% interval

Token ids: PAD = 0, BOS = 1, EOS = 2 as in chapters 1-6, and UNK = 3 for words outside the vocabulary.
Shapes: B batch, K beam size, S source length, T target length, V target vocabulary size.
"""

from __future__ import annotations

import functools
import gzip
import math
import random
import re
import time
import zlib
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import torch
import torch.nn.functional as F

import course
from course.seq2seq_data import BOS, EOS, PAD, collate  # collate: id pairs -> a padded Batch, as in chapters 1-6

UNK = 3
SPECIAL_TOKENS = ("<pad>", "<bos>", "<eos>", "<unk>")
CORPUS_PATH = Path(__file__).resolve().parent.parent / "data" / "bible_en_fr.tsv.gz"

# The chapter's settings. Training these models takes longer than a chapter may run on a 2-core CPU,
# so the chapter evaluates checkpoints that `python benchmarks/translation.py --train` writes into
# data/translation_models/<profile>/ (the "book" ones ship with the course: small models, stored in
# float16). "full" (COURSE_PROFILE=full) trains the same models four times longer on every verse of up
# to 25 words (2.5 times the pairs): what a 2-core CPU trains in under an hour (benchmarks/README.md).
CORPUS = {
    "book": dict(max_words=16, min_count=3),
    "full": dict(max_words=25, min_count=3),
}[course.PROFILE]
MODEL_NAMES = ("fixed_context", "bahdanau", "transformer")
# The transformer again, trained on subwords (course.bpe) instead of words: same sizes, optimiser, steps
# and batches of pairs (`python benchmarks/translation.py --train --tokenizer bpe`).
SUBWORD_MODEL = "transformer_bpe"
# The same sizes in both profiles: models larger than these want more than a 2-core CPU.
MODEL_SIZES = {
    "fixed_context": dict(embed_dim=64, hidden_size=128),
    "bahdanau": dict(embed_dim=64, hidden_size=128, attention_size=64),
    "transformer": dict(d_model=128, num_heads=4, num_layers=2, d_ff=256, dropout=0.1),
}
MODEL_SIZES[SUBWORD_MODEL] = MODEL_SIZES["transformer"]
# The same budget for every model: the same batches, the same number of steps; the weights kept are
# those of the evaluation (every eval_every steps) with the lowest validation loss.
TRAINING = {
    "book": dict(steps=600, batch_size=64, eval_every=100, seed=0),
    "full": dict(steps=2_400, batch_size=64, eval_every=300, seed=0),
}[course.PROFILE]
OPTIMISER = {  # each architecture at a learning rate it trains well with (transformers want a warm-up)
    "fixed_context": dict(lr=3e-3),
    "bahdanau": dict(lr=3e-3),
    "transformer": dict(lr=1e-3, warmup=100),
}
OPTIMISER[SUBWORD_MODEL] = OPTIMISER["transformer"]
CHECKPOINT_FOLDER = Path(__file__).resolve().parent.parent / "data" / "translation_models" / course.PROFILE


# ----------------------------------------------------------------------------------------------
# The corpus


class Pair(NamedTuple):
    reference: tuple[int, int, int]  # (book, chapter, verse), books numbered 1 (Genesis) to 66 (Revelation)
    english: str
    french: str


def load_corpus(path: Path | str = CORPUS_PATH, max_words: int | None = None) -> list[Pair]:
    """The verse pairs of ``data/bible_en_fr.tsv.gz`` (see data/README.md), in Bible order.

    ``max_words`` keeps the pairs whose two sides have at most that many words (split on spaces).
    """
    pairs = []
    with gzip.open(path, "rt", encoding="utf-8") as lines:
        for line in lines:
            book, chapter, verse, english, french = line.rstrip("\n").split("\t")
            if max_words is None or max(len(english.split()), len(french.split())) <= max_words:
                pairs.append(Pair((int(book), int(chapter), int(verse)), english, french))
    return pairs


def split_of_chapter(book: int, chapter: int, val_fraction: float, test_fraction: float) -> str:
    """"train", "val" or "test" for a whole chapter, from a hash of its name: stable across runs and machines."""
    position = zlib.crc32(f"{book}:{chapter}".encode()) / 2**32  # uniform in [0, 1)
    return "val" if position < val_fraction else "test" if position < val_fraction + test_fraction else "train"


def split_corpus(pairs: list[Pair], val_fraction: float = 0.05, test_fraction: float = 0.10) -> dict[str, list[Pair]]:
    """Split by *chapter*, then drop from validation and test every pair whose English is in training.

    Verses of one chapter share names and phrasing, and some verses recur word for word across the
    Bible ("Yahweh spoke to Moses, saying,"): whole chapters per split and no repeated source make
    the test measure translation of sentences the model has never seen. Deterministic.
    """
    splits = {"train": [], "val": [], "test": []}
    for pair in pairs:
        splits[split_of_chapter(*pair.reference[:2], val_fraction, test_fraction)].append(pair)
    seen = {pair.english.lower() for pair in splits["train"]}
    for name in ("val", "test"):
        splits[name] = [pair for pair in splits[name] if pair.english.lower() not in seen]
    return splits


# ----------------------------------------------------------------------------------------------
# Words

# A token is a run of letters, a number, or one punctuation mark, with the apostrophe going where each
# language puts its boundary: a French elision keeps it on the left ("l'", "qu'", "jusqu'" + the next
# word), an English clitic on the right ("yahweh" + "'s", "do" + "n't"). Everything is lower-cased: the
# corpus is small, and "And" / "and" would otherwise be two words to learn.
TOKEN = re.compile(
    r"n't\b"                                                        # English negation: do|n't, ca|n't
    r"|\b(?:[cdjlmnst]|qu|jusqu|lorsqu|puisqu|quoiqu|presqu)'(?=[^\W\d_])"  # French elision: l'|homme
    r"|[^\W\d_]+(?=n't\b)"                                          # the word before n't
    r"|'(?:s|ll|re|ve|d|m)\b"                                        # English clitics: yahweh|'s, i|'m
    r"|[^\W\d_]+|\d+|[^\w\s]"
)
NO_SPACE_BEFORE = set(".,;:!?)'-")
NO_SPACE_AFTER = set("(-")


def tokenize(text: str) -> list[str]:
    """'L'Éternel parla à Moïse, et dit:' -> ["l'", 'éternel', 'parla', 'à', 'moïse', ',', 'et', 'dit', ':']."""
    return TOKEN.findall(text.lower())


def detokenize(tokens: list[str]) -> str:
    """Tokens -> text: punctuation and English clitics stick to the word before, an elision and a hyphen to the word after."""
    text = ""
    for token in tokens:
        glue_left = (not text or text[-1] in NO_SPACE_AFTER or text.endswith("'")
                     or token[0] in NO_SPACE_BEFORE or token == "n't")
        text += token if glue_left else " " + token
    return text


class WordVocabulary:
    """Words <-> ids. Ids 0-3 are PAD, BOS, EOS, UNK; then the words seen at least ``min_count`` times,
    most frequent first (ties in alphabetical order, so the vocabulary is deterministic)."""

    def __init__(self, sentences: list[list[str]], min_count: int = 2):
        counts = Counter(token for sentence in sentences for token in sentence)
        words = sorted((w for w, c in counts.items() if c >= min_count), key=lambda w: (-counts[w], w))
        self.tokens = list(SPECIAL_TOKENS) + words
        self.index = {token: i for i, token in enumerate(self.tokens)}
        self.min_count = min_count

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, tokens: list[str]) -> list[int]:
        return [self.index.get(token, UNK) for token in tokens]

    def decode(self, ids) -> list[str]:
        """Ids -> tokens, stopping at the first EOS, skipping PAD and BOS."""
        tokens = []
        for i in ids.tolist() if isinstance(ids, torch.Tensor) else ids:
            if i == EOS:
                break
            if i not in (PAD, BOS):
                tokens.append(self.tokens[i])
        return tokens


def unknown_rate(vocabulary: WordVocabulary, sentences: list[list[str]]) -> float:
    """Fraction of the tokens of ``sentences`` that the vocabulary maps to <unk>."""
    total = sum(len(s) for s in sentences)
    unknown = sum(token not in vocabulary.index for s in sentences for token in s)
    return unknown / total if total else 0.0


@dataclass
class TranslationData:
    """The corpus ready to train on: texts and ids per split, and the two vocabularies."""

    pairs: dict[str, list[Pair]]  # the verses of each split
    ids: dict[str, list[tuple[list[int], list[int]]]]  # (English ids, French ids) per split
    source_vocab: WordVocabulary
    target_vocab: WordVocabulary
    settings: dict  # max_words and min_count: what a saved model must have been trained with

    def references(self, split: str) -> list[str]:
        """The French reference texts of a split, as in the corpus (for sacrebleu)."""
        return [pair.french for pair in self.pairs[split]]


def translation_data(max_words: int | None = None, min_count: int | None = None, path=CORPUS_PATH) -> TranslationData:
    """Load, split, tokenise and encode the corpus; vocabularies come from the training split only."""
    max_words = CORPUS["max_words"] if max_words is None else max_words
    min_count = CORPUS["min_count"] if min_count is None else min_count
    splits = split_corpus(load_corpus(path, max_words))
    tokens = {name: ([tokenize(p.english) for p in split], [tokenize(p.french) for p in split]) for name, split in splits.items()}
    source_vocab = WordVocabulary(tokens["train"][0], min_count)
    target_vocab = WordVocabulary(tokens["train"][1], min_count)
    ids = {
        name: [(source_vocab.encode(s), target_vocab.encode(t)) for s, t in zip(*tokens[name])] for name in splits
    }
    return TranslationData(splits, ids, source_vocab, target_vocab, dict(max_words=max_words, min_count=min_count))


# ----------------------------------------------------------------------------------------------
# Training


def sequence_loss(logits: torch.Tensor, tgt_out: torch.Tensor, label_smoothing: float = 0.0) -> torch.Tensor:
    """Mean cross-entropy per target token, padding excluded: logits (B, T, V), tgt_out (B, T)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1), ignore_index=PAD,
                           label_smoothing=label_smoothing)


@torch.no_grad()
def evaluate_loss(model, pairs: list[tuple[list[int], list[int]]], batch_size: int = 256) -> float:
    """Mean cross-entropy per target token of ``model`` on ``pairs`` (teacher forcing)."""
    model.eval()
    total, tokens = 0.0, 0
    for start in range(0, len(pairs), batch_size):
        batch = collate(pairs[start : start + batch_size])
        logits = model(batch.src, batch.src_lengths, batch.tgt_in)
        n = int((batch.tgt_out != PAD).sum())
        total += sequence_loss(logits, batch.tgt_out).item() * n
        tokens += n
    return total / tokens


def train_translation(model, pairs: list[tuple[list[int], list[int]]], steps: int, batch_size: int = 64,
                      lr: float = 3e-3, seed: int = 0, clip_norm: float = 1.0, warmup: int = 0,
                      eval_every: int = 0, on_eval=None, progress: bool = False) -> dict:
    """Train ``model`` (the seq2seq interface of chapters 1, 2 and 6) for ``steps`` batches of random pairs.

    Adam, gradient clipping, a linear warm-up over ``warmup`` steps then a constant rate. ``seed``
    fixes the batches (the initial weights are fixed by whoever built the model). Every
    ``eval_every`` steps ``on_eval(step)`` is called (its time is not counted). Returns
    ``{"loss": per-step training loss, "seconds": wall time of the training steps}``.
    """
    rng = random.Random(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup) if warmup else 1.0)
    iterator = range(1, steps + 1)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, leave=False)
    losses, seconds = [], 0.0
    model.train()
    for step in iterator:
        start = time.perf_counter()
        batch = collate(rng.sample(pairs, batch_size))
        loss = sequence_loss(model(batch.src, batch.src_lengths, batch.tgt_in), batch.tgt_out)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        optimizer.step()
        schedule.step()
        losses.append(loss.item())
        seconds += time.perf_counter() - start
        if eval_every and on_eval is not None and step % eval_every == 0:
            on_eval(step)
            model.train()
    model.eval()
    return {"loss": losses, "seconds": seconds}


# ----------------------------------------------------------------------------------------------
# Decoding: every model as a step function


class TransformerState(NamedTuple):
    memory: torch.Tensor  # (B, S, D) the encoder's outputs
    source_mask: torch.Tensor  # (B, 1, S)
    prefix: torch.Tensor  # (B, t) the target tokens so far, BOS first


class CachedTransformerState(NamedTuple):
    """What a transformer decoder keeps between steps instead of re-reading its prefix (a KV cache)."""

    self_keys: torch.Tensor  # (B, L, H, t, Dh) each layer's self-attention keys of the t tokens so far
    self_values: torch.Tensor  # (B, L, H, t, Dh)
    cross_keys: torch.Tensor  # (B, L, H, S, Dh) each layer's cross-attention keys of the source: computed once
    cross_values: torch.Tensor  # (B, L, H, S, Dh)
    source_mask: torch.Tensor  # (B, 1, S)


def _cached_transformer_steps(model, memory: torch.Tensor, source_mask: torch.Tensor):
    """Chapter 6's decoder one token at a time with a key-value cache (chapter 7's idea, on its pre-LN layers).

    At step t only the new token goes through the layers: its query attends to the keys and values of
    tokens 0..t kept from earlier steps (the causal mask is then implicit), and to the source's keys and
    values, which are projected from the encoder's outputs once, not at every step. Same logits as
    ``model.decode`` on the whole prefix, up to float rounding.
    """
    from course.attention import scaled_dot_product_attention
    from course.transformer import merge_heads, split_heads

    if not all(layer.norm_first for layer in model.decoder):
        raise ValueError("the cached decoder follows the pre-LN layers (norm_first=True) of the course's models")
    D = memory.shape[-1]
    H = model.decoder[0].self_attention.num_heads
    cross = [layer.cross_attention for layer in model.decoder]
    keys_values = [F.linear(memory, a.qkv.weight[D:], None if a.qkv.bias is None else a.qkv.bias[D:]).split(D, dim=-1)
                   for a in cross]  # per layer 2 x (B, S, D)
    cross_keys = torch.stack([split_heads(k, H) for k, _ in keys_values], dim=1)  # (B, L, H, S, Dh)
    cross_values = torch.stack([split_heads(v, H) for _, v in keys_values], dim=1)
    B, L, _, _, Dh = cross_keys.shape
    empty = memory.new_zeros(B, L, H, 0, Dh)
    embedding = model.target_embedding

    def attend(attention, queries, keys, values, mask=None):  # queries (B, 1, D), keys and values (B, H, T, Dh)
        heads, _ = scaled_dot_product_attention(split_heads(queries, H), keys, values, mask)  # (B, H, 1, Dh)
        return attention.out(merge_heads(heads))  # (B, 1, D)

    def step(prev_tokens, state: CachedTransformerState):
        t = state.self_keys.shape[3]  # the new token's position
        x = embedding.tokens(prev_tokens[:, None]) * math.sqrt(embedding.d_model) + embedding.positions[t]  # (B, 1, D)
        new_keys, new_values = [], []
        for i, layer in enumerate(model.decoder):
            queries, key, value = layer.self_attention.qkv(layer.norm1(x)).split(D, dim=-1)  # 3 x (B, 1, D)
            keys = torch.cat([state.self_keys[:, i], split_heads(key, H)], dim=2)  # (B, H, t + 1, Dh)
            values = torch.cat([state.self_values[:, i], split_heads(value, H)], dim=2)
            new_keys.append(keys)
            new_values.append(values)
            x = x + attend(layer.self_attention, queries, keys, values)  # every cached token is in the past
            a = layer.cross_attention
            queries = F.linear(layer.norm2(x), a.qkv.weight[:D], None if a.qkv.bias is None else a.qkv.bias[:D])
            x = x + attend(a, queries, state.cross_keys[:, i], state.cross_values[:, i], state.source_mask[:, None])
            x = x + layer.feed_forward(layer.norm3(x))
        logits = model.output(model.decoder_norm(x))[:, 0]  # (B, V)
        return logits, state._replace(self_keys=torch.stack(new_keys, dim=1), self_values=torch.stack(new_values, dim=1))

    return step, CachedTransformerState(empty, empty, cross_keys, cross_values, source_mask)


def decoder_steps(model, src: torch.Tensor, src_lengths: torch.Tensor, cache: bool = True):
    """The model as ``(step, state)``: ``step(prev_tokens (B,), state) -> (logits (B, V), state)``.

    Works for chapter 1-2's ``Seq2Seq`` (its decoder's own ``start`` and ``step``) and for chapter 6's
    ``EncoderDecoderTransformer``: with ``cache`` (the default) its decoder keeps each layer's keys and
    values between steps; without, it re-reads the whole prefix at each step (the same logits, at a
    cost that grows with the prefix). Every tensor of a state has the batch first, so :func:`reorder`
    can pick rows of it.
    """
    if hasattr(model, "decoder") and hasattr(model.decoder, "step"):
        return model.decoder.step, model.decoder.start(model.encoder(src, src_lengths))
    memory, source_mask = model.encode(src, src_lengths)
    if cache:
        return _cached_transformer_steps(model, memory, source_mask)

    def step(prev_tokens, state: TransformerState):
        prefix = torch.cat([state.prefix, prev_tokens[:, None]], dim=1)  # (B, t): BOS, y_1, ..., y_{t-1}
        logits = model.decode(prefix, state.memory, state.source_mask)[:, -1]  # (B, V) the next token only
        return logits, state._replace(prefix=prefix)

    empty = torch.zeros(src.shape[0], 0, dtype=torch.long, device=src.device)  # BOS comes as the first prev_tokens
    return step, TransformerState(memory, source_mask, empty)


def reorder(state, rows: torch.Tensor):
    """Rows ``rows`` of a decoder state: a tensor, or a NamedTuple of tensors (or None) with the batch first."""
    if isinstance(state, torch.Tensor):
        return state.index_select(0, rows)
    return type(state)(*(None if x is None else x.index_select(0, rows) for x in state))


@torch.no_grad()
def beam_search_steps(step, state, batch_size: int, beam_size: int, max_len: int, alpha: float = 1.0,
                      forbidden: tuple[int, ...] = (PAD, BOS), device=None, dtype=torch.float32):
    """Beam search over ``step(prev_tokens (B K,), state) -> (logits (B K, V), state)``, every sentence at once.

    Each sentence keeps ``beam_size`` hypotheses. At every step each unfinished hypothesis is extended
    by every token, a finished one (it produced EOS) is kept as it is, and the ``beam_size`` candidates
    of highest total log-probability survive. It stops when every hypothesis has finished or after
    ``max_len`` tokens. The answer is the hypothesis with the best *length-normalised* score
    log p(y) / |y|^alpha (|y| counts the EOS): with alpha = 0 short outputs win, since every token
    lowers log p. Tokens in ``forbidden`` are never produced. With beam_size = 1 this is greedy search.

    Returns tokens (B, <= max_len) (EOS kept, PAD after it) and the normalised scores (B,).
    """
    B, K = batch_size, beam_size
    state = reorder(state, torch.arange(B, device=device).repeat_interleave(K))  # (B K, ...)
    scores = torch.full((B, K), float("-inf"), device=device, dtype=dtype)
    scores[:, 0] = 0.0  # one live hypothesis per sentence at the start: the empty one
    tokens = torch.zeros(B, K, 0, dtype=torch.long, device=device)
    lengths = torch.zeros(B, K, dtype=torch.long, device=device)
    finished = torch.zeros(B, K, dtype=torch.bool, device=device)
    prev_tokens = torch.full((B * K,), BOS, dtype=torch.long, device=device)
    batch_rows = torch.arange(B, device=device)[:, None]  # (B, 1)
    for t in range(max_len):
        logits, state = step(prev_tokens, state)
        log_probs = torch.log_softmax(logits.to(dtype), dim=-1)  # (B K, V)
        V = log_probs.shape[-1]
        log_probs = log_probs.view(B, K, V)
        if forbidden:
            log_probs[..., list(forbidden)] = float("-inf")
        kept_as_is = torch.full((V,), float("-inf"), device=device, dtype=dtype)
        kept_as_is[PAD] = 0.0  # a finished hypothesis is "extended" by PAD at no cost, and by nothing else
        log_probs = torch.where(finished[..., None], kept_as_is, log_probs)
        candidates = (scores[..., None] + log_probs).view(B, K * V)  # (B, K V)
        scores, flat = candidates.topk(K, dim=-1)  # (B, K) best totals, and where they come from
        parent, token = flat // V, flat % V  # (B, K) which hypothesis was extended, by which token
        state = reorder(state, (batch_rows * K + parent).view(-1))
        tokens = torch.cat([tokens[batch_rows, parent], token[..., None]], dim=-1)  # (B, K, t + 1)
        was_finished = finished[batch_rows, parent]
        lengths = lengths[batch_rows, parent] + (~was_finished).long()
        finished = was_finished | (token == EOS)
        prev_tokens = token.view(-1)
        if finished.all():
            break
    normalised = scores / lengths.clamp(min=1).to(dtype) ** alpha  # (B, K)
    best = normalised.argmax(dim=-1)  # (B,)
    rows = torch.arange(B, device=device)
    return tokens[rows, best], normalised[rows, best]


def beam_search(model, src: torch.Tensor, src_lengths: torch.Tensor, beam_size: int = 4, max_len: int = 50,
                alpha: float = 1.0, cache: bool = True):
    """Beam search for a batch of sources with any of the course's models: -> tokens (B, <= max_len), scores (B,)."""
    step, state = decoder_steps(model, src, src_lengths, cache)
    return beam_search_steps(step, state, src.shape[0], beam_size, max_len, alpha, device=src.device)


def beam_search_function(next_log_probs, beam_size: int, max_len: int, alpha: float = 1.0):
    """Beam search for one sentence, the model given as ``next_log_probs(prefix: list[int]) -> (V,) log-probs``.

    No token is forbidden; EOS (2) ends a hypothesis. Returns (best tokens as a list, its normalised score):
    the contract of chapter 8's exercise, computed by :func:`beam_search_steps`.
    """

    def step(prev_tokens, prefixes):
        prefixes = torch.cat([prefixes, prev_tokens[:, None]], dim=1)  # (K, t + 1), BOS first
        rows = [torch.as_tensor(next_log_probs(row[1:].tolist()), dtype=torch.float64) for row in prefixes]
        return torch.stack(rows), prefixes

    start = torch.zeros(1, 0, dtype=torch.long)
    tokens, score = beam_search_steps(step, start, 1, beam_size, max_len, alpha, forbidden=(), dtype=torch.float64)
    sequence = tokens[0].tolist()
    if EOS in sequence:
        sequence = sequence[: sequence.index(EOS) + 1]
    return sequence, float(score[0])


def exhaustive_search(next_log_probs, vocab_size: int, max_len: int, alpha: float = 1.0):
    """The exact answer beam search approximates: score every hypothesis, return the best (tokens, score).

    A hypothesis is a token sequence that ends with its first EOS, or has ``max_len`` tokens without
    one. Its score is log p / length^alpha. Costs vocab_size^max_len calls: for tests on tiny models.
    """
    best_tokens, best_score = None, float("-inf")
    frontier = [([], 0.0)]
    while frontier:
        prefix, log_p = frontier.pop()
        log_probs = torch.as_tensor(next_log_probs(prefix), dtype=torch.float64).tolist()
        for token in range(vocab_size):
            sequence, total = prefix + [token], log_p + log_probs[token]
            if token == EOS or len(sequence) == max_len:
                score = total / len(sequence) ** alpha
                if score > best_score:
                    best_tokens, best_score = sequence, score
            else:
                frontier.append((sequence, total))
    return best_tokens, best_score


# ----------------------------------------------------------------------------------------------
# Translating a split, and scoring it


def decode_length(src_lengths: torch.Tensor) -> int:
    """How many tokens decoding may produce: 1.5 times the longest source plus 5 (with the EOS), more than
    any reference of the corpus needs (French runs about 4% longer than English, at most about 1.6 times).
    A model that repeats itself runs to this limit, so it sets the cost of decoding too."""
    return int(1.5 * src_lengths.max()) + 5


@torch.no_grad()
def translate(model, data: TranslationData, split: str = "test", beam_size: int = 1, alpha: float = 1.0,
              batch_size: int = 128, return_scores: bool = False, cache: bool = True):
    """Translate every source of a split; ``beam_size=1`` is greedy search. Returns detokenised French
    texts, and with ``return_scores`` also each output's normalised log-probability (a float tensor).
    ``cache=False`` decodes a transformer without its key-value cache (the same outputs, slower)."""
    model.eval()
    pairs = data.ids[split]
    # Batches of sources of similar lengths: each batch's length limit is then close to what its sentences need.
    order = sorted(range(len(pairs)), key=lambda i: len(pairs[i][0]))
    outputs, scores = [None] * len(pairs), torch.zeros(len(pairs))
    for start in range(0, len(order), batch_size):
        chosen = order[start : start + batch_size]
        batch = collate([pairs[i] for i in chosen])
        tokens, score = beam_search(model, batch.src, batch.src_lengths, beam_size, decode_length(batch.src_lengths), alpha,
                                    cache)
        for i, row, row_score in zip(chosen, tokens, score):
            outputs[i], scores[i] = detokenize(data.target_vocab.decode(row)), row_score
    return (outputs, scores) if return_scores else outputs


@torch.no_grad()
def alignment(model, src_ids: list[int], tgt_ids: list[int]) -> torch.Tensor:
    """The attention weights of ``model`` while it reads the reference translation (teacher forcing).

    Bahdanau RNN: (T + 1, S), one row per output step (the target and EOS). Transformer: the
    cross-attention of every layer and head, (layers, H, T + 1, S).
    """
    batch = collate([(src_ids, tgt_ids)])
    model.eval()
    if hasattr(model, "decoder") and hasattr(model.decoder, "step"):
        step, state = decoder_steps(model, batch.src, batch.src_lengths)
        rows = []
        for token in batch.tgt_in[0]:
            _, state = step(token[None], state)
            if state.weights is None:
                raise ValueError("this decoder has no attention weights")
            rows.append(state.weights[0])
        return torch.stack(rows)
    model(batch.src, batch.src_lengths, batch.tgt_in)
    return torch.stack([layer.cross_attention_weights[0] for layer in model.decoder])


@torch.no_grad()
def alignments(model, pairs: list[tuple[list[int], list[int]]], batch_size: int = 128) -> list[torch.Tensor]:
    """:func:`alignment` for many pairs at once, in batches: one tensor per pair, cut to its own lengths
    ((T + 1, S) for the Bahdanau RNN, (layers, H, T + 1, S) for the transformer)."""
    model.eval()
    rnn = hasattr(model, "decoder") and hasattr(model.decoder, "step")
    result = []
    for start in range(0, len(pairs), batch_size):
        chunk = pairs[start : start + batch_size]
        batch = collate(chunk)
        if rnn:
            step, state = decoder_steps(model, batch.src, batch.src_lengths)
            rows = []
            for t in range(batch.tgt_in.shape[1]):
                _, state = step(batch.tgt_in[:, t], state)
                if state.weights is None:
                    raise ValueError("this decoder has no attention weights")
                rows.append(state.weights)
            weights = torch.stack(rows, dim=1)  # (B, T + 1, S)
        else:
            model(batch.src, batch.src_lengths, batch.tgt_in)
            weights = torch.stack([layer.cross_attention_weights for layer in model.decoder], dim=1)  # (B, L, H, T + 1, S)
        for i, (source, target) in enumerate(chunk):
            result.append(weights[i, ..., : len(target) + 1, : len(source)].clone())
    return result


def ibm_model1(pairs: list[tuple[list[int], list[int]]], source_vocab_size: int, target_vocab_size: int,
               iterations: int = 5) -> torch.Tensor:
    """Word translation probabilities t(f | e) of IBM Model 1 (Brown et al., 1993), estimated by EM.

    The oldest statistical translation model: each French word of a pair is produced by one English
    word of the pair, or by a NULL word, chosen uniformly; t(f | e) is re-estimated from the expected
    counts of each French word being produced by each English word. It knows nothing of word order
    and nothing of the neural models, which makes its alignments a yardstick for theirs. NULL uses
    the PAD id, which no sentence contains. Deterministic. Returns (target vocab, source vocab).
    """
    N = len(pairs)
    S = 1 + max(len(s) for s, _ in pairs)  # + NULL
    T = max(len(t) for _, t in pairs)
    src = torch.full((N, S), PAD, dtype=torch.long)
    tgt = torch.full((N, T), PAD, dtype=torch.long)
    src_mask = torch.zeros(N, S, dtype=torch.bool)
    tgt_mask = torch.zeros(N, T, dtype=torch.bool)
    for i, (s, t) in enumerate(pairs):
        src[i, 1 : 1 + len(s)] = torch.tensor(s, dtype=torch.long)
        src_mask[i, : 1 + len(s)] = True  # NULL and the words
        tgt[i, : len(t)] = torch.tensor(t, dtype=torch.long)
        tgt_mask[i, : len(t)] = True
    flat = (tgt[:, :, None] * source_vocab_size + src[:, None, :]).view(-1)  # (N T S) index of t(f | e)
    keep = (tgt_mask[:, :, None] & src_mask[:, None, :]).view(-1)
    flat = flat[keep]
    table = torch.full((target_vocab_size, source_vocab_size), 1.0 / target_vocab_size, dtype=torch.float64)
    for _ in range(iterations):
        probs = torch.zeros(N * T * S, dtype=torch.float64)
        probs[keep] = table.view(-1)[flat]
        probs = probs.view(N, T, S)
        posterior = probs / probs.sum(dim=-1, keepdim=True).clamp_min(1e-300)  # which English word made each French one
        counts = torch.zeros(target_vocab_size * source_vocab_size, dtype=torch.float64)
        counts.index_add_(0, flat, posterior.view(-1)[keep])
        counts = counts.view(target_vocab_size, source_vocab_size)
        table = counts / counts.sum(dim=0, keepdim=True).clamp_min(1e-300)  # normalised over f for each e
    return table


def model1_links(table: torch.Tensor, src_ids: list[int], tgt_ids: list[int], threshold: float = 0.5) -> dict[int, int]:
    """{target position: source position} where IBM Model 1 is confident: the most probable English word
    (NULL included) of a French word, kept if it has posterior ``threshold`` or more, is not NULL, and
    neither word is <unk>."""
    src = torch.tensor([PAD] + list(src_ids))
    links = {}
    for t, f in enumerate(tgt_ids):
        if f == UNK:
            continue
        posterior = table[f, src] / table[f, src].sum().clamp_min(1e-300)
        j = int(posterior.argmax())
        if j > 0 and float(posterior[j]) >= threshold and src_ids[j - 1] != UNK:
            links[t] = j - 1
    return links


def corpus_scores(hypotheses: list[str], references: list[str]) -> dict[str, float]:
    """sacrebleu's corpus BLEU and chrF (lower-cased: our models write lower case), and BLEU's pieces."""
    import sacrebleu

    bleu = sacrebleu.metrics.BLEU(lowercase=True).corpus_score(hypotheses, [references])
    chrf = sacrebleu.metrics.CHRF(lowercase=True).corpus_score(hypotheses, [references])
    return {"bleu": bleu.score, "chrf": chrf.score, "precisions": list(bleu.precisions), "brevity_penalty": bleu.bp,
            "length_ratio": bleu.sys_len / bleu.ref_len}


def _sacrebleu_metric(metric: str):
    import sacrebleu

    if metric == "bleu":
        return sacrebleu.metrics.BLEU(lowercase=True)
    if metric == "chrf":
        return sacrebleu.metrics.CHRF(lowercase=True)
    raise ValueError(f"metric must be 'bleu' or 'chrf', not {metric!r}")


@functools.lru_cache(maxsize=64)
def _sentence_statistics(metric: str, hypotheses: tuple[str, ...], references: tuple[str, ...]):
    """sacrebleu's statistics of each sentence (N, statistics), kept: a system is compared with several others."""
    import numpy as np

    statistics = _sacrebleu_metric(metric)._extract_corpus_statistics(list(hypotheses), [list(references)])
    return np.array(statistics, dtype=np.float64)


def paired_bootstrap(baseline: list[str], system: list[str], references: list[str], metric: str = "bleu",
                     resamples: int = 1000, seed: int = 0, confidence: float = 0.95) -> dict[str, float]:
    """How much ``system`` scores above ``baseline`` (corpus BLEU or chrF), with a paired-bootstrap interval.

    The test sentences are drawn with replacement ``resamples`` times (a seeded generator, so the
    interval is the same on every run); both systems are scored on the *same* draw, as in sacrebleu's
    ``--paired-bs`` (Koehn 2004), and the interval holds the central ``confidence`` share of the
    differences. Scores come from sacrebleu's sentence statistics, summed per draw: exactly its
    corpus score on the drawn corpus. Returns {"baseline", "system", "difference", "low", "high"}.
    """
    import numpy as np

    if not len(baseline) == len(system) == len(references):
        raise ValueError("baseline, system and references must have one sentence each per test pair")
    scorer = _sacrebleu_metric(metric)
    stats = [_sentence_statistics(metric, tuple(hypotheses), tuple(references))
             for hypotheses in (baseline, system)]  # (N, statistics) per system: n-gram matches and totals

    def score(totals):
        return scorer._compute_score_from_stats(totals).score

    n = len(references)
    draws = np.random.default_rng(seed).integers(0, n, size=(resamples, n))  # (R, N) sentence indices
    counts = np.zeros((resamples, n))
    np.add.at(counts, (np.arange(resamples)[:, None], draws), 1.0)  # (R, N) how often each sentence was drawn
    totals = [counts @ s for s in stats]  # (R, statistics) per system, the sums over each drawn corpus
    differences = np.array([score(b) - score(a) for a, b in zip(*totals)])
    low, high = np.quantile(differences, [(1 - confidence) / 2, (1 + confidence) / 2])
    baseline_score, system_score = (float(score(s.sum(axis=0))) for s in stats)
    return {"baseline": baseline_score, "system": system_score, "difference": system_score - baseline_score,
            "low": float(low), "high": float(high)}


def bleu_by_length(hypotheses: list[str], references: list[str], source_lengths: list[int],
                   edges: list[int]) -> list[dict]:
    """Corpus BLEU of the sentences whose source length (in tokens) lies in each bin [edges[i], edges[i+1])."""
    import sacrebleu

    metric = sacrebleu.metrics.BLEU(lowercase=True)
    rows = []
    for low, high in zip(edges[:-1], edges[1:]):
        chosen = [i for i, n in enumerate(source_lengths) if low <= n < high]
        if chosen:
            score = metric.corpus_score([hypotheses[i] for i in chosen], [[references[i] for i in chosen]]).score
            rows.append({"low": low, "high": high - 1, "sentences": len(chosen), "bleu": score})
    return rows


# ----------------------------------------------------------------------------------------------
# BLEU from its definition (the reference for chapter 8's exercise; the chapter itself uses sacrebleu)


def ngram_counts(tokens: list[str], n: int) -> Counter:
    return Counter(tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1))


def modified_precision(hypothesis: list[str], reference: list[str], n: int) -> tuple[int, int]:
    """(clipped n-gram matches, n-grams in the hypothesis): each hypothesis n-gram counts at most as
    often as it occurs in the reference."""
    hypothesis_counts, reference_counts = ngram_counts(hypothesis, n), ngram_counts(reference, n)
    matches = sum((hypothesis_counts & reference_counts).values())
    return matches, sum(hypothesis_counts.values())


def brevity_penalty(hypothesis_length: int, reference_length: int) -> float:
    """1 if the hypotheses are longer than the references, else exp(1 - r / c) (0 when c = 0)."""
    if hypothesis_length >= reference_length:
        return 1.0
    if hypothesis_length == 0:
        return 0.0
    return math.exp(1 - reference_length / hypothesis_length)


def corpus_bleu(hypotheses: list[list[str]], references: list[list[str]], max_n: int = 4) -> float:
    """Corpus BLEU in [0, 100], one reference per hypothesis, no smoothing: BP * exp(mean_n log p_n).

    The matches and totals of each order n are summed over the corpus before dividing. A corpus
    with no match at some order scores 0 (sacrebleu with ``smooth_method="none"`` agrees).
    """
    matches, totals = [0] * max_n, [0] * max_n
    for hypothesis, reference in zip(hypotheses, references):
        for n in range(1, max_n + 1):
            m, t = modified_precision(hypothesis, reference, n)
            matches[n - 1] += m
            totals[n - 1] += t
    if min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    c, r = sum(map(len, hypotheses)), sum(map(len, references))
    return 100 * brevity_penalty(c, r) * math.exp(log_precision)


# ----------------------------------------------------------------------------------------------
# The three models, trained once and saved


def build_model(name: str, source_vocab_size: int, target_vocab_size: int, sizes: dict | None = None):
    """Chapter 1's fixed-context RNN, chapter 2's Bahdanau RNN or chapter 6's transformer, by name."""
    from course.rnn import attention_model, fixed_context_model
    from course.transformer import EncoderDecoderTransformer

    sizes = dict(MODEL_SIZES[name] if sizes is None else sizes)
    if name == "fixed_context":
        return fixed_context_model(source_vocab_size, target_vocab_size, **sizes)
    if name == "bahdanau":
        return attention_model(source_vocab_size, target_vocab_size, **sizes)
    if name in ("transformer", SUBWORD_MODEL):
        return EncoderDecoderTransformer(source_vocab_size, target_vocab_size, max_len=128, **sizes)
    raise ValueError(f"model name must be one of {MODEL_NAMES + (SUBWORD_MODEL,)}, not {name!r}")


def train_with_validation(name: str, data: TranslationData, steps: int, batch_size: int, eval_every: int,
                          seed: int = 0, progress: bool = False):
    """Build model ``name`` (seeded), train it ``steps`` steps, keep the weights with the best validation loss.

    Returns the model and a record: seconds of training (evaluations excluded), validation loss at
    each evaluation, the step whose weights were kept.
    """
    torch.manual_seed(seed)
    model = build_model(name, len(data.source_vocab), len(data.target_vocab))
    history = {"steps": [], "val_loss": []}
    best = {"val_loss": float("inf")}

    def on_eval(step):
        val_loss = evaluate_loss(model, data.ids["val"])
        history["steps"].append(step)
        history["val_loss"].append(val_loss)
        if val_loss < best["val_loss"]:
            best.update(val_loss=val_loss, step=step, weights={k: v.detach().clone() for k, v in model.state_dict().items()})

    record = train_translation(model, data.ids["train"], steps, batch_size, seed=seed, eval_every=eval_every,
                               on_eval=on_eval, progress=progress, **OPTIMISER[name])
    if not history["steps"] or history["steps"][-1] != steps:  # the last weights are a candidate too
        on_eval(steps)
    model.load_state_dict(best["weights"])
    model.eval()
    return model, {"name": name, "seconds": record["seconds"], "steps_trained": steps, "best_step": best["step"],
                   "best_val_loss": best["val_loss"], "train_loss": record["loss"], **history}


def save_model(model, record: dict, data: TranslationData, folder: Path | str = CHECKPOINT_FOLDER) -> Path:
    """Write ``<folder>/<name>.pt``: the weights in float16 (half the size of float32; they are loaded
    back into float32), the training record, and what the corpus and vocabularies must be to load it."""
    path = Path(folder) / f"{record['name']}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    weights = {k: v.half() if v.is_floating_point() else v for k, v in model.state_dict().items()}
    torch.save({"weights": weights, "record": record, "sizes": MODEL_SIZES[record["name"]], "corpus": data.settings,
                "vocab_sizes": (len(data.source_vocab), len(data.target_vocab))}, path)
    return path


def load_model(name: str, data: TranslationData, folder: Path | str = CHECKPOINT_FOLDER):
    """The model saved by :func:`save_model`, in float32 and eval mode, and its training record."""
    path = Path(folder) / f"{name}.pt"
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing: write it with `python benchmarks/translation.py --train`")
    saved = torch.load(path, map_location="cpu", weights_only=True)
    if tuple(saved["vocab_sizes"]) != (len(data.source_vocab), len(data.target_vocab)) or saved["corpus"] != data.settings:
        raise ValueError(f"{path} was trained on other data ({saved['corpus']}, vocabularies {saved['vocab_sizes']}): "
                         "train it again with `python benchmarks/translation.py --train`")
    model = build_model(name, *saved["vocab_sizes"], sizes=saved["sizes"])
    model.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in saved["weights"].items()})
    return model.eval(), saved["record"]
