"""Red team: a class of honest, careless and dishonest submissions, graded through the instructor's commands.

One real assignment (ch03_attention: masked_softmax 4 points = 2 visible + 2 hidden, masks 3 =
1 + 2, attention 5 = 2 + 3, attention's backward pass 5 = 2 + 3) is released in a temporary
course. Each student below submits one kind of notebook. The class is graded with the documented class command (``python -m grading
class``, which runs ``nbgrader autograde``), then ``nbgrader generate_feedback`` and ``nbgrader
export``. Checked: each student earns what their work deserves, honest odd code is neither
zeroed nor flagged, cheats and stopped cells are flagged for review with the reason, a
notebook nbgrader cannot read is listed with the reason while every other student is graded,
the gradebook and the grader's files are unchanged by what the kernels did, nothing is
written outside, and no feedback quotes a hidden test or a solution.

Every point of a test cell is decided outside the student's process (grading/reports.py): the
hidden blocks only hand the student's results to the grader, which compares them with the
reference run's. So cheats that work inside the kernel's own Python (rebinding the checking
helpers, a tensor subclass that makes comparisons agree) earn only what their work deserves,
and so do cheats against that channel itself: fake report files with the right names (wrong
values, pickled objects, a zip bomb, a lying header, links to the grader's files, a FIFO),
``report`` rebound, the reports rewritten after the test cell, the hidden test's frames read.
The grader never unpickles, never reads more than its cap, never follows a link.
"""

import csv
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from class_course import course_with_a_class, own_version, reference_answers
from grading.assignments import REPO, nbgrader_command, nbgrader_notebook
from grading.config import is_written_answer
from grading.points import points

ASSIGNMENT = "ch03_attention"
FULL = 17  # its autograded points; a student who answers only the first three exercises (the backward pass left as the stub) earns 12
OUT_OF = int(sum(points(ASSIGNMENT)))  # with its written answer (graded by a person): the total the class command prints
WRITTEN_ANSWERS = {cell.metadata["nbgrader"]["grade_id"] for cell in nbgrader_notebook(REPO / "solutions" / f"{ASSIGNMENT}.py").cells
                   if is_written_answer(cell)}  # graded by a person: listed for manual grading, never a review flag
TIMEOUT_S = 20  # per cell in this course (the real course uses 120 s): keeps the endless loops cheap; its cells take under 2 s
MAX_MEMORY = 2 * 2**30  # per kernel in this course (the real course allows 8 GiB): keeps the memory hogs cheap
HIDDEN_TEXT = ("torch.Generator().manual_seed(31)", 'report(f"masked_softmax/hidden/plain/case{case}"', "causal = torch.arange(5)[None, :]")
UNPICKLED_MARKER = Path("/tmp/unpickled_by_the_grader")
GRADER_FILES = [REPO / "course" / "checks.py", REPO / "course" / "attention.py", REPO / "grading" / "config.py"]


REFERENCE = reference_answers(ASSIGNMENT)

OWN = {name: own_version(source) for name, source in REFERENCE.items()}
ALL_REF = {name: "ref" for name in REFERENCE}
WRONG_SOFTMAX = "def masked_softmax(scores, mask=None, dim=-1):\n    return scores\n"

MESSY = {
    "masked_softmax": "from math import sqrt, pow\nimport matplotlib.pyplot as plt\ninput = torch.randn(2, 5)  # scratch\n"
                      + OWN["masked_softmax"]
                      + "\nprint(torch.allclose(masked_softmax(input), torch.softmax(input, dim=-1)))\n"
                      "plt.figure(figsize=(2, 1)); plt.plot([0, 1]); plt.close()\n",
    "masks": "def subprocess(x):  # my own helper, named like an import of the setup cell\n    return x\n" + OWN["masks"],
    "scaled_dot_product_attention": OWN["scaled_dot_product_attention"]
    + "\nclass Probe(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n"
      "        for module in self.modules():\n            pass\nProbe()\n",
}

TENSOR_SUBCLASS = """
class Agree(torch.Tensor):
    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        if func.__name__ in ("__gt__", "__ne__", "any", "isfinite", "__eq__", "equal", "allclose", "all"):
            return torch.tensor(func.__name__ in ("isfinite", "__eq__", "equal", "allclose", "all"))
        return super().__torch_function__(func, types, args, kwargs or {})

def masked_softmax(scores, mask=None, dim=-1):
    return torch.zeros_like(scores).as_subclass(Agree)
"""

