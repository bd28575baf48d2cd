"""The chapter notebooks behind the website's Colab and Binder buttons (course/notebooks.py)."""

import os
import subprocess
import sys

import jupytext
import nbformat
import pytest

from grading.assignments import assignment_names
from course.notebooks import REPO, SETUP_CELL_ID, chapter_notebook, chapter_paths, notebook_path, repository_url, setup_cell_source

CHAPTERS = chapter_paths()


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[c.stem for c in CHAPTERS])
def test_notebook_is_up_to_date_with_its_chapter(chapter):
    committed = notebook_path(chapter)
    assert committed.exists(), f"{committed.name} is missing: run `make release`"
    expected = chapter_notebook(chapter, repository_url())
    assert nbformat.read(committed, as_version=4) == expected, f"{committed.name} is out of date: run `make release`"


def test_no_notebook_without_a_chapter():
    orphans = {path.stem for path in (REPO / "chapters").glob("*.ipynb")} - {c.stem for c in CHAPTERS}
    assert not orphans, f"notebooks whose chapter is gone: {sorted(orphans)}"


def test_notebook_starts_with_the_setup_cell_and_keeps_every_chapter_cell():
    chapter = CHAPTERS[0]
    notebook = nbformat.read(notebook_path(chapter), as_version=4)
    setup, *rest = notebook.cells
    assert setup.id == SETUP_CELL_ID and "remove-cell" in setup.metadata["tags"]
    assert [(c.cell_type, c.source) for c in rest] == [(c.cell_type, c.source) for c in jupytext.read(chapter).cells]
    assert all(not c.get("outputs") for c in notebook.cells if c.cell_type == "code")


def run_setup_cell(url: str, cwd, *python_flags: str) -> str:
    program = setup_cell_source(url) + "\nprint(importlib.util.find_spec('course').origin)"
    env = {**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    result = subprocess.run([sys.executable, *python_flags, "-c", program], cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_setup_cell_does_nothing_where_the_course_is_installed(tmp_path):
    origin = run_setup_cell("https://example.invalid/unreachable/repository", tmp_path)
    assert origin == str(REPO / "course" / "__init__.py")
    assert not any(tmp_path.iterdir()), "the cell cloned or wrote something although the course is installed"


def test_setup_cell_fetches_code_and_data_where_the_course_is_missing(tmp_path):
    # python -S: no site-packages, so `course` is not importable, as on Colab. The repository is
    # cloned from this checkout instead of GitHub (no network here).
    origin = run_setup_cell(str(REPO), tmp_path, "-S")
    clone = tmp_path / REPO.name
    assert origin == str(clone / "course" / "__init__.py")
    assert (clone / "data" / "tinyshakespeare.txt").exists()


@pytest.mark.parametrize("assignment", assignment_names())
def test_student_version_fetches_the_course_before_its_first_code_cell(assignment):
    notebook = nbformat.read(REPO / "exercises" / assignment / f"{assignment}.ipynb", as_version=4)
    first_code = next(cell for cell in notebook.cells if cell.cell_type == "code")
    assert first_code.id == SETUP_CELL_ID
    assert first_code.source == setup_cell_source(repository_url(), for_chapter=False)
    assert first_code.metadata["nbgrader"]["locked"], "students may not edit the setup cell"
