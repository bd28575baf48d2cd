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


@pytest.fixture(scope="session")
def progress():
    """``with progress("autograde ch03"): ...`` prints a line when the step took more than 15 s,
    so a long grading test shows where its time goes (even with pytest's output captured)."""
    import contextlib
    import sys
    import time

    @contextlib.contextmanager
    def step(label: str, threshold_s: float = 15.0):
        start = time.perf_counter()
        yield
        elapsed = time.perf_counter() - start
        if elapsed > threshold_s:
            print(f"\n[progress] {label}: {elapsed:.0f} s", file=sys.__stderr__, flush=True)

    return step
