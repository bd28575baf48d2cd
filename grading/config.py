"""How submissions are graded: the nbgrader settings every course directory uses.

nbgrader_config.py (the course) and the tests (temporary courses) both call
``configure_grading``, so the tests grade exactly the way an instructor does. Around nbgrader's
own preprocessors, grading adds (guide/instructors.md explains each):

1. ``SanitizeSubmission`` (autograde, first): repairs what nbgrader would stop on or choke on —
   duplicate grade ids (a Jupyter copy of an answer cell), unknown grade ids and foreign nbgrader
   metadata (another schema version) — restores locked cells silently, and replaces a cell
   larger than ``MAX_CELL_CHARS`` by one that raises (the submission is flagged).
2. ``SkipSetupCell`` (after nbgrader restored the locked cells): the Colab/Binder setup cell is
   not run at grading (the course is installed in the sandbox; it only bound os, sys, ...).
3. ``IntegrityHints``: the static reading of grading/integrity.py, as review hints with reason
   and line. It never changes or stops a cell.
4. ``ReferenceReports``, ``GuardedExecute``, ``CompareReports``: the verdicts, reached outside
   the student's process (grading/reports.py). The reference solution's reports per test cell
   (one sandboxed run of the source notebook, cached); nbgrader's Execute in a bubblewrap sandbox
   (grading/sandbox.py), with a per-cell timeout, a cap on what a cell may send, a dead kernel
   failing the cells left, and each test cell's reports read back right after it; then each
   report compared in the grader with the reference's, a difference failing the cell.
5. ``LimitOutputSize``, ``FlagForReview``: outputs cut before they reach the files; the tests of
   an exercise with hints, or the whole submission when a cell was stopped (timeout, dead
   kernel, too large) or a forbidden built-in ran, marked "needs manual grade" with the reason.
6. ``RubricComment``: a written answer (a markdown answer cell, graded by hand) gets the model
   answer and rubric of the instructor's source as its comment, next to the student's text in
   formgrader (the grader may replace it with their own comment), and in the feedback.
7. ``HideHiddenTests``, ``HideGraderPaths`` (generate_feedback): the feedback shows neither the
   hidden tests' code nor their tracebacks, nor the grader's absolute paths.
"""

import json
import os
import re
import signal
import sys
import warnings
from pathlib import Path

import nbformat
import nbgrader

from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbformat.notebooknode import NotebookNode
from nbgrader.api import Gradebook, MissingEntry
from nbgrader.preprocessors import (
    AssignLatePenalties,
    CheckCellMetadata,
    ClearOutput,
    DeduplicateIds,
    Execute,
    GetGrades,
    IgnorePattern,
    LimitOutput,
    NbGraderPreprocessor,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
)
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from nbconvert.utils.base import NbConvertBase
from traitlets import Bool, Integer, List, Unicode

from course.channel import FORBIDDEN_MARKER
from grading import integrity, reports
from grading.assignments import NBGRADER_SCHEMA_VERSION, SETUP_GRADE_ID
from grading.sandbox import REPO, REPORTS_FOLDER, SandboxedKernelManager

TEMPLATES = Path(__file__).resolve().parent / "templates"
NBGRADER_TEMPLATES = Path(nbgrader.__file__).resolve().parent / "server_extensions" / "formgrader" / "templates"
MATHJAX = REPO / "_extra" / "mathjax"  # MathJax 3, served with the website too (_extra/mathjax/README.md)

CELL_TIMEOUT_S = 120  # nbgrader's default of 30 s is too short for a slow laptop; no exercise cell needs more
MAX_OUTPUT_LINES = 200  # per cell, kept in the graded notebook and the feedback
MAX_OUTPUT_CHARS = 20_000  # per output: one enormous line is as bad as many
MAX_STREAMED_BYTES = 2_000_000  # per cell, while it runs: what the grader accepts from the kernel at all
MAX_CELL_CHARS = 100_000  # per cell of source: the longest reference answer is under 3 000
MAX_CELLS = 400  # per notebook: the longest assignment has under 40
MAX_RESTARTS = 3  # fresh kernels per notebook after cells that ignored the interrupt at the time limit
MAX_ATTACHMENT_CHARS = 8_000_000  # pasted images kept per notebook (base64): the notebook itself may be 20 MiB

TOO_LARGE_MARKER = "# GRADER: this cell was not run."
REVIEW_NOTES = "grading_review"  # notebook metadata key, between nbgrader's two conversions
TIMEOUT_ENAME = "CellTimeoutError"
# nbgrader's timeout error has an empty message, which is all the feedback of a hidden test shows
TIMEOUT_MESSAGE = "the cell did not finish within the grader's time limit per cell (an endless loop?)"
DEAD_KERNEL_ENAME = "KernelDied"


