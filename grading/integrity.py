"""Review hints from a student's code: a static reading, before the grader runs it.

The hints never change a grade (grading/config.py, ``IntegrityHints``): they put the exercise
in formgrader's "needs manual grade" list with the reason and the line. What ran is checked
at run time: the sandbox (grading/sandbox.py) bounds what a kernel can reach, and
``course.checks.forbidden_calls`` sees a forbidden built-in however it was called.


The tests of an exercise run in the same Python process as the student's answers, so an
answer can do more than compute: rebind the helpers the tests check with
(``torch.allclose = lambda *a, **k: True``), hand the work to the built-in the exercise asks
for (``F.scaled_dot_product_attention``), import the reference implementation
(``course.attention``), read the solutions, exit the kernel, write files anywhere. This module
reads each cell the student wrote (answer cells and cells they added) as a syntax tree and lists
what it may not do, with line numbers and a reason a student can read.

It is a static check, not a sandbox: it closes the easy doors (and all the ones a test can
name); the kernel's resource limits and the grader's output limits (grading/config.py) bound
the rest. The rules:

* imports: only the modules an answer needs (``ALLOWED_MODULES``); never ``solutions`` or
  ``grading``, and from ``course`` never a reference of what the assignment asks for;
* calls that escape static reading or reach outside the notebook: ``open``, ``exec``,
  ``eval``, ``__import__``, ``setattr``, ``globals``, ``getattr`` with a computed name, ...;
* attributes that lead to files, processes, the interpreter or the caller's frames
  (``torch.save``, ``np.load``, ``torch.os``, ``f_back``, ``__dict__``, ...);
* assigning to an attribute of a module or of a checking helper (``np.allclose = ...``);
* rebinding, at the top level of a cell, a name the instructor's cells bound (``torch``,
  ``check_close``, ``forbidden_calls``) or a builtin (``isinstance``, ``AssertionError``);
  importing again what the instructor imported under the same name (``import torch``,
  ``import torch.nn.functional as F``) is not a rebinding;
* per exercise: the built-ins its hidden tests forbid with ``forbidden_calls((torch,
  "softmax"), ...)`` may not even be mentioned in the answer cell that defines the function
  called inside that ``with`` block (so a reference captured before the test runs is caught).
"""

import ast
import functools
from dataclasses import dataclass

# Modules an answer may import. Everything else (os, sys, subprocess, pathlib, importlib,
# inspect, ctypes, pickle, ...) has no use in these exercises and many uses in cheating.
ALLOWED_MODULES = {
    "torch", "numpy", "math", "cmath", "random", "functools", "itertools", "operator",
    "collections", "dataclasses", "typing", "string", "re", "statistics", "heapq", "bisect",
    "copy", "enum", "abc", "numbers", "decimal", "fractions", "einops", "matplotlib", "time",
    "warnings", "pprint", "textwrap", "course",
}
# Builtins the checks themselves use: rebinding one at the top level is a hint. Shadowing any
# other builtin (``input = ...``, ``from math import pow``) is ordinary scratch work.
CHECK_BUILTINS = {
    "isinstance", "issubclass", "type", "AssertionError", "Exception", "BaseException", "tuple", "int",
    "float", "bool", "len", "abs", "all", "any", "range", "zip", "str", "repr", "super", "object",
}

FORBIDDEN_CALLS = {
    "open": "opens files",
    "exec": "runs code the integrity check cannot read",
    "eval": "runs code the integrity check cannot read",
    "compile": "builds code the integrity check cannot read",
    "__import__": "imports modules behind the check's back",
    "globals": "reaches the notebook's global names (where the checking helpers live)",
    "locals": "reaches names behind the check's back",
    "vars": "reaches an object's namespace behind the check's back",
    "setattr": "rebinds attributes behind the check's back",
    "delattr": "deletes attributes behind the check's back",
    "exit": "ends the grader's kernel",
    "quit": "ends the grader's kernel",
    "breakpoint": "stops the grader waiting for input",
    "input": "stops the grader waiting for input",
    "get_ipython": "runs shell commands or magics",
}

