"""Grade a whole class, whatever one submission does; and let a student grade their own notebook first.

``python -m grading class <assignment>`` (run at the course root, like nbgrader) is
``nbgrader autograde <assignment>`` made robust:

1. every submitted notebook is checked before nbgrader reads it: a file over
   ``MAX_NOTEBOOK_BYTES`` or one that is not a valid notebook is not graded, with the reason;
2. ``nbgrader autograde`` grades the rest (grading/config.py repairs the metadata nbgrader would
   stop on, and runs each notebook in the sandbox);
3. a student nbgrader failed on is listed with nbgrader's reason; if nbgrader itself stopped
   before the end, it is run again for the students not yet graded (at most ``ATTEMPTS`` times);
4. a table: every student, graded or not and why, score, and what is flagged for review.

``python -m grading check <notebook>`` grades one notebook exactly as the grader will (same
sandbox, same settings, hidden tests where this copy of the course has solutions/, their results
compared with the reference run's outside the kernel: grading/reports.py) in a temporary course,
and prints each test's points, why a test failed, and what would be flagged.
"""

import json
import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
import nbformat.reader

from grading.assignments import REPO, SOLUTIONS, nbgrader_command, write_nbgrader_source

MAX_NOTEBOOK_BYTES = 20 * 2**20  # a submitted notebook, outputs included; the reference ones are under 100 kB
ATTEMPTS = 3
NBGRADER_DEFAULT_FOLDERS = {"submitted_directory": "submitted", "autograded_directory": "autograded", "db_url": ""}


@dataclass
class Outcome:
    student: str
    graded: bool = False
    reason: str = ""
    score: float | None = None
    max_score: float | None = None
    review: list[str] = field(default_factory=list)
    by_hand: list[str] = field(default_factory=list)  # written answers waiting for a person's score
    unlisted: bool = False  # not on the class list the gradebook held before grading (nbgrader adds them silently)


def course_settings(course: Path) -> dict:
    """The folders and gradebook that nbgrader_config.py in ``course`` sets (nbgrader's defaults otherwise)."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    config = Config()
    if (course / "nbgrader_config.py").exists():
        loader = PyFileConfigLoader("nbgrader_config.py", path=str(course))
        config = loader.load_config()
    directory = config.get("CourseDirectory", {})
    settings = {name: directory.get(name, default) for name, default in NBGRADER_DEFAULT_FOLDERS.items()}
    settings["db_url"] = settings["db_url"] or f"sqlite:///{course / 'gradebook.db'}"
    if settings["db_url"].startswith("sqlite:///") and not settings["db_url"].startswith("sqlite:////"):
        settings["db_url"] = "sqlite:///" + str(course / settings["db_url"].removeprefix("sqlite:///"))
    return settings


def precheck(path: Path) -> str:
    """Why this submitted notebook cannot be graded ("" when it can)."""
    size = path.stat().st_size
    if size > MAX_NOTEBOOK_BYTES:
        return f"{path.name} is {size / 2**20:.1f} MiB, over the {MAX_NOTEBOOK_BYTES // 2**20} MiB limit (clear its outputs and resubmit)"
    try:
        with open(path, encoding="utf-8") as handle:
            nbformat.read(handle, as_version=4)
    except (json.JSONDecodeError, UnicodeDecodeError, nbformat.reader.NotJSONError) as error:
        return f"{path.name} is not valid JSON ({type(error).__name__}: {str(error)[:120]})"
    except Exception as error:  # nbformat's own errors: not a notebook
        return f"{path.name} is not a Jupyter notebook ({type(error).__name__}: {str(error)[:120]})"
    return ""


_FAILED = re.compile(r"There was an error processing assignment '([^']*)' for student '([^']*)'")


def _reasons_from_log(log: str) -> dict[str, str]:
    """{student: the last line of the traceback nbgrader logged before its failure} from nbgrader's output."""
    reasons, last_error = {}, ""
    for line in log.splitlines():
        text = line.split("]", 1)[-1].strip() if line.startswith("[") else line.strip()
        if re.match(r"^[A-Za-z_.]*(Error|Exception|Interrupt)\b", text):
            last_error = text
        match = _FAILED.search(line)
        if match:
            reasons[match.group(2)] = last_error or "nbgrader failed on this submission (see its log)"
    return reasons


