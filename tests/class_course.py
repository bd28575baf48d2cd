"""A small nbgrader course with a class, for the tests that grade a whole class through ``python -m grading class``.

tests/test_hostile_class.py (the red team) and tests/test_class_report.py each set one up the way the instructors'
guide does: the nbgrader configuration, the assignment generated from solutions/, the class list imported with one
nbgrader command. Their submissions are theirs to write.
"""

import re
from pathlib import Path

from grading.assignments import REPO, nbgrader_command, nbgrader_notebook, write_nbgrader_source
from grading.classroom import SHARED_REFERENCE_CACHE

# Each course of the test suite keeps its reference runs where the self-check keeps them: every assignment's reference
# run is made once in a test run (and not again while course/, grading/ and the assignment are unchanged).
REFERENCE_CACHE_CONFIG = f"c.ReferenceReports.cache_directory = {str(SHARED_REFERENCE_CACHE)!r}\n"


def reference_answers(assignment: str) -> dict[str, str]:
    """The source of each answer cell of ``solutions/<assignment>.py``, by answer id."""
    notebook = nbgrader_notebook(REPO / "solutions" / f"{assignment}.py")
    return {c.metadata["nbgrader"]["grade_id"]: c.source for c in notebook.cells if c.metadata["nbgrader"]["solution"]}


def own_version(answer: str) -> str:
    """The reference's algorithm in a student's own code (one statement more in each function): not a copy of the
    reference, which the integrity pass flags (the same syntax tree, names aside)."""
    return re.sub(r"^( *)### BEGIN SOLUTION\n", lambda m: f"{m.group(0)}{m.group(1)}checked = True  # my own version\n", answer, flags=re.M)


def course_with_a_class(course: Path, assignment: str, course_id: str, class_list: dict[str, tuple[str, str]],
                        config: str = "") -> Path:
    """Make ``course`` an nbgrader course with ``assignment`` released and ``class_list`` ({student: (first, last)})
    imported; ``config`` is appended to its nbgrader_config.py. Returns the released notebook."""
    course.mkdir(parents=True, exist_ok=True)
    (course / "nbgrader_config.py").write_text(
        "from grading.config import configure_grading\nc = get_config()\n"
        f"c.CourseDirectory.course_id = {course_id!r}\nconfigure_grading(c)\n" + REFERENCE_CACHE_CONFIG + config)
    write_nbgrader_source(assignment, course / "source")
    nbgrader_command("generate_assignment", assignment, cwd=course)
    rows = [f"{student},{first},{last},{student}@example.org" for student, (first, last) in class_list.items()]
    (course / "students.csv").write_text("id,first_name,last_name,email\n" + "\n".join(rows) + "\n")
    nbgrader_command("db", "student", "import", "students.csv", cwd=course)  # one command for the class, as the guide says
    return course / "release" / assignment / f"{assignment}.ipynb"