def configure_grading(c) -> None:
    """Apply the course's grading settings to an nbgrader config object ``c``."""
    # What a student sees in place of a removed solution.
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    c.Execute.timeout = CELL_TIMEOUT_S
    # nbgrader's timeout error has an empty message, which is all the feedback of a hidden test shows
    c.Execute.error_on_timeout = {"ename": TIMEOUT_ENAME, "evalue": TIMEOUT_MESSAGE, "traceback": [f"{TIMEOUT_ENAME}: {TIMEOUT_MESSAGE}"]}
    c.LimitOutput.max_lines = MAX_OUTPUT_LINES
    c.LimitOutput.max_traceback = 60
    c.Autograde.sanitize_preprocessors = [
        SanitizeSubmission, ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, SkipSetupCell,
        IntegrityHints, CheckCellMetadata,
    ]
    c.Autograde.autograde_preprocessors = [
        CarryReviewNotes, ReferenceReports, GuardedExecute, CompareReports, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, LimitOutputSize, HideGraderPaths,
        SaveAutoGrades, FlagForReview, RubricComment, AssignLatePenalties, CheckCellMetadata,
    ]
    c.GenerateFeedback.preprocessors = [HideHiddenTests, HideGraderPaths, GetGrades, HideRubric, CSSHTMLHeaderPreprocessor,
                                        LocalMathJax]
    # The feedback pages' math: grading/templates/base/mathjax.html.j2 (the course's MathJax) before nbgrader's templates.
    c.HTMLExporter.extra_template_basedirs = [str(TEMPLATES), str(NBGRADER_TEMPLATES)]
    quiet_known_warnings()


def quiet_known_warnings() -> None:
    """nbgrader 0.9 on SQLAlchemy 2 warns on every gradebook query that ORM relationships overlap
    (SAWarning, harmless: nbgrader's own models). It buries the messages that matter."""
    try:
        from sqlalchemy.exc import SAWarning
    except ImportError:
        return
    warnings.filterwarnings("ignore", category=SAWarning)


def _nbgrader(cell) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader", {})
    return meta if isinstance(meta, dict) else {}


# ---------------------------------------------------------------- 1. sanitising a submission


class SanitizeSubmission(NbGraderPreprocessor):
    """Make a submitted notebook one nbgrader can grade, whatever Jupyter or the student did to it.

    Cells are matched to the assignment by grade id, as nbgrader does. A grade id the assignment
    does not have, or the second cell with the same grade id (a Jupyter copy of an answer cell,
    an honest mistake), becomes an ordinary cell the student added: it still runs, in its place.
    Every recognised cell gets the assignment's own nbgrader metadata (whatever schema version or
    flags it claimed), and each locked cell its source, as nbgrader would restore it anyway.
    """

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gradebook:
            notebook = gradebook.find_notebook(info["notebook"], info["assignment"])
            source_cells = {cell.name: cell for cell in notebook.source_cells}
            grades = {cell.name: cell.max_score for cell in notebook.grade_cells}
            solutions = {cell.name for cell in notebook.solution_cells}
        report = resources.setdefault("grading_review", [])
        seen = set()
        attachment_budget = MAX_ATTACHMENT_CHARS
        if len(nb.cells) > MAX_CELLS:
            report.append(f"the notebook has {len(nb.cells)} cells; only the first {MAX_CELLS} were graded")
            nb.cells = nb.cells[:MAX_CELLS]
        for cell in nb.cells:
            cell.setdefault("metadata", NotebookNode())
            if not isinstance(cell.metadata, dict):
                cell.metadata = NotebookNode()
            cell.metadata.pop("attachments", None)
            if not isinstance(cell.get("source"), str):
                cell.source = "".join(cell.source) if isinstance(cell.get("source"), list) else ""
            attachment_budget = _keep_attachments(cell, attachment_budget)
            grade_id = _nbgrader(cell).get("grade_id") if isinstance(_nbgrader(cell).get("grade_id"), str) else None
            if grade_id in source_cells and grade_id not in seen:
                seen.add(grade_id)
                original = source_cells[grade_id]
                meta = {"grade": grade_id in grades, "grade_id": grade_id, "locked": bool(original.locked),
                        "solution": grade_id in solutions, "schema_version": NBGRADER_SCHEMA_VERSION}
                if grade_id in grades:
                    meta["points"] = grades[grade_id]
                cell.metadata["nbgrader"] = NotebookNode(meta)
                if original.locked:
                    cell.source = original.source  # what OverwriteCells restores, without its warning per cell
            else:
                if "nbgrader" in cell.metadata:
                    self.log.info("cell %r: nbgrader metadata not from this assignment (or a copy), graded as an added cell", grade_id)
                cell.metadata.pop("nbgrader", None)
            if cell.cell_type == "code" and len(cell.source) > MAX_CELL_CHARS:
                report.append(f"a code cell of {len(cell.source)} characters (limit {MAX_CELL_CHARS}) was not run")
                cell.source = (f"{TOO_LARGE_MARKER}\nraise RuntimeError('this cell has {len(cell.source)} characters, "
                               f"over the grader\'s limit of {MAX_CELL_CHARS}: it was not run')")
        return nb, resources


_ATTACHMENT_REFERENCE = re.compile(r"attachment:([^)\s\"'>]*)")


