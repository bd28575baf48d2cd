# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercises 8: translating real sentences
#
# The pieces of chapter 8 that sit between a model and a BLEU score: the batches the models are
# trained on, the score itself, the search that turns a model into translations, and the subword
# vocabulary (byte-pair encoding) that leaves no word unknown.
#
# | exercise | points |
# | --- | --- |
# | 1. a padding-aware batch of sentence pairs | 3 |
# | 2. BLEU: modified n-gram precision, brevity penalty, corpus score | 5 |
# | 3. beam search with length normalisation | 5 |
# | 4. written: why length normalisation? (graded by your instructor) | 2 |
# | 5. byte-pair encoding: learn the merges | 4 |
# | 6. byte-pair encoding: encode a word with them | 2 |
# | 7. written: what the first merges say, and what the vocabulary size trades (graded by your instructor) | 2 |
#
# **How you are graded.** Each test cell below is worth points. The tests you see check the
# basics and say what went wrong; when the notebook is graded, hidden tests run your functions on
# further inputs (random sentence pairs, random corpora, small random models) and the grader
# compares the results with those of the course's reference solution. Exercises 4 and 7 are short
# written answers that your instructor reads and grades. Run every cell from the top
# (*Kernel → Restart & Run All*) before you submit.
#
# **Conventions** (as in chapters 1-8). Token ids: `PAD = 0`, `BOS = 1`, `EOS = 2`. A sentence is a
# list of token ids (exercises 1 and 3) or a list of words (exercises 2, 5 and 6).

# %%
import math
from collections import Counter

import torch

try:
    import sacrebleu  # installed with the course (requirements.txt)
except ImportError:  # Colab and other places without it
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "sacrebleu"], check=True)
    import sacrebleu

from course.checks import check_close, check_shape, report
from course.seq2seq_data import Batch
from course.translation import exhaustive_search

PAD, BOS, EOS = 0, 1, 2
torch.manual_seed(0)

# %% [markdown]
# ## Exercise 1: a padding-aware batch (3 points)
#
# Sentences have different lengths, a batch is one rectangular tensor. Given a list of
# `(source ids, target ids)` pairs, build the `Batch` the course's models train on:
#
# - `src (B, S)`: the sources, padded on the right with `PAD` to the longest source;
# - `src_lengths (B,)`: the real length of each source (the encoder and the attention masks need it);
# - `tgt_in (B, T + 1)`: `BOS` followed by the target (what the decoder reads, teacher forcing);
# - `tgt_out (B, T + 1)`: the target followed by `EOS` (what it must predict), padded with `PAD`,
#   which the loss ignores.
#
# All four are `torch.long` tensors. An empty source or target is allowed (its row is all padding,
# apart from the `BOS` or the `EOS`).

# %% solution="collate"
def collate(pairs):
    """[(source ids, target ids), ...] -> Batch(src, src_lengths, tgt_in, tgt_out), padded with PAD."""
    ### BEGIN SOLUTION
    def padded(sequences):
        width = max(len(s) for s in sequences)
        return torch.tensor([list(s) + [PAD] * (width - len(s)) for s in sequences], dtype=torch.long)

    sources = [list(source) for source, _ in pairs]
    targets = [list(target) for _, target in pairs]
    return Batch(
        src=padded(sources),
        src_lengths=torch.tensor([len(s) for s in sources], dtype=torch.long),
        tgt_in=padded([[BOS] + t for t in targets]),
        tgt_out=padded([t + [EOS] for t in targets]),
    )
    ### END SOLUTION


# %% tests="collate_visible" points=1
batch = collate([([5, 6, 7], [8, 9]), ([4], [10, 11, 12])])
for name, shape in (("src", (2, 3)), ("src_lengths", (2,)), ("tgt_in", (2, 4)), ("tgt_out", (2, 4))):
    check_shape(getattr(batch, name), shape, f"batch.{name}")
    assert getattr(batch, name).dtype == torch.long, f"batch.{name} must be a torch.long tensor"
check_close(batch.src, torch.tensor([[5, 6, 7], [4, PAD, PAD]]), "batch.src",
            hint="each source padded on the right with PAD = 0 to the longest source")
check_close(batch.src_lengths, torch.tensor([3, 1]), "batch.src_lengths", hint="the lengths before padding")
check_close(batch.tgt_in, torch.tensor([[BOS, 8, 9, PAD], [BOS, 10, 11, 12]]), "batch.tgt_in",
            hint="BOS = 1 first, then the target, then padding")
