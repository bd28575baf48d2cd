"""Verdicts reached outside the student's process: the hidden tests' results, compared in the grader.

A hidden test block calls only the student's functions, on inputs it chooses, and hands each
result to ``course.checks.report(name, value)``, which writes ``<reports folder>/<hash of
name>.npz`` when the kernel's environment names a reports folder (``COURSE_REPORTS_DIR``; the
sandbox sets it to a folder in the kernel's scratch folder). Nothing is compared in the kernel.

1. **The reference run** (trusted): the assignment's source notebook, reference solutions in
   its answer cells, runs once in a sandboxed kernel of its own; after each graded test cell the
   reports that appeared are read. The result, ``{grade_id: {name: Reference}}``, is cached in
   the course (``_grading/reference_reports/``), keyed by a hash of the source notebook and of
   the ``course`` and ``grading`` packages, so a class run computes it once (and two processes
   that share the folder, once between them: the second waits for the first's result). No
   student's code runs there.
2. **The student run**: before each graded test cell that has references, the grader deletes
   those names' files from the kernel's reports folder; after it, it reads them back
   (``read_report``: never unpickled, sizes capped, anything malformed counts as missing).
3. **The verdict** (``CompareReports`` in grading/config.py): a missing result, another shape
   or dtype, values outside the reference's tolerance, or a bound not met fails the cell with
   an error output that says which result and how far off, never the reference's values.

Only the raw values of the student's reports cross from the kernel into the verdict: the
tolerances, bounds, names, targets and metrics come from the reference run. A metric
(grading/metrics.py) is a number the grader measures from a reported value, e.g. a model
rebuilt from its reported weights.
"""

import contextlib
import hashlib
import io
import json
import math
import operator
import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

import nbformat
import numpy as np

from course.channel import report_file_name
from grading.sandbox import REPORTS_FOLDER
MAX_REPORT_BYTES = 64 * 2**20  # all of one student's reports read together, uncompressed
MAX_REPORT_FILES = 2000  # per notebook, in the reference run (the student's are only the reference's names)
MAX_DIMENSIONS = 32
RELATIONS = {"<=": operator.le, ">=": operator.ge, "<": operator.lt, ">": operator.gt, "==": operator.eq}
REFERENCE_TIMEOUT_S = 600  # per cell of the reference run: trusted code, a generous limit
ENAME_DIFFERS = "ResultDiffers"
ENAME_MISSING = "ResultMissing"
HIDDEN_BEGIN = "### BEGIN HIDDEN TESTS"


@dataclass
class Reference:
    value: np.ndarray
    atol: float
    rtol: float
    relation: str
    limit: float
    targets: np.ndarray | None = None  # predictions are scored against these (the reference run's), as a fraction of rows
    metric: str = ""  # the value is what the grader measures (grading/metrics.py), e.g. a trained model's weights


def accuracy(value: np.ndarray, targets: np.ndarray) -> float | None:
    """The fraction of rows (first axis) of ``value`` equal to the same rows of ``targets``; None when the shapes differ."""
    if value.shape != targets.shape or not targets.shape or targets.shape[0] == 0:
        return None
    if (value.dtype.kind in "US") != (targets.dtype.kind in "US"):
        return None
    equal = (value == targets).reshape(targets.shape[0], -1).all(axis=1)
    return float(equal.mean())


# ---------------------------------------------------------------- reading a report safely


def _npy_array(data: bytes) -> np.ndarray | None:
    """An .npy file's array, or None: no object dtype, the header's size must match the data (no preallocation from a lie)."""
    handle = io.BytesIO(data)
    try:
        version = np.lib.format.read_magic(handle)
        if version == (1, 0):
            shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
        elif version in ((2, 0), (3, 0)):
            shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        else:
            return None
    except (ValueError, SyntaxError, TypeError, OSError):
        return None
    if dtype.hasobject or len(shape) > MAX_DIMENSIONS or any(not isinstance(n, int) or n < 0 for n in shape):
        return None
    count = math.prod(shape)
    offset = handle.tell()
    if count * dtype.itemsize != len(data) - offset:
        return None
    array = np.frombuffer(data, dtype=dtype, count=count, offset=offset)
    return array.reshape(shape, order="F" if fortran else "C").copy()