HARM_OTHERS = r"""
import os, subprocess, sys
os.kill(-1, 9)  # every process it may signal: in its own PID namespace, none of the grader's
# a process that outlives the kernel and rewrites the gradebook
subprocess.Popen(["sh", "-c", "sleep 3; echo x > COURSE/gradebook.db; echo x > ../../gradebook.db; sleep 3600.5"], start_new_session=True)
for path in ["COURSE/gradebook.db", "../../gradebook.db", "../../../gradebook.db"]:
    try:
        open(path, "w").write("overwritten")
    except OSError as error:
        print("gradebook:", type(error).__name__)
import course.checks
try:
    open(course.checks.__file__, "a").write("\ncheck_close = lambda *a, **k: None\n")
except OSError as error:
    print("course:", type(error).__name__)
for target in ("/tmp/hacked.txt", "../../../../hacked.txt", os.path.expanduser("~/../hacked.txt")):
    try:
        open(target, "w").write("hacked")
    except OSError as error:
        print("outside:", type(error).__name__)
os.system("touch /tmp/hacked_by_shell ../../../../hacked_by_shell")
children = []
try:
    for _ in range(5000):
        children.append(subprocess.Popen(["sleep", "3600.25"]))
except OSError as error:
    print("processes:", len(children), type(error).__name__)
"""

# The report channel itself, attacked. Each rebinds ``report`` (which every hidden block imports
# from course.checks) for the masked_softmax results only, and answers masked_softmax wrongly.
REPORT_FOR_SOFTMAX = """
import course.checks
_real_report = course.checks.report

def report(name, value, **kwargs):
    if not name.startswith("masked_softmax/"):
        return _real_report(name, value, **kwargs)
    FAKE
course.checks.report = report
"""

FAKE_REPORTS = REPORT_FOR_SOFTMAX.replace("    FAKE", """    import io, os, zipfile
    import numpy as np
    folder = os.environ["COURSE_REPORTS_DIR"]
    path = os.path.join(folder, course.checks.report_file_name(name))
    kind = sum(map(ord, name)) % 6
    shape = tuple(value.shape)

    class Payload:
        def __reduce__(self):
            return (os.system, ("touch UNPICKLED",))

    if kind == 0:  # the right name and shape, made-up values
        np.savez(path, name=np.array(name), value=np.full(shape, 0.5, dtype=value.numpy().dtype))
    elif kind == 1:  # a pickled object array: unpickling it would run a command in the grader
        np.savez(path, name=np.array(name), value=np.array([Payload()], dtype=object))
    elif kind == 2:  # a zip bomb: 256 MiB of zeros (4 times what the grader reads of all reports) in a small file
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            buffer = io.BytesIO(); np.save(buffer, np.array(name)); archive.writestr("name.npy", buffer.getvalue())
            with archive.open("value.npy", "w", force_zip64=True) as member:
                header = io.BytesIO()
                np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": (2**26,)})
                member.write(header.getvalue())
                for _ in range(2**8):
                    member.write(bytes(2**20))
    elif kind == 3:  # a header that claims 10**12 values
        header = io.BytesIO()
        np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (10**12,)})
        with zipfile.ZipFile(path, "w") as archive:
            archive.writestr("value.npy", header.getvalue() + bytes(64))
            buffer = io.BytesIO(); np.save(buffer, np.array(name)); archive.writestr("name.npy", buffer.getvalue())
    elif kind == 4:  # a link to the grader's gradebook, or to a system file
        os.symlink("COURSE/gradebook.db" if len(name) % 2 else "/etc/passwd", path)
    else:  # a FIFO: opening it for reading would block the grader
        os.mkfifo(path)
""").replace("UNPICKLED", str(UNPICKLED_MARKER))

SILENCES_REPORT = REPORT_FOR_SOFTMAX.replace("    FAKE", "    return None  # the wrong answers are never handed over")

# Runs the test cells again (from the kernel's input history) with a built-in softmax and the
# in-kernel forbidden-call check disabled, so that the report files hold the right values.
RIGHT_SOFTMAX = """
import contextlib
import course.checks
course.checks.forbidden_calls = lambda *targets: contextlib.nullcontext()

def right_softmax(scores, mask=None, dim=-1):
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return torch.softmax(scores, dim=dim).nan_to_num(0.0)

def rerun(source):
    if "report(" in source and "def rerun" not in source:
        try:
            exec(source, dict(globals(), masked_softmax=right_softmax))
        except Exception:
            pass
"""
# ... in a cell added at the end: too late, the grader read each test cell's reports right after it.
REWRITES_LATER = RIGHT_SOFTMAX + "\nfor source in list(In):\n    rerun(source)\n"
# ... in a hook that IPython runs at the end of every cell, the test cells included: this reaches the
# right values only through the built-in softmax, with the in-kernel check disabled: the limit the
# guide states ("Its limits"); the review hints flag it.
REWRITES_IN_HOOK = RIGHT_SOFTMAX + "\nget_ipython().events.register('post_run_cell', lambda result: rerun(result.info.raw_cell))\n"

# Looks through the hidden test's frames for anything that computes the expected answer.
READS_FRAMES = """
import sys
def masked_softmax(scores, mask=None, dim=-1):
    frame = sys._getframe(1)
    while frame is not None:
        for key, value in {**frame.f_globals, **frame.f_locals}.items():
            if (key.startswith(("reference", "want", "expected")) and callable(value)
                    and getattr(value, "__module__", "").startswith("course")):
                return value(scores, mask, dim=dim)
        frame = frame.f_back
    return scores
"""