check_close(batch.tgt_out, torch.tensor([[8, 9, EOS, PAD], [10, 11, 12, EOS]]), "batch.tgt_out",
            hint="the target, then EOS = 2, then padding: tgt_out[:, t] is what the decoder must say after reading tgt_in[:, :t + 1]")
print("Exercise 1: visible tests passed.")
### BEGIN HIDDEN TESTS
for name in ("src", "src_lengths", "tgt_in", "tgt_out"):
    report(f"collate/visible/{name}", getattr(collate([([5, 6, 7], [8, 9]), ([4], [10, 11, 12])]), name))
    report(f"collate/visible_empty/{name}", getattr(collate([([], [3]), ([9, 8], [])]), name))
### END HIDDEN TESTS

# %% tests="collate_hidden" points=2
# Hidden tests, run when the notebook is graded: random batches, empty sentences, a batch of one.
### BEGIN HIDDEN TESTS
generator = torch.Generator().manual_seed(81)
for case, batch_size in enumerate((1, 4, 9)):
    pairs = []
    for _ in range(batch_size):
        source_length, target_length = torch.randint(0, 12, (2,), generator=generator).tolist()
        pairs.append((torch.randint(3, 50, (source_length,), generator=generator).tolist(),
                      torch.randint(3, 50, (target_length,), generator=generator).tolist()))
    pairs[0] = (pairs[0][0] + [7], pairs[0][1])  # no source empty in every row
    batch = collate(pairs)
    for name in ("src", "src_lengths", "tgt_in", "tgt_out"):
        report(f"collate/case{case}/{name}", getattr(batch, name))
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 2: BLEU from its definition (5 points)
#
# BLEU {cite}`papineni2002bleu` compares a system's translations (hypotheses) with reference
# translations, one reference per hypothesis here. For each order $n = 1..4$:
#
# - the **modified precision** $p_n$: the hypothesis n-grams that also occur in the reference, each
#   n-gram counted at most as many times as it occurs in the reference ("clipped"), divided by the
#   number of hypothesis n-grams. "the the the the" against "the cat" has 1 clipped unigram match
#   out of 4. Over a *corpus*, the matches and the totals of every sentence are summed first, then
#   divided.
# - the **brevity penalty** punishes a corpus of hypotheses of total length $c$ that is shorter than
#   its references (total length $r$): $\mathrm{BP} = 1$ if $c \ge r$, else $e^{1 - r/c}$ (and 0 when $c = 0$).
#
# $$\mathrm{BLEU} = 100 \cdot \mathrm{BP} \cdot \exp\Big(\frac14 \sum_{n=1}^{4} \log p_n\Big),$$
#
# 0 if some order has no match at all (no smoothing). Sentences are lists of words here.

# %% solution="bleu"
def modified_precision(hypothesis, reference, n):
    """(clipped n-gram matches, number of n-grams in the hypothesis), two ints."""
    ### BEGIN SOLUTION
    def ngrams(words):
        return Counter(tuple(words[i : i + n]) for i in range(len(words) - n + 1))

    hypothesis_counts, reference_counts = ngrams(hypothesis), ngrams(reference)
    matches = sum(min(count, reference_counts[gram]) for gram, count in hypothesis_counts.items())
    return matches, sum(hypothesis_counts.values())
    ### END SOLUTION


def brevity_penalty(c, r):
    """c = total length of the hypotheses, r = total length of the references:
    1.0 if c >= r, else exp(1 - r / c); 0.0 if c is 0."""
    ### BEGIN SOLUTION
    if c >= r:
        return 1.0
    if c == 0:
        return 0.0
    return math.exp(1 - r / c)
    ### END SOLUTION


def corpus_bleu(hypotheses, references, max_n=4):
    """Corpus BLEU in [0, 100] of lists of words, one reference per hypothesis, without smoothing."""
    ### BEGIN SOLUTION
    matches, totals = [0] * max_n, [0] * max_n
    for hypothesis, reference in zip(hypotheses, references):
        for n in range(1, max_n + 1):
            m, t = modified_precision(hypothesis, reference, n)
            matches[n - 1] += m
            totals[n - 1] += t
    if min(matches) == 0:
        return 0.0
    log_precision = sum(math.log(m / t) for m, t in zip(matches, totals)) / max_n
    c = sum(len(h) for h in hypotheses)
    r = sum(len(r) for r in references)
    return 100 * brevity_penalty(c, r) * math.exp(log_precision)
    ### END SOLUTION