# Attribute names that lead out of the exercise: files, processes, the interpreter, frames.
FORBIDDEN_ATTRIBUTES = {
    # files
    "save", "load", "loadtxt", "savetxt", "genfromtxt", "fromfile", "tofile", "memmap",
    "read_text", "read_bytes", "write_text", "write_bytes", "open", "hub", "cpp_extension",
    # processes and the interpreter
    "os", "sys", "subprocess", "shutil", "builtins", "importlib", "inspect", "ctypes", "ctypeslib",
    "pathlib", "io", "signal", "socket", "pickle", "_exit", "system", "popen", "kill",
    "_C", "ops",
    # frames and namespaces (a function could read the hidden tests that call it)
    "f_back", "f_globals", "f_locals", "f_code", "f_builtins", "tb_frame", "gi_frame", "cr_frame",
    "_getframe", "__traceback__", "__dict__", "__globals__", "__builtins__", "__code__",
    "__closure__", "__subclasses__", "__import__", "__loader__", "__spec__", "__getattribute__",
    "__setattr__", "__delattr__", "__reduce__", "__reduce_ex__",
}
FORBIDDEN_NAMES = {"__builtins__", "__loader__", "__spec__"}
# What takes code out of ``course.checks.forbidden_calls``' sight: its torch modes are thread-local and
# can be popped. The grader counts a finding of these as a forbidden built-in that ran (``escapes``).
ESCAPE_NAMES = {
    "_disable_current_modes", "_pop_mode_temporarily", "_pop_mode", "_push_mode", "_pop_torch_function_stack",
    "_pop_torch_dispatch_stack", "_push_on_torch_function_stack", "_push_on_torch_dispatch_stack",
    "_len_torch_function_stack", "_len_torch_dispatch_stack", "_get_current_dispatch_mode_stack",
    "_get_current_function_mode_stack", "_set_torch_function_mode", "_unset_dispatch_mode", "_set_dispatch_mode",
    "DisableTorchFunction", "DisableTorchFunctionSubclass", "_DisableTorchDispatch", "_python_dispatch",
    "_ExcludeDispatchKeyGuard", "_ForceDispatchKeyGuard", "_RestorePythonTLSSnapshot", "_DisableFuncTorch",
    "Thread", "ThreadPoolExecutor", "ProcessPoolExecutor", "start_new_thread", "start_joinable_thread",
    "fork", "_fork", "run_in_executor", "to_thread",
}
ESCAPE_MODULES = {"threading", "_thread", "concurrent", "multiprocessing", "asyncio", "_dummy_thread"}
# The checking helpers of course.checks: replacing one disables a check, which counts as escaping it.
CHECK_HELPERS = {"report", "forbidden_calls", "largest_new_tensor"}
FORBIDDEN_STRINGS = ("solutions/", "course/", "../", "gradebook", "nbgrader", "autograded/", "submitted/")


@dataclass(frozen=True)
class Finding:
    line: int
    reason: str
    escapes: bool = False  # takes code out of the forbidden-call check's sight: graded as a forbidden call

    def __str__(self) -> str:
        return f"line {self.line}: {self.reason}"


def check_answer(
    source: str,
    protected_names: set[str] = frozenset(),
    forbidden_here: set[str] = frozenset(),
    instructor_imports: dict[str, str] | None = None,
    answer_names: set[str] = frozenset(),
) -> list[Finding]:
    """What the student's cell `source` may not do, in line order (empty: nothing found).

    protected_names: names the instructor's cells bind (imports, helpers), which the answer may
    not rebind at the top level; forbidden_here: attribute names the exercise forbids (the
    built-in it reimplements); instructor_imports: {name: what it was imported as} in the
    instructor's cells (``imports_at_top_level``), which the answer may import again unchanged;
    answer_names: the functions and classes the assignment asks for, which may not be imported
    from the course package (its reference implementations). A forbidden built-in is a hint
    inside the code the tests run (function and class bodies) or captured at the top level
    (``_sm = torch.softmax``), not in a top-level call such as a ``print(torch.allclose(...))``
    sanity check.
    A cell that does not parse gets no finding: it fails when run.
    """
    tree = parsed_cell(source)
    if tree is None:
        return []
    visitor = _IntegrityVisitor(set(protected_names) | CHECK_BUILTINS, set(forbidden_here), instructor_imports or {}, set(answer_names))
    visitor.bound_here = _names_bound_anywhere(tree)
    visitor.visit(tree)
    return sorted(set(visitor.findings), key=lambda finding: (finding.line, finding.reason))


