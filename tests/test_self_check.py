"""``python -m grading check <notebook>``: a student grades their own notebook exactly as the grader will.

The same sandbox and settings, and the same verdicts reached outside the kernel: the hidden
tests' results are compared with the reference run's (grading/reports.py), whatever the
notebook did to the checks in its own kernel. Without bubblewrap (macOS, Windows) the notebook
runs in a plain kernel, with the same verdicts; a class is never graded without it.
"""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from grading.assignments import REPO, nbgrader_notebook
from grading.points import points

ASSIGNMENT = "ch03_attention"
CHEAT = (
    "def masked_softmax(scores, mask=None, dim=-1):\n    return scores\n\n"
    "torch.allclose = lambda *a, **k: True\ncheck_close = lambda *a, **k: None\n"
)


def write_cheating_notebook(tmp_path):
    """The released notebook with every answer the reference's, except a masked_softmax that cheats."""
    notebook = nbformat.read(REPO / "exercises" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    reference = {c.metadata["nbgrader"]["grade_id"]: c.source
                 for c in nbgrader_notebook(REPO / "solutions" / f"{ASSIGNMENT}.py").cells if c.metadata["nbgrader"]["solution"]}
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution"):
            cell.source = CHEAT if grade_id == "masked_softmax" else reference[grade_id]
    path = tmp_path / f"{ASSIGNMENT}.ipynb"
    nbformat.write(notebook, path)
    return path


def assert_graded_as_the_grader_grades(output: str) -> None:
    assert "visible and hidden tests" in output
    assert "masks_visible (1 point): passed" in output, output
    assert "masks_hidden (2 points): passed" in output, output
    assert "masked_softmax_hidden (2 points): failed: ResultDiffers: masked_softmax/hidden/" in output, output
    assert "attention_hidden (3 points): failed: ResultDiffers" in output, output
    assert f"me: 3 / {sum(points(ASSIGNMENT)):g}" in output and "REVIEW" in output, output  # its written answer is out of the 3


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_self_check_reports_each_test_as_the_grader_will(tmp_path):
    path = write_cheating_notebook(tmp_path)
    result = subprocess.run([sys.executable, "-m", "grading", "check", str(path)], cwd=REPO, capture_output=True, text=True)
    output = result.stdout
    assert result.returncode == 0, output + result.stderr[-3000:]
    assert "unsandboxed" not in output
    assert_graded_as_the_grader_grades(output)


def without_bubblewrap() -> dict:
    """An environment whose PATH is this Python's folder only: no ``bwrap``, as on macOS or Windows."""
    return {**os.environ, "PATH": str(Path(sys.executable).parent)}


def test_self_check_without_bubblewrap_gives_the_same_verdicts_and_says_it_is_unsandboxed(tmp_path):
    path = write_cheating_notebook(tmp_path)
    result = subprocess.run([sys.executable, "-m", "grading", "check", str(path)], cwd=REPO, capture_output=True, text=True,
                            env=without_bubblewrap())
    output = result.stdout
    assert result.returncode == 0, output + result.stderr[-3000:]
    assert output.startswith("bubblewrap is not installed here"), output
    assert "(visible and hidden tests, unsandboxed)" in output, output
    assert_graded_as_the_grader_grades(output)


def test_the_class_is_never_graded_without_the_sandbox(tmp_path):
    result = subprocess.run([sys.executable, "-m", "grading", "class", ASSIGNMENT], cwd=tmp_path, capture_output=True,
                            text=True, env=without_bubblewrap())
    assert result.returncode == 2, result.stdout + result.stderr
    assert "not grading ch03_attention: bubblewrap (`bwrap`) is not installed" in result.stderr, result.stderr


def test_a_self_check_that_could_not_grade_shows_the_end_of_the_log_and_keeps_all_of_it(tmp_path, capsys):
    from grading.classroom import LOG_LINES_SHOWN, _show_log

    (tmp_path / "course" / "logs").mkdir(parents=True)
    lines = [f"line {i}" for i in range(100)] + ["SandboxUnavailable: something the student must read in full " + "x" * 500]
    (tmp_path / "course" / "logs" / "autograde-ch03_attention-1.log").write_text("\n".join(lines))
    _show_log(tmp_path / "course", tmp_path / "ch03_attention.ipynb")
    output = capsys.readouterr().out
    assert lines[-1] in output and f"line {100 - LOG_LINES_SHOWN + 1}" in output and "line 50\n" not in output
    assert (tmp_path / "ch03_attention.self-check.log").read_text().splitlines() == lines
