"""How submissions are graded: the nbgrader settings every course directory uses.

nbgrader_config.py (the course) and tests/test_assignments.py (a temporary course) both call
``configure_grading``, so the tests grade exactly the way an instructor does.
"""


def configure_grading(c) -> None:
    """Apply the course's grading settings to an nbgrader config object ``c``."""
    # What a student sees in place of a removed solution.
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    # nbgrader's default of 30 s per cell is too short for a slow laptop; no exercise cell needs more.
    c.ExecutePreprocessor.timeout = 120
