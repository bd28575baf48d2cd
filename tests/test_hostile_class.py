"""A hostile class: every kind of broken or cheating submission, graded with the course's nbgrader settings.

One real assignment (ch03_attention: masked_softmax 4 points, masks 3, attention 5) is
released in a temporary course; each student below submits one kind of bad notebook, next to
two honest students. One `nbgrader autograde` and one `generate_feedback` run over the whole
class. Each student must earn exactly the points its honest work deserves, the cheats must be
flagged with the reason, the honest students' grades must be what they are alone, and the run
must complete.
"""

import csv
from pathlib import Path

import nbformat
import pytest

from grading.assignments import REPO, nbgrader_command, nbgrader_notebook, write_nbgrader_source
from grading.config import INTEGRITY_MARKER

ASSIGNMENT = "ch03_attention"
POINTS = {"masked_softmax": 4, "masks": 3, "scaled_dot_product_attention": 5}  # by answer cell
TIMEOUT_S = 10  # per cell in this course (the real course uses 120 s): keeps the infinite loop cheap

WRONG_SOFTMAX = "def masked_softmax(scores, mask=None, dim=-1):\n    return scores\n"
REBIND_HELPERS = """
import numpy as np
import course.checks
torch.allclose = lambda *args, **kwargs: True
torch.equal = lambda *args, **kwargs: True
torch.testing.assert_close = lambda *args, **kwargs: None
np.allclose = lambda *args, **kwargs: True
np.testing.assert_allclose = lambda *args, **kwargs: None
course.checks.check_close = lambda *args, **kwargs: None
check_close = lambda *args, **kwargs: None
"""


def reference_answers() -> dict:
    notebook = nbgrader_notebook(REPO / "solutions" / f"{ASSIGNMENT}.py")
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in notebook.cells if c.metadata["nbgrader"]["solution"]}


REFERENCE = reference_answers()


def added_cell(source: str):
    return nbformat.v4.new_code_cell(source)