def parsed_cell(cell_source: str) -> ast.Module | None:
    """A cell's syntax tree, IPython syntax included; None for a cell that does not parse."""
    try:
        return ast.parse(python_source(cell_source))
    except SyntaxError:
        return None


@functools.lru_cache(maxsize=256)
def python_source(cell_source: str) -> str:
    """IPython syntax (``%magic``, ``!shell``) as the Python it runs (``get_ipython().system(...)``), so it is checked too."""
    from IPython.core.inputtransformer2 import TransformerManager

    try:
        return TransformerManager().transform_cell(cell_source)
    except Exception:  # a cell IPython cannot read either: leave it to fail at run time
        return cell_source


def names_bound_at_top_level(source: str) -> set[str]:
    """The modules and helpers an instructor's cell imports or defines (not its plain variables,
    which a student may well reuse for scratch work: the tests assign those again anyway)."""
    tree = parsed_cell(source)
    if tree is None:
        return set()
    names = set()
    for node in tree.body:
        for child in ast.walk(node):
            if isinstance(child, (ast.Import, ast.ImportFrom)):
                names.update((alias.asname or alias.name).split(".")[0] for alias in child.names)
            elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
                names.add(child.name)
                break  # names inside a function body are local
    return names


def imports_at_top_level(source: str) -> dict[str, str]:
    """{name: the module or object it is bound to} for a cell's imports:
    ``import torch.nn.functional as F`` gives ``{"F": "torch.nn.functional"}``."""
    tree = parsed_cell(source)
    if tree is None:
        return {}
    return {name: target for node in tree.body for name, target in _import_bindings(node)}


def _import_bindings(node: ast.AST) -> list[tuple[str, str]]:
    """[(bound name, what it denotes)] for an import statement, [] for anything else."""
    if isinstance(node, ast.Import):
        return [(alias.asname, alias.name) if alias.asname else (alias.name.split(".")[0],) * 2 for alias in node.names]
    if isinstance(node, ast.ImportFrom) and not node.level:
        return [(alias.asname or alias.name, f"{node.module}.{alias.name}") for alias in node.names]
    return []


def defined_functions(source: str) -> set[str]:
    """The functions and classes a cell defines at its top level (what the tests call)."""
    tree = parsed_cell(source)
    if tree is None:
        return set()
    return {node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))}


def forbidden_by_tests(test_source: str) -> dict[str, set[str]]:
    """From a test cell: {function the test calls inside ``with forbidden_calls(...)``: attribute names forbidden to it}.

    ``with forbidden_calls((torch, "tril"), (torch.Tensor, "tril")): got = causal_mask(size)``
    gives ``{"causal_mask": {"tril"}}``.
    """
    try:
        tree = ast.parse(test_source)
    except SyntaxError:
        return {}
    forbidden: dict[str, set[str]] = {}
    for node in ast.walk(tree):
        if not isinstance(node, ast.With):
            continue
        names = set()
        for item in node.items:
            call = item.context_expr
            if isinstance(call, ast.Call) and _called_name(call) == "forbidden_calls":
                for target in call.args:
                    if isinstance(target, ast.Tuple) and len(target.elts) == 2 and isinstance(target.elts[1], ast.Constant):
                        names.add(str(target.elts[1].value))
        if not names:
            continue
        for statement in node.body:
            for inner in ast.walk(statement):
                if isinstance(inner, ast.Call) and isinstance(inner.func, ast.Name):
                    forbidden.setdefault(inner.func.id, set()).update(names)
    return forbidden


def _names_bound_anywhere(tree: ast.AST) -> set[str]:
    """Every name the cell binds (assignments, definitions, arguments, imports): a later load of it is the cell's own."""
    bound = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return bound


