"""course.bpe: the merges learned, the segmentation, the vocabulary's round trip, chapter 8's subword data.

Each check is shown able to fail: the hand-worked corpus tells apart the usual mistakes (counting
word types instead of occurrences, breaking ties the other way, merging overlapping pairs), and
the fast learner is compared with a slow one written from the definition on random corpora.
"""

import random
from collections import Counter

import pytest

from course import bpe
from course.bpe import END_OF_WORD, UNK, BPEVocabulary, learn_merges, segment

# Sennrich et al.'s example: 'est' at the end of 9 words (6 + 3), 'lo' in 7 (5 + 2)
SENNRICH = {"low": 5, "lower": 2, "newest": 6, "widest": 3}
SENNRICH_MERGES = [("e", "s"), ("es", "t"), ("est", END_OF_WORD), ("l", "o"), ("lo", "w")]
# Where the counts decide: after (u, g) = 10 + 5 + 5, the pairs (n, </w>) and (u, n) both count 12 + 4 and
# the smaller wins; counting word types instead would pick (h, ug), a tie to the larger (u, n)
HUGS = {"hug": 10, "pug": 5, "pun": 12, "bun": 4, "hugs": 5}
HUGS_MERGES = [("u", "g"), ("n", END_OF_WORD), ("u", "n" + END_OF_WORD), ("h", "ug")]


def slow_merges(word_counts, num_merges, weighted=True, ties="smallest", overlapping=False):
    """Byte-pair encoding from its definition, recounting every pair at every merge; the keyword
    arguments make the usual mistakes, to show that the tests see them."""
    words = {tuple(word) + (END_OF_WORD,): count for word, count in word_counts.items()}
    merges = []
    for _ in range(num_merges):
        counts = Counter()
        for symbols, count in words.items():
            for pair in zip(symbols, symbols[1:]):
                counts[pair] += count if weighted else 1
        if not counts:
            break
        best = max(counts.values())
        tied = sorted(pair for pair, c in counts.items() if c == best)
        pair = tied[0] if ties == "smallest" else tied[-1]
        merges.append(pair)
        merged_words = {}
        for symbols, count in words.items():
            out, k = [], 0
            while k < len(symbols):
                if k + 1 < len(symbols) and (symbols[k], symbols[k + 1]) == pair:
                    out.append(pair[0] + pair[1])
                    k += 1 if overlapping else 2
                else:
                    out.append(symbols[k])
                    k += 1
            merged_words[tuple(out)] = merged_words.get(tuple(out), 0) + count
        words = merged_words
    return merges


def sequential_segment(word, merges):
    symbols = list(word) + [END_OF_WORD]
    for first, second in merges:
        out, k = [], 0
        while k < len(symbols):
            if k + 1 < len(symbols) and symbols[k] == first and symbols[k + 1] == second:
                out.append(first + second)
                k += 2
            else:
                out.append(symbols[k])
                k += 1
        symbols = out
    return symbols


def random_corpus(rng, letters="abc", words=30):
    return {"".join(rng.choice(letters) for _ in range(rng.randint(1, 7))): rng.randint(1, 5) for _ in range(words)}


def test_sennrich_example_by_hand():
    assert learn_merges(SENNRICH, 5) == SENNRICH_MERGES
    assert slow_merges(SENNRICH, 5) == SENNRICH_MERGES
    assert learn_merges(HUGS, 4) == HUGS_MERGES


def test_the_example_tells_the_mistakes_apart():
    # word types instead of occurrences, ties to the largest pair: other merges, so the test above can fail
    assert slow_merges(HUGS, 4) == HUGS_MERGES
    assert slow_merges(HUGS, 4, weighted=False) != HUGS_MERGES
    assert slow_merges(HUGS, 4, ties="largest") != HUGS_MERGES


def test_overlapping_pairs_merge_left_to_right():
    # 'aaa' counts the pair (a, a) twice, and merges to 'aa a', not 'aa aa'
    assert learn_merges({"aaa": 1}, 1) == [("a", "a")]
    assert segment("aaa", {("a", "a"): 0}) == ["aa", "a", END_OF_WORD]
    assert learn_merges({"aaaa": 1}, 2) == [("a", "a"), ("aa", END_OF_WORD)]  # a tie: "<" sorts before "a"
    assert slow_merges({"aaa": 3, "ab": 1}, 3, overlapping=True) != slow_merges({"aaa": 3, "ab": 1}, 3)


@pytest.mark.parametrize("seed", range(20))
def test_fast_learner_equals_definition(seed):
    rng = random.Random(seed)
    corpus = random_corpus(rng, letters="abc" if seed % 2 else "abcdé'", words=rng.randint(3, 40))
    assert learn_merges(corpus, 25) == slow_merges(corpus, 25)