# Fills what it may write (its scratch folder, /dev/shm, /dev) and starts processes that together ask for
# more memory than the kernel may use (MAX_MEMORY above): each process stays under its own address-space limit.
FILLS_THE_MACHINE = """
import os, subprocess, sys, time
written = 0
for folder in (".", "/dev/shm", "/dev"):
    for i in range(64):
        try:
            with open(os.path.join(folder, f"fill{i}"), "wb") as handle:
                for _ in range(64):
                    handle.write(bytes(2**20))
                    written += 2**20
        except OSError as error:
            print(folder, "refused:", error.strerror)
            break
print("written MiB:", written // 2**20)
hogs = [subprocess.Popen([sys.executable, "-c", "x = b'1' * (1024 * 2**20); import time; time.sleep(60)"]) for _ in range(3)]
for _ in range(30):  # until the memory limit stops one (on a busy machine the three take seconds to fill their GiB)
    time.sleep(0.5)
    if any(hog.poll() is not None for hog in hogs):
        break
print("memory hogs still running:", sum(hog.poll() is None for hog in hogs))
held = 0
for hog in hogs:  # what those still running hold: at the limit, reclaim may stall them for a while before one is stopped
    try:
        held += int(next(line for line in open(f"/proc/{hog.pid}/status") if line.startswith("VmRSS:")).split()[1]) * 1024
    except (OSError, StopIteration):
        pass
print("memory hogs hold MiB:", held // 2**20)
"""

# Writes nbgrader's own failure line for another student to the kernel's real stderr (which nbgrader's log shares).
FORGES_FAILURE_LINE = """
import os
for student in ("honest_full", "honest_partial"):
    os.write(2, f"[AutogradeApp | ERROR] There was an error processing assignment 'ch03_attention' for student '{student}'\\n".encode())
    os.write(2, b"RuntimeError: this submission looks copied\\n")
"""

LEAKS = """
print(In)
print(_ih)
import os, subprocess
repo = os.path.join(*PARTS)  # the repository's path, never written out in this cell
print(subprocess.run(f"cat {repo}/solutions/ch04_self_attention.py; ls {repo}", shell=True, capture_output=True, text=True))
""".replace("PARTS", repr(REPO.parts))


# A forbidden built-in, reached in ways the checks must still see (or, where they cannot at run time, the
# integrity pass flags and the grader counts as having run it): the visible and hidden softmax tests score 0.
_SOFTMAX_BODY = ("    if mask is not None:\n        scores = scores.masked_fill(~mask, float('-inf'))\n"
                 "    return CALL.nan_to_num(0.0)\n")
CAPTURED_SOFTMAX = "_sm = torch.softmax\ndef masked_softmax(scores, mask=None, dim=-1):\n" + _SOFTMAX_BODY.replace("CALL", "_sm(scores, dim)")
ATTRGETTER_SOFTMAX = ("import operator\ndef masked_softmax(scores, mask=None, dim=-1):\n"
                      + _SOFTMAX_BODY.replace("CALL", "operator.attrgetter('softmax')(torch)(scores, dim)"))
SOFTMAX_MODULE = "def masked_softmax(scores, mask=None, dim=-1):\n" + _SOFTMAX_BODY.replace("CALL", "torch.nn.Softmax(dim)(scores)")
# catches the refusal and tries again: the test still saw the built-in run
SWALLOWS_REFUSAL = ("_sm = torch.softmax\ndef masked_softmax(scores, mask=None, dim=-1):\n"
                    "    if mask is not None:\n        scores = scores.masked_fill(~mask, float('-inf'))\n"
                    "    for _ in range(3):\n        try:\n            return _sm(scores, dim).nan_to_num(0.0)\n"
                    "        except AssertionError:\n            pass\n    return scores\n")
# pops the watching modes around a captured built-in: not seen at run time, flagged by the integrity pass
POPS_THE_MODES = ("import torch.utils._python_dispatch as pd\n_sm = torch.softmax\n"
                  "def masked_softmax(scores, mask=None, dim=-1):\n"
                  "    if mask is not None:\n        scores = scores.masked_fill(~mask, float('-inf'))\n"
                  "    with torch._C.DisableTorchFunction(), pd._disable_current_modes():\n"
                  "        return _sm(scores, dim).nan_to_num(0.0)\n")
SOFTMAX_IN_A_THREAD = ("import threading\n_sm = torch.softmax\ndef masked_softmax(scores, mask=None, dim=-1):\n"
                       "    if mask is not None:\n        scores = scores.masked_fill(~mask, float('-inf'))\n"
                       "    out = []\n    worker = threading.Thread(target=lambda: out.append(_sm(scores, dim)))\n"
                       "    worker.start(); worker.join()\n    return out[0].nan_to_num(0.0)\n")

def added_cell(source: str, metadata: dict | None = None):
    cell = nbformat.v4.new_code_cell(source)
    if metadata:
        cell.metadata["nbgrader"] = metadata
    return cell


