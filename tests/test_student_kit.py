"""The student kit (``python -m grading kit``, grading/student_kit.py): what it holds, what it lacks, and its self-check.

It holds the student versions, the course package without any assignment's answers, one student
build per assignment beside its notebook, the data and the self-check; it lacks solutions/, the
hidden tests, rubrics, chapters, tests. The self-check, run inside the kit with the kit's own
packages, grades a chapter 4 notebook whose answers are the reference's: its visible tests pass
with chapter 3's attention taken from the kit's course, and the answer that imports the course's
SelfAttention instead fails, as it would at grading.
"""

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from grading.assignments import REPO, assignment_names, nbgrader_notebook
from grading.student_build import ALL_ANSWERS, STAMP
from grading.student_kit import make_kit


@pytest.fixture(scope="module")
def kit(tmp_path_factory) -> Path:
    return make_kit(tmp_path_factory.mktemp("kit") / "student-kit")


def secret_lines(assignments) -> list[str]:
    """Lines that only the instructor's sources hold (of the hidden tests and the model answers of these assignments):
    neither the student versions nor the course's code have them (that the answers' counterparts in the course
    are gone from the student builds is tests/test_student_build.py's)."""
    public = "\n".join((REPO / "exercises" / a / f"{a}.ipynb").read_text() for a in assignment_names())
    course = "\n".join(path.read_text() for path in (REPO / "course").rglob("*.py"))
    texts = []
    for assignment in assignments:
        for cell in nbgrader_notebook(REPO / "solutions" / f"{assignment}.py").cells:
            meta = cell.metadata["nbgrader"]
            markers = ["### BEGIN HIDDEN TESTS"]
            if meta["solution"]:
                markers.append("### BEGIN SOLUTION")
            for marker in markers:
                for inside in cell.source.split(marker)[1:]:
                    inside = inside.split("### END", 1)[0]
                    texts += [line.strip() for line in inside.splitlines()
                              if len(line.strip()) >= 30 and json.dumps(line.strip())[1:-1] not in public and line.strip() not in course]
    return texts


def test_the_kit_holds_what_a_student_needs(kit):
    names = {path.name for path in kit.iterdir()}
    assert names == {"README.md", "pyproject.toml", "requirements.txt", "course", "data", "grading", "exercises"}
    assert (kit / "course" / STAMP).read_text().split()[0] == ALL_ANSWERS
    assert (kit / "data" / "tinyshakespeare.txt").exists()
    assert {"classroom.py", "config.py", "sandbox.py", "student_build.py", "__main__.py"} <= {p.name for p in (kit / "grading").iterdir()}
    for assignment in assignment_names():
        folder = kit / "exercises" / assignment
        assert (folder / f"{assignment}.ipynb").read_bytes() == (REPO / "exercises" / assignment / f"{assignment}.ipynb").read_bytes()
        assert (folder / "course" / STAMP).read_text().split()[0] == assignment
        assert (folder / "data").is_symlink() and (folder / "data" / "tinyshakespeare.txt").exists()


def test_the_kit_lacks_solutions_hidden_tests_and_rubrics(kit):
    everything = [path for path in kit.rglob("*") if path.is_file() and not path.is_symlink()]
    assert not any(part in ("solutions", "tests", "chapters", "_build", "_grading", "__pycache__")
                   for path in everything for part in path.relative_to(kit).parts)
    assert not any(path.suffix == ".pyc" for path in everything)
    every = secret_lines(assignment_names())
    assert len(every) > 100
    for path in everything:
        if path.suffix in (".py", ".ipynb", ".md", ".txt", ".toml"):
            text = path.read_text(errors="replace")
            if path.suffix == ".ipynb":
                assert "BEGIN HIDDEN TESTS" not in text and "BEGIN SOLUTION" not in text, path
            leaked = [line for line in every if line in text]
            assert not leaked, (path, leaked[:3])


def test_the_zip_holds_the_same_files(kit):
    with zipfile.ZipFile(kit.with_suffix(".zip")) as archive:
        listed = {name for name in archive.namelist()}
        links = {info.filename for info in archive.infolist() if (info.external_attr >> 16) & 0o170000 == 0o120000}
    files = {(Path(kit.name) / p.relative_to(kit)).as_posix() for p in kit.rglob("*") if p.is_file() or p.is_symlink()}
    assert listed == files
    assert links == {f"{kit.name}/exercises/{a}/data" for a in assignment_names()}


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_the_self_check_runs_in_the_kit(kit, tmp_path):
    assignment = "ch04_self_attention"
    notebook = nbformat.read(kit / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    reference = {c.metadata["nbgrader"]["grade_id"]: c.source
                 for c in nbgrader_notebook(REPO / "solutions" / f"{assignment}.py").cells if c.metadata["nbgrader"]["solution"]}
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and cell.cell_type == "code":
            cell.source = ("from course.transformer import SelfAttention\n" if grade_id == "self_attention" else reference[grade_id])
    path = tmp_path / f"{assignment}.ipynb"
    nbformat.write(notebook, path)
    environment = {**os.environ, "PYTHONPATH": str(kit), "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    result = subprocess.run([sys.executable, "-m", "grading", "check", str(path)], cwd=kit, env=environment,
                            capture_output=True, text=True, timeout=1200)
    output = result.stdout
    assert result.returncode == 0, output + result.stderr[-3000:]
    assert "visible tests only" in output, output
    assert "self_attention_visible (2 points): failed" in output and "NotAvailableWhileGrading" in output, output
    assert "sinusoidal_visible (1 point): passed" in output and "equivariance_visible (1 point): passed" in output, output
    assert not (kit / "_build").exists()  # the kit's grader used the builds it ships
