"""The review hints (grading.integrity), the grader's guards (grading.config) and the sandbox (grading.sandbox), one rule at a time.

Fast: no nbgrader run here (tests/test_hostile_class.py grades a whole class); a few small
sandboxed kernels check what a kernel can reach, the resource limits and a dying kernel.
"""

import resource
import subprocess
import sys

import nbformat
import pytest

from grading.assignments import REPO, assignment_names, nbgrader_notebook
from grading.config import HideHiddenTests, LimitOutputSize, MAX_OUTPUT_CHARS, hide_paths
from grading.integrity import check_answer, defined_functions, forbidden_by_tests, imports_at_top_level, names_bound_at_top_level
from grading.sandbox import limit_kernel

PROTECTED = {"torch", "F", "math", "check_close", "check_shape", "forbidden_calls", "reference_attention"}
ANSWERS = {"masked_softmax", "causal_mask", "scaled_dot_product_attention"}


def reasons(source, forbidden_here=()):
    return [finding.reason for finding in check_answer(source, PROTECTED, set(forbidden_here), None, ANSWERS)]


def solution_cells(assignment):
    notebook = nbgrader_notebook(REPO / "solutions" / f"{assignment}.py")
    return [c for c in notebook.cells if c.metadata["nbgrader"]["solution"]]


@pytest.mark.parametrize("assignment", assignment_names())
def test_reference_answers_pass_the_check(assignment):
    notebook = nbgrader_notebook(REPO / "solutions" / f"{assignment}.py")
    tests = [c for c in notebook.cells if c.metadata["nbgrader"]["grade"]]
    protected = set().union(*(names_bound_at_top_level(c.source) for c in notebook.cells
                              if not c.metadata["nbgrader"]["solution"] and c.metadata["nbgrader"]["grade_id"] != "colab_setup"))
    answers = set().union(*(defined_functions(c.source) for c in solution_cells(assignment)))
    forbidden = {}
    for cell in tests:
        for function, names in forbidden_by_tests(cell.source).items():
            forbidden.setdefault(function, set()).update(names)
    for cell in solution_cells(assignment):
        here = set().union(*(forbidden.get(name, set()) for name in defined_functions(cell.source)))
        assert check_answer(cell.source, protected, here, None, answers) == [], cell.metadata["nbgrader"]["grade_id"]


@pytest.mark.parametrize("source", [
    "torch.allclose = lambda *a, **k: True",
    "import numpy as np\nnp.allclose = lambda *a, **k: True",
    "import numpy\nnumpy.testing.assert_allclose = lambda *a, **k: None",
    "torch.testing.assert_close = lambda *a, **k: None",
    "torch.equal = lambda *a: True",
    "import course.checks\ncourse.checks.check_close = print",
    "check_close = lambda *a, **k: None",
    "def check_close(*a, **k):\n    pass",
    "from course.checks import check_shape as check_close",
    "isinstance = lambda *a: True",
    "AssertionError = Warning",
    "t = torch\nt.allclose = lambda *a: True",
    "def f():\n    global check_close\n    check_close = print",
    "import builtins\nbuiltins.isinstance = lambda *a: True",
    "__builtins__.print = None",
    "setattr(torch, 'allclose', lambda *a: True)",
    "vars(torch)['allclose'] = None",
    "torch.__dict__['allclose'] = None",
])
def test_rebinding_a_checking_helper_is_found(source):
    assert reasons(source)


@pytest.mark.parametrize("source", [
    "import os\nos._exit(0)", "import sys\nsys.exit(0)", "exit()", "quit()",
    "open('../../solutions/ch03_attention.py').read()", "from course.attention import masked_softmax",
    "import course.attention as a\na.masked_softmax(x)", "import course\ncourse.attention.causal_mask(3)", "import solutions.ch03_attention", "import importlib",
    "__import__('os')", "eval('1')", "exec('x = 1')", "import subprocess", "from pathlib import Path",
    "torch.save(torch.zeros(1), 'x.pt')", "torch.os.system('ls')", "!ls ..", "%env",
    "def f():\n    import inspect\n    return inspect.stack()", "def f():\n    return sys._getframe(1).f_locals",
    "try:\n    1/0\nexcept Exception as e:\n    e.__traceback__.tb_frame.f_back", "getattr(torch, name)",
    "import numpy as np\nnp.loadtxt('notes.txt')", "from torch import *",
])
def test_escaping_the_notebook_is_found(source):
    assert reasons(source)