# student: (answers, edit of the notebook, score deserved or None if not graded, flagged for review (None: either),
#           a cheat against the checks)
STUDENTS = {
    "honest_full": ({name: "import math\nimport torch\nimport torch.nn.functional as F\n" + OWN[name] for name in REFERENCE},
                    None, FULL, False, False),
    # the reference answers, renamed and reformatted: full marks, flagged as copies for a person to read
    "copies_reference": ({name: REFERENCE[name].replace("scores", "s").replace("    #", "    # mine:") for name in REFERENCE},
                         None, FULL, True, False),
    "honest_partial": ({"masked_softmax": "ref"}, None, 4, False, False),
    "honest_messy": (MESSY, None, 12, False, False),
    "duplicated_answer_cell": (ALL_REF, "duplicate_softmax_answer", FULL, False, False),
    "foreign_metadata": (ALL_REF, "foreign_metadata", FULL, False, False),
    "invalid_json": (ALL_REF, "invalid_json", None, False, False),
    "oversized_file": (ALL_REF, "oversized_file", None, False, False),
    "huge_added_cell": (ALL_REF, "add_cell:x = 1  # " + "y" * 3_000_000, FULL, True, False),
    "syntax_error": ({"masked_softmax": "def masked_softmax(scores, mask=None, dim=-1:\n    return scores", "masks": "ref",
                      "scaled_dot_product_attention": "ref"}, None, 3, False, False),
    # causal_mask never returns: its two test cells time out; the rest is right
    "infinite_loop": ({"masked_softmax": "ref", "scaled_dot_product_attention": "ref",
                       "masks": OWN["masks"].replace("    positions = torch.arange(size)\n", "    while True:\n        pass\n")},
                      None, 9, True, False),
    # catches the interrupt at the time limit: the kernel is stopped, a fresh one replays the earlier cells and
    # grading goes on, so only causal_mask's two test cells lose their points (as for infinite_loop)
    "ignores_interrupt": ({"masked_softmax": "ref", "scaled_dot_product_attention": "ref",
                           "masks": OWN["masks"].replace("    positions = torch.arange(size)\n",
                                                               "    while True:\n        try:\n            while True:\n                pass\n"
                                                               "        except KeyboardInterrupt:\n            pass\n")},
                          None, 9, True, False),
    "bare_except_loop": ({"masked_softmax": "ref", "scaled_dot_product_attention": "ref",
                          "masks": OWN["masks"].replace("    positions = torch.arange(size)\n",
                                                        "    while True:\n        try:\n            pass\n        except:\n            continue\n")},
                         None, 9, True, False),
    # asks for 8 GiB on every softmax: MemoryError under the kernel's address-space limit
    "memory_hog": ({"masked_softmax": OWN["masked_softmax"].replace("    ### BEGIN SOLUTION\n", "    hog = bytearray(8 * 2**30)\n"),
                    "masks": "ref", "scaled_dot_product_attention": "ref"}, None, 3, False, False),
    "deleted_test_cells": ({"masked_softmax": WRONG_SOFTMAX, "masks": "ref", "scaled_dot_product_attention": "ref"},
                           "delete_softmax_tests", 3, False, False),
    "edited_test_cells": ({"masked_softmax": WRONG_SOFTMAX, "masks": "ref", "scaled_dot_product_attention": "ref"},
                          "empty_softmax_tests", 3, False, False),
    # forbidden built-ins by other names: the visible tests pass, the hidden ones see what ran
    "torch_underscore_softmax": ({"masked_softmax": "def masked_softmax(scores, mask=None, dim=-1):\n"
                                  "    if mask is not None:\n        scores = scores.masked_fill(~mask, float('-inf'))\n"
                                  "    return torch._softmax(scores, dim, False).nan_to_num(0.0)\n",
                                  "masks": "ref", "scaled_dot_product_attention": "ref"}, None, 8, True, False),
    "softmax_module_by_name": ({"masked_softmax": "import operator\nmake = operator.attrgetter('nn.Softmax')\n"
                                "def masked_softmax(scores, mask=None, dim=-1):\n"
                                "    if mask is not None:\n        scores = scores.masked_fill(~mask, float('-inf'))\n"
                                "    return make(torch)(dim)(scores).nan_to_num(0.0)\n",
                                "masks": "ref", "scaled_dot_product_attention": "ref"}, None, 8, True, False),
    # harm to others: none of it may reach the gradebook, the grader's files, the disk or the other students
    "harms_others": (ALL_REF, "add_cell:" + HARM_OTHERS, FULL, True, False),
    "shadows_modules": ({}, "shadow_files", 0, False, False),
    "fills_the_machine": (ALL_REF, "add_cell:" + FILLS_THE_MACHINE, FULL, True, False),
    "leaks": (ALL_REF, "add_cell:" + LEAKS, FULL, True, False),
    # the class command decides who was graded from nbgrader's results and the gradebook, not from the log
    "forges_failure_line": (ALL_REF, "add_cell:" + FORGES_FAILURE_LINE, FULL, True, False),
    "exits_kernel": ({"masked_softmax": "ref", "masks": "import os\nos._exit(0)\n" + OWN["masks"], "scaled_dot_product_attention": "ref"},
                     None, 4, True, False),
    # in-kernel cheats: the verdict is reached outside the kernel, so they earn what their work deserves
    "rebinds_helpers": ({"masked_softmax": WRONG_SOFTMAX + "\ntorch.allclose = lambda *a, **k: True\ncheck_close = lambda *a, **k: None\n"
                         "match 1:\n    case _ if True:\n        pass\n", "masks": "ref", "scaled_dot_product_attention": "ref"},
                        None, 3, True, True),
    "tensor_subclass": ({"masked_softmax": TENSOR_SUBCLASS}, None, 0, True, True),
    # cheats against the report channel: masked_softmax is wrong (so is the attention built on it), the masks right
    "fake_reports": ({"masked_softmax": WRONG_SOFTMAX + FAKE_REPORTS, "masks": "ref", "scaled_dot_product_attention": "ref"},
                     None, 3, None, True),
    "silences_report": ({"masked_softmax": WRONG_SOFTMAX + SILENCES_REPORT, "masks": "ref", "scaled_dot_product_attention": "ref"},
                        None, 3, None, True),
    "rewrites_reports_later": ({"masked_softmax": WRONG_SOFTMAX, "masks": "ref", "scaled_dot_product_attention": "ref"},
                               "add_cell:" + REWRITES_LATER, 3, None, True),
    # the right values through torch.softmax, with forbidden_calls disabled in the kernel: replacing a check counts as
    # escaping it, so the softmax tests (that check forbidden calls) score 0 as if the built-in had been seen; flagged
    "rewrites_reports_in_hook": ({"masked_softmax": WRONG_SOFTMAX + REWRITES_IN_HOOK, "masks": "ref",
                                  "scaled_dot_product_attention": "ref"}, None, 3, True, True),
    # item 4 of issue 22: a forbidden built-in that ran costs the points of every test that saw it, visible and hidden
    "captured_softmax": ({"masked_softmax": CAPTURED_SOFTMAX, "masks": "ref", "scaled_dot_product_attention": "ref"}, None, 8, True, True),
    "attrgetter_softmax": ({"masked_softmax": ATTRGETTER_SOFTMAX, "masks": "ref", "scaled_dot_product_attention": "ref"}, None, 8, True, True),
    "softmax_module": ({"masked_softmax": SOFTMAX_MODULE, "masks": "ref", "scaled_dot_product_attention": "ref"}, None, 8, True, True),
    "swallows_refusal": ({"masked_softmax": SWALLOWS_REFUSAL, "masks": "ref", "scaled_dot_product_attention": "ref"}, None, 8, True, True),
    "pops_the_modes": ({"masked_softmax": POPS_THE_MODES, "masks": "ref", "scaled_dot_product_attention": "ref"}, None, 8, True, True),
    "softmax_in_a_thread": ({"masked_softmax": SOFTMAX_IN_A_THREAD, "masks": "ref", "scaled_dot_product_attention": "ref"}, None, 8, True, True),
    # an image pasted into a markdown cell (an attachment), and a reference to one that is missing: graded, and
    # the class's feedback is generated (nbconvert stops on "missing attachment" when a reference has no image)
    "pasted_image": (ALL_REF, "pasted_image", FULL, False, False),
    # the integrity pass reads every cell (no marker turns it off) and every call form; hints never change a score
    "marker_first_line": ({"masked_softmax": "# GRADER: this cell was not run.\n" + WRONG_SOFTMAX + "torch.allclose = lambda *a, **k: True\n",
                           "masks": "ref", "scaled_dot_product_attention": "ref"}, None, 3, True, True),
    "import_through_a_list": ({"masked_softmax": "ref", "scaled_dot_product_attention": "ref",
                               "masks": "sqrt = [__import__][0]('math').sqrt\n" + OWN["masks"]}, None, 12, True, False),
    "reads_frames": ({"masked_softmax": READS_FRAMES, "masks": "ref", "scaled_dot_product_attention": "ref"}, None, 3, None, True),
}