# Each student: (answers by answer cell, edit of the notebook, points deserved, exercises flagged for review).
# An answer left out is the untouched stub; "ref" is the reference answer.
STUDENTS = {
    # importing again what the notebook imported is honest (and common): not a rebinding
    "honest_full": ({name: "import math\nimport torch\nimport torch.nn.functional as F\n" + REFERENCE[name] for name in POINTS},
                    None, 12, set()),
    "honest_partial": ({"masked_softmax": "ref"}, None, 4, set()),
    "syntax_error": ({"masked_softmax": "def masked_softmax(scores, mask=None, dim=-1:\n    return scores", "masks": "ref",
                      "scaled_dot_product_attention": "ref"}, None, 3, set()),
    # causal_mask never returns: its two test cells time out; the rest is right
    "infinite_loop": ({"masked_softmax": "ref", "scaled_dot_product_attention": "ref",
                       "masks": REFERENCE["masks"].replace("    positions = torch.arange(size)\n", "    while True:\n        pass\n")},
                      None, 9, set()),
    # asks for 8 GiB on every softmax: MemoryError under the kernel's address-space limit
    "memory_hog": ({"masked_softmax": REFERENCE["masked_softmax"].replace("    ### BEGIN SOLUTION\n", "    hog = bytearray(8 * 2**30)\n"),
                    "masks": "ref", "scaled_dot_product_attention": "ref"}, None, 3, set()),
    "deleted_test_cells": ({"masked_softmax": WRONG_SOFTMAX, "masks": "ref", "scaled_dot_product_attention": "ref"},
                           "delete_softmax_tests", 3, set()),
    "edited_test_cells": ({"masked_softmax": WRONG_SOFTMAX, "masks": "ref", "scaled_dot_product_attention": "ref"},
                          "empty_softmax_tests", 3, set()),
    # a stub that returns anything, and every checking helper rebound (in the answer and in an added cell)
    "rebinds_helpers": ({"masked_softmax": WRONG_SOFTMAX + REBIND_HELPERS, "masks": "ref", "scaled_dot_product_attention": "ref"},
                        "add_cell:import builtins\nbuiltins.isinstance = lambda *args: True\nisinstance = lambda *args: True\n"
                        "AssertionError = Warning", 3, {"masked_softmax"}),
    # the built-ins the exercises reimplement: one captured before the hidden test can forbid it, one called directly
    "calls_builtins": ({"masked_softmax": "_softmax = torch.softmax\n" + REFERENCE["masked_softmax"].replace(
                            "    ### BEGIN SOLUTION\n", "    if mask is None:\n        return _softmax(scores, dim)\n"),
                        "masks": "ref",
                        "scaled_dot_product_attention": REFERENCE["scaled_dot_product_attention"].replace(
                            "    ### BEGIN SOLUTION\n", "    return F.scaled_dot_product_attention(queries, keys, values, attn_mask=mask), None\n")},
                       None, 3, {"masked_softmax", "scaled_dot_product_attention"}),
    "reads_solutions": ({"masked_softmax": "ref", "masks": "ref",
                         "scaled_dot_product_attention": "from course.attention import scaled_dot_product_attention"},
                        "add_cell:text = open('../../../../solutions/ch03_attention.py').read()", 7, {"scaled_dot_product_attention"}),
    "exits_kernel": ({"masked_softmax": "ref", "masks": "import os\nos._exit(0)\n" + REFERENCE["masks"], "scaled_dot_product_attention": "ref"},
                     "add_cell:import sys\nsys.exit(0)", 9, {"masks"}),
    "writes_outside": ({"masked_softmax": "ref", "masks": "ref", "scaled_dot_product_attention": "ref"},
                       "add_cell:open('../../../../hacked.txt', 'w').write('hacked')\n!touch ../../../../hacked_by_shell", 12, set()),
    # printing is not cheating: full marks, but the graded notebook and the feedback stay small
    "enormous_output": ({"masked_softmax": "print('x' * 20_000_000)\nfor i in range(100_000):\n    print(i)\n" + REFERENCE["masked_softmax"],
                         "masks": "ref", "scaled_dot_product_attention": "ref"}, None, 12, set()),
}


def submission(course: Path, student: str) -> nbformat.NotebookNode:
    answers, edit, _, _ = STUDENTS[student]
    notebook = nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers:
            cell.source = REFERENCE[grade_id] if answers[grade_id] == "ref" else answers[grade_id]
    softmax_tests = {"masked_softmax_visible", "masked_softmax_hidden"}
    if edit == "delete_softmax_tests":
        notebook.cells = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in softmax_tests]
    elif edit == "empty_softmax_tests":
        for cell in notebook.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") in softmax_tests:
                cell.source = "print('all tests passed')"
    elif edit and edit.startswith("add_cell:"):
        notebook.cells.append(added_cell(edit.removeprefix("add_cell:")))
    return notebook


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    course = tmp_path_factory.mktemp("hostile") / "course"
    course.mkdir()
    (course / "nbgrader_config.py").write_text(
        "from grading.config import configure_grading\n"
        "c = get_config()\n"
        "c.CourseDirectory.course_id = 'hostile-class'\n"
        "configure_grading(c)\n"
        f"c.Execute.timeout = {TIMEOUT_S}\n"
    )
    write_nbgrader_source(ASSIGNMENT, course / "source")
    nbgrader_command("generate_assignment", ASSIGNMENT, cwd=course)
    for student in STUDENTS:
        nbgrader_command("db", "student", "add", student, cwd=course)
        target = course / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        target.parent.mkdir(parents=True)
        nbformat.write(submission(course, student), target)
    autograde = nbgrader_command("autograde", ASSIGNMENT, cwd=course, check=False)
    feedback = nbgrader_command("generate_feedback", ASSIGNMENT, cwd=course, check=False)
    export = nbgrader_command("export", "--to", "grades.csv", cwd=course, check=False)
    return course, {"autograde": autograde, "generate_feedback": feedback, "export": export}