# %% tests="bleu_visible" points=2
assert modified_precision("the the the the".split(), "the cat".split(), 1) == (1, 4), \
    "'the the the the' against 'the cat': 'the' occurs once in the reference, so 1 clipped match of 4 unigrams"
assert modified_precision("the cat sat".split(), "the cat sat".split(), 2) == (2, 2), "two bigrams, both matched"
assert modified_precision("a b".split(), "a b".split(), 3) == (0, 0), "a 2-word hypothesis has no trigram"
check_close(torch.tensor(brevity_penalty(10, 8)), torch.tensor(1.0), "brevity_penalty(10, 8): longer than the references")
check_close(torch.tensor(brevity_penalty(8, 10)), torch.tensor(math.exp(1 - 10 / 8)), "brevity_penalty(8, 10)")
assert brevity_penalty(0, 5) == 0.0, "brevity_penalty(0, 5): an empty output scores 0"

# sacrebleu on words already split (tokenize="none"), without smoothing, is the same definition.
sacre = sacrebleu.metrics.BLEU(tokenize="none", smooth_method="none")
generator = torch.Generator().manual_seed(0)
for trial in range(5):
    words = [f"w{i}" for i in range(6)]  # a small vocabulary: many matches, some repeated n-grams
    def sentence():
        return [words[i] for i in torch.randint(0, 6, (int(torch.randint(4, 12, (1,), generator=generator)),), generator=generator)]
    hypotheses, references = [sentence() for _ in range(8)], [sentence() for _ in range(8)]
    expected = sacre.corpus_score([" ".join(h) for h in hypotheses], [[" ".join(r) for r in references]]).score
    check_close(torch.tensor(float(corpus_bleu(hypotheses, references))), torch.tensor(expected),
                f"corpus_bleu vs sacrebleu, random corpus {trial}", atol=1e-6,
                hint="sum the matches and totals over the corpus before dividing; BP from the total lengths")
print("Exercise 2: visible tests passed.")
### BEGIN HIDDEN TESTS
report("bleu/visible/precisions", [list(modified_precision("the the the the".split(), "the cat".split(), 1)),
                                   list(modified_precision("the cat sat".split(), "the cat sat".split(), 2)),
                                   list(modified_precision("a b".split(), "a b".split(), 3))])
report("bleu/visible/brevity_penalty", [float(brevity_penalty(10, 8)), float(brevity_penalty(8, 10)), float(brevity_penalty(0, 5))],
       atol=1e-9)
report("bleu/visible/corpus_bleu", float(corpus_bleu(["a b c d e".split(), "a b c x".split()], ["a b c d".split(), "a b c y z".split()])),
       atol=1e-6)
### END HIDDEN TESTS

# %% tests="bleu_hidden" points=3
# Hidden tests, run when the notebook is graded: random corpora of several sizes and vocabularies,
# corpora with no match at some order, hypotheses shorter and longer than their references.
### BEGIN HIDDEN TESTS
generator = torch.Generator().manual_seed(82)


def random_sentence(vocabulary_size, low, high):
    length = int(torch.randint(low, high, (1,), generator=generator))
    return [f"w{int(i)}" for i in torch.randint(0, vocabulary_size, (length,), generator=generator)]


for case, (vocabulary_size, sentences, hyp_range, ref_range) in enumerate(
    [(4, 3, (1, 6), (1, 6)), (8, 20, (3, 15), (5, 15)), (30, 10, (5, 10), (5, 10)), (5, 12, (8, 20), (3, 8))]
):
    hypotheses = [random_sentence(vocabulary_size, *hyp_range) for _ in range(sentences)]
    references = [random_sentence(vocabulary_size, *ref_range) for _ in range(sentences)]
    report(f"bleu/case{case}/corpus_bleu", float(corpus_bleu(hypotheses, references)), atol=1e-6)
    report(f"bleu/case{case}/precisions",
           [list(modified_precision(hypotheses[0], references[0], n)) for n in range(1, 5)])
    report(f"bleu/case{case}/bigram_bleu", float(corpus_bleu(hypotheses, references, max_n=2)), atol=1e-6)