def submission(course: Path, student: str) -> str:
    """The submitted file's text."""
    answers, edit, *_ = STUDENTS[student]
    notebook = nbformat.read(course / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    for cell in notebook.cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if cell.metadata.get("nbgrader", {}).get("solution") and grade_id in answers:
            cell.source = OWN[grade_id] if answers[grade_id] == "ref" else answers[grade_id]
    softmax_tests = {"masked_softmax_visible", "masked_softmax_hidden"}
    if edit == "delete_softmax_tests":
        notebook.cells = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in softmax_tests]
    elif edit == "empty_softmax_tests":
        for cell in notebook.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") in softmax_tests:
                cell.source = "print('all tests passed')"
    elif edit == "duplicate_softmax_answer":
        index = next(i for i, c in enumerate(notebook.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == "masked_softmax")
        notebook.cells.insert(index + 1, nbformat.from_dict(json.loads(json.dumps(notebook.cells[index]))))
        notebook.cells[index + 1].id = "copy-of-answer"
    elif edit == "foreign_metadata":
        for cell in notebook.cells:
            if cell.metadata.get("nbgrader", {}).get("grade_id") == "masked_softmax":
                cell.metadata["nbgrader"]["schema_version"] = 7
        notebook.cells.append(added_cell("x = 1", {"grade": True, "grade_id": "my_own_test", "points": 100, "schema_version": 1}))
    elif edit == "pasted_image":
        png = ("iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg==")
        pasted = nbformat.v4.new_markdown_cell("My plot: ![image.png](attachment:image.png)\n\nand a lost one ![x](attachment:gone.png)")
        pasted["attachments"] = {"image.png": {"image/png": png}}
        broken = nbformat.v4.new_markdown_cell("![broken](attachment:broken.png)")
        broken["attachments"] = {"broken.png": {}}  # no data at all
        notebook.cells[3:3] = [pasted, broken]
    elif edit and edit.startswith("add_cell:"):
        notebook.cells.append(added_cell(edit.removeprefix("add_cell:").replace("COURSE", str(course))))
    text = nbformat.writes(notebook)
    if edit == "invalid_json":
        return text[: len(text) // 2]
    if edit == "oversized_file":
        notebook.cells[0].outputs = [nbformat.v4.new_output("stream", text="x" * (21 * 2**20))] if notebook.cells[0].cell_type == "code" else []
        notebook.cells.insert(0, nbformat.v4.new_code_cell("", outputs=[nbformat.v4.new_output("stream", text="x" * (21 * 2**20))]))
        return nbformat.writes(notebook)
    return text


SHADOW_FILES = {
    "course/__init__.py": "",
    "course/checks.py": "def check_close(*a, **k):\n    pass\ndef check_shape(*a, **k):\n    pass\n"
                        "class forbidden_calls:\n    def __init__(self, *a):\n        pass\n    def __enter__(self):\n        return self\n"
                        "    def __exit__(self, *a):\n        return False\n",
    "torch_shadow_marker.py": "raise SystemExit('imported a file submitted beside the notebook')\n",
}


UNLISTED = "honest_partial"  # the student missing from the class list


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, progress):
    course = tmp_path_factory.mktemp("hostile") / "course"
    # the class list, as the guide imports it, lacks one student (a late enrolment, or a misspelt folder)
    course_with_a_class(course, ASSIGNMENT, "hostile-class", {s: (s.title(), "Student") for s in STUDENTS if s != UNLISTED},
                        f"c.Execute.timeout = {TIMEOUT_S}\nc.SandboxedKernelManager.max_memory = {MAX_MEMORY}\n")
    UNPICKLED_MARKER.unlink(missing_ok=True)
    for student in STUDENTS:
        target = course / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        target.parent.mkdir(parents=True)
        target.write_text(submission(course, student).replace("COURSE/gradebook.db", str(course / "gradebook.db")))
        if STUDENTS[student][1] == "shadow_files":
            for name, text in SHADOW_FILES.items():
                (target.parent / name).parent.mkdir(exist_ok=True)
                (target.parent / name).write_text(text)
    grader_files = {path: digest(path) for path in GRADER_FILES}
    progress(f"red team: python -m grading class {ASSIGNMENT}, {len(STUDENTS)} students (minutes)")
    # two workers, each grading half the class in its own copy of the gradebook (merged after): the grades below are
    # the same as one nbgrader run's (benchmarks/grade_class.py --workers 1 2 compares them cell by cell)
    graded = subprocess.run([sys.executable, "-m", "grading", "class", ASSIGNMENT, "--workers", "2"], cwd=course,
                            capture_output=True, text=True)
    gradebook_after_grading = digest(course / "gradebook.db")
    time.sleep(5)  # longer than the background process of harms_others waits
    progress("red team: nbgrader generate_feedback and export")
    feedback = nbgrader_command("generate_feedback", ASSIGNMENT, cwd=course, check=False)
    export = nbgrader_command("export", "--to", "grades.csv", cwd=course, check=False)
    runs = {"class": graded, "generate_feedback": feedback, "export": export}
    return course, runs, {"gradebook": gradebook_after_grading, "grader_files": grader_files}


def exported_scores(course: Path) -> dict:
    with open(course / "grades.csv", newline="") as handle:
        return {row["student_id"]: float(row["score"]) for row in csv.DictReader(handle)}


def gradebook_grades(course: Path, student: str):
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{course / 'gradebook.db'}") as gradebook:
        notebook = gradebook.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
        grades = {g.name: (g.score, g.needs_manual_grade) for g in notebook.grades}
        comments = {c.name: c.auto_comment for c in notebook.comments}
    return grades, comments


def test_the_class_command_grades_everyone_it_can_and_says_who_not(graded_class):
    course, runs, _ = graded_class
    report = runs["class"].stdout
    assert runs["class"].returncode == 1, "two notebooks cannot be read: the command says so with its exit status"
    for command in ("generate_feedback", "export"):
        assert runs[command].returncode == 0, f"{command}:\n{runs[command].stdout[-3000:]}\n{runs[command].stderr[-3000:]}"
    graded = {s for s, spec in STUDENTS.items() if spec[2] is not None}
    assert set(exported_scores(course)) >= graded
    assert "invalid_json: NOT GRADED: ch03_attention.ipynb is not valid JSON" in report, report
    assert "oversized_file: NOT GRADED: ch03_attention.ipynb is 4" in report or "oversized_file: NOT GRADED" in report, report
    assert f"{len(graded)} graded, 2 not graded" in report, report
    assert f"honest_full: {FULL} / {OUT_OF}" in report and f"honest_partial: 4 / {OUT_OF}" in report, "a kernel's stderr changed another student's status"
    assert f"{UNLISTED}: 4 / {OUT_OF}  NOT ON THE CLASS LIST" in report, report
    assert f"WARNING: 1 submission(s) from students not on the class list: {UNLISTED}." in report, report
    assert report.count("NOT ON THE CLASS LIST") == 1, report


@pytest.mark.parametrize("student", [s for s, spec in STUDENTS.items() if spec[2] is not None])
def test_each_student_earns_what_the_work_deserves(graded_class, student):
    course, _, _ = graded_class
    grades, comments = gradebook_grades(course, student)
    assert exported_scores(course)[student] == STUDENTS[student][2], f"{student}: {grades} {comments}"


def test_the_grader_never_unpickles_and_says_which_result_differs(graded_class):
    course, _, _ = graded_class
    assert not UNPICKLED_MARKER.exists(), "the grader unpickled a student's report"

    def errors(student: str, grade_id: str) -> list:
        graded = nbformat.read(course / "autograded" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
        return [o for c in graded.cells if c.metadata.get("nbgrader", {}).get("grade_id") == grade_id
                for o in c.outputs if o.output_type == "error"]

    faked = errors("fake_reports", "masked_softmax_hidden")
    # replacing `report` is caught before any result is compared (issue 22 item 4: escaping the checks counts as a
    # forbidden call); a fake that got through would be named by the result it differs in
    assert faked and (faked[0].ename == "ForbiddenCall" and "rebinds report" in faked[0].evalue
                      or faked[0].ename in ("ResultDiffers", "ResultMissing") and "masked_softmax/hidden/" in faked[0].evalue), faked
    silenced = errors("silences_report", "masked_softmax_hidden")
    assert silenced and (silenced[0].ename == "ForbiddenCall" and "rebinds report" in silenced[0].evalue
                         or silenced[0].ename == "ResultMissing"), silenced
    assert errors("reads_frames", "masks_hidden") == [], "right work keeps its points"


@pytest.mark.parametrize("student", [s for s, spec in STUDENTS.items() if spec[2] is not None])
def test_review_flags(graded_class, student):
    course, _, _ = graded_class
    grades, comments = gradebook_grades(course, student)
    flagged = {name for name, (_, review) in grades.items() if review and name not in WRITTEN_ANSWERS}  # those always wait for a person
    restored = {"masked_softmax_visible", "masked_softmax_hidden"} if student == "deleted_test_cells" else set()
    if STUDENTS[student][3] is None:
        return
    if STUDENTS[student][3]:
        assert flagged - restored, f"{student} should be flagged for review"
        assert any((text or "").startswith("Review") for text in comments.values()), comments
    else:
        assert flagged == restored, f"{student} should not be flagged: {comments}"


@pytest.mark.parametrize("student, reason", [
    ("huge_added_cell", "characters (limit 100000) was not run"),
    ("infinite_loop", "hit the time limit"),
    ("ignores_interrupt", "hit the time limit"),
    ("torch_underscore_softmax", "may not call softmax"),
    ("softmax_module_by_name", "may not call"),
    ("rebinds_helpers", "assigns to torch.allclose"),
    ("tensor_subclass", "defines __torch_function__"),
    ("exits_kernel", "the kernel died"),
    ("harms_others", "imports subprocess"),
    ("rewrites_reports_in_hook", "assigns to course.checks.forbidden_calls"),
    ("captured_softmax", "may not call softmax"),
    ("attrgetter_softmax", "may not call"),
    ("swallows_refusal", "may not call softmax"),
    ("pops_the_modes", "switches off (or runs outside) the forbidden-call check"),
    ("softmax_in_a_thread", "another thread"),
    ("marker_first_line", "assigns to torch.allclose"),
    ("import_through_a_list", "refers to __import__"),
    ("copies_reference", "is the reference answer (the same syntax tree, names and formatting aside)"),
    ("fake_reports", "rebinds report"),
])
def test_the_review_says_why(graded_class, student, reason):
    course, _, _ = graded_class
    _, comments = gradebook_grades(course, student)
    assert any(reason in (text or "") for text in comments.values()), comments


def test_no_kernel_touched_the_gradebook_or_the_grader(graded_class):
    course, _, before = graded_class
    assert digest(course / "gradebook.db") != "" and (course / "gradebook.db").read_bytes()[:15] == b"SQLite format 3"
    for path, value in before["grader_files"].items():
        assert digest(path) == value, f"{path} changed during grading"
    for root in (course, course.parent, Path("/tmp"), REPO):
        assert not (root / "hacked.txt").exists() and not (root / "hacked_by_shell").exists()
    leftover = subprocess.run(["pgrep", "-f", "sleep 3600"], capture_output=True, text=True).stdout.split()
    assert not leftover, "a process started by a submission survived its kernel"


def test_what_a_kernel_writes_and_holds_is_capped_in_all(graded_class):
    """Files of at most 64 MiB each, but many: the scratch folder (a tmpfs) and /dev/shm cap their total, /dev is read-only;
    processes each under their own address-space limit are held by the kernel's memory limit together: one is stopped,
    or (on a busy machine, where the kernel may first stall them reclaiming memory) together they hold less than it."""
    import os

    from grading.sandbox import MAX_SCRATCH_BYTES, MAX_SHM_BYTES

    if os.geteuid() != 0:
        pytest.skip("the totals are capped where the grader may mount a tmpfs and create control groups (as root, like CI)")
    course, _, _ = graded_class
    graded = nbformat.read(course / "autograded" / "fills_the_machine" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", as_version=4)
    text = "".join(output.get("text", "") for output in graded.cells[-1].outputs)
    assert text.count("refused:") == 3, text
    written = int(text.split("written MiB:")[1].split()[0])
    assert written <= (MAX_SCRATCH_BYTES + MAX_SHM_BYTES) // 2**20, text
    running = int(text.split("memory hogs still running:")[1].split()[0])
    held = int(text.split("memory hogs hold MiB:")[1].split()[0])
    assert running < 3 or held <= MAX_MEMORY // 2**20, text


def test_files_beside_the_notebook_are_not_importable(graded_class):
    course, _, _ = graded_class
    graded = (course / "autograded" / "shadows_modules" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb").read_text()
    assert "NotImplementedError" in graded and "imported a file submitted beside" not in graded


def test_feedback_quotes_no_hidden_test_no_solution_and_no_grader_path(graded_class):
    course, _, _ = graded_class
    for student, spec in STUDENTS.items():
        if spec[2] is None:
            continue
        feedback = (course / "feedback" / student / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
        assert not [text for text in HIDDEN_TEXT if text in feedback], student
        assert "ReferenceSelfAttention" not in feedback and "BEGIN HIDDEN TESTS" not in feedback, student
        assert str(REPO) not in feedback and "/tmp/grading-kernel" not in feedback, student
    partial = (course / "feedback" / "honest_partial" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "NotImplementedError" in partial, "a failing test still says what went wrong"


def test_a_pasted_image_is_kept_in_the_feedback(graded_class):
    course, _, _ = graded_class
    feedback = (course / "feedback" / "pasted_image" / ASSIGNMENT / f"{ASSIGNMENT}.html").read_text()
    assert "data:image/png;base64,iVBORw0KGgo" in feedback, "the pasted image is shown"
    assert "attachment:gone.png" not in feedback and "attachment:broken.png" not in feedback


def test_enormous_output_and_cells_stay_small(graded_class):
    course, _, _ = graded_class
    for folder in ("autograded", "feedback"):
        for path in (course / folder / "huge_added_cell").rglob("*.*"):
            assert path.stat().st_size < 5_000_000, f"{path} is {path.stat().st_size} bytes"


def test_a_cell_that_ignores_the_time_limit_gets_the_same_grade_on_every_run_busy_machine_or_not(graded_class):
    """The swallowed interrupt (a kernel killed, a fresh one replaying the earlier cells) graded once more, on a
    machine kept busy by a process that spins beside the test suite's other worker: the grade is the class run's
    (itself two workers on two cores). A regrade on a quiet machine, once part of this test, never differed and cost
    a minute; a second spinner cost the other tests two minutes of CPU."""
    course, _, _ = graded_class
    student, deserved = "ignores_interrupt", STUDENTS["ignores_interrupt"][2]

    def regrade() -> float:
        result = subprocess.run([sys.executable, "-m", "grading", "class", ASSIGNMENT, "--student", student, "--force"],
                                cwd=course, capture_output=True, text=True)
        assert f"{student}: " in result.stdout, result.stdout + result.stderr[-2000:]
        grades, comments = gradebook_grades(course, student)
        return sum(score for score, _ in grades.values())

    first = sum(score for score, _ in gradebook_grades(course, student)[0].values())
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"])]
    try:
        busy = regrade()
    finally:
        for spinner in spinners:
            spinner.kill()
    assert first == busy == deserved, f"first {first}, on a busy machine {busy}; deserved {deserved}"