def grade_class(assignment: str, course: Path = Path("."), force: bool = False, students: list[str] | None = None,
                class_list: bool = True) -> list[Outcome]:
    """Grade every submission of ``assignment`` in ``course``. ``class_list``: mark the students the gradebook
    did not list before grading (``nbgrader db student import``), whom nbgrader would grade without a word."""
    course = course.resolve()
    settings = course_settings(course)
    submitted = course / settings["submitted_directory"]
    if not submitted.is_dir():
        raise SystemExit(f"no submissions: {submitted} does not exist")
    listed = _class_list(settings["db_url"]) if class_list else None
    outcomes: dict[str, Outcome] = {}
    for folder in sorted(submitted.glob(f"*/{assignment}")):
        student = folder.parent.name
        if students and student not in students:
            continue
        outcome = outcomes[student] = Outcome(student, unlisted=listed is not None and student not in listed)
        notebooks = sorted(folder.glob("*.ipynb"))
        problems = [problem for problem in map(precheck, notebooks) if problem] or ([] if notebooks else ["no notebook submitted"])
        outcome.reason = "; ".join(problems)
    autograded = course / settings["autograded_directory"]
    log_folder = course / settings["submitted_directory"] / ".." / "logs"
    for attempt in range(ATTEMPTS):
        todo = [s for s, o in outcomes.items() if not o.reason and not o.graded]
        if not todo:
            break
        exclude = sorted(set(outcomes) - set(todo) | _all_students(submitted, assignment) - set(outcomes))
        args = ["autograde", assignment, f"--CourseDirectory.student_id_exclude={','.join(exclude)}"]
        if force or attempt > 0:
            args.append("--force")
        if len(todo) == 1:
            args.append(f"--student={todo[0]}")
        started = time.time()
        result = nbgrader_command(*args, cwd=course, check=False)
        log = result.stdout + result.stderr
        log_folder.mkdir(parents=True, exist_ok=True)
        (log_folder.resolve() / f"autograde-{assignment}-{attempt + 1}.log").write_text(log)
        # Who was graded comes from nbgrader's results (the graded notebook it wrote in this run, the gradebook's
        # submission), never from the log: kernels write to the same output, so a line there may be any student's.
        results = _graded_in_gradebook(settings["db_url"], assignment, todo)
        failures = _reasons_from_log(log)
        for student in todo:
            written = [path for path in (autograded / student / assignment).glob("*.ipynb") if path.stat().st_mtime >= started - 1]
            if written and student in results:
                outcomes[student].graded = True
                outcomes[student].reason = ""
            elif student in failures:  # not graded: the reason nbgrader logged (a kernel could change the reason, not the status)
                outcomes[student].reason = failures[student]
    for outcome in outcomes.values():
        if not outcome.graded and not outcome.reason:
            outcome.reason = "nbgrader stopped before grading it (see _grading/logs/)"
    _read_gradebook(settings["db_url"], assignment, outcomes)
    return list(outcomes.values())


def _graded_in_gradebook(db_url: str, assignment: str, students: list[str]) -> set[str]:
    """The students whose submission of ``assignment`` the gradebook holds, with grades."""
    from nbgrader.api import Gradebook, MissingEntry

    found = set()
    try:
        with Gradebook(db_url) as gradebook:
            for student in students:
                try:
                    submission = gradebook.find_submission(assignment, student)
                except MissingEntry:
                    continue
                if any(notebook.grades for notebook in submission.notebooks):
                    found.add(student)
    except Exception:  # no gradebook yet (nbgrader stopped before creating it)
        return set()
    return found


def _class_list(db_url: str) -> set[str]:
    """The students of the class list imported into the gradebook: those with a name or an email. nbgrader adds
    a student it grades without either (``Autograde.create_student``), so being in the gradebook is not enough."""
    from nbgrader.api import Gradebook

    if db_url.startswith("sqlite:///") and not Path(db_url.removeprefix("sqlite:///")).exists():
        return set()
    with Gradebook(db_url) as gradebook:
        return {student.id for student in gradebook.students if student.first_name or student.last_name or student.email}


def _all_students(submitted: Path, assignment: str) -> set[str]:
    return {folder.parent.name for folder in submitted.glob(f"*/{assignment}")}


