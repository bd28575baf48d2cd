"""How submissions are graded: the nbgrader settings every course directory uses.

nbgrader_config.py (the course) and tests/test_assignments.py (a temporary course) both call
``configure_grading``, so the tests grade exactly the way an instructor does.

Student code runs in the grader's kernel next to the tests, with no sandbox around it, so
grading adds four guards to nbgrader's own commands (guide/instructors.md explains them):

1. ``IntegrityCheck`` (autograde, after nbgrader restored the locked cells): reads every cell
   the student wrote with course.integrity; a cell that rebinds a checking helper, calls the
   built-in its exercise forbids, imports the reference or reaches files and processes is not
   run: it is replaced by a cell that raises an error saying why, so its tests fail and the
   feedback shows the reason.
2. ``GuardedExecute`` (autograde): nbgrader's Execute with a per-cell timeout, resource limits
   on the kernel process (memory, file size, CPU time), a cap on the output one cell may send,
   and a kernel that dies (``os._exit``, killed for memory) failing the remaining cells instead
   of the whole submission.
3. ``LimitOutputSize`` and ``FlagIntegrityFindings`` (autograde): cut enormous outputs before
   they reach the notebook files; mark the tests of a stopped cell "needs manual grade" in the
   gradebook, with the reason as the answer's comment.
4. ``HideHiddenTests`` (generate_feedback): the feedback shows neither the code of the hidden
   tests nor their tracebacks, only the error message.
"""

import resource

from nbclient.exceptions import DeadKernelError
from nbformat.notebooknode import NotebookNode
from jupyter_client.manager import AsyncKernelManager
from nbgrader.api import Gradebook
from nbgrader.preprocessors import (
    CheckCellMetadata,
    ClearOutput,
    DeduplicateIds,
    Execute,
    IgnorePattern,
    LimitOutput,
    NbGraderPreprocessor,
    OverwriteCells,
    OverwriteKernelspec,
    SaveAutoGrades,
    AssignLatePenalties,
    GetGrades,
)
from nbconvert.preprocessors import ClearMetadataPreprocessor, CSSHTMLHeaderPreprocessor
from traitlets import Integer

from course import integrity

CELL_TIMEOUT_S = 120  # nbgrader's default of 30 s is too short for a slow laptop; no exercise cell needs more
MAX_OUTPUT_LINES = 200  # per cell, kept in the graded notebook and the feedback
MAX_OUTPUT_CHARS = 20_000  # per output: one enormous line is as bad as many
MAX_STREAMED_BYTES = 2_000_000  # per cell, while it runs: what the grader accepts from the kernel at all

# Limits on the kernel process that runs a submission (soft, hard). The grader survives a
# submission that allocates without bound, writes a huge file or spins its CPU: the kernel gets
# MemoryError / a failed write / SIGXCPU, and the cell (or the rest of the notebook) fails.
KERNEL_LIMITS = {
    "RLIMIT_AS": 6 * 2**30,  # address space; torch needs about 1.5 GiB of it just to import
    "RLIMIT_FSIZE": 64 * 2**20,  # the largest file the kernel may write
    "RLIMIT_CPU": 900,  # seconds of CPU for the whole notebook, a backstop to the per-cell timeout
    "RLIMIT_CORE": 0,
}

INTEGRITY_MARKER = "# INTEGRITY CHECK: this cell was not run."


def configure_grading(c) -> None:
    """Apply the course's grading settings to an nbgrader config object ``c``."""
    # What a student sees in place of a removed solution.
    c.ClearSolutions.code_stub = {"python": "# YOUR CODE HERE\nraise NotImplementedError()"}
    c.Execute.timeout = CELL_TIMEOUT_S
    # nbgrader's timeout error has an empty message, which is all the feedback of a hidden test shows
    timeout_message = "the cell did not finish within the grader's time limit per cell (an endless loop?)"
    c.Execute.error_on_timeout = {"ename": "CellTimeoutError", "evalue": timeout_message, "traceback": [f"CellTimeoutError: {timeout_message}"]}
    c.LimitOutput.max_lines = MAX_OUTPUT_LINES
    c.LimitOutput.max_traceback = 60
    c.Autograde.sanitize_preprocessors = [
        ClearOutput, DeduplicateIds, OverwriteKernelspec, OverwriteCells, IntegrityCheck, CheckCellMetadata,
    ]
    c.Autograde.autograde_preprocessors = [
        GuardedExecute, IgnorePattern, ClearMetadataPreprocessor, LimitOutput, LimitOutputSize,
        SaveAutoGrades, FlagIntegrityFindings, AssignLatePenalties, CheckCellMetadata,
    ]
    c.GenerateFeedback.preprocessors = [HideHiddenTests, GetGrades, CSSHTMLHeaderPreprocessor]


# ---------------------------------------------------------------- 1. the integrity pass


def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def _is_instructor_cell(cell, instructor_ids: set[str]) -> bool:
    """A locked cell the gradebook knows: OverwriteCells has just restored the instructor's source."""
    meta = _nbgrader(cell)
    return meta.get("grade_id") in instructor_ids and not meta.get("solution") and (meta.get("locked") or meta.get("grade"))


