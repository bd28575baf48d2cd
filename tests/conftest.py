"""At the end of the run, print what the tests measured: chapter execution times and nbgrader's grades."""

from pathlib import Path

import pytest

GRADES_REPORT = Path(__file__).resolve().parent.parent / "_build" / "grades_observed.csv"


def pytest_sessionstart(session):
    GRADES_REPORT.unlink(missing_ok=True)


def pytest_terminal_summary(terminalreporter):
    from test_chapters import execution_seconds

    times = execution_seconds()
    if times:
        terminalreporter.section("chapter execution times (seconds, 2-core CPU budget: 180; chapter 7: 240)")
        for chapter, seconds in sorted(times.items()):
            terminalreporter.write_line(f"{chapter}: {seconds:.1f}")
    if GRADES_REPORT.exists():
        terminalreporter.section("grades observed through nbgrader (assignment, student, score, max)")
        terminalreporter.write(GRADES_REPORT.read_text())
