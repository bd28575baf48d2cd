"""Predict, then measure (issue 23, item 5): a measuring cell stops until its prediction is written.

``course.checks.require_prediction`` is what the exercises' measuring cells call first (chapter 5's
saturation table, chapter 6's sorter without positions); tests/test_assignments.py proves through
nbgrader that the untouched stub, whose prediction is ``None``, earns nothing in those cells.
"""

import pytest

from course.checks import PredictionMissing, require_prediction


@pytest.mark.parametrize("unwritten", [None, "", "   \n", 0.5])
def test_a_measuring_cell_stops_until_the_prediction_is_written(unwritten):
    with pytest.raises(PredictionMissing, match="Write your prediction first"):
        require_prediction(unwritten)


def test_a_question_that_asks_for_a_number_needs_one():
    with pytest.raises(PredictionMissing, match="holds no number"):
        require_prediction("smaller, I think", needs_number=True)
    assert require_prediction("  smaller, about 5 times \n", needs_number=True) == "smaller, about 5 times"


def test_the_stop_is_an_assertion_error_so_nbgrader_marks_the_cell_failed():
    assert issubclass(PredictionMissing, AssertionError)