def _keep_attachments(cell, budget: int) -> int:
    """Keep a markdown cell's pasted images (well-formed, within ``budget`` characters for the notebook); a reference
    to one that is not kept is rewritten, so the feedback renders (nbconvert stops on "missing attachment"). Returns
    the budget left."""
    attachments = cell.pop("attachments", None)
    kept = {}
    if cell.get("cell_type") == "markdown" and isinstance(attachments, dict):
        for name, data in attachments.items():
            size = sum(len(value) for value in data.values() if isinstance(value, str)) if isinstance(data, dict) else 0
            if (isinstance(name, str) and isinstance(data, dict) and data and size <= budget
                    and all(isinstance(mime, str) and isinstance(value, str) for mime, value in data.items())):
                kept[name] = data
                budget -= size
    if kept:
        cell["attachments"] = NotebookNode(kept)
    if isinstance(cell.get("source"), str) and "attachment:" in cell.source:
        cell.source = _ATTACHMENT_REFERENCE.sub(
            lambda match: match.group(0) if match.group(1) in kept else f"removed-image:{match.group(1)}", cell.source)
    return budget


class SkipSetupCell(NbGraderPreprocessor):
    """The Colab/Binder setup cell does nothing where the course is installed, except bind os, sys, ...: not run at grading."""

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type == "code" and _nbgrader(cell).get("grade_id") == SETUP_GRADE_ID:
            cell.source = "# (the Colab/Binder setup cell is not run at grading: the course is installed)"
        return cell, resources


# ---------------------------------------------------------------- 2. review hints


def _is_instructor_cell(cell) -> bool:
    """After SanitizeSubmission and OverwriteCells, a cell with nbgrader metadata that is not an answer is the instructor's."""
    meta = _nbgrader(cell)
    return bool(meta.get("grade_id")) and not meta.get("solution")


class IntegrityHints(NbGraderPreprocessor):
    """Read each cell the student wrote with grading.integrity; keep the findings (reason, line) for FlagForReview.

    Nothing is changed or stopped: an honest answer that looks odd earns what its tests give,
    and a person reads the hint.
    """

    def preprocess(self, nb, resources):
        instructor = [c for c in nb.cells if c.cell_type == "code" and _is_instructor_cell(c)
                      and _nbgrader(c).get("grade_id") != SETUP_GRADE_ID]
        protected = {"check_close", "check_shape"} | integrity.CHECK_HELPERS
        imports: dict[str, str] = {}
        forbidden_for: dict[str, set[str]] = {}
        for cell in instructor:
            protected |= integrity.names_bound_at_top_level(cell.source)
            imports |= integrity.imports_at_top_level(cell.source)
            for function, names in integrity.forbidden_by_tests(cell.source).items():
                forbidden_for.setdefault(function, set()).update(names)
        answers = set()
        for cell in nb.cells:
            if _nbgrader(cell).get("solution"):
                answers |= integrity.defined_functions(cell.source)
        hints = resources.setdefault("integrity_hints", {})
        escapes = resources.setdefault("integrity_escapes", {})
        references = self._reference_answers(resources)
        for cell in nb.cells:  # every cell the student wrote: no text in a cell turns the reading off
            if cell.cell_type != "code" or _is_instructor_cell(cell):
                continue
            defined = integrity.defined_functions(cell.source)
            forbidden_here = set().union(*(forbidden_for.get(name, set()) for name in defined))
            findings = integrity.check_answer(cell.source, protected, forbidden_here, imports, answers)
            if _nbgrader(cell).get("grade_id") in references:
                findings += integrity.copies_of_reference(cell.source, references[_nbgrader(cell)["grade_id"]])
            if findings:
                where = _nbgrader(cell).get("grade_id") or ""  # "": a cell the student added
                hints.setdefault(where, []).extend(map(str, findings))
                escaping = [str(finding) for finding in findings if finding.escapes]
                escapes.setdefault(where, []).extend(escaping)
                if escaping and not where:  # an added cell: what it escapes counts for the tests after it
                    cell.metadata[ESCAPES_NOTE] = escaping
        escapes = {where: found for where, found in escapes.items() if found}
        # nbgrader runs the sanitising and the grading preprocessors as two conversions with fresh
        # resources: the notes travel in the notebook's metadata (CarryReviewNotes takes them out).
        nb.metadata[REVIEW_NOTES] = {"hints": hints, "whole": resources.get("grading_review", []), "escapes": escapes}
        return nb, resources


    def _reference_answers(self, resources) -> dict[str, str]:
        """{grade id: the reference answer cell's source} from the instructor's source notebook (none when missing)."""
        try:
            from nbgrader.coursedir import CourseDirectory

            info = resources["nbgrader"]
            coursedir = CourseDirectory(config=self.config)
            source = Path(coursedir.format_path(coursedir.source_directory, ".", info["assignment"])) / f"{info['notebook']}.ipynb"
            if not source.is_file():
                return {}
            notebook = nbformat.read(source, as_version=4)
        except Exception as error:
            self.log.warning("reference answers not read for the copy check: %s", error)
            return {}
        return {_nbgrader(cell)["grade_id"]: cell.source for cell in notebook.cells
                if cell.cell_type == "code" and _nbgrader(cell).get("solution") and _nbgrader(cell).get("grade_id")}


