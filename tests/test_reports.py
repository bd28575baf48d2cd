"""The grader's side of the report channel (grading/reports.py): reading a student's reports safely, and the verdict.

Fast tests without nbgrader; tests/test_hostile_class.py attacks the same channel through the class command.
"""

import io
import os
import zipfile

import numpy as np
import pytest

from course.checks import REPORTS_ENVIRONMENT, report, report_file_name
from grading import reports
from grading.reports import Reference, ReportReader, verdict


@pytest.fixture
def folder(tmp_path, monkeypatch):
    monkeypatch.setenv(REPORTS_ENVIRONMENT, str(tmp_path))
    return tmp_path


def read(folder, name, budget=reports.MAX_REPORT_BYTES):
    return ReportReader(budget).read(folder, [name])[name]


def exact(value, atol=1e-5, rtol=1e-4):
    return Reference(np.asarray(value), atol, rtol, "", 0.0)


def test_report_does_nothing_outside_grading(tmp_path, monkeypatch):
    monkeypatch.delenv(REPORTS_ENVIRONMENT, raising=False)
    report("x", 1.0)
    assert not list(tmp_path.iterdir())


def test_a_report_round_trips_as_plain_data(folder):
    import torch

    report("softmax/case1", torch.arange(6.0).reshape(2, 3), atol=1e-7)
    report("masks/case1", torch.tensor([True, False]))
    report("text", "le chat")
    assert np.array_equal(read(folder, "softmax/case1"), np.arange(6.0, dtype=np.float32).reshape(2, 3))
    assert read(folder, "masks/case1").dtype == bool
    assert str(read(folder, "text")) == "le chat"


def test_object_arrays_are_never_unpickled(folder, tmp_path):
    marker = tmp_path / "unpickled"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    np.savez(folder / report_file_name("x"), name=np.array("x"), value=np.array([Payload()], dtype=object))
    assert read(folder, "x") is None and not marker.exists()


def test_a_zip_bomb_and_a_lying_header_are_not_read(folder):
    with zipfile.ZipFile(folder / report_file_name("bomb"), "w", zipfile.ZIP_DEFLATED) as archive:
        buffer = io.BytesIO()
        np.save(buffer, np.array("bomb"))
        archive.writestr("name.npy", buffer.getvalue())
        archive.writestr("value.npy", bytes(200 * 2**20))
    assert read(folder, "bomb") is None
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
    with zipfile.ZipFile(folder / report_file_name("liar"), "w") as archive:
        archive.writestr("value.npy", header.getvalue() + bytes(64))
        archive.writestr("name.npy", buffer.getvalue())
    assert read(folder, "liar") is None


def test_links_fifos_and_other_names_count_as_missing(folder, tmp_path):
    secret = tmp_path.parent / "gradebook-like.npz"
    np.savez(secret, name=np.array("linked"), value=np.ones(3))
    os.symlink(secret, folder / report_file_name("linked"))
    os.mkfifo(folder / report_file_name("fifo"))
    np.savez(folder / report_file_name("renamed"), name=np.array("another name"), value=np.ones(3))
    assert read(folder, "linked") is None and read(folder, "fifo") is None and read(folder, "renamed") is None


def test_a_folder_replaced_by_a_link_is_not_followed(tmp_path):
    real = tmp_path / "elsewhere"
    real.mkdir()
    np.savez(real / report_file_name("x"), name=np.array("x"), value=np.ones(3))
    os.symlink(real, tmp_path / "reports")
    assert ReportReader().read(tmp_path / "reports", ["x"]) == {"x": None}


def test_the_reader_stops_at_its_budget(folder):
    report("big", np.zeros(2**20))  # 8 MiB
    report("small", np.zeros(3))
    reader = ReportReader(budget=4 * 2**20)
    assert reader.read(folder, ["big"])["big"] is None
    assert reader.budget <= 0 and reader.read(folder, ["small"])["small"] is None


def test_remove_reports_removes_links_not_their_targets(folder, tmp_path):
    target = tmp_path.parent / "keep-me.txt"
    target.write_text("grader's file")
    os.symlink(target, folder / report_file_name("x"))
    reports.remove_reports(folder, ["x"])
    assert target.read_text() == "grader's file" and not (folder / report_file_name("x")).exists()


