"""The student build of ``course``: the graded assignment's answers out of reach (grading/student_build.py).

* the table of answers covers every answer cell of solutions/ and names objects that exist;
* each build imports whole, its removed objects raise ``NotAvailableWhileGrading``, and what
  earlier chapters built still works (chapter 4 may use chapter 3's attention, chapter 6
  chapter 5's MultiHeadAttention);
* inside the sandbox, no route reaches masked_softmax's implementation while ch03 is graded:
  import, importlib, sys.modules, pkgutil, inspect, the file read from disk, a .pyc anywhere;
* the kernel manager picks the build of the assignment being graded.

That the reference solution still earns full marks through the student build is
tests/test_assignments.py's (and tests/test_self_check.py's) job.
"""

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import jupytext
import pytest

from grading.student_build import ALL_ANSWERS, ANSWERS, COURSE, STAMP, removed_objects, student_course, write_build

REPO = Path(__file__).resolve().parent.parent
ASSIGNMENTS = sorted(path.stem for path in (REPO / "solutions").glob("ch*.py"))


def answer_ids(assignment: str) -> set[str]:
    notebook = jupytext.read(REPO / "solutions" / f"{assignment}.py")
    return {cell.metadata["solution"] for cell in notebook.cells if "solution" in cell.metadata}


def implementation_lines(module: str, name: str) -> list[str]:
    """The lines of the body of ``course.<module>.<name>`` that say something and appear nowhere else in its module."""
    source = (COURSE / f"{module.replace('.', '/')}.py").read_text()
    node = next(n for n in ast.parse(source).body if getattr(n, "name", None) == name)
    docstring = ast.get_docstring(node) or ""
    everything = source.splitlines()
    lines = everything[node.lineno:node.end_lineno]
    elsewhere = "\n".join(everything[:node.lineno - 1] + everything[node.end_lineno:])
    return [line.strip() for line in lines if len(line.strip()) >= 25 and line.strip() not in docstring
            and line.strip() not in elsewhere and not line.strip().startswith(("#", '"""', "def ", "class "))]


def test_every_answer_of_every_assignment_is_listed():
    assert sorted(ANSWERS) == ASSIGNMENTS
    for assignment in ASSIGNMENTS:
        assert set(ANSWERS[assignment]) == answer_ids(assignment), assignment
    for assignment in [*ASSIGNMENTS, ALL_ANSWERS]:
        for module, names in removed_objects(assignment).items():
            tree = ast.parse((COURSE / f"{module}.py").read_text())
            defined = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
            assert set(names) <= defined, (assignment, module, set(names) - defined)


def run_with_build(build: Path, code: str) -> dict:
    """``code`` in a fresh Python whose ``course`` is ``build`` (no .pyc written); the JSON it prints last."""
    home = build.parent
    result = subprocess.run([sys.executable, "-B", "-c", code], cwd=home, capture_output=True, text=True, timeout=300,
                            env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(home), "PYTHONDONTWRITEBYTECODE": "1", "MPLBACKEND": "agg"})
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


CHECK_BUILD = """
import importlib, json, pkgutil, torch, course
assert course.__file__.startswith(%(home)r), course.__file__
removed, modules = %(removed)r, [m.name for m in pkgutil.iter_modules(course.__path__)]
result = {"modules": modules, "stubs": {}}
for name in modules:
    importlib.import_module("course." + name)  # every module of the build imports
for module, names in removed.items():
    for name in names:
        obj = getattr(importlib.import_module("course." + module), name)
        try:
            obj(torch.zeros(2, 3), torch.zeros(2, 3), torch.zeros(2, 3))
            result["stubs"][module + "." + name] = "ran"
        except Exception as error:
            result["stubs"][module + "." + name] = type(error).__name__ + ": " + str(error)
%(extra)s
print(json.dumps(result))
"""


@pytest.mark.parametrize("assignment", ASSIGNMENTS)
def test_each_build_imports_and_its_answers_raise(assignment, tmp_path):
    build = write_build(assignment, tmp_path / "course")
    removed = removed_objects(assignment)
    extra = ""
    if assignment == "ch04_self_attention":  # chapter 3's attention stays usable in chapter 4
        extra = ("from course.attention import scaled_dot_product_attention, causal_mask\n"
                 "result['earlier'] = float(scaled_dot_product_attention(torch.ones(1, 2, 4), torch.ones(1, 2, 4), "
                 "torch.ones(1, 2, 4), causal_mask(2))[1][0, 0, 0])")
    if assignment == "ch06_transformer":  # chapter 5's MultiHeadAttention stays usable in chapter 6
        extra = ("from course.transformer import MultiHeadAttention\n"
                 "result['earlier'] = list(MultiHeadAttention(8, 2)(torch.ones(1, 3, 8))[0].shape)")
    result = run_with_build(build, CHECK_BUILD % {"home": str(tmp_path), "removed": removed, "extra": extra})
    assert set(result["modules"]) >= {"attention", "checks", "channel", "transformer"}
    assert set(result["stubs"]) == {f"{m}.{n}" for m, names in removed.items() for n in names}
    for qualified, outcome in result["stubs"].items():
        assert outcome.startswith("NotAvailableWhileGrading: course.") and f"while grading {assignment}" in outcome, (qualified, outcome)
    if "earlier" in result:
        assert result["earlier"] in (1.0, [1, 3, 8])
    # nothing of the implementation is left in the files
    for module, names in removed.items():
        text = (build / f"{module.replace('.', '/')}.py").read_text()
        for name in names:
            lines = implementation_lines(module, name)
            assert lines and not any(line in text for line in lines), (module, name)
    assert not list(build.rglob("*.pyc")) and not list(build.rglob("__pycache__"))
    assert (build / STAMP).read_text().split()[0] == assignment


