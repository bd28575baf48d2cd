"""From an exercise source to the nbgrader assignment, and the student version.

Each exercise is written once, in ``solutions/<assignment>.py`` (a jupytext "percent"
notebook holding the reference answers, visible tests, hidden tests and points). nbgrader
needs an ``.ipynb`` whose cells carry its metadata, so this module:

1. reads the source with jupytext and marks each cell for nbgrader (``nbgrader_notebook``);
2. writes it into nbgrader's source folder (``write_nbgrader_source``);
3. runs the real ``nbgrader generate_assignment``, which strips the solutions and hidden tests
   into the student version under ``exercises/`` (``release``).

The cell header says what a cell is::

    # %% solution="masked_softmax"               the student's answer cell
    # %% tests="masked_softmax_visible" points=2 an autograded test cell
    # %% [markdown] answer="why_scale" points=2  a written answer, graded by hand: the model
                                                 answer and the rubric sit between
                                                 ### BEGIN SOLUTION and ### END SOLUTION
    (no marker)                                  read-only: instructions, imports, demos

Run ``python -m grading release`` after editing anything in ``solutions/``;
tests/test_assignments.py fails while ``exercises/`` is out of date.
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

import jupytext
import nbformat

from course.notebooks import SETUP_CELL_ID, repository_url, setup_cell_source

REPO = Path(__file__).resolve().parent.parent
SOLUTIONS = REPO / "solutions"
NBGRADER_SCHEMA_VERSION = 3
SETUP_GRADE_ID = "colab_setup"
SELF_CHECK_GRADE_ID = "self_check"  # the read-only note that tells students how to grade their own notebook  # the read-only cell that fetches the course on Colab; not run at grading

# nbgrader's folders inside the repository (nbgrader_config.py reads them from here).
# The source notebooks are generated, so they live in the build folder; the student versions
# are committed in exercises/, where students and the website find them.
NBGRADER_FOLDERS = {
    "source_directory": "_build/nbgrader_source",
    "release_directory": "exercises",
    "submitted_directory": "_grading/submitted",
    "autograded_directory": "_grading/autograded",
    "feedback_directory": "_grading/feedback",
}


def assignment_names() -> list[str]:
    """Every assignment, named after its source file: solutions/ch03_attention.py -> ch03_attention."""
    return sorted(path.stem for path in SOLUTIONS.glob("ch*.py"))


def _nbgrader_metadata(cell, index: int) -> dict:
    marker = cell.metadata
    if "answer" in marker:  # a written answer: the student's cell, graded by a person
        if cell.cell_type != "markdown":
            raise ValueError(f"answer cell {marker['answer']!r} must be a markdown cell (# %% [markdown] answer=...)")
        if "points" not in marker:
            raise ValueError(f"answer cell {marker['answer']!r} has no points=")
        if "### BEGIN SOLUTION" not in cell.source:
            raise ValueError(f"answer cell {marker['answer']!r} has no ### BEGIN SOLUTION (the model answer and rubric)")
        return {
            "grade": True,
            "grade_id": marker["answer"],
            "locked": False,
            "points": marker["points"],
            "solution": True,
        }
    if "solution" in marker:
        return {"grade": False, "grade_id": marker["solution"], "locked": False, "solution": True}
    if "tests" in marker:
        if "points" not in marker:
            raise ValueError(f"test cell {marker['tests']!r} has no points=")
        return {
            "grade": True,
            "grade_id": marker["tests"],
            "locked": True,
            "points": marker["points"],
            "solution": False,
        }
    return {"grade": False, "grade_id": f"cell_{index:02d}", "locked": True, "solution": False}


def nbgrader_notebook(source: Path) -> nbformat.NotebookNode:
    """The exercise source as an nbgrader source notebook, with stable cell ids (so regenerating changes nothing).

    A read-only cell before the first code cell fetches the course's code where it is not installed
    (Colab; see course/notebooks.py).
    """
    notebook = jupytext.read(source)
    seen = set()
    for index, cell in enumerate(notebook.cells):
        metadata = _nbgrader_metadata(cell, index)
        if metadata["grade_id"] in seen:
            raise ValueError(f"{source.name}: grade_id {metadata['grade_id']!r} is used twice")
        seen.add(metadata["grade_id"])
        cell.metadata = {"nbgrader": {**metadata, "schema_version": NBGRADER_SCHEMA_VERSION}}
        if cell.cell_type == "markdown" and not metadata["solution"]:
            cell.metadata["nbgrader"]["locked"] = True  # the instructions are not the student's to edit
        cell.id = metadata["grade_id"].replace("_", "-")
    setup = nbformat.v4.new_code_cell(setup_cell_source(repository_url(), for_chapter=False), id=SETUP_CELL_ID)
    setup.metadata = {"nbgrader": {"grade": False, "grade_id": SETUP_GRADE_ID, "locked": True, "solution": False,
                                   "schema_version": NBGRADER_SCHEMA_VERSION},
                      "tags": ["remove-cell"]}  # in the student's notebook, not on the website's exercise page
    title_cells = 1 if notebook.cells and notebook.cells[0].cell_type == "markdown" else 0
    notebook.cells.insert(title_cells, setup)  # after the title and instructions, before any code
    check = nbformat.v4.new_markdown_cell(self_check_text(source.stem), id=SELF_CHECK_GRADE_ID.replace("_", "-"))
    check.metadata = {"nbgrader": {"grade": False, "grade_id": SELF_CHECK_GRADE_ID, "locked": True, "solution": False,
                                   "schema_version": NBGRADER_SCHEMA_VERSION}}
    notebook.cells.insert(title_cells, check)
    notebook.metadata.pop("jupytext", None)
    notebook.metadata["kernelspec"] = {"display_name": "Python 3", "language": "python", "name": "python3"}
    return notebook


def self_check_text(assignment: str) -> str:
    """The note each student version carries, after its instructions (grading/classroom.py runs the check)."""
    return (
        "**Before you submit**, grade this notebook exactly as your instructor will (the same sandbox, tests and "
        "review hints), from the course's folder with its environment active:\n\n"
        f"    python -m grading check exercises/{assignment}/{assignment}.ipynb\n\n"
        "It prints the points of each test, why a test failed, and anything that would be flagged for review "
        "(for instance a built-in the exercise asks you to write yourself)."
    )


def write_nbgrader_source(assignment: str, source_directory: Path) -> Path:
    """Write source_directory/<assignment>/<assignment>.ipynb, nbgrader's layout for one assignment."""
    target = Path(source_directory) / assignment / f"{assignment}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nbgrader_notebook(SOLUTIONS / f"{assignment}.py"), target)
    return target


def nbgrader_command(*args: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    """Run the real nbgrader CLI of this Python environment.

    nbgrader runs ``alembic`` as a subprocess, so the environment's bin folder must be on PATH.
    """
    bin_directory = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": bin_directory + os.pathsep + os.environ.get("PATH", "")}
    result = subprocess.run(
        [str(Path(bin_directory) / "nbgrader"), *args], cwd=cwd, env=env, capture_output=True, text=True
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result


def release(assignments: list[str]) -> None:
    """Regenerate the student versions in exercises/ with nbgrader, using the repository's nbgrader_config.py."""
    (REPO / "_grading").mkdir(exist_ok=True)  # nbgrader_config.py keeps the gradebook there
    for assignment in assignments:
        write_nbgrader_source(assignment, REPO / NBGRADER_FOLDERS["source_directory"])
        nbgrader_command("generate_assignment", assignment, "--force", cwd=REPO)
        print(f"released exercises/{assignment}/{assignment}.ipynb")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["release", "list"])
    parser.add_argument("assignments", nargs="*", help="default: every assignment in solutions/")
    args = parser.parse_args()
    names = args.assignments or assignment_names()
    if args.command == "list":
        print("\n".join(names))
    else:
        release(names)


if __name__ == "__main__":
    main()
