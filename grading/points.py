"""``python -m grading points``: how each assignment's points divide between the autograder and a person.

Counted from the instructor's sources (solutions/*.py, read as nbgrader reads them): a graded code
cell's points are the autograder's; a written answer's (a markdown answer cell with points) are given
by a person against its rubric. The course asks that analysis and written answers be worth at least a
fifth of the points (``WRITTEN_SHARE``); tests/test_points.py holds it to that.
"""

import sys

from grading.assignments import SOLUTIONS, assignment_names, nbgrader_notebook
from grading.config import is_written_answer

WRITTEN_SHARE = 0.20  # the least share of the course's points given by a person (issue 23)


def points(assignment: str) -> tuple[float, float]:
    """(autograded points, points graded by hand) of one assignment."""
    autograded = by_hand = 0.0
    for cell in nbgrader_notebook(SOLUTIONS / f"{assignment}.py").cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if not meta.get("grade"):
            continue
        if is_written_answer(cell):
            by_hand += meta.get("points", 0)
        else:
            autograded += meta.get("points", 0)
    return autograded, by_hand


def table() -> str:
    rows = {name: points(name) for name in assignment_names()}
    lines = ["| assignment | autograded | by hand | total |", "| --- | --- | --- | --- |"]
    lines += [f"| {name} | {auto:g} | {hand:g} | {auto + hand:g} |" for name, (auto, hand) in rows.items()]
    auto, hand = (sum(column) for column in zip(*rows.values()))
    lines.append(f"| **course** | {auto:g} | {hand:g} | {auto + hand:g} |")
    lines.append(f"\nGraded by hand: {hand / (auto + hand):.1%} of the points (at least {WRITTEN_SHARE:.0%} asked).")
    return "\n".join(lines)


def main(argv=None) -> int:
    print(table())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