def _read_gradebook(db_url: str, assignment: str, outcomes: dict[str, Outcome]) -> None:
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(db_url) as gradebook:
        for outcome in outcomes.values():
            if not outcome.graded:
                continue
            try:
                submission = gradebook.find_submission(assignment, outcome.student)
            except MissingEntry:
                outcome.graded, outcome.reason = False, "no grades in the gradebook"
                continue
            outcome.score, outcome.max_score = submission.score, submission.max_score
            for notebook in submission.notebooks:
                outcome.review += [c.auto_comment for c in notebook.comments if c.auto_comment and c.auto_comment.startswith("Review")]
                written = {g.name for g in notebook.grades if g.cell.cell_type == "markdown"}
                outcome.by_hand += sorted(g.name for g in notebook.grades if g.needs_manual_grade and g.name in written)
                if any(g.needs_manual_grade and g.name not in written for g in notebook.grades) and not outcome.review:
                    outcome.review.append("needs manual grade")


def print_outcomes(assignment: str, outcomes: list[Outcome]) -> None:
    graded = [o for o in outcomes if o.graded]
    failed = [o for o in outcomes if not o.graded]
    print(f"{assignment}: {len(graded)} graded, {len(failed)} not graded, {sum(bool(o.review) for o in graded)} flagged for review")
    for outcome in sorted(outcomes, key=lambda o: o.student):
        if outcome.graded:
            line = f"  {outcome.student}: {outcome.score:g} / {outcome.max_score:g}"
            if outcome.by_hand:
                line += "  TO GRADE BY HAND: " + ", ".join(outcome.by_hand)
            if outcome.review:
                line += "  REVIEW: " + " | ".join(outcome.review)
        else:
            line = f"  {outcome.student}: NOT GRADED: {outcome.reason}"
        if outcome.unlisted:
            line += "  NOT ON THE CLASS LIST"
        print(line)
    unlisted = sorted(o.student for o in outcomes if o.unlisted)
    if unlisted:
        print(f"WARNING: {len(unlisted)} submission(s) from students not on the class list: {', '.join(unlisted)}. "
              "A misspelt folder name, or a student to add to _grading/students.csv and import again "
              "(nbgrader db student import _grading/students.csv); nbgrader has added them to the gradebook without names.")


# ---------------------------------------------------------------- a student's own check


UNSANDBOXED = (
    "bubblewrap is not installed here (it never is on macOS or Windows): your notebook runs unsandboxed, as a\n"
    "plain Jupyter kernel of this Python. The tests, points and verdicts are the grader's; only the grader's\n"
    "protection of itself from the notebook is missing, which a check of your own work does not need."
)
LOG_LINES_SHOWN = 40


def points(value: float) -> str:
    return f"{value:g} point" + ("" if value == 1 else "s")


def self_check(notebook_path: Path, assignment: str | None = None, sandbox: bool | None = None) -> list[Outcome]:
    """Grade one notebook in a temporary course, with the course's settings; print what the grader would say.

    ``sandbox``: run the notebook in the grader's bubblewrap sandbox (default: where ``bwrap`` is
    installed). Without it the kernel is an ordinary one, and the verdicts are reached the same way
    (the hidden tests' results compared outside the kernel with the reference run's).
    """
    notebook_path = notebook_path.resolve()
    assignment = assignment or notebook_path.stem
    if sandbox is None:
        sandbox = shutil.which("bwrap") is not None
    if not sandbox:
        print(UNSANDBOXED + "\n", flush=True)
    with tempfile.TemporaryDirectory(prefix="self-check-") as workdir:
        course = Path(workdir) / "course"
        course.mkdir()
        (course / "nbgrader_config.py").write_text(
            "from grading.config import configure_grading\nc = get_config()\n"
            "c.CourseDirectory.course_id = 'self-check'\nconfigure_grading(c)\n"
            # the reference run of each assignment, kept between self-checks (keyed by the source's hash)
            f"c.ReferenceReports.cache_directory = {str(REPO / '_grading' / 'reference_reports')!r}\n"
            + ("" if sandbox else "c.SandboxedKernelManager.sandbox = False\n")
        )
        if (SOLUTIONS / f"{assignment}.py").exists():
            write_nbgrader_source(assignment, course / "source")
            hidden = "visible and hidden tests"
        else:  # a copy of the course without solutions/: the released notebook is the source (visible tests only)
            released = REPO / "exercises" / assignment / f"{assignment}.ipynb"
            (course / "source" / assignment).mkdir(parents=True)
            shutil.copy(released, course / "source" / assignment / f"{assignment}.ipynb")
            hidden = "visible tests only (no solutions/ in this copy of the course)"
        nbgrader_command("generate_assignment", assignment, cwd=course)
        target = course / "submitted" / "me" / assignment / f"{assignment}.ipynb"
        target.parent.mkdir(parents=True)
        shutil.copy(notebook_path, target)
        outcomes = grade_class(assignment, course, class_list=False)
        print(f"Self-check of {notebook_path.name} as the grader runs it ({hidden}"
              f"{'' if sandbox else ', unsandboxed'}):")
        _print_cells(course, assignment)
        print_outcomes(assignment, outcomes)
        if not all(outcome.graded for outcome in outcomes):
            _show_log(course, notebook_path)
    return outcomes


