"""Chapter 8's shared code: the corpus, words, splits, batches, beam search and BLEU."""

import hashlib
import json
import math
import random
from pathlib import Path

import pytest
import sacrebleu
import torch

from course import translation as T
from course.rnn import attention_model, fixed_context_model
from course.seq2seq_data import BOS, EOS, PAD
from course.transformer import EncoderDecoderTransformer


@pytest.fixture(scope="module")
def corpus():
    return T.load_corpus()


def test_corpus_is_the_file_data_readme_describes(corpus):
    digest = hashlib.sha256(T.CORPUS_PATH.read_bytes()).hexdigest()
    assert digest == "ada730479fc83ad5bb944f3cf12dd1df196a7aaba8f0253314912f3a195e136a", "data/README.md gives this sha256"
    assert len(corpus) == 17_230
    assert all(1 <= len(p.english.split()) <= 25 and 1 <= len(p.french.split()) <= 25 for p in corpus)
    assert corpus[0] == T.Pair((1, 1, 1), "In the beginning God created the heavens and the earth.",
                               "Au commencement, Dieu créa les cieux et la terre.")


def test_max_words_keeps_only_short_pairs(corpus):
    short = T.load_corpus(max_words=10)
    assert 0 < len(short) < len(corpus)
    assert all(max(len(p.english.split()), len(p.french.split())) <= 10 for p in short)


def test_splits_are_deterministic_disjoint_and_share_no_source(corpus):
    first, second = T.split_corpus(corpus), T.split_corpus(list(reversed(corpus)))
    for name in ("train", "val", "test"):
        assert sorted(first[name]) == sorted(second[name]), f"the {name} split depends on the order of the pairs"
    chapters = {name: {p.reference[:2] for p in split} for name, split in first.items()}
    assert not chapters["train"] & chapters["val"] and not chapters["train"] & chapters["test"]
    assert not chapters["val"] & chapters["test"], "a chapter is in one split only"
    train_sources = {p.english.lower() for p in first["train"]}
    assert not any(p.english.lower() in train_sources for p in first["val"] + first["test"])
    total = sum(len(split) for split in first.values())
    assert 0.8 < len(first["train"]) / total < 0.9 and len(first["test"]) > len(first["val"]) > 0


@pytest.mark.parametrize("text, tokens", [
    ("L'Éternel parla à Moïse, et dit:", ["l'", "éternel", "parla", "à", "moïse", ",", "et", "dit", ":"]),
    ("Jésus pleura.", ["jésus", "pleura", "."]),
    ("Quel est le nombre de mes iniquités? Fais-moi connaître", ["quel", "est", "le", "nombre", "de", "mes", "iniquités", "?",
                                                               "fais", "-", "moi", "connaître"]),
    ("Yahweh spoke to Moses, saying,", ["yahweh", "spoke", "to", "moses", ",", "saying", ","]),
    ("The 12 tribes.", ["the", "12", "tribes", "."]),
    # the apostrophe on each language's side of the boundary: English clitics start a token, elisions end one
    ("Yahweh's works. Don't fear, I'm here.", ["yahweh", "'s", "works", ".", "do", "n't", "fear", ",", "i", "'m", "here", "."]),
    ("Jusqu'à ce qu'il s'en aille, aujourd'hui.", ["jusqu'", "à", "ce", "qu'", "il", "s'", "en", "aille", ",",
                                                  "aujourd", "'", "hui", "."]),
])
def test_tokenize_and_detokenize_round_trip(text, tokens):
    assert T.tokenize(text) == tokens
    assert T.detokenize(tokens) == text.lower()


def test_detokenize_restores_almost_every_verse(corpus):
    for side in ("english", "french"):
        texts = [getattr(p, side) for p in corpus]
        restored = sum(T.detokenize(T.tokenize(t)) == t.lower() for t in texts) / len(texts)
        assert restored > 0.97, f"{side}: only {restored:.1%} of the verses survive tokenize -> detokenize"


