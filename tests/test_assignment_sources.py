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


def _convert(tmp_path, text: str):
    source = tmp_path / "ch99_example.py"
    source.write_text("# %% [markdown]\n# # Title\n\n# %%\nimport torch\n\n" + text)
    return nbgrader_notebook(source)


def test_a_written_answer_becomes_a_manually_graded_markdown_cell(tmp_path):
    notebook = _convert(tmp_path, '# %% [markdown] answer="why_scale" points=2\n# ### BEGIN SOLUTION\n# model answer, rubric\n# ### END SOLUTION\n')
    answer = [cell for cell in notebook.cells if cell.metadata["nbgrader"]["grade_id"] == "why_scale"]
    assert len(answer) == 1 and answer[0].cell_type == "markdown"
    marks = answer[0].metadata["nbgrader"]
    assert marks["solution"] and marks["grade"] and not marks["locked"] and marks["points"] == 2


@pytest.mark.parametrize("text, complaint", [
    ('# %% answer="why" points=2\n### BEGIN SOLUTION\nx = 1\n### END SOLUTION\n', "must be a markdown cell"),
    ('# %% [markdown] answer="why"\n# ### BEGIN SOLUTION\n# text\n# ### END SOLUTION\n', "has no points="),
    ('# %% [markdown] answer="why" points=1\n# a model answer the student would see\n', "has no ### BEGIN SOLUTION"),
])
def test_a_malformed_written_answer_is_refused(tmp_path, text, complaint):
    with pytest.raises(ValueError, match=complaint):
        _convert(tmp_path, text)


@pytest.mark.parametrize("assignment", assignment_names())
def test_every_graded_test_cell_reports_what_it_checks(assignment):
    """The grader decides each test cell's points from its reports (grading/reports.py): a cell without one would
    rest on the kernel's word (an assertion a student's code can silence)."""
    notebook = nbgrader_notebook(REPO / "solutions" / f"{assignment}.py")
    for cell in notebook.cells:
        marks = cell.metadata["nbgrader"]
        if cell.cell_type == "code" and marks["grade"] and not marks["solution"]:
            hidden = cell.source.split("### BEGIN HIDDEN TESTS", 1)[-1] if "### BEGIN HIDDEN TESTS" in cell.source else ""
            assert "report(" in hidden, f"{marks['grade_id']} reports nothing to the grader"


@pytest.mark.parametrize("assignment", assignment_names())
def test_report_names_hold_no_input(assignment):
    """A name such as ``masks/hidden/causal/{size}`` would let a replaced ``report`` compute the answer from the name
    alone, outside the forbidden-call check: names hold fixed text, case numbers, and at most the dtype and sizes of
    inputs drawn at random (which decide no value of the answer); never a value that decides the answer by itself."""
    import ast
    import re

    notebook = nbgrader_notebook(REPO / "solutions" / f"{assignment}.py")
    allowed = {"case", "label", "name", "where", "norm_first", "mask_name", "index", "scaled", "dtype",
               # sizes of tensors drawn from a seeded generator: the name holds no value of them
               "B", "S", "H", "C", "A", "T", "D", "V", "block", "tuple", "x", "y", "q", "k", "shape", "base", "seed"}
    for cell in notebook.cells:
        if "report(" not in cell.source or cell.cell_type != "code":
            continue
        tree = ast.parse(re.sub(r"^[%!].*$", "", cell.source, flags=re.M))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "report" and node.args and isinstance(node.args[0], ast.JoinedStr):
                for part in node.args[0].values:
                    if isinstance(part, ast.FormattedValue):
                        used = {n.id for n in ast.walk(part.value) if isinstance(n, ast.Name)}
                        assert used <= allowed, f"{assignment}: {ast.unparse(node.args[0])} puts {used - allowed} in a report name"