def test_learning_stops_when_every_word_is_one_symbol():
    # (b, </w>) counts 2 + 1, then (a, b</w>) 2; then both words are one symbol each
    assert learn_merges({"ab": 2, "b": 1}, 10) == [("b", END_OF_WORD), ("a", "b" + END_OF_WORD)]


def test_learning_ignores_the_order_of_the_words():
    rng = random.Random(0)
    corpus = random_corpus(rng, words=40)
    shuffled = dict(sorted(corpus.items(), key=lambda item: rng.random()))
    assert learn_merges(corpus, 30) == learn_merges(shuffled, 30)


@pytest.mark.parametrize("seed", range(5))
def test_segment_applies_the_merges_in_order(seed):
    rng = random.Random(seed)
    corpus = random_corpus(rng, words=50)
    merges = learn_merges(corpus, 40)
    ranks = {pair: rank for rank, pair in enumerate(merges)}
    for word in list(corpus) + ["".join(rng.choice("abcd") for _ in range(9)) for _ in range(30)]:
        assert segment(word, ranks) == sequential_segment(word, merges)
        assert "".join(segment(word, ranks)) == word + END_OF_WORD


def test_segment_a_pair_learned_before_the_last_merge_applied_is_not_reapplied():
    # 'abc' could come from (a, bc) or (ab, c); merges in order: (b, c) first, then (a, b) finds no 'a b'
    merges = [("b", "c"), ("a", "b"), ("a", "bc")]
    ranks = {pair: rank for rank, pair in enumerate(merges)}
    assert segment("abc", ranks) == sequential_segment("abc", merges) == ["abc", END_OF_WORD]


SENTENCES = [["l'", "éternel", "parla", "à", "moïse", ",", "et", "dit", ":"],
             ["et", "dieu", "dit", ":", "que", "la", "lumière", "soit", "!"],
             ["les", "fils", "de", "moïse", "et", "les", "filles", "."]] * 3


def test_vocabulary_size_and_layout():
    vocab = BPEVocabulary(SENTENCES, 60)
    assert len(vocab) == 60 == len(set(vocab.tokens))
    assert vocab.tokens[:4] == ["<pad>", "<bos>", "<eos>", "<unk>"]
    assert vocab.tokens[-len(vocab.merges):] == [a + b for a, b in vocab.merges]
    with pytest.raises(ValueError):
        BPEVocabulary(SENTENCES, 10)


def test_round_trip_and_unknown_characters():
    vocab = BPEVocabulary(SENTENCES, 50)
    for sentence in SENTENCES + [["moïses", "parlait", "à", "l'", "éternelle"]]:  # unseen words, seen characters
        ids = vocab.encode(sentence)
        assert UNK not in ids
        assert vocab.decode(ids) == sentence
        assert vocab.decode([1] + ids + [2, 0, 5]) == sentence  # BOS skipped, stops at EOS
    assert UNK in vocab.encode(["zèbre"])  # z and è never seen in training
    assert vocab.unknown_rate([["zèbre", "et"], ["dit", "dieu"]]) == 0.25


@pytest.fixture(scope="module")
def chapter_data():
    from course import translation as T

    words = T.translation_data()
    return words, bpe.subword_data(words)


def test_chapter_subword_data(chapter_data):
    from course import translation as T

    words, subwords = chapter_data
    assert len(subwords.source_vocab) == len(words.source_vocab) and len(subwords.target_vocab) == len(words.target_vocab)
    french_test = [T.tokenize(pair.french) for pair in words.pairs["test"]]
    assert subwords.target_vocab.unknown_rate(french_test) == 0.0 < T.unknown_rate(words.target_vocab, french_test)
    for (source, target), pair in zip(subwords.ids["test"][:50], words.pairs["test"][:50]):
        assert subwords.target_vocab.decode(target) == T.tokenize(pair.french)
        assert subwords.source_vocab.decode(source) == T.tokenize(pair.english)
    assert subwords.settings != words.settings  # a word model's checkpoint is refused


def test_shipped_subword_checkpoint_loads_and_translates(chapter_data):
    """The subword transformer chapter 8 evaluates: its merges are the ones learned now, it has the word
    transformer's parameter count, a word corpus is refused, and it writes no <unk>."""
    from course import translation as T

    words, subwords = chapter_data
    model, record = T.load_model(T.SUBWORD_MODEL, subwords)
    word_model, _ = T.load_model("transformer", words)
    assert sum(p.numel() for p in model.parameters()) == sum(p.numel() for p in word_model.parameters())
    assert record["steps_trained"] == T.TRAINING["steps"]
    with pytest.raises(ValueError):
        T.load_model(T.SUBWORD_MODEL, words)
    few = T.TranslationData({"test": subwords.pairs["test"][:16]}, {"test": subwords.ids["test"][:16]},
                            subwords.source_vocab, subwords.target_vocab, subwords.settings)
    outputs = T.translate(model, few, "test")
    assert len(outputs) == 16 and all(outputs) and not any("<unk>" in text for text in outputs)