def test_vocabulary_keeps_frequent_words_and_maps_the_rest_to_unk():
    sentences = [["a", "b", "a"], ["c", "a", "b"], ["d"]]
    vocab = T.WordVocabulary(sentences, min_count=2)
    assert vocab.tokens == ["<pad>", "<bos>", "<eos>", "<unk>", "a", "b"]
    assert (PAD, BOS, EOS, T.UNK) == (0, 1, 2, 3)
    assert vocab.encode(["a", "c", "b"]) == [4, T.UNK, 5]
    assert vocab.decode([BOS, 4, 5, EOS, 4]) == ["a", "b"]
    assert T.unknown_rate(vocab, [["a", "c"], ["d", "b"]]) == 0.5


def test_collate_pads_with_pad_and_adds_bos_and_eos():
    batch = T.collate([([5, 6, 7], [8]), ([9], [])])
    assert batch.src.tolist() == [[5, 6, 7], [9, PAD, PAD]]
    assert batch.src_lengths.tolist() == [3, 1]
    assert batch.tgt_in.tolist() == [[BOS, 8], [BOS, PAD]]
    assert batch.tgt_out.tolist() == [[8, EOS], [EOS, PAD]]
    assert all(t.dtype == torch.long for t in (batch.src, batch.src_lengths, batch.tgt_in, batch.tgt_out))


def test_translation_data_builds_vocabularies_from_training_only():
    data = T.translation_data(max_words=10, min_count=2)
    assert set(data.ids) == {"train", "val", "test"}
    assert all(len(data.ids[name]) == len(data.pairs[name]) for name in data.ids)
    train_words = {w for p in data.pairs["train"] for w in T.tokenize(p.french)}
    assert set(data.target_vocab.tokens[4:]) <= train_words
    assert data.references("test") == [p.french for p in data.pairs["test"]]


# ---------------------------------------------------------------------------------------------
# Beam search


def tiny_models(V_src=7, V_tgt=6):
    torch.manual_seed(0)
    yield fixed_context_model(V_src, V_tgt, embed_dim=4, hidden_size=8)
    yield attention_model(V_src, V_tgt, embed_dim=4, hidden_size=8, attention_size=5)
    yield EncoderDecoderTransformer(V_src, V_tgt, d_model=8, num_heads=2, num_layers=1, d_ff=16, max_len=16)


def as_function(model, src, src_lengths):
    """next_log_probs(prefix) of one source, recomputed from scratch, PAD and BOS forbidden as beam_search does."""

    @torch.no_grad()
    def next_log_probs(prefix):
        step, state = T.decoder_steps(model, src, src_lengths)
        logits = None
        for token in [BOS] + prefix:
            logits, state = step(torch.tensor([token]), state)
        log_probs = torch.log_softmax(logits[0].double(), dim=-1)
        log_probs[[PAD, BOS]] = float("-inf")
        return log_probs

    return next_log_probs


@pytest.mark.parametrize("alpha", [0.0, 1.0])
def test_beam_search_with_a_wide_beam_is_exhaustive_search(alpha):
    src, lengths = torch.tensor([[4, 5, 6, 3]]), torch.tensor([4])
    for model in tiny_models():
        for module in model.modules():
            if isinstance(module, torch.nn.Linear):  # sharper distributions, so the search has a clear winner
                module.weight.data.mul_(4)
        model.eval()
        V, max_len = 6, 3
        want_tokens, want_score = T.exhaustive_search(as_function(model, src, lengths), V, max_len, alpha)
        tokens, score = T.beam_search(model, src, lengths, beam_size=V**max_len, max_len=max_len, alpha=alpha)
        got = tokens[0].tolist()
        got = got[: got.index(EOS) + 1] if EOS in got else got
        assert got == want_tokens, f"{type(model.decoder if hasattr(model, 'decoder') else model).__name__}: {got} != {want_tokens}"
        assert math.isclose(float(score[0]), want_score, rel_tol=1e-4)


def test_beam_search_of_a_batch_equals_beam_search_of_each_sentence():
    sources = [[4, 5, 6, 3, 3], [5], [6, 4, 4]]
    batch = T.collate([(s, [4]) for s in sources])
    for model in tiny_models():
        model.eval()
        tokens, scores = T.beam_search(model, batch.src, batch.src_lengths, beam_size=3, max_len=6)
        for row, source in enumerate(sources):
            alone, alone_score = T.beam_search(model, torch.tensor([source]), torch.tensor([len(source)]), 3, 6)
            n = alone.shape[1]
            assert tokens[row, :n].tolist() == alone[0].tolist() and (tokens[row, n:] == PAD).all()
            assert math.isclose(float(scores[row]), float(alone_score[0]), rel_tol=1e-5, abs_tol=1e-6)


