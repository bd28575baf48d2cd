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
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
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


def _course_config(course: Path):
    """The configuration that nbgrader_config.py in ``course`` sets (empty without one)."""
    from traitlets.config import Config
    from traitlets.config.loader import PyFileConfigLoader

    if not (course / "nbgrader_config.py").exists():
        return Config()
    return PyFileConfigLoader("nbgrader_config.py", path=str(course)).load_config()


def course_settings(course: Path) -> dict:
    """The folders and gradebook that nbgrader_config.py in ``course`` sets (nbgrader's defaults otherwise)."""
    config = _course_config(course)
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
                class_list: bool = True, workers: int = 1, progress: bool = False) -> list[Outcome]:
    """Grade every submission of ``assignment`` in ``course``. ``class_list``: mark the students the gradebook
    did not list before grading (``nbgrader db student import``), whom nbgrader would grade without a word.

    ``workers``: how many students are graded at once, each by an nbgrader process of its own over a share of
    the class (every kernel in its own sandbox). nbgrader's SQLite gradebook takes one writer at a time, so each
    share is graded into a copy of the gradebook, and the copies' submissions are merged back after
    (``merge_gradebook``); a gradebook on a database server (``db_url`` not SQLite) is shared by the workers."""
    course = course.resolve()
    settings = course_settings(course)
    submitted = course / settings["submitted_directory"]
    if not submitted.is_dir():
        raise SystemExit(f"no submissions: {submitted} does not exist")
    listed = _class_list(settings["db_url"]) if class_list else None
    outcomes: dict[str, Outcome] = {}
    for folder in sorted(submitted.glob(f"*/{assignment}")):
        student = folder.parent.name
        if students is not None and student not in students:
            continue
        outcome = outcomes[student] = Outcome(student, unlisted=listed is not None and student not in listed)
        notebooks = sorted(folder.glob("*.ipynb"))
        problems = [problem for problem in map(precheck, notebooks) if problem] or ([] if notebooks else ["no notebook submitted"])
        outcome.reason = "; ".join(problems)
    todo = [student for student, outcome in outcomes.items() if not outcome.reason]
    shares = [share for share in (todo[k::max(1, workers)] for k in range(max(1, workers))) if share]
    log_folder = (course / settings["submitted_directory"] / ".." / "logs").resolve()
    log_folder.mkdir(parents=True, exist_ok=True)
    counter = _Progress(len(todo), progress)
    if len(shares) <= 1:
        _grade_share(assignment, course, settings, outcomes, todo, settings["db_url"], force, log_folder, "", counter)
    else:
        _reference_run(assignment, course)  # once, before the workers (each would otherwise run it)
        sqlite = settings["db_url"].startswith("sqlite:///")
        shard_folder = log_folder / f"shards-{assignment}"
        shutil.rmtree(shard_folder, ignore_errors=True)
        shard_folder.mkdir()
        urls = []
        for k in range(len(shares)):
            if sqlite:  # a copy of the gradebook as it is now: the assignment, its cells, the class list
                shutil.copy(settings["db_url"].removeprefix("sqlite:///"), shard_folder / f"gradebook-{k + 1}.db")
            urls.append(f"sqlite:///{shard_folder / f'gradebook-{k + 1}.db'}" if sqlite else settings["db_url"])
        threads = max(1, _cores() // len(shares))
        with ThreadPoolExecutor(max_workers=len(shares)) as pool:
            jobs = [pool.submit(_grade_share, assignment, course, settings, outcomes, share, url, force, log_folder,
                                f"-w{k + 1}", counter, threads) for k, (share, url) in enumerate(zip(shares, urls))]
            for job in jobs:
                job.result()
        if sqlite:
            for share, url in zip(shares, urls):
                merge_gradebook(url, settings["db_url"], assignment, [s for s in share if outcomes[s].graded])
            shutil.rmtree(shard_folder, ignore_errors=True)
    for outcome in outcomes.values():
        if not outcome.graded and not outcome.reason:
            outcome.reason = "nbgrader stopped before grading it (see _grading/logs/)"
    _read_gradebook(settings["db_url"], assignment, outcomes)
    return list(outcomes.values())


class _Progress:
    """One line per student as nbgrader starts grading them (``[3/30] student07``), from any worker."""

    def __init__(self, total: int, show: bool):
        self.total, self.show, self.started, self.lock = total, show, set(), threading.Lock()

    def saw(self, student: str) -> None:
        with self.lock:
            if student in self.started:
                return
            self.started.add(student)
            if self.show:
                print(f"  [{len(self.started)}/{self.total}] grading {student}", flush=True)


_AUTOGRADING = re.compile(r"\] Autograding .*?/([^/]+)/[^/]+/[^/]+\.ipynb$")


def _grade_share(assignment: str, course: Path, settings: dict, outcomes: dict[str, Outcome], share: list[str], db_url: str,
                 force: bool, log_folder: Path, log_suffix: str, progress: _Progress, threads: int | None = None) -> None:
    """Grade these students with nbgrader into the gradebook at ``db_url``; run it again (at most ``ATTEMPTS``
    times) for those it stopped before, and record in ``outcomes`` who was graded or why not."""
    submitted = course / settings["submitted_directory"]
    autograded = course / settings["autograded_directory"]
    # each worker's kernels get their share of the cores, unless the instructor has set a thread count
    env = {name: str(threads) for name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS") if threads and name not in os.environ}
    for attempt in range(ATTEMPTS):
        todo = [s for s in share if not outcomes[s].graded]
        if not todo:
            break
        exclude = sorted(_all_students(submitted, assignment) - set(todo))
        args = ["autograde", assignment, f"--CourseDirectory.student_id_exclude={','.join(exclude)}",
                f"--CourseDirectory.db_url={db_url}"]
        if force or attempt > 0:
            args.append("--force")
        if len(todo) == 1:
            args.append(f"--student={todo[0]}")
        started = time.time()
        log = _nbgrader_streamed(args, course, env, lambda line: _saw_student(line, todo, progress))
        (log_folder / f"autograde-{assignment}{log_suffix}-{attempt + 1}.log").write_text(log)
        # Who was graded comes from nbgrader's results (the graded notebook it wrote in this run, the gradebook's
        # submission), never from the log: kernels write to the same output, so a line there may be any student's.
        results = _graded_in_gradebook(db_url, assignment, todo)
        failures = _reasons_from_log(log)
        for student in todo:
            written = [path for path in (autograded / student / assignment).glob("*.ipynb") if path.stat().st_mtime >= started - 1]
            if written and student in results:
                outcomes[student].graded = True
                outcomes[student].reason = ""
            elif student in failures:  # not graded: the reason nbgrader logged (a kernel could change the reason, not the status)
                outcomes[student].reason = failures[student]


def _saw_student(line: str, students: list[str], progress: _Progress) -> None:
    match = _AUTOGRADING.search(line.rstrip())
    if match and match.group(1) in students:  # progress only: a line a kernel wrote could name another student
        progress.saw(match.group(1))


def _nbgrader_streamed(args: list[str], course: Path, env: dict, on_line) -> str:
    """nbgrader's output (its log is on stderr), line by line as it comes, and all of it at the end."""
    bin_directory = str(Path(sys.executable).parent)
    environment = {**os.environ, **env, "PATH": bin_directory + os.pathsep + os.environ.get("PATH", "")}
    lines = []
    with subprocess.Popen([str(Path(bin_directory) / "nbgrader"), *args], cwd=course, env=environment, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, errors="replace") as process:
        for line in process.stdout:
            lines.append(line)
            on_line(line)
    return "".join(lines)


def _cores() -> int:
    from course import usable_cores  # torch-free: the package's __init__ imports nothing heavy

    return usable_cores()


def default_workers(course: Path = Path(".")) -> int:
    """The cores this process may use, bounded by memory: each kernel may take the sandbox's ``max_memory``."""
    from grading.sandbox import MAX_MEMORY

    config = _course_config(course.resolve())
    per_kernel = config.get("SandboxedKernelManager", {}).get("max_memory", MAX_MEMORY)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1
    return max(1, min(_cores(), memory // per_kernel))


def shard_students(course: Path, assignment: str, shard: str, among: list[str] | None = None) -> list[str]:
    """The students of share ``K/N`` (1 <= K <= N) of those who submitted ``assignment``: every N-th, by name."""
    match = re.fullmatch(r"(\d+)/(\d+)", shard)
    if not match or not 1 <= int(match.group(1)) <= int(match.group(2)):
        raise SystemExit(f"--shard {shard}: expected K/N with 1 <= K <= N, e.g. 3/16")
    k, n = int(match.group(1)), int(match.group(2))
    submitted = course.resolve() / course_settings(course.resolve())["submitted_directory"]
    everyone = sorted(student for student in _all_students(submitted, assignment) if not among or student in among)
    return everyone[k - 1::n]


def _reference_run(assignment: str, course: Path) -> None:
    """Run (or find cached) the reference run of each of the assignment's notebooks, as nbgrader's
    ``ReferenceReports`` would in each worker, so that it runs once."""
    from grading.config import ReferenceReports

    config = _course_config(course)
    config.CourseDirectory.root = str(course)
    source = course / config.CourseDirectory.get("source_directory", "source") / assignment
    for notebook in sorted(source.glob("*.ipynb")):
        ReferenceReports(config=config).preprocess(None, {"nbgrader": {"assignment": assignment, "notebook": notebook.stem}})


def submissions(gradebook, assignment: str, students) -> Iterator[tuple[str, object]]:
    """``(student, submission)`` for each of these students whose submission of ``assignment`` the nbgrader
    ``Gradebook`` holds; the others are skipped."""
    from nbgrader.api import MissingEntry

    for student in students:
        try:
            submission = gradebook.find_submission(assignment, student)
        except MissingEntry:
            continue
        yield student, submission


def merge_gradebook(shard_url: str, db_url: str, assignment: str, students: list[str]) -> None:
    """Copy these students' submissions of ``assignment`` (grades, comments, flags, timestamps) from a worker's copy
    of the gradebook into the gradebook. The copy was made from it before grading, so cells have the same ids."""
    from nbgrader.api import Gradebook, MissingEntry

    with Gradebook(shard_url) as shard, Gradebook(db_url) as gradebook:
        for student, submission in submissions(shard, assignment, students):
            record = shard.find_student(student)
            try:
                gradebook.find_student(student)
            except MissingEntry:  # a student nbgrader added while grading (not on the class list)
                gradebook.add_student(student, first_name=record.first_name, last_name=record.last_name,
                                      email=record.email, lms_user_id=record.lms_user_id)
            target = gradebook.update_or_create_submission(assignment, student, timestamp=submission.timestamp,
                                                           extension=submission.extension)
            notebooks = {notebook.notebook_id: notebook for notebook in target.notebooks}
            for notebook in submission.notebooks:
                into = notebooks[notebook.notebook_id]
                into.flagged, into.late_submission_penalty = notebook.flagged, notebook.late_submission_penalty
                grades = {grade.cell_id: grade for grade in into.grades}
                for grade in notebook.grades:
                    copy = grades[grade.cell_id]
                    copy.auto_score, copy.manual_score = grade.auto_score, grade.manual_score
                    copy.extra_credit, copy.needs_manual_grade = grade.extra_credit, grade.needs_manual_grade
                comments = {comment.cell_id: comment for comment in into.comments}
                for comment in notebook.comments:
                    comments[comment.cell_id].auto_comment = comment.auto_comment
                    comments[comment.cell_id].manual_comment = comment.manual_comment
            gradebook.db.commit()


def _graded_in_gradebook(db_url: str, assignment: str, students: list[str]) -> set[str]:
    """The students whose submission of ``assignment`` the gradebook holds, with grades."""
    from nbgrader.api import Gradebook

    try:
        with Gradebook(db_url) as gradebook:
            return {student for student, submission in submissions(gradebook, assignment, students)
                    if any(notebook.grades for notebook in submission.notebooks)}
    except Exception:  # no gradebook yet (nbgrader stopped before creating it)
        return set()


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
    from nbgrader.api import Gradebook

    graded = [outcome.student for outcome in outcomes.values() if outcome.graded]
    with Gradebook(db_url) as gradebook:
        found = dict(submissions(gradebook, assignment, graded))
        for student in graded:
            outcome, submission = outcomes[student], found.get(student)
            if submission is None:
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


# The reference run of each assignment, kept between self-checks (keyed by what decides its results: grading/reports.py).
# The test suite's courses share it too, so that each reference run is made once.
SHARED_REFERENCE_CACHE = REPO / "_grading" / "reference_reports"

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
            f"c.ReferenceReports.cache_directory = {str(SHARED_REFERENCE_CACHE)!r}\n"
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
    klass.add_argument("--shard", metavar="K/N", help="only the K-th of N equal shares of the class (sorted by name): "
                                                     "one job of a batch array that grades the class on several machines")
    klass.add_argument("--workers", type=int, help="students graded at once (default: the cores here, bounded by memory "
                                                   "at the sandbox's limit per kernel)")
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
        course = Path(os.getcwd())
        students = args.student
        if args.shard:
            students = shard_students(course, args.assignment, args.shard, students)
        workers = args.workers or default_workers(course)
        print(f"grading {args.assignment} with {workers} worker{'s' if workers > 1 else ''}", flush=True)
        outcomes = grade_class(args.assignment, course, force=args.force, students=students, workers=workers, progress=True)
        print_outcomes(args.assignment, outcomes)
        from grading.class_report import save_outcomes, write_report

        save_outcomes(args.assignment, course, outcomes)
        try:  # the grades are in the gradebook already: a report that fails says so and costs nothing else
            print(f"class report: {os.path.relpath(write_report(args.assignment, course))}")
        except Exception as error:
            print(f"the class report could not be written ({type(error).__name__}: {error}); "
                  f"python -m grading report {args.assignment} tries again", file=sys.stderr)
        return 0 if all(o.graded for o in outcomes) else 1
    outcomes = self_check(args.notebook, args.assignment, sandbox=False if args.no_sandbox else None)
    return 0 if all(o.graded for o in outcomes) else 1


if __name__ == "__main__":
    sys.exit(main())
