"""What a graded kernel and the grader agree on, without torch (the grader imports it in every process).

The kernel's side is :func:`course.checks.report`, which writes each result into the folder named
by the environment variable ``REPORTS_ENVIRONMENT``, in the file ``report_file_name(name)``; the
grader's side is grading/reports.py, which reads those files back. ``FORBIDDEN_MARKER`` starts the
message of a test that saw a forbidden built-in run (``course.checks.forbidden_calls``), so that
the grader can flag the submission.
"""

import hashlib

REPORTS_ENVIRONMENT = "COURSE_REPORTS_DIR"
RELATIONS = ("<=", ">=", "<", ">", "==")
FORBIDDEN_MARKER = "this exercise may not call"


def report_file_name(name: str) -> str:
    """The file a report is written to in the reports folder: the grader looks only for the names the reference reported."""
    return hashlib.sha1(name.encode()).hexdigest()[:20] + ".npz"