class CarryReviewNotes(NbGraderPreprocessor):
    """First of the grading conversion: the notes of the sanitising one, from the notebook's metadata into resources."""

    def preprocess(self, nb, resources):
        notes = nb.metadata.pop(REVIEW_NOTES, {})
        resources["integrity_hints"] = dict(notes.get("hints", {}))
        resources["grading_review"] = list(notes.get("whole", []))
        resources["integrity_escapes"] = dict(notes.get("escapes", {}))
        return nb, resources


def _at_most(reasons: list[str], count: int = 5) -> list[str]:
    return reasons[:count] + ([f"({len(reasons) - count} more)"] if len(reasons) > count else [])


class FlagForReview(NbGraderPreprocessor):
    """Put what a person should look at in formgrader's "needs manual grade" list, with the reason.

    Scores stay what the tests gave. An exercise whose answer cell has integrity hints gets its
    tests flagged and the hints as the answer's comment; the whole submission (every test cell)
    is flagged when a cell was stopped (time limit, dead kernel, too large), a forbidden built-in
    ran, or a cell the student added has hints.
    """

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        hints = resources.get("integrity_hints", {})
        whole = list(resources.get("grading_review", []))
        whole += _at_most([f"added cell, {finding}" for finding in hints.get("", [])])
        for cell in nb.cells:
            for output in cell.get("outputs", []):
                if output.get("output_type") != "error":
                    continue
                if output.get("ename") == TIMEOUT_ENAME:
                    whole.append(f"cell {_nbgrader(cell).get('grade_id', '(added)')} hit the time limit")
                elif output.get("ename") == DEAD_KERNEL_ENAME and not any(reason.startswith("the kernel died") for reason in whole):
                    whole.append(f"the kernel died at cell {_nbgrader(cell).get('grade_id', '(added)')}")
                elif FORBIDDEN_MARKER in str(output.get("evalue", "")):
                    whole.append(f"a forbidden built-in ran in {_nbgrader(cell).get('grade_id', '(added)')}: {output.evalue[:200]}")
        whole = list(dict.fromkeys(whole))
        flagged_tests, comments, current = set(), {}, None
        first_answer = None
        for cell in nb.cells:
            meta = _nbgrader(cell)
            if meta.get("solution"):
                current = meta["grade_id"]
                first_answer = first_answer or current
                if hints.get(current):
                    comments[current] = "Review hint: " + "; ".join(_at_most(hints[current]))
            elif meta.get("grade") and (whole or (current and hints.get(current))):
                flagged_tests.add(meta["grade_id"])
        if whole and first_answer:
            comments[first_answer] = "Review the whole submission: " + "; ".join(whole) + (
                " | " + comments[first_answer] if first_answer in comments else "")
        resources["flagged_for_review"] = {"tests": sorted(flagged_tests), "comments": comments}
        if not flagged_tests and not comments:
            return nb, resources
        with Gradebook(info["db_url"]) as gradebook:
            for grade_id in flagged_tests:
                grade = gradebook.find_grade(grade_id, info["notebook"], info["assignment"], info["student"])
                grade.needs_manual_grade = True
            for grade_id, text in comments.items():
                text = hide_paths(text)
                try:
                    comment = gradebook.find_comment(grade_id, info["notebook"], info["assignment"], info["student"])
                except MissingEntry:
                    continue
                comment.auto_comment = text
            gradebook.db.commit()
        return nb, resources


def is_written_answer(cell) -> bool:
    """A markdown answer cell that carries points: graded by a person (``# %% [markdown] answer="id" points=N``)."""
    meta = _nbgrader(cell)
    return cell.get("cell_type") == "markdown" and bool(meta.get("solution")) and bool(meta.get("grade"))


def model_answers(source_notebook) -> dict:
    """{grade id: the text between BEGIN SOLUTION and END SOLUTION} of each written answer of an instructor's source notebook."""
    answers = {}
    for cell in source_notebook.cells:
        if is_written_answer(cell) and "BEGIN SOLUTION" in cell.source:
            inside = cell.source.split("BEGIN SOLUTION", 1)[1].split("\n", 1)[-1]
            answers[_nbgrader(cell)["grade_id"]] = inside.rsplit("END SOLUTION", 1)[0].rsplit("\n", 1)[0].strip()
    return answers


RUBRIC_HEADING = "Graded by hand."
RUBRIC_PREFIX = RUBRIC_HEADING + " The instructor's model answer and rubric (replace this comment with your own):\n\n"


class FeedbackPreprocessor(NbGraderPreprocessor):
    """A step of ``nbgrader generate_feedback``. nbgrader's base class redeclares nbconvert's
    ``display_data_priority`` without ``config=True``, so the HTML exporter's setting of it made every
    such step warn "Config option `display_data_priority` not recognized"; here it is configurable again."""

    display_data_priority = List(NbConvertBase.class_traits()["display_data_priority"].default_value).tag(config=True)


