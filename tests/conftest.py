"""Progress during the long steps, and at the end of the run what the tests measured.

``progress(message)`` (tests/progress_lines.py) prints a line at once, past pytest's output
capture: the fixture that grades every assignment and a chapter that executes take minutes.
At the end: chapter execution times and nbgrader's grades.

The files run side by side, one per worker of pytest-xdist (``-n auto --dist loadfile`` in pyproject.toml): a file's
module fixtures are made once, in its worker. The files that grade a whole class take minutes, so they start first.
"""

from pathlib import Path

from progress_lines import progress  # noqa: F401  (a fixture, found by its name here)

GRADES_REPORT = Path(__file__).resolve().parent.parent / "_build" / "grades_observed.csv"


# The files whose module fixture grades through nbgrader, longest first: each starts on a worker of its own while the
# other workers take the short files.
LONGEST_FILES = ("test_assignments.py", "test_hostile_class.py", "test_class_report.py")


def pytest_collection_modifyitems(items):
    rank = {name: k for k, name in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: every file stays in one piece


def pytest_sessionstart(session):
    GRADES_REPORT.unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter):
    from test_chapters import execution_seconds

    times = execution_seconds()
    if times:
        terminalreporter.section("chapter execution times (seconds, 2-core CPU budget: 180; chapter 7: 240; "
                                 "with COURSE_BUILD_JOBS=2 two chapters share the machine, so these include waiting)")
        for chapter, seconds in sorted(times.items()):
            terminalreporter.write_line(f"{chapter}: {seconds:.1f}")
    if GRADES_REPORT.exists():
        terminalreporter.section("grades observed through nbgrader (assignment, student, score, max)")
        terminalreporter.write(GRADES_REPORT.read_text())