def test_forbidden_builtin_is_found_even_when_captured_early():
    forbidden = {"softmax", "log_softmax"}
    assert reasons("def masked_softmax(s, mask=None, dim=-1):\n    return s.softmax(dim)", forbidden)
    assert reasons("_sm = torch.softmax\ndef masked_softmax(s, mask=None, dim=-1):\n    return _sm(s, dim)", forbidden)
    assert reasons("from torch.nn.functional import softmax", forbidden)
    assert reasons("f = getattr(F, 'softmax')", forbidden)
    assert not reasons("def masked_softmax(s, mask=None, dim=-1):\n    return s.exp() / s.exp().sum(dim, keepdim=True)", forbidden)
    # a sanity check at the top level of the cell is not the answer using the built-in
    assert not reasons("def masked_softmax(s, mask=None, dim=-1):\n    return s.exp() / s.exp().sum(dim, keepdim=True)\n"
                       "x = torch.randn(3)\nprint(torch.allclose(masked_softmax(x), torch.softmax(x, -1)))", forbidden)


@pytest.mark.parametrize("source", [
    "[__import__][0]('course.attention')", "f = eval\nf('1')", "g = (exec,)\ng[0]('x = 1')",
    "import operator\noperator.attrgetter('softmax')(torch)", "import operator\nf = operator.attrgetter(name)",
    "import sys\nm = sys.modules['course' + '.attention']", "m = torch.sys.modules['course.attention']",
    "getattr(getattr(torch, '_C'), 'x')",
])
def test_every_call_form_is_read(source):
    assert reasons(source, {"softmax"}), source


@pytest.mark.parametrize("source", [
    "import threading\nthreading.Thread(target=print).start()",
    "from concurrent.futures import ThreadPoolExecutor",
    "import _thread",
    "def f(x):\n    with torch.overrides._pop_mode_temporarily():\n        return x",
    "import torch.utils._python_dispatch as pd\nwith pd._disable_current_modes():\n    pass",
    "with torch._C.DisableTorchFunction():\n    pass",
    "m = getattr(torch.overrides, '_pop_mode_temporarily')",
    "import course.checks\ncourse.checks.forbidden_calls = lambda *a: None",
    "report = lambda *a, **k: None",
    "torch.jit.fork(print)",
])
def test_escaping_the_forbidden_call_check_is_counted(source):
    """What takes code out of forbidden_calls' sight: the grader counts it as the forbidden built-in having run."""
    found = check_answer(source, PROTECTED | {"report"}, {"softmax"}, None, ANSWERS)
    assert any(finding.escapes for finding in found), (source, found)


def test_ordinary_hints_are_not_escapes():
    for source in ("torch.allclose = max", "import os", "_sm = torch.softmax", "[__import__][0]('math')"):
        found = check_answer(source, PROTECTED, {"softmax"}, None, ANSWERS)
        assert found and not any(finding.escapes for finding in found), source


def test_honest_code_is_not_flagged():
    honest = (
        "import numpy as np\nfrom collections import defaultdict\n"
        "def attention(q, k, v, mask=None):\n"
        "    \"\"\"(..., Tq, d) x (..., Tk, d) -> (..., Tq, dv); see course/attention in the book.\"\"\"\n"
        "    sum = (q @ k.transpose(-2, -1)).sum()\n    max = 3\n    mask = None\n"
        "    return torch.nn.functional.relu(q), sum, max\n"
        "scores = torch.randn(2, 3)  # scratch work, reusing a name the tests use\n"
        "class Head(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n        self.scale = 2.0\n"
    )
    assert reasons(honest) == []
    assert check_answer("def broken(:\n    pass", PROTECTED) == [], "a syntax error is left to fail when run"


@pytest.mark.parametrize("source", [
    "from math import sqrt, pow",
    "input = torch.randn(3)  # scratch",
    "class Net(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n        for m in self.modules():\n            pass",
    "import matplotlib.pyplot as plt\nplt.plot([1, 2])\nplt.close()",
    "def subprocess(x):\n    return x",
    "from course.attention import padding_mask  # allowed: not what this assignment asks for",
    "import time\nstart = time.perf_counter()",
    "def f(open, input):\n    return open + input",
    "print('threading is not used here: Thread')",
])
def test_honest_careless_code_is_not_flagged(source):
    assert reasons(source) == [], source


def test_a_tensor_subclass_that_changes_torch_is_a_hint():
    source = "class Agree(torch.Tensor):\n    @classmethod\n    def __torch_function__(cls, func, types, args=(), kwargs=None):\n        return True"
    assert any("__torch_function__" in reason for reason in reasons(source))