def _read_npz(handle, budget: int) -> dict | None:
    """The arrays of an .npz file opened by the caller, or None when it is malformed or larger than ``budget`` bytes unpacked."""
    try:
        with zipfile.ZipFile(handle) as archive:
            members = archive.infolist()
            if len(members) > 8 or sum(m.file_size for m in members) > budget:
                return None
            arrays = {}
            for member in members:
                if not member.filename.endswith(".npy"):
                    return None
                with archive.open(member) as stream:
                    data = stream.read(member.file_size + 1)
                if len(data) != member.file_size:
                    return None
                array = _npy_array(data)
                if array is None:
                    return None
                arrays[member.filename[:-4]] = array
            return arrays
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError, NotImplementedError, RuntimeError):
        return None


def read_report(folder_fd: int, name: str, budget: int) -> tuple[np.ndarray | None, int]:
    """(value reported under ``name``, bytes used) from the folder open as ``folder_fd``; value None when missing or unreadable.

    The file is opened without following links and must be a regular file (not a FIFO, not a
    link to the grader's files); it is read only up to ``budget`` bytes; never unpickled.
    """
    try:
        fd = os.open(report_file_name(name), os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=folder_fd)
    except OSError:
        return None, 0
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode) or info.st_size > budget:
            return None, min(info.st_size, budget)
        data = handle.read(budget + 1)
    if len(data) > budget:
        return None, budget
    arrays = _read_npz(io.BytesIO(data), budget - len(data))
    used = len(data) + sum(a.nbytes for a in (arrays or {}).values())
    if not arrays or "value" not in arrays or "name" not in arrays or arrays["name"].dtype.kind != "U" or str(arrays["name"]) != name:
        return None, used
    return arrays["value"], used


def open_folder(path: Path) -> int | None:
    """A descriptor of the reports folder, only if it is a real folder (not a link the student put in its place)."""
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError:
        return None


def remove_reports(path: Path, names) -> None:
    """Delete these names' files before the test cell runs, so that only what the cell reports is read after it."""
    fd = open_folder(path)
    if fd is None:
        return
    try:
        for name in names:
            try:
                os.unlink(report_file_name(name), dir_fd=fd)  # a link is removed, never what it points to
            except IsADirectoryError:
                pass
            except OSError:
                pass
    finally:
        os.close(fd)


class ReportReader:
    """Reads one student's reports, within MAX_REPORT_BYTES for the whole notebook."""

    def __init__(self, budget: int = MAX_REPORT_BYTES):
        self.budget = budget

    def read(self, folder: Path, names) -> dict[str, np.ndarray | None]:
        fd = open_folder(folder)
        found = {}
        try:
            for name in names:
                value = None
                if fd is not None and self.budget > 0:
                    value, used = read_report(fd, name, self.budget)
                    self.budget -= used
                found[name] = value
        finally:
            if fd is not None:
                os.close(fd)
        return found


# ---------------------------------------------------------------- the verdict


