"""The course's points: a fifth or more given by a person against a rubric (issue 23), counted as nbgrader counts them."""

import re

import pytest

from grading import points as P
from grading.assignments import SOLUTIONS, assignment_names, nbgrader_notebook
from grading.config import is_written_answer, model_answers


def test_a_fifth_of_the_points_or_more_are_graded_by_hand():
    autograded, by_hand = (sum(column) for column in zip(*(P.points(name) for name in assignment_names())))
    assert by_hand / (autograded + by_hand) >= P.WRITTEN_SHARE, P.table()


@pytest.mark.parametrize("assignment", assignment_names())
def test_every_written_answer_has_a_rubric_for_its_points(assignment):
    notebook = nbgrader_notebook(SOLUTIONS / f"{assignment}.py")
    answers = model_answers(notebook)
    for cell in notebook.cells:
        if not is_written_answer(cell):
            continue
        grade_id, worth = cell.metadata["nbgrader"]["grade_id"], cell.metadata["nbgrader"]["points"]
        rubric = re.search(r"\*\*Rubric \((\d+) points?(, one each)?\)\.?\*\*(.*)", answers.get(grade_id, ""), re.S)
        assert rubric, f"{assignment}/{grade_id}: no '**Rubric (N points).**' in its model answer"
        assert int(rubric.group(1)) == worth, f"{assignment}/{grade_id}: the rubric gives {rubric.group(1)} points, the cell {worth}"
        if rubric.group(2):  # "(N points, one each)": a numbered item for each point
            named = len(re.findall(r"^\s*\d+\.\s", rubric.group(3), re.M))
        else:  # "1 point: ..." for each
            named = sum(int(k) for k in re.findall(r"(\d+) points?[:.]", rubric.group(3)))
        assert named == worth, f"{assignment}/{grade_id}: the rubric names {named} of its {worth} points (say what earns each)"


def test_points_tell_autograded_from_written(tmp_path, monkeypatch):
    (tmp_path / "toy.py").write_text(
        '# %% solution="f"\ndef f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION\n\n'
        '# %% tests="f_visible" points=3\nassert f() == 1\n\n'
        '# %% [markdown] answer="why" points=2\n# ### BEGIN SOLUTION\n# Because.\n# ### END SOLUTION\n')
    monkeypatch.setattr(P, "SOLUTIONS", tmp_path)
    assert P.points("toy") == (3, 2)