for case, (c, r) in enumerate([(3, 7), (7, 7), (12, 5), (1, 40)]):
    report(f"bleu/brevity_penalty/case{case}", float(brevity_penalty(c, r)), atol=1e-9)  # the name never holds the input
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 3: beam search (5 points)
#
# A model is given as a function `next_log_probs(prefix) -> (V,) tensor`: the log-probabilities of
# the next token after the tokens `prefix` (a list of ids, without `BOS`). A *hypothesis* ends with
# its first `EOS`, or when it reaches `max_len` tokens. Beam search keeps the `beam_size`
# hypotheses of highest total log-probability $\log p(y) = \sum_t \log p(y_t \mid y_{<t})$:
#
# 1. start with one hypothesis, the empty one, of log-probability 0;
# 2. at each step extend every unfinished hypothesis by every token; a finished hypothesis stays as
#    it is (it competes with the new ones, unchanged); keep the `beam_size` best candidates by total
#    log-probability;
# 3. stop when every kept hypothesis has finished, or after `max_len` steps;
# 4. return the kept hypothesis with the best **length-normalised** score $\log p(y) / |y|^\alpha$,
#    where $|y|$ counts the tokens including the `EOS`: every token lowers $\log p$, so without
#    normalisation ($\alpha = 0$) short translations win.
#
# Return `(tokens, score)`: the best hypothesis as a list of ids (ending with `EOS` if it has one)
# and its normalised score as a float. Every token id in `range(V)` may be produced. With
# `beam_size = 1` this is greedy search; with a beam large enough to keep every hypothesis it is
# exact (`exhaustive_search`, imported above, scores every hypothesis).

# %%
def tiny_model(seed, vocab_size=5, hidden_size=8):
    """A small random recurrent 'model' in float64: next_log_probs(prefix) -> (vocab_size,) log-probs."""
    generator = torch.Generator().manual_seed(seed)
    embed = torch.randn(vocab_size, hidden_size, generator=generator, dtype=torch.float64)
    recur = torch.randn(hidden_size, hidden_size, generator=generator, dtype=torch.float64) / hidden_size**0.5
    output = 2 * torch.randn(hidden_size, vocab_size, generator=generator, dtype=torch.float64)

    def next_log_probs(prefix):
        hidden = torch.zeros(hidden_size, dtype=torch.float64)
        for token in [BOS] + list(prefix):
            hidden = torch.tanh(embed[token] + hidden @ recur)
        return torch.log_softmax(hidden @ output, dim=-1)

    return next_log_probs


# %% solution="beam_search"
def beam_search(next_log_probs, beam_size, max_len, alpha=1.0):
    """-> (best hypothesis as a list of token ids, its score log p / length**alpha as a float)."""
    ### BEGIN SOLUTION
    beams = [([], 0.0)]  # (tokens, total log-probability)
    for _ in range(max_len):
        candidates = []
        for tokens, log_p in beams:
            if tokens and tokens[-1] == EOS:
                candidates.append((tokens, log_p))  # finished: kept as it is
                continue
            for token, token_log_p in enumerate(next_log_probs(tokens).tolist()):
                candidates.append((tokens + [token], log_p + token_log_p))
        beams = sorted(candidates, key=lambda beam: beam[1], reverse=True)[:beam_size]
        if all(tokens[-1] == EOS for tokens, _ in beams):
            break
    scored = [(tokens, log_p / len(tokens) ** alpha) for tokens, log_p in beams]
    return max(scored, key=lambda beam: beam[1])
    ### END SOLUTION


# %% tests="beam_search_visible" points=2
model = tiny_model(seed=0)
tokens, score = beam_search(model, beam_size=1, max_len=6)
greedy = []
while len(greedy) < 6 and (not greedy or greedy[-1] != EOS):
    greedy.append(int(model(greedy).argmax()))
assert tokens == greedy, f"beam_size=1 must be greedy search: expected {greedy}, got {tokens}"
log_p = sum(float(model(greedy[:t])[greedy[t]]) for t in range(len(greedy)))
check_close(torch.tensor(float(score)), torch.tensor(log_p / len(greedy)), "the score of the greedy hypothesis",
            hint="log p(y) / |y| ** alpha, |y| counting the EOS")

for seed in (1, 2, 3):
    model = tiny_model(seed=seed, vocab_size=4)
    for alpha in (0.0, 1.0):
        best_tokens, best_score = exhaustive_search(model, vocab_size=4, max_len=4, alpha=alpha)
        tokens, score = beam_search(model, beam_size=64, max_len=4, alpha=alpha)  # 64 = 4**3: nothing pruned
        assert tokens == best_tokens, (f"with a beam of 64 on 4 tokens and max_len 4, beam search is exact: "
                                       f"expected {best_tokens}, got {tokens} (seed {seed}, alpha {alpha})")
        check_close(torch.tensor(float(score)), torch.tensor(best_score), f"the best score (seed {seed}, alpha {alpha})")
        _, small_beam_score = beam_search(model, beam_size=2, max_len=4, alpha=alpha)
        assert small_beam_score <= best_score + 1e-9, "no hypothesis can score above the exact search's best"