def escape_reason(name: str) -> str | None:
    """Why ``name`` (a module, attribute or string) takes code out of the forbidden-call check's sight, or None."""
    if name.split(".")[0] in ESCAPE_MODULES:
        return f"uses {name}: code in another thread runs where the forbidden-call check cannot see it"
    if any(part in ESCAPE_NAMES for part in name.split(".")):
        return f"uses {name}, which switches off (or runs outside) the forbidden-call check"
    return None


def _called_name(call: ast.Call) -> str:
    function = call.func
    return function.id if isinstance(function, ast.Name) else function.attr if isinstance(function, ast.Attribute) else ""


def _root_name(node: ast.AST) -> str | None:
    """`torch` for `torch.nn.functional.softmax`, `x` for `x[0].y`; None for a call's result."""
    while isinstance(node, (ast.Attribute, ast.Subscript)):
        node = node.value
    return node.id if isinstance(node, ast.Name) else None


def _module_allowed(module: str) -> bool:
    return any(module == allowed or module.startswith(allowed + ".") for allowed in ALLOWED_MODULES)


class _IntegrityVisitor(ast.NodeVisitor):
    def __init__(self, protected: set[str], forbidden_here: set[str], instructor_imports: dict[str, str], answer_names: set[str]):
        self.protected = protected
        self.answer_names = answer_names
        self.course_aliases: set[str] = set()  # names bound to course modules: `course.attention.masked_softmax`
        self.called: set[int] = set()  # ids of the expressions that are called: `torch.softmax(...)`
        self.forbidden_here = forbidden_here
        self.instructor_imports = instructor_imports
        self.findings: list[Finding] = []
        self.function_depth = 0
        self.global_names: set[str] = set()
        # names the answer bound to a protected object (`t = torch`): attribute stores through them count too
        self.aliases: set[str] = set()
        self.bound_here: set[str] = set()

    def flag(self, node: ast.AST, reason: str, escapes: bool = False) -> None:
        self.findings.append(Finding(getattr(node, "lineno", 0), reason, escapes))

    def _check_escape(self, node: ast.AST, name: str) -> None:
        reason = escape_reason(name)
        if reason:
            self.flag(node, reason, escapes=True)

    # imports
    def visit_Import(self, node):
        for alias in node.names:
            self._check_escape(node, alias.name)
            if not _module_allowed(alias.name):
                self.flag(node, f"imports {alias.name}, which answers may not use")
            bound = (alias.asname or alias.name).split(".")[0]
            if alias.name.split(".")[0] == "course":
                self.course_aliases.add(bound)
            self._check_import_binding(node, bound)
            self.aliases.add(bound)  # a module: assigning to its attributes rebinds them for the tests too

    def visit_ImportFrom(self, node):
        module = "." * node.level + (node.module or "")
        self._check_escape(node, module)
        if node.level or not _module_allowed(module):
            self.flag(node, f"imports from {module}, which answers may not use")
        for alias in node.names:
            self._check_escape(node, alias.name)
            if alias.name == "*":
                self.flag(node, f"`from {module} import *` hides which names the answer uses")
            elif module.split(".")[0] == "course" and alias.name in self.answer_names:
                self.flag(node, f"imports the course's reference {alias.name} from {module}")
            elif module.split(".")[0] == "course" and module.count(".") == 0:
                self.course_aliases.add(alias.asname or alias.name)
            elif alias.name in self.forbidden_here:
                self.flag(node, f"imports {alias.name}, which this exercise asks you to write yourself")
            elif alias.name in FORBIDDEN_ATTRIBUTES:
                self.flag(node, f"imports {module}.{alias.name}, which answers may not use")
            self._check_import_binding(node, alias.asname or alias.name)
            self.aliases.add(alias.asname or alias.name)

    # calls, attributes, names, strings
    def visit_Call(self, node):
        self.called.add(id(node.func))
        name = node.func.id if isinstance(node.func, ast.Name) else None
        if name in FORBIDDEN_CALLS:
            self.flag(node, f"calls {name}(), which {FORBIDDEN_CALLS[name]}")
        if name == "getattr" and not (len(node.args) >= 2 and isinstance(node.args[1], ast.Constant)):
            self.flag(node, "calls getattr() with a computed name, which the integrity check cannot read")
        if name == "getattr" and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant):
            self._check_attribute_name(node, str(node.args[1].value))
        if _called_name(node) in ("attrgetter", "methodcaller"):  # operator.attrgetter('nn.Softmax')(torch)
            names = node.args if _called_name(node) == "attrgetter" else node.args[:1]
            for argument in names:
                if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
                    for part in argument.value.split("."):
                        self._check_attribute_name(node, part)
                        if part in self.answer_names:
                            self.flag(node, f"looks up {argument.value} by name, as the course's reference of it")
                else:
                    self.flag(node, f"calls {_called_name(node)}() with a computed name, which the integrity check cannot read")
        self.generic_visit(node)

    def visit_Attribute(self, node):
        self._check_escape(node, node.attr)
        if node.attr in CHECK_HELPERS and isinstance(node.ctx, (ast.Store, ast.Del)):
            self.flag(node, f"assigns to {ast.unparse(node)}, which switches off a check of the tests", escapes=True)
        top_level_call = self.function_depth == 0 and id(node) in self.called
        if node.attr in self.answer_names and _root_name(node) in self.course_aliases:
            self.flag(node, f"uses the course's reference {ast.unparse(node)}")
        if not (top_level_call and node.attr in self.forbidden_here):
            self._check_attribute_name(node, node.attr)
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            root = _root_name(node)
            if root in self.protected or root in self.aliases:
                self.flag(node, f"assigns to {ast.unparse(node)}, replacing something the tests rely on")
        self.generic_visit(node)

    def _check_attribute_name(self, node, attribute: str) -> None:
        if attribute in self.forbidden_here:
            self.flag(node, f"uses .{attribute}, which this exercise asks you to write yourself")
        elif attribute in FORBIDDEN_ATTRIBUTES:
            self.flag(node, f"uses .{attribute}, which reaches files, processes or the grader")

    def visit_Subscript(self, node):
        if isinstance(node.value, ast.Attribute) and node.value.attr == "modules":  # sys.modules[...]: imports by name
            key = node.slice
            if isinstance(key, ast.Constant) and isinstance(key.value, str):
                self._check_escape(node, key.value)
                if not _module_allowed(key.value):
                    self.flag(node, f"reaches the module {key.value} through {ast.unparse(node.value)}, which answers may not use")
            else:
                self.flag(node, f"looks a module up in {ast.unparse(node.value)} by a computed name, which the integrity check cannot read")
        if isinstance(node.ctx, (ast.Store, ast.Del)) and (_root_name(node) in self.protected or _root_name(node) in self.aliases):
            self.flag(node, f"assigns to {ast.unparse(node)}, replacing something the tests rely on")
        self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in FORBIDDEN_NAMES:
            self.flag(node, f"uses {node.id}, which reaches the interpreter")
        if isinstance(node.ctx, ast.Load) and node.id not in self.bound_here:
            self._check_escape(node, node.id)
            if node.id in FORBIDDEN_CALLS and id(node) not in self.called:  # `f = __import__`, `[eval][0]`
                self.flag(node, f"refers to {node.id}, which {FORBIDDEN_CALLS[node.id]}")
        if isinstance(node.ctx, (ast.Store, ast.Del)):
            self._check_binding(node, node.id)
        self.generic_visit(node)

    def visit_Constant(self, node):
        if isinstance(node.value, str) and node.value.strip() and len(node.value) < 100 and " " not in node.value.strip():
            self._check_escape(node, node.value.strip())  # getattr(torch.overrides, "_pop_mode_temporarily")
        if isinstance(node.value, str) and any(fragment in node.value for fragment in FORBIDDEN_STRINGS):
            self.flag(node, f"mentions {node.value[:60]!r}: answers may not refer to course, solution or grading files")

    def visit_Expr(self, node):
        if isinstance(node.value, ast.Constant) and isinstance(node.value.value, str):
            return  # a docstring or bare string does nothing, whatever it mentions
        self.generic_visit(node)

    # bindings: only module-level ones (or `global`) can replace what the tests see
    def visit_Global(self, node):
        self.global_names.update(node.names)

    def visit_Assign(self, node):
        # `alias = torch` or `alias = torch.Tensor`: later `alias.softmax = ...` is a rebinding too
        if _root_name(node.value) in self.protected and not isinstance(node.value, ast.Call):
            self.aliases.update(target.id for target in node.targets if isinstance(target, ast.Name))
        self.generic_visit(node)

    def _function(self, node):
        self._check_binding(node, node.name)
        if node.name in ("__torch_function__", "__torch_dispatch__"):
            self.flag(node, f"defines {node.name}, which changes what torch's functions (and the checks) compute")
        for decorator in node.decorator_list:
            self.visit(decorator)
        self.function_depth += 1
        for statement in node.body:
            self.visit(statement)
        for default in node.args.defaults + [d for d in node.args.kw_defaults if d is not None]:
            self.visit(default)
        self.function_depth -= 1

    visit_FunctionDef = visit_AsyncFunctionDef = _function

    def visit_ClassDef(self, node):
        self._check_binding(node, node.name)
        self.function_depth += 1
        self.generic_visit(node)
        self.function_depth -= 1

    def visit_Lambda(self, node):
        self.function_depth += 1
        self.generic_visit(node)
        self.function_depth -= 1

    def _check_import_binding(self, node, name: str) -> None:
        """`import torch` again binds `torch` to the object it already is: not a rebinding."""
        if dict(_import_bindings(node)).get(name) != self.instructor_imports.get(name, object()):
            self._check_binding(node, name)

    def _check_binding(self, node, name: str) -> None:
        at_module_level = self.function_depth == 0 or name in self.global_names
        if at_module_level and name in self.protected:
            self.flag(node, f"rebinds {name}, which the tests rely on", escapes=name in CHECK_HELPERS)