class HideRubric(FeedbackPreprocessor):
    """In the student's feedback (after GetGrades), a written answer's comment without the model answer and rubric.

    formgrader shows the grader ``RubricComment``'s comment; what reaches the student is "Graded by hand." plus
    whatever the grader wrote, less any line quoted from the model answer, unless the instructor opts in with
    ``c.HideRubric.rubric_in_feedback = True``.
    """

    rubric_in_feedback = Bool(False, help="show the model answer and rubric in the students' feedback").tag(config=True)

    def preprocess(self, nb, resources):
        if self.rubric_in_feedback:
            return nb, resources
        quoted = set()
        info = resources.get("nbgrader", {})
        try:
            from nbgrader.coursedir import CourseDirectory

            coursedir = CourseDirectory(config=self.config)
            source = os.path.join(coursedir.format_path(coursedir.source_directory, ".", info.get("assignment", "")),
                                  f"{info.get('notebook', '')}.ipynb")
            if os.path.isfile(source):
                for answer in model_answers(nbformat.read(source, as_version=4)).values():
                    quoted |= {line.strip() for line in answer.splitlines() if len(line.strip()) >= 20}
        except Exception as error:  # the source is optional here: the prefix alone is still removed
            self.log.warning("model answers not read for the feedback: %s", error)
        for cell in nb.cells:
            meta = _nbgrader(cell)
            if not is_written_answer(cell) or not isinstance(meta.get("comment"), str):
                continue
            comment = meta["comment"]
            if comment.startswith(RUBRIC_PREFIX):
                comment = RUBRIC_HEADING
            else:
                comment = "\n".join(line for line in comment.splitlines() if line.strip() not in quoted)
            meta["comment"] = comment
        return nb, resources


class RubricComment(NbGraderPreprocessor):
    """Each written answer gets, as its comment, the model answer and rubric of the instructor's source.

    The rubric never reaches the student version (nbgrader replaces the solution region by
    "YOUR ANSWER HERE"), and nbgrader keeps no copy of it in the gradebook: it is read from the
    source notebook (``CourseDirectory.source_directory``). formgrader shows the comment next to the
    student's answer, where the grader scores it and may replace the comment by their own; the
    feedback shows whichever comment is left. An untouched answer keeps nbgrader's "No response.".
    """

    def preprocess(self, nb, resources):
        written = [cell for cell in nb.cells if is_written_answer(cell)]
        if not written:
            return nb, resources
        import nbformat
        from nbgrader.coursedir import CourseDirectory

        info = resources["nbgrader"]
        coursedir = CourseDirectory(config=self.config)
        source = os.path.join(coursedir.format_path(coursedir.source_directory, ".", info["assignment"]), f"{info['notebook']}.ipynb")
        if not os.path.isfile(source):
            self.log.warning("no instructor source at %s: written answers get no rubric comment", source)
            return nb, resources
        answers = model_answers(nbformat.read(source, as_version=4))
        with Gradebook(info["db_url"]) as gradebook:
            for cell in written:
                grade_id = _nbgrader(cell)["grade_id"]
                comment = gradebook.find_comment(grade_id, info["notebook"], info["assignment"], info["student"])
                if grade_id not in answers or comment.auto_comment == "No response.":
                    continue
                comment.auto_comment = RUBRIC_PREFIX + answers[grade_id]
            gradebook.db.commit()
        return nb, resources


# ---------------------------------------------------------------- 3. the kernel and its execution


class ReferenceReports(NbGraderPreprocessor):
    """Before the student's notebook runs: what the reference solution reports in each graded test cell (grading/reports.py).

    Computed once per source notebook by running it in a sandboxed kernel of its own, and cached
    in ``cache_directory`` (default: ``_grading/reference_reports`` in the course folder).
    """

    cache_directory = Unicode("", help="where the reference runs' results are kept (default: <course>/_grading/reference_reports)").tag(config=True)

    def preprocess(self, nb, resources):
        from nbgrader.coursedir import CourseDirectory

        info = resources["nbgrader"]
        coursedir = CourseDirectory(config=self.config)
        source = Path(coursedir.format_path(coursedir.source_directory, ".", info["assignment"])) / f"{info['notebook']}.ipynb"
        if source.is_file():
            notebook = nbformat.read(source, as_version=4)
        elif (REPO / "solutions" / f"{info['assignment']}.py").is_file():
            from grading.assignments import nbgrader_notebook

            notebook = nbgrader_notebook(REPO / "solutions" / f"{info['assignment']}.py")
        else:
            raise RuntimeError(f"no source notebook for {info['assignment']} ({source}): the hidden tests have nothing to compare with")
        cache = Path(self.cache_directory or Path(coursedir.root) / "_grading" / "reference_reports")
        resources["reference_reports"] = reports.reference_reports(notebook, cache, log=self.log, skip={SETUP_GRADE_ID},
                                                                   config=self.config)
        return nb, resources


MAX_ERROR_CHARS = 20_000  # of an error's message kept past a cell's output limit (LimitOutput cuts the rest)