def _shape(shape) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def verdict(name: str, reference: Reference, value: np.ndarray | None) -> str:
    """Why ``value`` fails the reference's check ("" when it passes). Never quotes the reference's values."""
    if value is None:
        return f"{name}: no result was reported (the test stopped before it, or what was reported could not be read)"
    if reference.relation and reference.targets is not None:  # predictions: the grader computes the accuracy
        score = accuracy(value, reference.targets)
        if score is None:
            return f"{name}: predictions of shape {_shape(value.shape)} ({value.dtype}), expected {_shape(reference.targets.shape)}"
        if not RELATIONS[reference.relation](score, reference.limit):
            return (f"{name}: {score:.1%} of the {len(reference.targets)} held-out examples right (a fraction of "
                    f"{score:.4g}), which does not satisfy {reference.relation} {reference.limit:g}")
        return ""
    if reference.relation and reference.metric:  # e.g. weights: the grader rebuilds the model and measures it
        from grading.metrics import compute

        number = compute(reference.metric, value)
        if isinstance(number, str):
            return f"{name}: {number}"
        if not math.isfinite(number) or not RELATIONS[reference.relation](number, reference.limit):
            return f"{name}: measured by the grader, {number:.4g}, which does not satisfy {reference.relation} {reference.limit:g}"
        return ""
    if reference.relation:
        if value.size != 1 or value.dtype.kind not in "biuf":
            return f"{name}: expected one number, got shape {_shape(value.shape)} of {value.dtype}"
        number = float(value.reshape(()))
        if not math.isfinite(number) or not RELATIONS[reference.relation](number, reference.limit):
            return f"{name}: {number:.4g} does not satisfy {reference.relation} {reference.limit:g}"
        return ""
    expected = reference.value
    if value.shape != expected.shape:
        return f"{name}: shape {_shape(value.shape)}, expected {_shape(expected.shape)}"
    textual = expected.dtype.kind in "US"
    if (value.dtype.kind != expected.dtype.kind) if textual else (value.dtype != expected.dtype):
        return f"{name}: dtype {value.dtype}, expected {expected.dtype}"
    if expected.dtype.kind in "fc":
        close = np.isclose(value, expected, rtol=reference.rtol, atol=reference.atol, equal_nan=True)
        if close.all():
            return ""
        bad = ~close
        nan = int((np.isnan(value) & ~np.isnan(expected))[bad].sum())
        both = bad & np.isfinite(value) & np.isfinite(expected)
        error = float(np.abs(value[both].astype(np.float64) - expected[both]).max()) if both.any() else math.inf
        detail = f"largest error {error:.3g}" if math.isfinite(error) else "non-finite values where finite ones were expected"
        if nan:
            detail += f", {nan} NaN where a number was expected"
        return (f"{name}: {int(bad.sum())} of {expected.size} values differ ({detail}; tolerance {reference.atol:g} "
                f"+ {reference.rtol:g}·|expected|), shape {_shape(expected.shape)}")
    if np.array_equal(value, expected):
        return ""
    differ = int((value != expected).sum()) if expected.shape else 1
    return f"{name}: {differ} of {max(expected.size, 1)} values differ (compared exactly), shape {_shape(expected.shape)}"


# ---------------------------------------------------------------- the reference run


def _reference_from_arrays(arrays: dict) -> Reference:
    return Reference(value=arrays["value"], atol=float(arrays["atol"]), rtol=float(arrays["rtol"]),
                     relation=str(arrays["relation"]), limit=float(arrays["limit"]), targets=arrays.get("targets"),
                     metric=str(arrays["metric"]) if "metric" in arrays else "")


def graded_cells(notebook) -> list:
    return [cell for cell in notebook.cells
            if cell.cell_type == "code" and cell.metadata.get("nbgrader", {}).get("grade") and not cell.metadata["nbgrader"].get("solution")]


def cache_key(notebook) -> str:
    """A hash of what decides the reference's results: the notebook's code, the course package it imports and the
    grading package that runs it and reads its reports."""
    digest = hashlib.sha256()
    for cell in notebook.cells:
        if cell.cell_type == "code":
            digest.update(cell.source.encode() + b"\0")
    repo = Path(__file__).resolve().parent.parent
    for path in sorted([*(repo / "course").rglob("*.py"), *(repo / "grading").rglob("*.py")]):
        digest.update(path.relative_to(repo).as_posix().encode() + b"\0" + path.read_bytes())
    from importlib.metadata import version  # not torch itself: the grader's process never imports it

    digest.update(version("torch").encode() + np.__version__.encode())
    return digest.hexdigest()[:24]


def save_references(path: Path, references: dict[str, dict[str, Reference]]) -> None:
    index, arrays = {}, {}
    for grade_id, named in references.items():
        for name, ref in named.items():
            key = f"a{len(arrays)}"
            arrays[key] = ref.value
            index.setdefault(grade_id, {})[name] = {"key": key, "atol": ref.atol, "rtol": ref.rtol,
                                                    "relation": ref.relation, "limit": ref.limit, "metric": ref.metric}
            if ref.targets is not None:
                arrays[key + "_targets"] = ref.targets
                index[grade_id][name]["targets"] = key + "_targets"
    arrays["index"] = np.array(json.dumps(index))
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + f".{os.getpid()}.tmp.npz")
    np.savez(partial, **arrays)
    os.replace(partial, path)