def test_the_build_is_made_once_and_again_when_course_changes(tmp_path):
    course = tmp_path / "src" / "course"
    shutil.copytree(COURSE, course, ignore=shutil.ignore_patterns("__pycache__"))
    first = student_course("ch03_attention", course, tmp_path / "builds")
    stamp = (first / STAMP).read_text()
    assert student_course("ch03_attention", course, tmp_path / "builds") == first and (first / STAMP).read_text() == stamp
    (course / "attention.py").write_text((course / "attention.py").read_text() + "\nNEW_CONSTANT = 1\n")
    again = student_course("ch03_attention", course, tmp_path / "builds")
    assert again == first and (again / STAMP).read_text() != stamp and "NEW_CONSTANT = 1" in (again / "attention.py").read_text()
    assert sorted(p.name for p in (tmp_path / "builds").iterdir() if not p.name.startswith(".lock")) == ["ch03_attention"]
    # an assignment the table does not know gets the build without any assignment's answers
    unknown = student_course("not_an_assignment", course, tmp_path / "builds")
    assert (unknown / STAMP).read_text().split()[0] == ALL_ANSWERS


ROUTES = r"""
import glob, importlib, inspect, json, marshal, os, pkgutil, sys
import torch
result = {}
x, mask = torch.randn(2, 4), torch.ones(2, 4, dtype=torch.bool)

def attempt(name, route):
    try:
        route()
        result[name] = "ran"
    except Exception as error:
        result[name] = type(error).__name__

def import_from():
    from course.attention import masked_softmax
    masked_softmax(x, mask)
attempt("from_import", import_from)
attempt("dunder_import", lambda: [__import__][0]("course.attention", fromlist=["m"]).masked_softmax(x))
attempt("importlib", lambda: importlib.import_module("course." + "atten" + "tion").masked_softmax(x))
attempt("sys_modules", lambda: sys.modules["course.attention"].masked_softmax(x))
attempt("via_sdpa", lambda: importlib.import_module("course.attention").scaled_dot_product_attention(x, x, x))
attempt("via_flash", lambda: importlib.import_module("course.flash_attention").naive_attention(x, x, x))
attempt("via_tiled", lambda: importlib.import_module("course.flash_attention").tiled_attention(x, x, x))
def reload_route():
    import course.attention
    importlib.reload(course.attention).masked_softmax(x)
attempt("reload", reload_route)
def pkgutil_route():
    import course
    for info in pkgutil.iter_modules(course.__path__):
        module = importlib.import_module("course." + info.name)
        if hasattr(module, "masked_softmax"):
            module.masked_softmax(x)
attempt("pkgutil", pkgutil_route)
def exec_file():
    import course
    namespace = {}
    path = os.path.join(os.path.dirname(course.__file__), "attention.py")
    exec(compile(open(path).read(), path, "exec"), namespace)
    namespace["masked_softmax"](x)
attempt("exec_file", exec_file)
import course, course.attention
texts = {"file": open(course.attention.__file__).read(), "getsource": inspect.getsource(course.attention)}
for root in [os.path.dirname(course.__file__), *(p for p in sys.path if p and os.path.isdir(p))]:
    for folder, subfolders, files in os.walk(root):
        if folder.count(os.sep) - root.count(os.sep) >= 1 and "site-packages" in root:
            subfolders[:] = []  # the installed packages' own folders: only the top level (.pth, finders) is read
        subfolders[:] = [s for s in subfolders if os.path.join(folder, s) not in (sys.prefix, sys.base_prefix)]
        for name in files:
            if name.endswith((".py", ".pyc", ".pth")) and ("attention" in name or "course" in name or "editable" in name):
                path = os.path.join(folder, name)
                texts[path] = open(path, "rb").read().decode("latin-1")
pycs = [p for root in ["/", "/tmp"] for p in glob.glob(root + "**/attention*.pyc", recursive=False)]
pycs += glob.glob(os.path.dirname(course.__file__) + "/**/*.pyc", recursive=True)
result["pycs"] = pycs
result["texts"] = texts
print(json.dumps(result))
"""


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
def test_no_route_reaches_the_reference_in_the_sandbox(tmp_path):
    from test_sandbox_allowlist import run_in_sandbox

    result = run_in_sandbox(ROUTES, tmp_path)
    texts, pycs = result.pop("texts"), result.pop("pycs")
    assert result == {name: "NotAvailableWhileGrading" for name in result} and len(result) == 10, result
    assert pycs == []
    secret = implementation_lines("attention", "masked_softmax") + implementation_lines("attention", "scaled_dot_product_attention")
    assert len(secret) >= 4
    assert len(texts) >= 3
    for where, text in texts.items():
        assert not any(line in text for line in secret), where
    assert re.search(r"def masked_softmax\(\*args, \*\*kwargs\)", texts["file"])


def test_the_kernel_manager_picks_the_assignment_graded():
    from grading.sandbox import ReferenceKernelManager, SandboxedKernelManager

    assert SandboxedKernelManager(assignment="ch04_self_attention").course_package() == student_course("ch04_self_attention")
    km = SandboxedKernelManager()
    km._notebook_folder = "/course/autograded/some_student/ch06_transformer"
    assert km.graded_assignment() == "ch06_transformer"
    km._notebook_folder = "/somewhere/else"
    assert km.graded_assignment() == "" and km.course_package() == student_course(ALL_ANSWERS)
    assert ReferenceKernelManager().course_package() == COURSE
