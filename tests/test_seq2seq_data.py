"""The data of chapters 1-2: correct dates, deterministic generation, splits that never overlap, padded batches."""

import datetime

import pytest
import torch

from course.seq2seq_data import (
    BOS,
    DATE_FORMATS,
    DATE_SOURCE_VOCAB,
    DATE_TARGET_VOCAB,
    EOS,
    FIRST_YEAR,
    LAST_YEAR,
    MONTHS,
    PAD,
    REVERSAL_VOCAB,
    copy_pairs,
    copy_task,
    date_pairs,
    date_task,
    make_batch,
    ordinal,
    reversal_pairs,
    reversal_task,
    split_pairs,
)


def parse_written_date(text: str) -> datetime.date:
    """An independent parser of every format, day first, two-digit years in 1950-2049."""
    months = {name.lower(): i + 1 for i, name in enumerate(MONTHS)}
    months.update({name[:3].lower(): i + 1 for i, name in enumerate(MONTHS)})
    words = text.replace(",", " ").replace("/", " ").replace("-", " ").replace(".", " ").lower().split()
    words = [w for w in words if w != "of" and w[:3] not in ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
             or w in months]
    numbers, month = [], None
    for word in words:
        if word in months:
            month = months[word]
        else:
            numbers.append(int(word.rstrip("stndrh")))
    if month is None:  # numeric: day month year, or year month day
        if numbers[0] > 31:
            year, month, day = numbers
        else:
            day, month, year = numbers
    else:
        day, year = numbers
    if year < 100:
        year += 1900 if year >= 50 else 2000
    return datetime.date(year, month, day)


def test_every_date_target_is_the_iso_form_of_its_source():
    for source, target in date_pairs(3000, seed=1):
        assert datetime.date.fromisoformat(target).isoformat() == target
        assert parse_written_date(source) == datetime.date.fromisoformat(target), source
        assert FIRST_YEAR <= int(target[:4]) <= LAST_YEAR


def test_weekday_names_are_right():
    for source, target in date_pairs(2000, seed=2):
        first = source.split()[0].rstrip(",")
        for name in ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"):
            if first in (name, name[:3]):
                assert datetime.date.fromisoformat(target).strftime("%w") == str(
                    ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday").index(name)
                )


def test_every_format_appears_and_is_encodable():
    date = datetime.date(1998, 3, 3)
    texts = [write(date) for write in DATE_FORMATS.values()]
    assert "Tuesday, 3 March 1998" in texts and "03/03/98" in texts and "March 3rd, 1998" in texts and "3 mar 1998" in texts
    for text in texts:
        assert DATE_SOURCE_VOCAB.decode(DATE_SOURCE_VOCAB.encode(text)) == text
    assert DATE_TARGET_VOCAB.decode(DATE_TARGET_VOCAB.encode("1998-03-03")) == "1998-03-03"


def test_ordinals():
    assert [ordinal(d) for d in (1, 2, 3, 4, 11, 12, 13, 21, 22, 23, 31)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "23rd", "31st"]


def test_generation_is_deterministic_given_the_seed():
    assert date_pairs(200, seed=5) == date_pairs(200, seed=5)
    assert date_pairs(200, seed=5) != date_pairs(200, seed=6)
    assert reversal_pairs(200, 3, 9, seed=5) == reversal_pairs(200, 3, 9, seed=5)
    assert reversal_pairs(200, 3, 9, seed=5) != reversal_pairs(200, 3, 9, seed=6)


def test_reversal_pairs_have_the_requested_lengths():
    pairs = reversal_pairs(2000, 5, 12, seed=0)
    lengths = {len(source) for source, _ in pairs}
    assert lengths == set(range(5, 13))
    assert all(target == source[::-1] for source, target in pairs)


def test_copy_pairs_are_long_exact_copies():
    pairs = copy_pairs(2000, 64, 70, seed=0)
    assert {len(source) for source, _ in pairs} == set(range(64, 71))
    assert all(target == source for source, target in pairs)
    assert copy_pairs(50, 64, 70, seed=1) == copy_pairs(50, 64, 70, seed=1) != copy_pairs(50, 64, 70, seed=2)
    batch = make_batch(pairs[:4], REVERSAL_VOCAB, REVERSAL_VOCAB)
    assert torch.equal(batch.src, batch.tgt_out[:, :-1].masked_fill(batch.tgt_out[:, :-1] == EOS, PAD))