class IntegrityCheck(NbGraderPreprocessor):
    """Replace each student cell that fails course.integrity by a cell that says why and raises."""

    def preprocess(self, nb, resources):
        with Gradebook(resources["nbgrader"]["db_url"]) as gradebook:
            notebook = gradebook.find_notebook(resources["nbgrader"]["notebook"], resources["nbgrader"]["assignment"])
            instructor_ids = {cell.name for cell in notebook.source_cells}
        instructor = [c for c in nb.cells if c.cell_type == "code" and _is_instructor_cell(c, instructor_ids)]
        protected = {"check_close", "check_shape", "forbidden_calls"}
        imports: dict[str, str] = {}
        forbidden_for: dict[str, set[str]] = {}
        for cell in instructor:
            protected |= integrity.names_bound_at_top_level(cell.source)
            imports |= integrity.imports_at_top_level(cell.source)
            for function, names in integrity.forbidden_by_tests(cell.source).items():
                forbidden_for.setdefault(function, set()).update(names)
        for cell in nb.cells:
            if cell.cell_type == "code" and not _is_instructor_cell(cell, instructor_ids):
                self._check_student_cell(cell, protected, forbidden_for, imports)
        return nb, resources

    def _check_student_cell(self, cell, protected, forbidden_for, imports) -> None:
        defined = integrity.defined_functions(cell.source)
        forbidden_here = set().union(*(forbidden_for.get(name, set()) for name in defined))
        findings = integrity.check_answer(cell.source, protected, forbidden_here, imports)
        if findings:
            self.log.warning("integrity check stopped cell %s: %s", _nbgrader(cell).get("grade_id", "(added)"), findings)
            cell.source = neutralised_source(findings, defined)


def neutralised_source(findings, defined_functions) -> str:
    """A cell that explains, defines each of the student's functions as one raising the same explanation, and raises."""
    reasons = "; ".join(str(finding) for finding in findings)
    message = f"integrity check: this answer was not run ({reasons}). Your instructor reviews it."
    lines = [INTEGRITY_MARKER, *(f"#   {finding}" for finding in findings), f"_integrity_message = {message!r}"]
    for name in sorted(defined_functions):
        lines += [f"def {name}(*args, **kwargs):", "    raise RuntimeError(_integrity_message)"]
    lines.append("raise RuntimeError(_integrity_message)")
    return "\n".join(lines)


class FlagIntegrityFindings(NbGraderPreprocessor):
    """Mark the tests that follow a stopped cell "needs manual grade", and put the reason in the answer's comment.

    The score stays what the tests gave (zero, since the stopped functions raise); the flag puts
    the submission in formgrader's "needs manual grade" list, where a grader can read the
    reason and, where the zero is unfair, give the points by hand.
    """

    def preprocess(self, nb, resources):
        info = resources["nbgrader"]
        with Gradebook(info["db_url"]) as gradebook:
            reason = None
            for cell in nb.cells:
                meta = _nbgrader(cell)
                if cell.cell_type == "code" and cell.source.startswith(INTEGRITY_MARKER):
                    findings = [line.removeprefix("#   ") for line in cell.source.splitlines() if line.startswith("#   ")]
                    reason = "Integrity check: " + "; ".join(findings)
                    if meta.get("solution"):
                        comment = gradebook.find_comment(meta["grade_id"], info["notebook"], info["assignment"], info["student"])
                        comment.auto_comment = reason
                elif meta.get("solution"):
                    reason = None  # the next exercise starts: its tests are not affected
                elif meta.get("grade") and reason:
                    grade = gradebook.find_grade(meta["grade_id"], info["notebook"], info["assignment"], info["student"])
                    grade.needs_manual_grade = True
            gradebook.db.commit()
        return nb, resources


# ---------------------------------------------------------------- 2. the kernel and its execution


def apply_kernel_limits() -> None:
    """Runs in the kernel process just before it starts (Popen's preexec_fn)."""
    for name, soft in KERNEL_LIMITS.items():
        limit = getattr(resource, name)
        _, hard = resource.getrlimit(limit)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(limit, (soft, soft if name != "RLIMIT_CPU" else hard))


class LimitedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernels start under KERNEL_LIMITS."""

    async def _async_launch_kernel(self, kernel_cmd, **kw):
        kw["preexec_fn"] = apply_kernel_limits
        return await super()._async_launch_kernel(kernel_cmd, **kw)


class GuardedExecute(Execute):
    """nbgrader's Execute, with limited kernels, bounded output, and a dead kernel failing the cells left."""

    max_streamed_bytes = Integer(MAX_STREAMED_BYTES, help="output one cell may send before the rest is dropped").tag(config=True)

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("kernel_manager_class", LimitedKernelManager)
        super().__init__(*args, **kwargs)
        self._kernel_died = False
        self._streamed = {}

    def preprocess(self, nb, resources=None, km=None):
        self._kernel_died = False
        self._streamed = {}
        return super().preprocess(nb, resources, km)

    def preprocess_cell(self, cell, resources, index):
        if self._kernel_died:
            return self._fail(cell, "the kernel had died in an earlier cell, so this cell was not run"), resources
        try:
            return super().preprocess_cell(cell, resources, index)
        except DeadKernelError:
            self._kernel_died = True
            return self._fail(cell, "the kernel died while running this cell (it exited, or ran out of memory or CPU time)"), resources

    def _fail(self, cell, reason: str):
        if cell.cell_type == "code":
            cell.outputs.append(NotebookNode(output_type="error", ename="KernelDied", evalue=reason, traceback=[f"KernelDied: {reason}"]))
        return cell

    def output(self, outs, msg, display_id, cell_index):
        """Drop what a cell prints beyond max_streamed_bytes, so a print loop cannot fill the grader's memory."""
        size = len(str(msg.get("content", "")))
        total = self._streamed.get(cell_index, 0) + size
        self._streamed[cell_index] = total
        if total > self.max_streamed_bytes:
            if total - size <= self.max_streamed_bytes:
                outs.append(NotebookNode(output_type="stream", name="stdout", text="\n... output beyond the grader's limit was dropped ...\n"))
            return None
        return super().output(outs, msg, display_id, cell_index)


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


# ---------------------------------------------------------------- 4. what the feedback shows


class HideHiddenTests(NbGraderPreprocessor):
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