# ---------------------------------------------------------------- copies of the reference answer

MIN_COPY_NODES = 25  # a function smaller than this may well be written the same way twice: not a hint


class _Canonical(ast.NodeTransformer):
    """Names (variables, arguments, functions, classes) renamed in order of appearance; docstrings dropped."""

    def __init__(self):
        self.names: dict[str, str] = {}

    def _name(self, name: str) -> str:
        return self.names.setdefault(name, f"_{len(self.names)}")

    def visit_Name(self, node):
        return ast.copy_location(ast.Name(id=self._name(node.id), ctx=node.ctx), node)

    def visit_arg(self, node):
        node.arg = self._name(node.arg)
        node.annotation = None
        return node

    def _body(self, node):
        body = node.body
        if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) and isinstance(body[0].value.value, str):
            node.body = body[1:] or [ast.Pass()]
        return node

    def visit_FunctionDef(self, node):
        node.name = self._name(node.name)
        node.returns = None
        self._body(node)
        self.generic_visit(node)
        return node

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_ClassDef(self, node):
        node.name = self._name(node.name)
        self._body(node)
        self.generic_visit(node)
        return node


def normalised_definitions(source: str) -> dict[str, str]:
    """{function or class name: its syntax tree with names and formatting aside} for a cell's top-level definitions
    of at least MIN_COPY_NODES nodes (a comment, a docstring, a renamed variable change nothing)."""
    tree = parsed_cell(source)
    if tree is None:
        return {}
    found = {}
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and sum(1 for _ in ast.walk(node)) >= MIN_COPY_NODES:
            name = node.name
            found[name] = ast.dump(_Canonical().visit(node), include_attributes=False)
    return found


def copies_of_reference(source: str, reference_source: str) -> list[Finding]:
    """Review hints for each definition of ``source`` whose normalised syntax tree equals one of the reference answer's."""
    reference = set(normalised_definitions(reference_source).values())
    if not reference:
        return []
    tree = parsed_cell(source)
    lines = {node.name: node.lineno for node in (tree.body if tree else []) if hasattr(node, "name")}
    return [Finding(lines.get(name, 0), f"{name} is the reference answer (the same syntax tree, names and formatting aside)")
            for name, dump in normalised_definitions(source).items() if dump in reference]