print("Exercise 3: visible tests passed.")
### BEGIN HIDDEN TESTS
for case, (seed, beam_size, alpha) in enumerate([(0, 1, 1.0), (1, 64, 0.0), (2, 64, 1.0), (3, 2, 1.0)]):
    tokens, score = beam_search(tiny_model(seed=seed, vocab_size=4), beam_size=beam_size, max_len=4, alpha=alpha)
    report(f"beam_search/visible{case}/tokens", [int(t) for t in tokens])
    report(f"beam_search/visible{case}/score", float(score), atol=1e-7)
### END HIDDEN TESTS

# %% tests="beam_search_hidden" points=3
# Hidden tests, run when the notebook is graded: other random models, vocabularies and lengths,
# beams of 2 to 6 (where pruning matters), alpha = 0, 0.6 and 1.
### BEGIN HIDDEN TESTS
for case, (seed, vocab_size, max_len, beam_size, alpha) in enumerate(
    [(10, 5, 5, 2, 1.0), (11, 6, 6, 3, 0.6), (12, 5, 7, 4, 1.0), (13, 7, 5, 6, 0.0), (14, 4, 8, 2, 0.6), (15, 8, 6, 5, 1.0)]
):
    tokens, score = beam_search(tiny_model(seed, vocab_size=vocab_size), beam_size, max_len, alpha)
    report(f"beam_search/case{case}/tokens", [int(t) for t in tokens])
    report(f"beam_search/case{case}/score", float(score), atol=1e-7)
### END HIDDEN TESTS


# %% [markdown]
# ## Exercise 4: why length normalisation? (2 points, graded by hand)
#
# The cell below runs your beam search (beam 4, at most 8 tokens) on 100 small random models, once
# without length normalisation ($\alpha = 0$) and once with it ($\alpha = 1$), and counts how long the
# returned hypotheses are. Run it, then answer in the cell after it, in three to six sentences:
#
# 1. Why does search without normalisation prefer short hypotheses? Say what every extra token
#    does to $\log p(y)$, and use the numbers the cell prints.
# 2. Chapter 8 decodes real sentences with $\alpha = 1$. What would $\alpha = 0$ do to the
#    translations, and which part of BLEU (exercise 2) would punish it?

# %%
lengths = {0.0: [], 1.0: []}
for seed in range(100, 200):
    model = tiny_model(seed, vocab_size=6)
    for alpha in lengths:
        tokens, _ = beam_search(model, beam_size=4, max_len=8, alpha=alpha)
        lengths[alpha].append(len(tokens))
shorter = sum(a < b for a, b in zip(lengths[0.0], lengths[1.0]))
longer = sum(a > b for a, b in zip(lengths[0.0], lengths[1.0]))
for alpha, values in lengths.items():
    print(f"alpha = {alpha}: mean length {sum(values) / len(values):.2f} tokens (EOS included)")
print(f"alpha = 0 returned a shorter hypothesis than alpha = 1 for {shorter} models, a longer one for {longer}")

# %% [markdown] answer="length_normalisation_explained" points=2
# ### BEGIN SOLUTION
# **Model answer.** Every token multiplies $p(y)$ by a probability below 1, so it adds a negative
# term to $\log p(y) = \sum_t \log p(y_t \mid y_{<t})$: a longer hypothesis has more negative terms
# and, other things equal, a lower total. Without normalisation the search compares totals, so an
# early `EOS` wins whenever its probability is not much smaller than that of continuing: on the 100
# random models the mean length falls from about 5.9 tokens ($\alpha = 1$) to about 4.1 ($\alpha = 0$),
# and $\alpha = 0$ never returns the longer hypothesis. Dividing by $|y|^\alpha$ compares the average
# log-probability per token instead, which does not fall with length. On real sentences $\alpha = 0$
# would give translations that stop early and drop the end of the verse; BLEU's n-gram precisions
# hardly notice (the words that are there may be right), but the brevity penalty
# $e^{1 - r/c}$ does, since the total length $c$ falls below the references' $r$.
#
# **Rubric (2 points).**
# - 1 point: every token adds a negative log-probability, so totals favour short hypotheses; the
#   printed lengths used as evidence (shorter on average, never longer). Normalisation compares
#   per-token averages.
# - 1 point: the consequence on real translations (truncated output) and the brevity penalty named as
#   what punishes it (precision alone would not).
# - 0 for an answer that restates the numbers without the reason, or blames beam width.
# ### END SOLUTION