class GuardedExecute(Execute):
    """nbgrader's Execute, with sandboxed kernels (grading/sandbox.py), bounded output, and a dead kernel failing the cells left."""

    max_streamed_bytes = Integer(MAX_STREAMED_BYTES, help="output one cell may send before the rest is dropped").tag(config=True)
    # nbgrader raises when a cell's last output (the kernel's "idle") has not come 4 s after its reply. The grader
    # keeps a bounded queue of a kernel's outputs (grading/sandbox.py), so a kernel that floods them may lose that
    # message: a cell that replied has finished all the same, so grading goes on, with the outputs that came. A cell
    # past the time limit is another matter: its "reply" is nbclient's own after the interrupt, and a kernel still
    # busy after it swallowed the interrupt, which must raise so that the kernel is replaced (_async_handle_timeout).
    # So nbclient's setting is decided per cell by what happened to it, not by configuration: a read-only property.
    raise_on_iopub_timeout = property(lambda self: self._interrupted, doc="this cell passed its time limit")

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", SandboxedKernelManager)
        super().__init__(*args, **kwargs)
        self._kernel_died = False
        self._interrupted = False
        self._streamed = {}

    def preprocess(self, nb, resources=None, km=None):
        self._kernel_died = False
        self._restarts = 0
        self._streamed = {}
        self._reader = reports.ReportReader()
        if resources is not None:
            resources["student_reports"] = {}
        return super().preprocess(nb, resources, km)

    @staticmethod
    def _expected_reports(cell, resources) -> list[str]:
        """The names the reference reported in this graded test cell (none for other cells)."""
        meta = _nbgrader(cell)
        if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution"):
            return []
        return sorted((resources or {}).get("reference_reports", {}).get(meta.get("grade_id"), {}))

    def _reports_folder(self) -> Path:
        scratch = getattr(self.km, "_scratch", None)
        return Path(scratch) / REPORTS_FOLDER if scratch else Path("/nonexistent")

    async def _async_handle_timeout(self, timeout, cell=None):
        self._interrupted = True  # until the next cell: a kernel still busy after the interrupt raises
        return await super()._async_handle_timeout(timeout, cell)

    def preprocess_cell(self, cell, resources, index):
        self._interrupted = False  # a cell that replies goes on even if some of its outputs were dropped
        if self._kernel_died:
            return self._fail(cell, "the kernel had died in an earlier cell, so this cell was not run"), resources
        expected = self._expected_reports(cell, resources)
        if expected:
            reports.remove_reports(self._reports_folder(), expected)
        try:
            cell, resources = super().preprocess_cell(cell, resources, index)
            if expected:  # read at once: nothing the kernel does later changes what this cell reported
                found = self._reader.read(self._reports_folder(), expected)
                resources.setdefault("student_reports", {})[_nbgrader(cell)["grade_id"]] = found
            return cell, resources
        except DeadKernelError:
            self._kernel_died = True
            return self._fail(cell, "the kernel died while running this cell (it exited, or ran out of memory or CPU time)"), resources
        except CellTimeoutError:
            # The interrupt did not stop the cell (it caught KeyboardInterrupt): stop the kernel; a fresh one replays
            # the cells before this one (not the graded tests) and grading goes on, so this cell alone loses its points.
            self._kill_kernel()
            cell.outputs.append(NotebookNode(output_type="error", ename=TIMEOUT_ENAME, evalue=TIMEOUT_MESSAGE,
                                             traceback=[f"{TIMEOUT_ENAME}: {TIMEOUT_MESSAGE}"]))
            if self._restarts < MAX_RESTARTS and self._fresh_kernel(index):
                self._restarts += 1
                return cell, resources
            self._kernel_died = True
            return self._fail(cell, "the cell ignored the interrupt at the time limit, so the kernel was stopped"), resources

    def _fresh_kernel(self, index: int) -> bool:
        """A new sandboxed kernel that has run every code cell before ``index`` except the graded tests; False if that failed."""
        import copy

        from jupyter_core.utils import run_sync

        try:
            if self.kc is not None:
                self.kc.stop_channels()
            run_sync(self.km.restart_kernel)(now=True)
            self.kc = self.km.client()
            self.kc.start_channels()
            run_sync(self.kc.wait_for_ready)(timeout=self.startup_timeout)
        except Exception as error:  # no new kernel: the rest is graded as dead
            self.log.warning("no fresh kernel after the time limit: %s", error)
            return False
        for earlier_index, earlier in enumerate(self.nb.cells[:index]):
            meta = _nbgrader(earlier)
            if earlier.cell_type != "code" or (meta.get("grade") and not meta.get("solution")):
                continue
            replay = copy.deepcopy(earlier)
            replay.outputs = []
            try:
                self.execute_cell(replay, earlier_index, store_history=True)
            except CellTimeoutError:
                self._kill_kernel()
                return False
            except DeadKernelError:
                return False
            except Exception as error:  # an earlier cell that failed fails again: the cells after it see what they saw
                self.log.info("replaying cell %d after the time limit: %s", earlier_index, error)
        return True

    def _kill_kernel(self) -> None:
        provisioner = getattr(self.km, "provisioner", None)
        pgid = getattr(provisioner, "pgid", None)
        if pgid:
            try:
                os.killpg(pgid, signal.SIGKILL)
            except OSError:
                pass

    def _fail(self, cell, reason: str):
        if cell.cell_type == "code":
            cell.outputs.append(NotebookNode(output_type="error", ename=DEAD_KERNEL_ENAME, evalue=reason, traceback=[f"{DEAD_KERNEL_ENAME}: {reason}"]))
        return cell

    def output(self, outs, msg, display_id, cell_index):
        """Drop what a cell prints beyond max_streamed_bytes, so a print loop cannot fill the grader's memory.

        An error is never dropped (a thread printing beside a test cell must not hide its failure): past the
        limit it is kept with its message cut short."""
        size = len(str(msg.get("content", "")))
        total = self._streamed.get(cell_index, 0) + size
        self._streamed[cell_index] = total
        if total > self.max_streamed_bytes:
            if total - size <= self.max_streamed_bytes:
                outs.append(NotebookNode(output_type="stream", name="stdout", text="\n... output beyond the grader's limit was dropped ...\n"))
            if msg.get("msg_type") == "error":
                outs.append(self._error_output(msg.get("content", {})))
            return None
        return super().output(outs, msg, display_id, cell_index)

    @staticmethod
    def _error_output(content: dict) -> NotebookNode:
        ename, evalue = str(content.get("ename", "Error"))[:200], str(content.get("evalue", ""))[:MAX_ERROR_CHARS]
        return NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"])

    async def _check_raise_for_error(self, cell, cell_index, exec_reply):
        """The kernel's reply says whether the cell failed; its error output comes on IOPub, which a kernel that
        floods its outputs can make the grader drop (sandbox.MAX_QUEUED_MESSAGES). A failed cell without an error
        output gets the reply's error."""
        content = (exec_reply or {}).get("content", {})
        if content.get("status") == "error" and not any(output.get("output_type") == "error" for output in cell.outputs):
            cell.outputs.append(self._error_output(content))
        return await super()._check_raise_for_error(cell, cell_index, exec_reply)


