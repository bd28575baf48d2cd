"""The converter from exercise sources to nbgrader notebooks marks cells the way nbgrader expects."""

import pytest

from grading.assignments import REPO, assignment_names, nbgrader_notebook


def test_every_source_has_an_assignment_name():
    assert assignment_names() == sorted(path.stem for path in (REPO / "solutions").glob("ch*.py"))


@pytest.mark.parametrize("assignment", assignment_names())
def test_cells_carry_nbgrader_metadata_with_stable_ids(assignment):
    notebook = nbgrader_notebook(REPO / "solutions" / f"{assignment}.py")
    again = nbgrader_notebook(REPO / "solutions" / f"{assignment}.py")
    assert [cell.id for cell in notebook.cells] == [cell.id for cell in again.cells]
    for cell in notebook.cells:
        marks = cell.metadata["nbgrader"]
        assert marks["schema_version"] == 3
        if marks["solution"]:
            assert "### BEGIN SOLUTION" in cell.source and not marks["locked"]
        else:
            assert marks["locked"], f"{marks['grade_id']} should be read-only"
        if marks["grade"]:
            assert marks["points"] > 0
