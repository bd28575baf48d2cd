"""Time the grading of a simulated class: N students x every assignment, with the course's settings and sandbox.

For each assignment, a temporary nbgrader course is released and N students submit the
reference solution (every test runs to the end, so each submission costs what the notebook
costs; `--mix` makes a third of them stubs and a third partial instead); one
`nbgrader autograde` grades them all. The overhead per submission is the autograde time per
submission minus the time to execute the reference notebook alone in a fresh kernel (the
notebook's own compute, kernel start and imports included, in a plain kernel). The reference
run that the hidden tests' results are compared with (grading/reports.py, once per class) is
timed apart, before the class command, which then finds it cached. The class is
graded with the instructor's command, ``python -m grading class`` (nbgrader autograde in the
bubblewrap sandbox); ``--no-sandbox`` grades with plain kernels, to measure what the sandbox costs.
``--workers 1 2`` grades the same class once with each number of workers (students graded at
once), reports the speed-up over the first, and checks that every student got the same grade in
every cell.

    .venv/bin/python benchmarks/grade_class.py --students 30
    .venv/bin/python benchmarks/grade_class.py --students 6 ch03_attention
    .venv/bin/python benchmarks/grade_class.py --students 6 --no-sandbox ch03_attention
    .venv/bin/python benchmarks/grade_class.py --students 30 --mix --workers 1 2 ch03_attention
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

from grading import reports
from grading.assignments import REPO, SETUP_GRADE_ID, assignment_names, nbgrader_command, nbgrader_notebook, write_nbgrader_source

KINDS = ("solution", "stub", "partial")


def submission(release: Path, assignment: str, kind: str) -> nbformat.NotebookNode:
    notebook = nbformat.read(release, as_version=4)
    reference = [c.source for c in nbgrader_notebook(REPO / "solutions" / f"{assignment}.py").cells if c.metadata["nbgrader"]["solution"]]
    answers = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("solution")]
    solved = {"solution": len(answers), "stub": 0, "partial": 1}[kind]
    for cell, source in list(zip(answers, reference))[:solved]:
        cell.source = source
    return notebook


def plain_execution_s(notebook_path: Path) -> float:
    """The notebook's own cost: run the reference solution once in a fresh kernel, no grading around it."""
    notebook = nbformat.read(notebook_path, as_version=4)
    start = time.perf_counter()
    NotebookClient(notebook, timeout=600, allow_errors=True, resources={"metadata": {"path": str(notebook_path.parent)}}).execute()
    return time.perf_counter() - start


def cell_grades(course: Path, assignment: str) -> dict:
    """{(student, grade cell): score} from the course's gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        return {(submission.student.id, grade.name): grade.score for submission in gradebook.assignment_submissions(assignment)
                for notebook in submission.notebooks for grade in notebook.grades}


def grade_class(assignment: str, students: int, workdir: Path, kinds=("solution",), sandbox: bool = True, workers: int = 1) -> dict:
    course = workdir / f"{assignment}-{'sandbox' if sandbox else 'plain'}-w{workers}"
    course.mkdir()
    (course / "nbgrader_config.py").write_text(
        "from grading.config import configure_grading\nc = get_config()\n"
        "c.CourseDirectory.course_id = 'benchmark'\nconfigure_grading(c)\n"
        + ("" if sandbox else "c.SandboxedKernelManager.sandbox = False\n")
    )
    source = write_nbgrader_source(assignment, course / "source")
    nbgrader_command("generate_assignment", assignment, cwd=course)
    release = course / "release" / assignment / f"{assignment}.ipynb"
    names = [f"student{i:02d}" for i in range(students)]
    for i, name in enumerate(names):
        nbgrader_command("db", "student", "add", name, cwd=course)
        target = course / "submitted" / name / assignment / f"{assignment}.ipynb"
        target.parent.mkdir(parents=True)
        nbformat.write(submission(release, assignment, kinds[i % len(kinds)]), target)

    own_compute = plain_execution_s(source)
    # The reference run (grading/reports.py), once per class: timed apart, then cached where the class command finds it.
    start = time.perf_counter()
    reports.reference_reports(nbformat.read(source, as_version=4), course / "_grading" / "reference_reports", skip={SETUP_GRADE_ID})
    reference = time.perf_counter() - start
    start = time.perf_counter()
    graded = subprocess.run([sys.executable, "-m", "grading", "class", assignment, "--workers", str(workers)], cwd=course, capture_output=True, text=True,
                            env={**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"})
    autograde = time.perf_counter() - start
    if graded.returncode != 0:
        raise RuntimeError(f"grading failed:\n{graded.stdout}\n{graded.stderr[-3000:]}")
    start = time.perf_counter()
    nbgrader_command("generate_feedback", assignment, cwd=course)
    feedback = time.perf_counter() - start
    per_submission = autograde / students
    return {
        "assignment": assignment, "sandbox": "yes" if sandbox else "no", "workers": workers, "students": students,
        "own compute s": own_compute,
        "reference run s": reference, "autograde s": autograde, "per submission s": per_submission,
        "overhead s": per_submission - own_compute, "feedback s": feedback, "grades": cell_grades(course, assignment),
    }


def print_table(rows: list[dict]) -> None:
    columns = list(rows[0])
    print("| " + " | ".join(columns) + " |")
    print("|" + " --- |" * len(columns))
    for row in rows:
        print("| " + " | ".join(f"{v:.1f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--students", type=int, default=30)
    parser.add_argument("--mix", action="store_true", help="solutions, stubs and partial answers in turn")
    parser.add_argument("--no-sandbox", action="store_true", help="plain kernels, to measure what the sandbox costs")
    parser.add_argument("--both", action="store_true", help="each assignment without, then with the sandbox, in one run")
    parser.add_argument("--workers", type=int, nargs="+", default=[1],
                        help="grade the class once per number given (students graded at once); speed-up against the first")
    parser.add_argument("assignments", nargs="*", help="default: every assignment in solutions/")
    args = parser.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as workdir:
        modes = (False, True) if args.both else (not args.no_sandbox,)
        for assignment in args.assignments or assignment_names():
            for sandbox in modes:
                runs = []
                for workers in args.workers:
                    runs.append(grade_class(assignment, args.students, Path(workdir), KINDS if args.mix else ("solution",), sandbox, workers))
                    runs[-1]["speed-up"] = runs[0]["autograde s"] / runs[-1]["autograde s"]
                    grades = runs[-1].pop("grades")
                    if len(runs) == 1:
                        first = grades
                    differ = sorted(key for key in first.keys() | grades.keys() if first.get(key) != grades.get(key))
                    runs[-1]["same grades"] = "yes" if not differ else f"NO: {len(differ)} differ, e.g. {differ[:3]}"
                    print(", ".join(f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in runs[-1].items()), flush=True)
                rows += runs
    print(f"load average at the end: {os.getloadavg()[0]:.1f} (1 min), on {os.cpu_count()} cores")
    total = sum(row["autograde s"] + row["feedback s"] for row in rows)
    submissions = sum(row["students"] for row in rows)
    print_table(rows)
    print(f"\n{submissions} submissions: autograde + feedback {total:.0f} s in total, {total / submissions:.1f} s per submission")


if __name__ == "__main__":
    main()