# %% [markdown]
# ## Exercise 5: byte-pair encoding, the learner (4 points)
#
# Chapter 8's word vocabularies leave every rare word `<unk>`. **Byte-pair encoding** (BPE)
# {cite}`sennrich2016neural` builds a vocabulary of *subwords* instead, from word counts:
#
# 1. write every word as its characters followed by an end-of-word marker `END = "</w>"`:
#    `"hug"` is `["h", "u", "g", "</w>"]` (the marker tells "s" at the end of a word, a plural, from
#    "s" inside one, and tells the decoder where words end);
# 2. count every pair of adjacent symbols, each occurrence weighted by the count of its word (a pair
#    that occurs twice in a word counts twice);
# 3. the pair with the largest count is the next **merge**: replace it by one symbol (the two
#    strings joined) in every word, left to right without overlaps (`["a", "a", "a"]` becomes
#    `["aa", "a"]`); ties go to the **smallest** pair in Python's order of tuples of strings (first
#    symbol, then second), so that the result is the same everywhere;
# 4. repeat until `num_merges` merges are learned, or no word has two symbols left.
#
# Write `learn_bpe(word_counts, num_merges)`, which returns the merges in the order learned, as a
# list of `(first, second)` tuples. Recounting every pair at every merge is fine here (the tests use
# small corpora and the first merges of chapter 8's training verses). Do not import anything from
# `course.bpe`: it is what you are writing.

# %%
from course.translation import load_corpus, split_corpus, tokenize