def test_the_verdict_says_which_result_and_how_far_never_the_reference():
    reference = exact(np.array([0.25, 0.75], dtype=np.float32))
    assert verdict("a", reference, np.array([0.25, 0.75], dtype=np.float32)) == ""
    message = verdict("a", reference, np.array([0.25, 0.5], dtype=np.float32))
    assert "a: 1 of 2 values differ" in message and "0.25" in message and "0.75" not in message
    assert "shape (3,), expected (2,)" in verdict("a", reference, np.zeros(3, dtype=np.float32))
    assert "dtype float64, expected float32" in verdict("a", reference, np.array([0.25, 0.75]))
    assert "NaN" in verdict("a", reference, np.array([0.25, np.nan], dtype=np.float32))
    assert verdict("a", exact([np.nan, 1.0]), np.array([np.nan, 1.0])) == ""
    assert "no result" in verdict("a", reference, None)
    assert verdict("m", exact([True, False]), np.array([True, False])) == ""
    assert "compared exactly" in verdict("m", exact([True, False]), np.array([True, True]))
    assert verdict("s", exact("le chat"), np.array("le chat")) == "" and verdict("s", exact("le chat"), np.array("le chien"))


def test_bounds_use_the_reference_relation():
    bound = Reference(np.array(0.3), 0, 0, "<=", 0.5)
    assert verdict("loss", bound, np.array(0.4)) == ""
    assert "0.7 does not satisfy <= 0.5" in verdict("loss", bound, np.array(0.7))
    assert verdict("loss", bound, np.array(np.nan)) and verdict("loss", bound, np.zeros(2))


def test_references_cache_round_trip(tmp_path):
    references = {"cell": {"a": exact(np.arange(3.0)), "b": Reference(np.array(0.1), 0, 0, ">=", 0.05)}}
    reports.save_references(tmp_path / "cache.npz", references)
    loaded = reports.load_references(tmp_path / "cache.npz")
    assert set(loaded["cell"]) == {"a", "b"} and loaded["cell"]["b"].relation == ">="
    assert np.array_equal(loaded["cell"]["a"].value, np.arange(3.0))


def test_predictions_are_scored_by_the_grader_against_the_reference_targets(folder, tmp_path):
    """A trained model's predictions go through the channel; the accuracy is computed here, never taken from the kernel."""
    targets = np.array([[0, 1, 2], [1, 1, 3], [2, 4, 5], [0, 0, 0]])
    reference = Reference(targets.copy(), 1e-5, 1e-4, ">=", 0.75, targets=targets)
    assert verdict("p", reference, targets.copy()) == ""
    half = targets.copy()
    half[:2, 0] = 9
    assert "50.0% of the 4 held-out examples right (a fraction of 0.5)" in verdict("p", reference, half), verdict("p", reference, half)
    assert "predictions of shape" in verdict("p", reference, targets[:3])
    assert "predictions of shape" in verdict("p", reference, np.array(0.97)), "a stated accuracy is not predictions"
    words = Reference(np.array(["cba", "fed"]), 0, 0, ">=", 1.0, targets=np.array(["cba", "fed"]))
    assert verdict("w", words, np.array(["cba", "fed"])) == "" and verdict("w", words, np.array(["cba", "xyz"]))
    # through the channel: the student's own targets are ignored, the reference's are kept through the cache
    report("p", targets, bound=(">=", 0.75), targets=np.zeros_like(targets))
    assert np.array_equal(read(folder, "p"), targets)
    path = tmp_path / "cache.npz"
    reports.save_references(path, {"cell": {"p": reference}})
    loaded = reports.load_references(path)["cell"]["p"]
    assert np.array_equal(loaded.targets, targets) and loaded.relation == ">=" and loaded.limit == 0.75


def test_a_metric_is_measured_by_the_grader_from_the_reported_weights(folder, tmp_path):
    """Chapter 7's training loop reports weights; the grader rebuilds the model and computes the held-out loss in a
    process of its own (grading/metrics.py). Untrained weights are near log(65); a wrong vector says why."""
    import torch

    from course import lm_exercise
    from course.gpt import GPT

    torch.manual_seed(0)
    weights = lm_exercise.flat_weights(GPT(lm_exercise.CONFIG)).numpy()
    reference = Reference(weights, 0, 0, "<=", lm_exercise.TARGET, metric="gpt_held_out_loss")
    untrained = verdict("w", reference, weights)
    assert "measured by the grader, 4.1" in untrained and f"<= {lm_exercise.TARGET:g}" in untrained, untrained
    assert "expected the 106880 parameters" in verdict("w", reference, weights[:10])
    loose = Reference(weights, 0, 0, "<=", 5.0, metric="gpt_held_out_loss")
    assert verdict("w", loose, weights) == "", "the same weights meet a bound above their loss"
    assert "unknown metric" in verdict("w", Reference(weights, 0, 0, "<=", 5.0, metric="nope"), weights)
    # the metric comes from the reference run, through the cache; the student's report carries only its value
    report("w", weights, bound=("<=", 5.0), metric="gpt_held_out_loss")
    assert np.array_equal(read(folder, "w"), weights)
    reports.save_references(tmp_path / "cache.npz", {"cell": {"w": reference}})
    assert reports.load_references(tmp_path / "cache.npz")["cell"]["w"].metric == "gpt_held_out_loss"