def test_beam_search_function_matches_exhaustive_search_with_a_wide_beam():
    def model(prefix):
        generator = torch.Generator().manual_seed(hash(tuple(prefix)) % 2**31)
        return torch.log_softmax(2 * torch.randn(4, generator=generator, dtype=torch.float64), dim=0)

    for alpha in (0.0, 0.6, 1.0):
        tokens, score = T.beam_search_function(model, 4**4, 4, alpha)
        want_tokens, want_score = T.exhaustive_search(model, 4, 4, alpha)
        assert tokens == want_tokens and score == pytest.approx(want_score)


def test_length_normalisation_prefers_the_longer_sentence_that_alpha_zero_rejects():
    # EOS at once: p = 0.5, log p = -0.69. Three tokens: p = 0.5 * 0.9 * 0.9 = 0.405, log p = -0.90, -0.30 per token.
    table = {(): [0.0, 0.0, 0.5, 0.5], (3,): [0.0, 0.0, 0.1, 0.9], (3, 3): [0.0, 0.0, 0.9, 0.1]}

    def model(prefix):
        return torch.tensor(table.get(tuple(prefix), [0.0, 0.0, 1.0, 0.0]), dtype=torch.float64).clamp_min(1e-12).log()

    short, _ = T.beam_search_function(model, 2, 5, alpha=0.0)
    normalised, _ = T.beam_search_function(model, 2, 5, alpha=1.0)
    assert short == [EOS] and normalised == [3, 3, EOS]


def test_cached_transformer_decoder_gives_the_uncached_logits_and_outputs():
    """The key-value cache must change the cost of decoding, never its result (a nanoGPT pull request got this wrong)."""
    torch.manual_seed(0)
    model = EncoderDecoderTransformer(9, 7, d_model=16, num_heads=4, num_layers=2, d_ff=32, max_len=32).eval()
    batch = T.collate([([4, 5, 6, 3, 8], [4]), ([5], [4]), ([6, 4, 4], [4])])  # padded sources
    cached, cached_state = T.decoder_steps(model, batch.src, batch.src_lengths, cache=True)
    plain, plain_state = T.decoder_steps(model, batch.src, batch.src_lengths, cache=False)
    prev = torch.full((3,), BOS)
    generator = torch.Generator().manual_seed(0)
    for t in range(8):
        a, cached_state = cached(prev, cached_state)
        b, plain_state = plain(prev, plain_state)
        assert torch.allclose(a, b, atol=1e-5), f"step {t}: cached and uncached logits differ by {(a - b).abs().max():.2e}"
        rows = torch.randint(0, 3, (3,), generator=generator)  # beam search reorders the states' rows
        cached_state, plain_state = T.reorder(cached_state, rows), T.reorder(plain_state, rows)
        prev = torch.randint(3, 7, (3,), generator=generator)
    for beam_size in (1, 3):
        with_cache = T.beam_search(model, batch.src, batch.src_lengths, beam_size, max_len=10, cache=True)
        without = T.beam_search(model, batch.src, batch.src_lengths, beam_size, max_len=10, cache=False)
        assert torch.equal(with_cache[0], without[0]) and torch.allclose(with_cache[1], without[1], atol=1e-5)


def test_cached_decoding_of_the_shipped_transformer_translates_as_without_cache():
    data = T.translation_data(max_words=16, min_count=3)
    model, _ = T.load_model("transformer", data, T.CHECKPOINT_FOLDER.parent / "book")
    data.ids["test"], data.pairs["test"] = data.ids["test"][:24], data.pairs["test"][:24]
    for beam_size in (1, 4):
        assert T.translate(model, data, beam_size=beam_size) == T.translate(model, data, beam_size=beam_size, cache=False)


def test_batched_alignments_equal_one_verse_at_a_time():
    pairs = [([4, 5, 6, 3, 5], [4, 5]), ([5], [4, 4, 5]), ([6, 4, 4], [])]
    models = list(tiny_models())[1:]  # the two models with attention
    for model in models:
        model.eval()
        for maps, (source, target) in zip(T.alignments(model, pairs, batch_size=2), pairs):
            alone = T.alignment(model, source, target)
            assert maps.shape == alone.shape and torch.allclose(maps, alone, atol=1e-6)
            assert maps.shape[-2:] == (len(target) + 1, len(source))