def test_importing_again_what_the_instructor_imported_is_not_a_rebinding():
    instructor = imports_at_top_level("import math\nimport torch\nimport torch.nn.functional as F\nfrom course.checks import check_close")
    assert instructor == {"math": "math", "torch": "torch", "F": "torch.nn.functional", "check_close": "course.checks.check_close"}
    same = "import torch\nimport math\nfrom torch.nn import functional as F\nfrom course.checks import check_close\n"
    assert check_answer(same + "def f(x):\n    return x", PROTECTED, set(), instructor) == []
    different = ["import numpy as torch", "import torch.nn as F", "from torch import nn as math", "from course.checks import check_shape as check_close"]
    for source in different:
        found = [finding.reason for finding in check_answer(source, PROTECTED, set(), instructor)]
        assert any(reason.startswith("rebinds") for reason in found), source
    found = [finding.reason for finding in check_answer("import torch\ntorch.allclose = max", PROTECTED, set(), instructor)]
    assert found == ["assigns to torch.allclose, replacing something the tests rely on"]


def test_forbidden_calls_in_hidden_tests_are_read():
    source = (
        "with forbidden_calls((torch, 'tril'), (torch.Tensor, 'triu')):\n    got = causal_mask(size)\n"
        "got = padding_mask(lengths)\n"
    )
    assert forbidden_by_tests(source) == {"causal_mask": {"tril", "triu"}}


def test_feedback_hides_the_graders_paths():
    text = f"File {sys.prefix}/lib/python3.11/site-packages/torch/x.py, {REPO}/course/checks.py, /tmp/grading-kernel-ab12_c/ipykernel_7/1.py"
    hidden = hide_paths(text)
    assert str(REPO) not in hidden and sys.prefix not in hidden and "grading-kernel" not in hidden
    assert "<python>/lib/python3.11/site-packages/torch/x.py" in hidden and "<course>/course/checks.py" in hidden


def test_feedback_drops_outputs_that_quote_hidden_tests():
    test = nbformat.v4.new_code_cell("visible()\n### BEGIN HIDDEN TESTS\nsecret_reference_check(x, y)\n### END HIDDEN TESTS")
    leak = nbformat.v4.new_code_cell("print(In)")
    leak.outputs = [nbformat.v4.new_output("stream", name="stdout", text="['', 'visible()\\nsecret_reference_check(x, y)']")]
    notebook = nbformat.v4.new_notebook(cells=[test, leak])
    notebook, _ = HideHiddenTests().preprocess(notebook, {})
    assert "secret_reference_check" not in nbformat.writes(notebook)


def test_feedback_hides_hidden_tests_and_their_tracebacks():
    cell = nbformat.v4.new_code_cell("visible()\n### BEGIN HIDDEN TESTS\nsecret_check()\n### END HIDDEN TESTS\nafter()")
    cell.outputs = [nbformat.v4.new_output("error", ename="AssertionError", evalue="weights differ", traceback=["secret_check()", "..."])]
    cell, _ = HideHiddenTests().preprocess_cell(cell, {}, 0)
    assert "secret_check" not in cell.source and "visible()" in cell.source and "after()" in cell.source
    assert cell.outputs[0].traceback == ["AssertionError: weights differ"]


def test_one_enormous_line_is_cut():
    cell = nbformat.v4.new_code_cell("print('x' * 10**7)")
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text="x" * 10**7)]
    cell, _ = LimitOutputSize().preprocess_cell(cell, {}, 0)
    assert len(cell.outputs[0].text) < MAX_OUTPUT_CHARS + 100


def test_kernel_limits_are_applied():
    probe = "import resource; print(resource.getrlimit(resource.RLIMIT_AS)[0], resource.getrlimit(resource.RLIMIT_FSIZE)[0])"
    result = subprocess.run([sys.executable, "-c", probe], preexec_fn=limit_kernel(), capture_output=True, text=True, check=True)
    address_space, file_size = map(int, result.stdout.split())
    assert 0 < address_space <= 8 * 2**30 and 0 < file_size <= 2**27
    hog = subprocess.run([sys.executable, "-c", "bytearray(8 * 2**30)"], preexec_fn=limit_kernel(), capture_output=True, text=True)
    assert "MemoryError" in hog.stderr


SANDBOX_PROBE = f"""
import os, socket, subprocess, sys
print("cwd files", sorted(os.listdir(".")))
print("solutions", os.path.exists({str(REPO / "solutions")!r}), "grading", os.path.exists({str(REPO / "grading")!r}))
print("course", os.path.exists({str(REPO / "course" / "checks.py")!r}))
for path in ({str(REPO / "course" / "planted.py")!r}, "/tmp/planted", os.path.expanduser("~/../planted")):
    try:
        open(path, "w").write("x")
        print("wrote", path)
    except OSError as error:
        print("refused", type(error).__name__)
try:
    socket.create_connection(("127.0.0.1", 22), timeout=2)
    print("network yes")
except OSError:
    print("network no")
print("processes", sorted(p for p in os.listdir("/proc") if p.isdigit()))
print("environment", sorted(os.environ))
import course.attention
"""


