"""The `progress` fixture (tests/progress_lines.py) prints while pytest captures a test's output."""

from pathlib import Path

pytest_plugins = ["pytester"]

TESTS = Path(__file__).resolve().parent


def test_progress_lines_pass_the_output_capture(pytester):
    pytester.makeconftest(f"import sys\nsys.path.insert(0, {str(TESTS)!r})\nfrom progress_lines import progress\n")
    pytester.makepyfile(
        """
        def test_long_step(progress):
            progress("grading ch03_attention: nbgrader autograde")
            print("a plain print stays captured")
        """
    )
    result = pytester.runpytest_subprocess()  # output capture on, as in `make test`
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*s] grading ch03_attention: nbgrader autograde"])
    result.stdout.no_fnmatch_line("*a plain print stays captured*")