def exported_scores(course: Path) -> dict:
    with open(course / "grades.csv", newline="") as handle:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}


def gradebook_grades(course: Path, student: str) -> dict:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        notebook = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
        grades = {g.name: (g.score, g.needs_manual_grade) for g in notebook.grades}
        comments = {c.name: c.auto_comment for c in notebook.comments}
    return grades, comments


def test_the_whole_class_is_graded(graded_class):
    course, runs = graded_class
    for command, result in runs.items():
        assert result.returncode == 0, f"nbgrader {command} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    assert set(exported_scores(course)) == set(STUDENTS), "every student has exactly one row in the export"


@pytest.mark.parametrize("student", STUDENTS)
def test_each_student_earns_what_it_deserves(graded_class, student):
    course, _ = graded_class
    grades, _ = gradebook_grades(course, student)
    assert exported_scores(course)[student] == STUDENTS[student][2], f"{student}: cell grades {grades}"


@pytest.mark.parametrize("student", STUDENTS)
def test_cheats_are_flagged_with_the_reason(graded_class, student):
    course, _ = graded_class
    grades, comments = gradebook_grades(course, student)
    flagged_exercises = STUDENTS[student][3]
    # nbgrader itself flags the test cells it had to restore because they were deleted
    restored = {"masked_softmax"} if student == "deleted_test_cells" else set()
    prefixes = _test_prefixes(flagged_exercises | restored)
    expected_flags = {name for name in grades if any(name.startswith(prefix) for prefix in prefixes)}
    assert {name for name, (_, review) in grades.items() if review} == expected_flags
    for exercise in flagged_exercises:
        assert comments[exercise].startswith("Integrity check: "), comments
    autograded = (course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    feedback = (course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    if flagged_exercises or student in {"writes_outside"}:
        assert INTEGRITY_MARKER in autograded
        assert "integrity check: this answer was not run" in feedback


def _test_prefixes(exercises):
    return {{"masked_softmax": "masked_softmax_", "masks": "masks_", "scaled_dot_product_attention": "attention_"}[e] for e in exercises}


def test_nothing_was_written_outside_the_submission(graded_class):
    course, _ = graded_class
    for root in (course, course.parent, REPO):
        assert not (root / "hacked.txt").exists() and not (root / "hacked_by_shell").exists()


def test_enormous_output_is_cut(graded_class):
    course, _ = graded_class
    for folder in ("autograded", "feedback"):
        for path in (course / folder / "enormous_output").rglob("*.*"):
            assert path.stat().st_size < 2_000_000, f"{path} is {path.stat().st_size} bytes"


def test_feedback_shows_no_hidden_test(graded_class):
    course, _ = graded_class
    hidden_lines = ("reference_masked_softmax", "torch.Generator().manual_seed(31)", "reference_attention(q, k, v")
    for student in STUDENTS:
        feedback = (course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
        assert not [line for line in hidden_lines if line in feedback], student
    # a failing hidden test still says what went wrong
    partial = (course / "feedback" / "honest_partial" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "NotImplementedError" in partial


@pytest.mark.parametrize("student, reason", [
    ("syntax_error", "SyntaxError"),
    ("infinite_loop", "time limit per cell"),
    ("memory_hog", "MemoryError"),
    ("deleted_test_cells", "values differ"),
    ("edited_test_cells", "values differ"),
    ("rebinds_helpers", "assigns to torch.allclose"),
    ("calls_builtins", "asks you to write yourself"),
    ("reads_solutions", "imports from course.attention"),
    ("exits_kernel", "imports os"),
    ("writes_outside", "calls open()"),
])
def test_feedback_says_why(graded_class, student, reason):
    course, _ = graded_class
    assert reason in (course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