def test_ibm_model1_learns_which_word_translates_which():
    # English ids 4 ("house"), 5 ("the"), 6 ("small"); French ids 4 ("maison"), 5 ("la"), 6 ("petite").
    pairs = [([5, 4], [5, 4]), ([5, 6, 4], [5, 6, 4]), ([6], [6]), ([5], [5]), ([4, 5], [4, 5])]
    table = T.ibm_model1(pairs, source_vocab_size=7, target_vocab_size=7, iterations=10)
    for word in (4, 5, 6):
        assert int(table[:, word].argmax()) == word, f"English {word} should translate to French {word}"
        assert table[:, word].sum() == pytest.approx(1.0)
    # "small house" -> "maison petite": the links cross, as French puts most adjectives after the noun.
    assert T.model1_links(table, [6, 4], [4, 6]) == {0: 1, 1: 0}
    assert T.model1_links(table, [6, 4], [T.UNK, 6]) == {1: 0}, "an unknown French word gets no link"


# ---------------------------------------------------------------------------------------------
# BLEU


def random_corpus(rng):
    words = [f"w{i}" for i in range(rng.randint(2, 6))]
    hypotheses = [[rng.choice(words) for _ in range(rng.randint(0, 14))] for _ in range(rng.randint(1, 6))]
    references = [[rng.choice(words) for _ in range(rng.randint(1, 14))] for _ in hypotheses]
    return hypotheses, references


def test_bleu_pieces_agree_with_sacrebleu():
    rng = random.Random(0)
    metric = sacrebleu.metrics.BLEU(tokenize="none", smooth_method="none", force=True)
    for _ in range(200):
        hypotheses, references = random_corpus(rng)
        stats = metric.corpus_score([" ".join(h) for h in hypotheses], [[" ".join(r) for r in references]])
        for n in range(1, 5):
            matches = sum(T.modified_precision(h, r, n)[0] for h, r in zip(hypotheses, references))
            totals = sum(T.modified_precision(h, r, n)[1] for h, r in zip(hypotheses, references))
            assert (matches, totals) == (stats.counts[n - 1], stats.totals[n - 1])
        c, r = sum(map(len, hypotheses)), sum(map(len, references))
        assert T.brevity_penalty(c, r) == pytest.approx(stats.bp)
        assert T.corpus_bleu(hypotheses, references) == pytest.approx(stats.score, abs=1e-9)


def test_modified_precision_clips_repeated_words():
    assert T.modified_precision("the the the the the the the".split(), "the cat is on the mat".split(), 1) == (2, 7)


def test_corpus_scores_and_bleu_by_length_use_sacrebleu():
    hypotheses = ["le dieu vivant parla.", "il dit:", "et la lumière fut."]
    references = ["Le Dieu vivant parla.", "Il lui dit:", "Et la lumière fut."]
    scores = T.corpus_scores(hypotheses, references)
    assert scores["bleu"] == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True).score)
    assert 0 < scores["chrf"] <= 100 and 0 < scores["brevity_penalty"] <= 1
    rows = T.bleu_by_length(hypotheses, references, [4, 2, 4], edges=[1, 3, 5])
    assert [(row["low"], row["high"], row["sentences"]) for row in rows] == [(1, 2, 1), (3, 4, 2)]
    assert rows[1]["bleu"] == pytest.approx(100)


def test_paired_bootstrap_scores_as_sacrebleu_and_brackets_the_difference():
    references = ["Le Dieu vivant parla.", "Il lui dit:", "Et la lumière fut.", "Jésus pleura.", "Il dit: viens."] * 8
    good = [r.lower() if i % 3 else "il dit:" for i, r in enumerate(references)]
    poor = ["et il dit:" for _ in references]
    for metric in ("bleu", "chrf"):
        result = T.paired_bootstrap(poor, good, references, metric, resamples=300, seed=1)
        assert result["baseline"] == pytest.approx(T.corpus_scores(poor, references)[metric])
        assert result["system"] == pytest.approx(T.corpus_scores(good, references)[metric])
        assert result["difference"] == pytest.approx(result["system"] - result["baseline"])
        assert 0 < result["low"] <= result["difference"] <= result["high"], result
        assert T.paired_bootstrap(poor, good, references, metric, resamples=300, seed=1) == result, "seeded"
        same = T.paired_bootstrap(good, good, references, metric, resamples=50)
        assert same["low"] == same["high"] == same["difference"] == 0, "a system against itself differs by nothing"
    with pytest.raises(ValueError):
        T.paired_bootstrap(poor[:-1], good, references)