@pytest.mark.parametrize(
    "task", [date_task(4000, seed=3), reversal_task(4000, 3, 12, seed=3), copy_task(4000, 64, 70, seed=3)],
    ids=["dates", "reversal", "copy"],
)
def test_splits_do_not_overlap_and_cover_everything(task):
    splits = task.splits
    assert sum(len(pairs) for pairs in splits.values()) == 4000
    assert all(len(pairs) > 0 for pairs in splits.values())
    for a, b in (("train", "val"), ("train", "test"), ("val", "test")):
        assert not {s for s, _ in splits[a]} & {s for s, _ in splits[b]}, f"{a} and {b} share a source"
        assert not {t for _, t in splits[a]} & {t for _, t in splits[b]}, f"{a} and {b} share a target"


def test_splits_are_deterministic():
    pairs = date_pairs(1000, seed=0)
    assert split_pairs(pairs, seed=4) == split_pairs(pairs, seed=4)
    assert split_pairs(pairs, seed=4) != split_pairs(pairs, seed=5)


def test_batch_shapes_and_special_tokens():
    pairs = [("abc", "cba"), ("hijab", "bajih")]
    batch = make_batch(pairs, REVERSAL_VOCAB, REVERSAL_VOCAB)
    assert batch.src.shape == (2, 5) and batch.src.dtype == torch.long
    assert batch.src_lengths.tolist() == [3, 5]
    assert batch.tgt_in.shape == batch.tgt_out.shape == (2, 6)
    assert (batch.src[0, 3:] == PAD).all()
    assert (batch.tgt_in[:, 0] == BOS).all()
    assert batch.tgt_out[0, 3] == EOS and batch.tgt_out[1, 5] == EOS and (batch.tgt_out[0, 4:] == PAD).all()
    assert torch.equal(batch.tgt_in[:, 1:][batch.tgt_out[:, :-1] != EOS], batch.tgt_out[:, :-1][batch.tgt_out[:, :-1] != EOS])
    assert REVERSAL_VOCAB.decode(batch.tgt_out[1]) == "bajih"
    assert (PAD, BOS, EOS) == (0, 1, 2)


def test_the_decayed_rate_falls_to_a_tenth_over_the_steps():
    from course.seq2seq_training import decayed_rate

    assert decayed_rate(1.0, 0, 100) == 1.0
    assert abs(decayed_rate(1.0, 50, 100) - 0.55) < 1e-12
    assert abs(decayed_rate(1.0, 100, 100) - 0.1) < 1e-12
    assert abs(decayed_rate(1.0, 150, 100) - 0.1) < 1e-12  # never below a tenth


def test_median_step_seconds_times_copies_and_leaves_the_models_unchanged():
    from course.rnn import attention_model
    from course.seq2seq_training import median_step_seconds

    task = reversal_task(n=200, min_len=3, max_len=8, seed=0)
    model = attention_model(len(task.source_vocab), len(task.target_vocab), embed_dim=8, hidden_size=8, attention_size=8)
    before = {name: value.clone() for name, value in model.state_dict().items()}
    seconds = median_step_seconds({"a": model, "b": model}, task, batch_size=8, repeats=3)
    assert set(seconds) == {"a", "b"} and all(s > 0 for s in seconds.values())
    assert all(torch.equal(before[name], value) for name, value in model.state_dict().items())


def test_chapter6_runs_give_the_same_results_in_worker_processes_as_in_this_one():
    """Chapter 6 trains its seeds in two spawned processes: a result must depend on its arguments only."""
    from course.seq2seq_training import train_runs

    runs = [dict(task="reversal", model=name, seed_offset=offset, steps=3, batch_size=4, lr=3e-3,
                 evaluate_every=3, test_size=4) for name, offset in (("transformer", 0), ("RNN + attention", 1))]
    here = train_runs(runs, workers=1)
    there = train_runs(runs, workers=2)
    for a, b in zip(here, there):
        assert a["loss"] == b["loss"] and a["evaluations"] == b["evaluations"] and a["model"] == b["model"]
    assert here[0]["loss"] != here[1]["loss"]