class CompareReports(NbGraderPreprocessor):
    """After the student's notebook ran: each graded test cell's reports against the reference's, in the grader's process.

    A result missing, of another shape or dtype, outside the reference's tolerance, or a bound
    not met fails the cell: an error output names the result and how far off it is (never the
    reference's values), so nbgrader scores the cell 0 and the feedback says why. A cell that
    already failed stays failed. Nothing the kernel decided enters here but its reports' values.
    """

    def preprocess(self, nb, resources):
        expected = resources.get("reference_reports", {})
        found = resources.get("student_reports", {})
        count_escapes(nb, resources.get("integrity_escapes", {}))
        for cell in nb.cells:
            meta = _nbgrader(cell)
            grade_id = meta.get("grade_id")
            if cell.cell_type != "code" or not meta.get("grade") or meta.get("solution") or not expected.get(grade_id):
                continue
            if any(output.get("output_type") == "error" for output in cell.get("outputs", [])):
                continue
            values = found.get(grade_id, {})
            missing = [name for name in sorted(expected[grade_id]) if values.get(name) is None]
            problems = [reports.verdict(name, reference, values[name]) for name, reference in sorted(expected[grade_id].items())
                        if name not in missing]
            problems = _at_most([problem for problem in problems if problem], 3)
            if missing:
                problems.append(f"no result was reported for {len(missing)} of {len(expected[grade_id])} checks ("
                                + ", ".join(_at_most(missing, 3)) + "): the test stopped before them, or what was reported could not be read")
            if problems:
                ename = reports.ENAME_MISSING if len(missing) == len(expected[grade_id]) else reports.ENAME_DIFFERS
                evalue = "; ".join(problems)
                cell.outputs.append(NotebookNode(output_type="error", ename=ename, evalue=evalue, traceback=[f"{ename}: {evalue}"]))
        return nb, resources


ESCAPE_ENAME = "ForbiddenCall"
ESCAPES_NOTE = "grading_escapes"  # cell metadata of an added cell, between nbgrader's two conversions


def count_escapes(nb, escapes: dict) -> None:
    """Code that takes itself out of the forbidden-call check's sight (grading.integrity's ``escapes``: the check's
    torch modes popped, a thread, a checking helper replaced) is graded as if the forbidden built-in had run: in an
    answer cell, each test cell of that exercise that checks forbidden calls fails, with the reason; in a cell the
    student added, each such test cell after it (a cell can change only what runs after it)."""
    if not escapes:
        return
    current, added = None, []
    for cell in nb.cells:
        meta = _nbgrader(cell)
        if meta.get("solution"):
            current = meta.get("grade_id")
            continue
        if cell.cell_type == "code" and not meta:
            added = added + list(cell.get("metadata", {}).pop(ESCAPES_NOTE, []))
        if cell.cell_type != "code" or not meta.get("grade") or "forbidden_calls" not in cell.source:
            continue
        reasons = [(reason, "") for reason in escapes.get(current, [])] + [(reason, ", in an added cell") for reason in added]
        if reasons:
            reason, where = reasons[0]
            evalue = (f"{FORBIDDEN_MARKER} a built-in out of the check's sight: the answer {reason.split(': ', 1)[-1]} "
                      f"({reason.split(':', 1)[0]}{where})")
            cell.setdefault("outputs", []).append(NotebookNode(output_type="error", ename=ESCAPE_ENAME, evalue=evalue,
                                                               traceback=[f"{ESCAPE_ENAME}: {evalue}"]))