def _show_log(course: Path, notebook_path: Path) -> None:
    """nbgrader's log of a self-check that did not grade: its end printed, all of it kept beside the notebook."""
    logs = sorted((course / "logs").glob("autograde-*.log"))
    if not logs:
        return
    text = "\n".join(path.read_text(errors="replace") for path in logs)
    kept = notebook_path.with_name(notebook_path.stem + ".self-check.log")
    try:
        kept.write_text(text)
        where = f"all of it is in {kept}"
    except OSError:
        where = "it could not be kept (the notebook's folder is not writable)"
    lines = text.rstrip().splitlines()
    print(f"\nThe end of nbgrader's log ({where}):")
    print("\n".join(lines[-LOG_LINES_SHOWN:]))


def _print_cells(course: Path, assignment: str) -> None:
    from grading.config import HideHiddenTests, hide_paths

    graded = course / "autograded" / "me" / assignment / f"{assignment}.ipynb"
    if not graded.exists():
        return
    notebook = nbformat.read(graded, as_version=4)
    hider = HideHiddenTests()
    for index, cell in enumerate(notebook.cells):
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade"):
            continue
        if cell.cell_type == "markdown":  # a written answer: no test runs on it
            print(f"  {meta['grade_id']} ({points(meta.get('points', 0))}): a written answer, graded by your instructor")
            continue
        cell, _ = hider.preprocess_cell(cell, {}, index)
        errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
        status = "failed: " + hide_paths(f"{errors[0].ename}: {errors[0].evalue}") if errors else "passed"
        print(f"  {meta['grade_id']} ({points(meta.get('points', 0))}): {status}")


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m grading", description="Release, grade a class, or check one notebook.")
    commands = parser.add_subparsers(dest="command", required=True)
    release = commands.add_parser("release", help="regenerate the student versions in exercises/ from solutions/")
    release.add_argument("assignments", nargs="*")
    klass = commands.add_parser("class", help="autograde every submission of an assignment; list who was not graded and why")
    klass.add_argument("assignment")
    klass.add_argument("--force", action="store_true", help="grade again students already graded")
    klass.add_argument("--student", action="append", help="only this student (repeatable)")
    check = commands.add_parser("check", help="grade your own notebook exactly as the grader will")
    check.add_argument("notebook", type=Path)
    check.add_argument("--assignment", help="default: the notebook's file name")
    check.add_argument("--no-sandbox", action="store_true",
                       help="run the notebook as a plain kernel even where bubblewrap is installed (the default without it)")
    args = parser.parse_args(argv)
    if args.command == "release":
        from grading.assignments import assignment_names
        from grading.assignments import release as release_assignments

        release_assignments(args.assignments or assignment_names())
        return 0
    if args.command == "class":
        from grading.sandbox import SandboxUnavailable, bwrap_path

        try:  # a class is graded in the sandbox only (the self-check may run without it: a student's own notebook)
            bwrap_path()
        except SandboxUnavailable as error:
            print(f"not grading {args.assignment}: {error}", file=sys.stderr)
            return 2
        outcomes = grade_class(args.assignment, Path(os.getcwd()), force=args.force, students=args.student)
        print_outcomes(args.assignment, outcomes)
        return 0 if all(o.graded for o in outcomes) else 1
    outcomes = self_check(args.notebook, args.assignment, sandbox=False if args.no_sandbox else None)
    return 0 if all(o.graded for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