END = "</w>"
HUGS = {"hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5}  # a small corpus: word -> count
training_verses = split_corpus(load_corpus(max_words=16))["train"]  # chapter 8's training split
french_counts = Counter(word for pair in training_verses for word in tokenize(pair.french))
english_counts = Counter(word for pair in training_verses for word in tokenize(pair.english))
print(f"{len(training_verses)} training verses: {len(english_counts)} English and {len(french_counts)} French words")


# %% solution="bpe_learner"
def learn_bpe(word_counts, num_merges):
    """word_counts: {word (str): count (int)} -> the merges, a list of (first, second) string tuples in the
    order learned. Words start as characters + END; ties go to the smallest pair."""
    ### BEGIN SOLUTION
    words = [(list(word) + [END], count) for word, count in word_counts.items()]
    merges = []
    for _ in range(num_merges):
        pairs = Counter()
        for symbols, count in words:
            for pair in zip(symbols, symbols[1:]):
                pairs[pair] += count
        if not pairs:
            break
        best = min(pairs, key=lambda pair: (-pairs[pair], pair))  # the largest count, then the smallest pair
        merges.append(best)
        merged_words = []
        for symbols, count in words:
            merged, k = [], 0
            while k < len(symbols):
                if symbols[k : k + 2] == list(best):
                    merged.append(best[0] + best[1])
                    k += 2
                else:
                    merged.append(symbols[k])
                    k += 1
            merged_words.append((merged, count))
        words = merged_words
    return merges
    ### END SOLUTION


# %% tests="bpe_learner_visible" points=2
merges = learn_bpe(HUGS, 4)
assert isinstance(merges, list) and all(isinstance(m, tuple) and len(m) == 2 for m in merges), \
    f"return a list of (first, second) tuples, got {merges!r}"
assert merges[0] == ("u", "g"), (f"the first merge on HUGS is ('u', 'g'): it occurs in hug, pug and hugs, 10 + 5 + 5 = 20 "
                                 f"times; got {merges[0]}" + (" (count each word's pairs times the word's count)"
                                                             if merges[0] == ("u", "n") else ""))
assert merges[1] == ("n", END), (f"second merge: ('n', '</w>') and ('u', 'n') both count 12 + 4 = 16, and the smaller "
                                 f"pair wins the tie; got {merges[1]}"
                                 + {("u", "n"): " (the tie went to the larger pair)",
                                    ("h", "ug"): " (counting words instead of occurrences?)"}.get(merges[1], ""))
assert merges == [("u", "g"), ("n", END), ("u", "n" + END), ("h", "ug")], \
    f"expected [('u', 'g'), ('n', '</w>'), ('u', 'n</w>'), ('h', 'ug')], got {merges}: merge a pair everywhere, then recount"
assert learn_bpe({"aaa": 2}, 1) == [("a", "a")] and learn_bpe({"aaaa": 1}, 2) == [("a", "a"), ("aa", END)], \
    "'aaaa' -> 'aa aa </w>' after one merge (left to right, no overlaps); then ('aa', 'aa') and ('aa', '</w>') tie"
assert learn_bpe({"ab": 2, "b": 1}, 10) == [("b", END), ("a", "b" + END)], \
    "stop when every word is a single symbol, even before num_merges"
FRENCH_FIRST = [("e", END), ("s", END), ("t", END), (",", END), ("e", "s" + END), ("e", "n"), ("a", END), ("o", "n"),
                ("'", END), ("o", "u")]
french_merges = learn_bpe(french_counts, 10)
assert french_merges == FRENCH_FIRST, f"the first 10 merges on the French training verses: expected {FRENCH_FIRST}, got {french_merges}"
print("Exercise 5: visible tests passed.")
### BEGIN HIDDEN TESTS
report("bpe_learner/visible/hugs", [" ".join(pair) for pair in learn_bpe(HUGS, 8)])
report("bpe_learner/visible/french", [" ".join(pair) for pair in learn_bpe(french_counts, 10)])
### END HIDDEN TESTS

# %% tests="bpe_learner_hidden" points=2
# Hidden tests, run when the notebook is graded: random corpora with many ties (few letters, small
# counts), repeated letters (overlapping pairs), learning until no pair is left, and the first
# merges of the English training verses.
### BEGIN HIDDEN TESTS
import random as _random

_rng = _random.Random(824)
for case, (letters, size, merges_wanted) in enumerate([("ab", 12, 30), ("abc", 25, 20), ("abcde", 40, 25),
                                                        ("aé'", 15, 40), ("xyz", 6, 100)]):
    corpus = {"".join(_rng.choice(letters) for _ in range(_rng.randint(1, 8))): _rng.randint(1, 4) for _ in range(size)}
    report(f"bpe_learner/case{case}", [" ".join(pair) for pair in learn_bpe(corpus, merges_wanted)])
report("bpe_learner/english", [" ".join(pair) for pair in learn_bpe(english_counts, 6)])
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 6: byte-pair encoding, the encoder (2 points)
#
# To encode a word, start again from its characters and `END`, then apply each learned merge **in
# the order learned**, every occurrence, left to right without overlaps. A word never seen in
# training is still encoded: into known subwords, in the worst case into its characters. Write
# `apply_bpe(word, merges)`, which returns the word's subwords (a list of strings; joined, they give
# the word followed by `END`).

# %% solution="bpe_encoder"
def apply_bpe(word, merges):
    """word (str), merges (the list learn_bpe returns) -> the word's subwords, a list of str ending with END."""
    ### BEGIN SOLUTION
    symbols = list(word) + [END]
    for first, second in merges:
        i = 0
        while i < len(symbols) - 1:
            if symbols[i] == first and symbols[i + 1] == second:
                symbols[i : i + 2] = [first + second]
            i += 1
    return symbols
    ### END SOLUTION


# %% tests="bpe_encoder_visible" points=1
hug_merges = [("u", "g"), ("n", END), ("u", "n" + END), ("h", "ug"), ("p", "un" + END), ("hug", END), ("hug", "s"),
              ("hugs", END)]
for word, expected in [("hug", ["hug" + END]), ("bugs", ["b", "ug", "s", END]), ("unhug", ["u", "n", "hug" + END]),
                       ("hunger", ["h", "u", "n", "g", "e", "r", END]), ("pun", ["pun" + END])]:
    got = apply_bpe(word, hug_merges)
    assert got == expected, f"apply_bpe({word!r}) with HUGS' 8 merges: expected {expected}, got {got}"
assert apply_bpe("aaaa", [("a", "a")]) == ["aa", "aa", END] and apply_bpe("aaa", [("a", "a")]) == ["aa", "a", END], \
    "merge left to right without overlaps: 'aaa' -> ['aa', 'a', '</w>']"
print("Exercise 6: visible tests passed.")
### BEGIN HIDDEN TESTS
report("bpe_encoder/visible", [" ".join(apply_bpe(word, hug_merges)) for word in ("hug", "bugs", "unhug", "hunger", "aaaa")])
### END HIDDEN TESTS

# %% tests="bpe_encoder_hidden" points=1
# Hidden tests, run when the notebook is graded: merges learned on random corpora (given here, not
# learned by your learn_bpe), applied to the corpus's words and to words never seen.
### BEGIN HIDDEN TESTS
import random as _random

_MERGES = [  # learned by course.bpe.learn_merges on random corpora of 20 words (seed 826), 15 merges each
    ['b b', 'a a', 'b </w>', 'bb aa', 'a </w>', 'a b</w>', 'bb b</w>', 'bb </w>', 'aa b</w>', 'b a', 'bbaa a</w>', 'a b',
     'ba bbaaa</w>', 'bbaa ab</w>', 'bbaa bbb</w>'],
    ['b b', 'b a', 'b c', 'a </w>', 'a c', 'b </w>', 'bc </w>', 'c </w>', 'a a</w>', 'a bb', 'ac ba', 'a b</w>', 'ba bb',
     'acba ba', 'acbaba bc</w>'],
    ['b c', 'a </w>', 'b </w>', 'd d', 'c c', 'a dd', 'add b', 'bc </w>', 'b b</w>', 'd cc', 'b a', 'c </w>', 'c b</w>',
     'd </w>', 'd bc'],
]
_rng = _random.Random(825)
for case, letters in enumerate(["ab", "abc", "abcd"]):
    _words = ["".join(_rng.choice(letters) for _ in range(_rng.randint(1, 9))) for _ in range(30)]
    _merges = [tuple(line.split(" ")) for line in _MERGES[case]]
    report(f"bpe_encoder/case{case}", [" ".join(apply_bpe(word, _merges)) for word in _words])
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 7: what the first merges say (2 points, graded by hand)
#
# The cell below prints the first 15 merges your learner finds on the English and on the French
# training verses. Answer in four to six sentences:
#
# 1. What do the first merges of each language say about it? Name two merges of each language and
#    what they stand for (a frequent ending, a frequent short word, punctuation), and one difference
#    between the two languages that the lists show.
# 2. Chapter 8 gave each language as many subwords as its word vocabulary has words. What would a
#    much smaller BPE vocabulary (fewer merges) change, and a much larger one? Name what each
#    direction costs the model (think of the length of the sequences it reads and writes, the rare
#    words, and the size of its embedding and output layers).

# %%
for language, counts in (("English", english_counts), ("French", french_counts)):
    print(f"{language:8}", "  ".join(first + "+" + second for first, second in learn_bpe(counts, 15)))

# %% [markdown] answer="bpe_merges_explained" points=2
# ### BEGIN SOLUTION
# **Model answer.** The first merges are the most frequent pairs, so they show the commonest endings
# and the shortest frequent words. In English: `e+</w>` (words ending in *e*, *the*, *he*), `t+h`
# (*the*, *that*, *with*), `s+</w>` and `d+</w>` (plurals and possessives, past tenses: *-ed*),
# `th+e</w>` (*the* as a whole word) and `,+</w>`/`.+</w>` (punctuation as its own word). In
# French: `e+</w>` (the mute *e*), `s+</w>` and `e+s</w>` (plurals, *les*, *des*), `t+</w>` (*et*, *est*,
# verbs), `'+</w>` (the elisions *l'*, *d'*, *qu'*, which the tokenizer keeps as their own words) and
# `e+n` (*en*, *-ent*). The difference: French endings (*-es*, *-ent*) and elisions are merged early,
# English builds its function words (*the*, *and*) early. A smaller vocabulary splits more words
# into pieces: the sequences get longer (more decoding steps, more attention cost, dependencies
# further apart), every word has less of its own meaning in one vector, but the embedding and output
# layers shrink and no word is unknown either way; at the limit, characters. A larger one keeps more
# whole words: shorter sequences, but large embedding and output layers whose rare rows are seen
# too seldom to train, and at the limit the word vocabulary again (rare words in few pieces, fewer
# shared pieces between related words such as *parla*/*parlait*).
#
# **Rubric (2 points).**
# - 1 point: the first merges read correctly for both languages, with at least two merges each tied
#   to what they stand for (an ending such as plural *s* or *-es*, a short word such as *the*/*et*,
#   the elision or punctuation), and one difference between the languages taken from the printed lists.
# - 1 point: the vocabulary size's trade-off in both directions: fewer merges give longer sequences
#   (more steps and attention cost) but smaller embedding/output layers; more merges give shorter
#   sequences but larger layers with rare, poorly trained rows, tending to the word vocabulary. Half a
#   point for one direction only. Saying that a smaller vocabulary brings back `<unk>` is wrong (the
#   characters remain) and earns nothing for that part.
# ### END SOLUTION