# ---------------------------------------------------------------------------------------------
# Checkpoints


def test_saved_model_loads_back_and_refuses_other_data(tmp_path):
    data = T.translation_data(max_words=8, min_count=2)
    torch.manual_seed(0)
    model = T.build_model("bahdanau", len(data.source_vocab), len(data.target_vocab))
    record = {"name": "bahdanau", "seconds": 0.0}
    T.save_model(model, record, data, tmp_path)
    loaded, loaded_record = T.load_model("bahdanau", data, tmp_path)
    assert loaded_record == record
    for (name, a), (_, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert torch.allclose(a, b, atol=1e-2), name  # stored in float16
    other = T.translation_data(max_words=9, min_count=2)
    with pytest.raises(ValueError, match="trained on other data"):
        T.load_model("bahdanau", other, tmp_path)


@pytest.mark.parametrize("name", T.MODEL_NAMES)
def test_shipped_book_checkpoints_load_into_the_current_model_code(name):
    """Chapter 8 evaluates the models in data/translation_models/book/: they must still fit the code.

    load_model checks the corpus settings and vocabulary sizes; load_state_dict (strict) checks every
    parameter's name and shape against course/rnn.py and course/transformer.py as they are now. If this
    fails after a change to the models, run `python benchmarks/translation.py --train` and commit the files.
    """
    folder = T.CHECKPOINT_FOLDER.parent / "book"
    data = T.translation_data(max_words=16, min_count=3)  # the book profile's corpus, whatever COURSE_PROFILE says
    model, record = T.load_model(name, data, folder)
    assert record["name"] == name and record["steps_trained"] > 0 and len(record["train_loss"]) == record["steps_trained"]
    saved = torch.load(folder / f"{name}.pt", map_location="cpu", weights_only=True)
    assert all(v.dtype in (torch.float16, torch.long, torch.bool) for v in saved["weights"].values()), "stored in float16"
    batch = T.collate(data.ids["test"][:4])
    with torch.no_grad():
        logits = model(batch.src, batch.src_lengths, batch.tgt_in)
    assert logits.shape == (*batch.tgt_in.shape, len(data.target_vocab)) and torch.isfinite(logits).all()


def test_shipped_book_checkpoints_are_small():
    folder = T.CHECKPOINT_FOLDER.parent / "book"
    total = sum(path.stat().st_size for path in folder.glob("*.pt"))
    # the three word models and the transformer on subwords, each a few MB in float16
    assert len(list(folder.glob("*.pt"))) == len(T.MODEL_NAMES) + 1 and total <= 12_000_000, f"{total / 1e6:.1f} MB"


SEED_RESULTS = Path(__file__).resolve().parent.parent / "benchmarks" / "results" / "translation_seeds.json"


def test_committed_seed_results_match_the_recipe_chapter_8_trains_with():
    """Chapter 8 reads benchmarks/translation_seeds.py's results beside its own seed-0 models: they must be of
    the same profile and recipe (a changed recipe without a rerun fails here, not only in the book), every
    model from every seed, and scores sacrebleu could give."""
    results = json.loads(SEED_RESULTS.read_text())
    assert results["profile"] == "book" and results["threads"] == 1
    assert results["training"] == {key: value for key, value in T.TRAINING.items() if key != "seed"}
    runs = {(run["model"], run["seed"]) for run in results["runs"]}
    seeds = {seed for _, seed in runs}
    assert 0 not in seeds and len(seeds) >= 2, "seed 0 is the shipped models', which the chapter scores itself"
    assert runs == {(name, seed) for name in (*T.MODEL_NAMES, T.SUBWORD_MODEL) for seed in seeds}
    for run in results["runs"]:
        assert 0 < run["bleu"] < 100 and 0 < run["chrf"] < 100 and run["steps"] == T.TRAINING["steps"], run