def load_references(path: Path) -> dict[str, dict[str, Reference]]:
    with np.load(path, allow_pickle=False) as arrays:
        index = json.loads(str(arrays["index"]))
        return {grade_id: {name: Reference(value=arrays[entry["key"]], atol=entry["atol"], rtol=entry["rtol"],
                                           relation=entry["relation"], limit=entry["limit"],
                                           targets=arrays[entry["targets"]] if "targets" in entry else None,
                                           metric=entry.get("metric", ""))
                           for name, entry in named.items()}
                for grade_id, named in index.items()}


def run_reference(notebook, log=None, skip=(), config=None) -> dict[str, dict[str, Reference]]:
    """Execute the source notebook (reference answers) in a sandboxed kernel; the reports of each graded test cell.

    ``skip``: grade ids of cells not run (the Colab setup cell). A cell of the reference that fails
    is an error in the assignment, not a student's: it stops grading with the reason. ``config``: the
    grading command's traitlets config, so that the reference kernel is configured as the students' are.
    """
    from nbclient import NotebookClient

    from grading.sandbox import SandboxedKernelManager

    notebook = nbformat.from_dict(json.loads(json.dumps(notebook)))  # a copy: the outputs stay out of the source
    graded = {id(cell) for cell in graded_cells(notebook)}
    client = NotebookClient(notebook, timeout=REFERENCE_TIMEOUT_S, kernel_name="python3", allow_errors=True,
                            kernel_manager_class=SandboxedKernelManager, extra_arguments=["--HistoryManager.hist_file=:memory:"],
                            **({"config": config} if config is not None else {}))
    references: dict[str, dict[str, Reference]] = {}
    with client.setup_kernel():
        folder = client.km._scratch / REPORTS_FOLDER
        for index, cell in enumerate(notebook.cells):
            grade_id = cell.metadata.get("nbgrader", {}).get("grade_id", "")
            if cell.cell_type != "code" or grade_id in skip:
                continue
            client.execute_cell(cell, index, store_history=True)
            errors = [o for o in cell.outputs if o.output_type == "error"]
            if errors:
                raise RuntimeError(f"the reference solution fails cell {grade_id or index}: {errors[0].ename}: {errors[0].evalue}"[:2000])
            files = sorted(folder.glob("*.npz")) if folder.is_dir() else []
            for path in files[:MAX_REPORT_FILES]:
                with open(path, "rb") as handle:
                    arrays = _read_npz(handle, MAX_REPORT_BYTES)
                path.unlink()
                if not arrays or id(cell) not in graded:
                    continue
                name = str(arrays["name"])
                if any(name in named for named in references.values()):
                    raise RuntimeError(f"report name {name!r} is used twice in the assignment (cell {grade_id})")
                reference = _reference_from_arrays(arrays)
                references.setdefault(grade_id, {})[name] = reference
                if reference.relation and verdict(name, reference, reference.value):
                    raise RuntimeError(f"the reference solution does not meet its own bound: {verdict(name, reference, reference.value)}")
    if log is not None:
        log.info("reference run: %d results in %d test cells", sum(map(len, references.values())), len(references))
    return references


_MEMORY: dict[str, dict] = {}


def reference_reports(notebook, cache_folder: Path, log=None, skip=(), config=None) -> dict[str, dict[str, Reference]]:
    """The reference's reports for this source notebook: from memory, the cache folder, or a fresh reference run."""
    if not any(HIDDEN_BEGIN in cell.source for cell in graded_cells(notebook)):
        return {}  # no hidden tests (a student's copy without solutions/): nothing to compare
    key = cache_key(notebook)
    path = Path(cache_folder) / f"{key}.npz"
    if key in _MEMORY:
        if not path.exists():  # another course folder in the same process: keep its cache complete too
            save_references(path, _MEMORY[key])
        return _MEMORY[key]
    path.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(path.with_name(f"{key}.lock")):  # another process computing this key: wait, then read its result
        references = None
        if path.exists():
            try:
                references = load_references(path)
            except (OSError, ValueError, KeyError, json.JSONDecodeError, zipfile.BadZipFile):
                references = None
        if references is None:
            references = run_reference(notebook, log=log, skip=skip, config=config)
            save_references(path, references)
    _MEMORY[key] = references
    return references


@contextlib.contextmanager
def _exclusive(lock_path: Path):
    """Hold an exclusive lock on ``lock_path`` (POSIX; elsewhere, no lock: at worst a reference run is made twice)."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