class LimitOutputSize(NbGraderPreprocessor):
    """Cut each text output to MAX_OUTPUT_CHARS (LimitOutput counts lines; one line can be gigabytes)."""

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if "text" in output:
                output.text = _cut(output.text)
            if output.get("output_type") == "error":
                output.evalue = _cut(output.evalue)
                output.traceback = [_cut(line) for line in output.traceback]
            for mime, value in output.get("data", {}).items():
                if isinstance(value, str) and len(value) > MAX_OUTPUT_CHARS:
                    output.data[mime] = _cut(value) if mime.startswith("text/plain") else "(output too large, dropped)"
        return cell, resources


def _cut(text: str) -> str:
    if len(text) <= MAX_OUTPUT_CHARS:
        return text
    return text[:MAX_OUTPUT_CHARS] + f"\n... output truncated ({len(text)} characters) ..."


# ---------------------------------------------------------------- 5. what the feedback shows


class HideHiddenTests(FeedbackPreprocessor):
    """In the feedback, replace the hidden part of each test cell and reduce its errors to their message.

    A traceback through a hidden test prints its code line by line, so clearing the source is not enough.
    """

    begin = "### BEGIN HIDDEN TESTS"
    end = "### END HIDDEN TESTS"

    def preprocess_cell(self, cell, resources, index):
        if cell.cell_type != "code" or self.begin not in cell.source:
            return cell, resources
        kept, hiding = [], False
        for line in cell.source.splitlines():
            if line.strip().startswith(self.begin):
                hiding = True
                kept.append("# (hidden tests: not shown)")
            elif line.strip().startswith(self.end):
                hiding = False
            elif not hiding:
                kept.append(line)
        cell.source = "\n".join(kept)
        for output in cell.outputs:
            if output.output_type == "error":
                output.traceback = [f"{output.ename}: {output.evalue}"]
        return cell, resources

    def preprocess(self, nb, resources):
        """Also drop any output that quotes a hidden test (``print(In)``, a traceback, an inspect call)."""
        hidden = set()
        for cell in nb.cells:
            if cell.cell_type == "code" and self.begin in cell.source:
                inside = cell.source.split(self.begin, 1)[1].split(self.end, 1)[0]
                hidden |= {line.strip() for line in inside.splitlines() if len(line.strip()) >= 12 and not line.strip().startswith("#")}
        nb, resources = super().preprocess(nb, resources)
        if hidden:
            for cell in nb.cells:
                for output in cell.get("outputs", []):
                    text = json.dumps(output)
                    if any(json.dumps(line)[1:-1] in text for line in hidden):
                        output.clear()
                        output.update(output_type="stream", name="stdout", text="(output not shown: it quotes the hidden tests)\n")
        return nb, resources


class HideGraderPaths(FeedbackPreprocessor):
    """Replace the grader's absolute paths in outputs (tracebacks name the files they pass through)
    by short labels: ``<python>`` for the environment, ``<course>`` for the repository, ``<kernel>`` for the sandbox's scratch folder."""

    def preprocess_cell(self, cell, resources, index):
        for output in cell.get("outputs", []):
            if "text" in output:
                output.text = hide_paths(output.text)
            if output.get("output_type") == "error":
                output.evalue = hide_paths(output.evalue)
                output.traceback = [hide_paths(line) for line in output.traceback]
        return cell, resources


def _path_labels() -> list[tuple[re.Pattern, str]]:
    labels = [(re.escape(path) + "/?", label) for path, label in (
        (sys.prefix, "<python>/"), (sys.base_prefix, "<python>/"), (str(REPO), "<course>/"))]
    labels.append((r"/tmp/grading-kernel-[A-Za-z0-9_]+/?", "<kernel>/"))
    return [(re.compile(pattern), label) for pattern, label in sorted(labels, key=lambda p: -len(p[0]))]


_LABELS = _path_labels()


def hide_paths(text: str) -> str:
    for pattern, label in _LABELS:
        text = pattern.sub(label, text)
    return text


class LocalMathJax(FeedbackPreprocessor):
    """Copy the course's MathJax (``MATHJAX``) to ``<feedback>/mathjax/``, where each feedback page
    (``<feedback>/<student>/<assignment>/<notebook>.html``) loads it: math renders offline."""

    def preprocess(self, nb, resources):
        import shutil

        from nbgrader.coursedir import CourseDirectory

        coursedir = CourseDirectory(config=self.config)
        target = Path(coursedir.root) / coursedir.feedback_directory / "mathjax"
        if not (target / "tex-chtml.js").is_file():
            shutil.copytree(MATHJAX, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("README.md"))
        return nb, resources