def test_the_sandboxed_kernel_sees_only_what_it_needs(tmp_path):
    from grading.config import GuardedExecute

    (tmp_path / "course.py").write_text("raise SystemExit('a file beside the notebook was imported')")
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(SANDBOX_PROBE)])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    GuardedExecute(timeout=60).preprocess(notebook, {"metadata": {"path": str(tmp_path)}})
    outputs = notebook.cells[0].outputs
    assert not [o for o in outputs if o.output_type == "error"], outputs
    text = "".join(o.get("text", "") for o in outputs)
    assert "course.py" not in text.split("cwd files ")[1].splitlines()[0], "files beside the notebook are in the kernel's folder"
    assert "solutions False grading False" in text and "course True" in text
    assert "wrote" not in text and text.count("refused") == 3
    assert "network no" in text
    processes = text.split("processes ")[1].splitlines()[0]
    assert len(eval(processes)) <= 4, f"the kernel sees other processes: {processes}"
    assert not (REPO / "course" / "planted.py").exists()


def test_a_dying_kernel_fails_the_remaining_cells_not_the_grader():
    from grading.config import GuardedExecute

    notebook = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("x = 1"),
        nbformat.v4.new_code_cell("import os\nos._exit(3)"),
        nbformat.v4.new_code_cell("print(x)"),
    ])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    executor = GuardedExecute(timeout=60)
    executor.preprocess(notebook, {"metadata": {"path": "."}})
    assert [o.get("ename") for o in notebook.cells[1].outputs] == ["KernelDied"]
    assert [o.get("ename") for o in notebook.cells[2].outputs] == ["KernelDied"]


def test_attachments_are_kept_or_their_references_removed_together():
    from grading.config import _keep_attachments

    cell = nbformat.v4.new_markdown_cell("![a](attachment:a.png) ![b](attachment:b.png) ![c](attachment:c.png)")
    cell["attachments"] = {"a.png": {"image/png": "AAAA"}, "b.png": {}, "c.png": {"image/png": "B" * 100}}
    left = _keep_attachments(cell, budget=50)
    assert set(cell["attachments"]) == {"a.png"} and left == 46
    assert "attachment:a.png" in cell.source and "attachment:b.png" not in cell.source and "attachment:c.png" not in cell.source
    code = nbformat.v4.new_code_cell("x = 1")
    code["attachments"] = {"a.png": {"image/png": "AAAA"}}
    _keep_attachments(code, 50)
    assert "attachments" not in code


def test_the_feedback_shows_no_model_answer_unless_the_instructor_opts_in():
    from traitlets.config import Config

    from grading.config import RUBRIC_HEADING, RUBRIC_PREFIX, HideRubric

    def feedback(comment, **config):
        cell = nbformat.v4.new_markdown_cell("my answer")
        cell.metadata["nbgrader"] = {"grade": True, "solution": True, "grade_id": "why", "points": 2, "comment": comment}
        nb = nbformat.v4.new_notebook(cells=[cell])
        c = Config()
        for key, value in config.items():
            setattr(c.HideRubric, key, value)
        HideRubric(config=c).preprocess(nb, {"nbgrader": {"assignment": "none", "notebook": "none"}})
        return cell.metadata["nbgrader"]["comment"]

    assert feedback(RUBRIC_PREFIX + "**Model answer.** ...\n**Rubric (2 points).**") == RUBRIC_HEADING
    assert feedback("Good: you quoted two numbers.") == "Good: you quoted two numbers."
    assert "Rubric" in feedback(RUBRIC_PREFIX + "**Rubric (2 points).**", rubric_in_feedback=True)


def test_a_copy_of_the_reference_is_a_review_hint():
    from grading.integrity import copies_of_reference

    reference = solution_cells("ch03_attention")[0].source
    renamed = reference.replace("scores", "s").replace("exps", "e").replace("    # ", "    # my note: ")
    found = copies_of_reference(renamed, reference)
    assert [finding.reason for finding in found] == [
        "masked_softmax is the reference answer (the same syntax tree, names and formatting aside)"]
    assert not found[0].escapes
    own = reference.replace("    return exps /", "    result = exps /").rstrip() + "\n    return result\n"
    assert copies_of_reference(own, reference) == [], "the same algorithm written differently is not a copy"
    assert copies_of_reference("def masked_softmax(scores, mask=None, dim=-1):\n    raise NotImplementedError()", reference) == []
