"""A chapter page does not show the answer to its graded exercises before the link to them.

CONTRIBUTING and ../shared/COURSE.md: "Exercises come after their lesson, not under it. A chapter
never prints the reference code of a function the next exercise asks for; it shows the math and
uses the reference." A reader who meets the exercises after the page must not have been shown their
answers on the way (issue 23, item 1).

What the reader sees before the link to the chapter's exercises (the first link to
``exercises/chNN_...``, a Markdown link or a ``{doc}`` role, normally in the closing paragraph):

* the code cells of ``chapters/chNN_*.md`` above that link;
* the source of any object of ``course`` a cell above it displays: ``print(inspect.getsource(X))``,
  or ``inspect.getsource(X)`` as a cell's last expression, with ``X`` resolved through the imports of
  the page's cells.

What counts as an answer: each line between ``### BEGIN SOLUTION`` and ``### END SOLUTION`` of every
``solution=`` code cell of ``solutions/chNN_*.py``, and each line of the body of the reference
implementations of those answers in ``course/`` (grading/student_build.py, ``ANSWERS``). Lines are
compared without comments and without whitespace; trivial lines (imports, ``return x``,
``super().__init__()``, ``else:``, a bracket, short lines) are left out. A page can also give an
answer away inside a longer line, under other variable names (``torch.tanh(u @ W.T + b + s @ U.T + c)``
shows the pre-activation ``x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh``), so the
expressions of a solution's lines with at least four operations (calls, arithmetic, indexing,
comparisons; a negative constant is not one) are also looked for in the page's code with every
variable renamed alike (module names and built-ins kept).

``python tests/test_answers_not_on_page.py`` lists every answer line each page shows.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import io
import re
import sys
import textwrap
import tokenize
from pathlib import Path

import jupytext
import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from grading.student_build import ANSWERS  # noqa: E402

CHAPTERS = sorted((REPO / "chapters").glob("ch*.md"))
MIN_LENGTH = 12  # characters of a line without whitespace; shorter lines say too little to give an answer away
TRIVIAL = re.compile(r"^(?:return[\w.,]*|super\(\)\.__init__\(\)|else:|try:|finally:|pass|break|continue|"
                     r"[\w.,]+=[\w.,]+|[\w.,]+=None|[\])}]+[,:]?|\"\"\"|'''|"
                     r"(?:with)?[\w.]+\(\):?)$")  # a call without arguments: loss.backward(), with torch.no_grad():
EXERCISES_LINK = re.compile(r"\]\(\.\./exercises/ch\d\d_|\{doc\}`[^`]*exercises/ch\d\d_")


def normalised(line: str) -> str:
    """The line without its comment and without any whitespace ("" for a comment or a blank line)."""
    try:
        tokens = [t for t in tokenize.generate_tokens(io.StringIO(line.strip() + "\n").readline)
                  if t.type not in (tokenize.COMMENT, tokenize.NL, tokenize.NEWLINE, tokenize.ENDMARKER)]
        text = tokenize.untokenize((t.type, t.string) for t in tokens) if tokens else ""
    except (tokenize.TokenError, IndentationError, SyntaxError):  # part of a multi-line string or statement
        text = line.split("  #")[0]
    return re.sub(r"\s+", "", text)


def substantial(line: str) -> str | None:
    """The normalised line if it could give an answer away, else None."""
    if line.strip().startswith(("import ", "from ", "#", "@")):
        return None
    text = normalised(line)
    if len(text) < MIN_LENGTH or TRIVIAL.match(text):
        return None
    return text


def answer_lines(path: Path):
    """(answer id, line) for each line of each reference answer of ``path``, between its solution markers."""
    for cell in jupytext.read(path).cells:
        if cell.cell_type != "code" or "solution" not in cell.metadata:
            continue
        inside = False
        for line in cell.source.splitlines():
            if "### BEGIN SOLUTION" in line:
                inside = True
            elif "### END SOLUTION" in line:
                inside = False
            elif inside:
                yield cell.metadata["solution"], line


def solution_lines(path: Path) -> dict[str, set[str]]:
    """answer id -> the substantial lines of its reference answer (between the solution markers)."""
    answers: dict[str, set[str]] = {}
    for answer, line in answer_lines(path):
        if text := substantial(line):
            answers.setdefault(answer, set()).add(text)
    return answers


def body_source(obj) -> str:
    """The source of a function or class without its docstrings (what would give an answer away)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(obj)))
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if (isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body
                and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            body[0] = ast.Pass()
    return ast.unparse(tree)


def reference_lines(assignment: str) -> dict[str, set[str]]:
    """answer id -> the substantial lines of the course's reference implementations of that answer."""
    answers: dict[str, set[str]] = {}
    for answer, objects in ANSWERS.get(assignment, {}).items():
        for qualified in objects:
            module, name = qualified.split(".", 1)
            obj = getattr(importlib.import_module(f"course.{module}"), name)
            for line in body_source(obj).splitlines():
                if (text := substantial(line)) and not text.startswith(("def", "class")):
                    answers.setdefault(answer, set()).add(text)
    return answers


def page_before_exercises(page: str) -> tuple[list[str], bool]:
    """(the code cells above the first link to the exercises, whether the page has such a link)."""
    cells = []
    for cell in jupytext.reads(page, fmt="md:myst").cells:
        if cell.cell_type == "markdown" and EXERCISES_LINK.search(cell.source):
            return cells, True
        if cell.cell_type == "code":
            cells.append(cell.source)
    return cells, False


def _parse(source: str) -> ast.Module | None:
    lines = [line for line in source.splitlines() if not line.lstrip().startswith(("%", "!"))]  # IPython magics
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def displayed_sources(cells: list[str]) -> dict[str, str]:
    """{expression: source} of every object whose source a cell prints (inspect.getsource), resolved
    through the imports of the cells."""
    namespace: dict = {}
    shown = {}
    for source in cells:
        tree = _parse(source)
        if tree is None:
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                try:
                    exec(compile(ast.Module([node], []), "<page imports>", "exec"), namespace)
                except Exception:  # noqa: BLE001  (an import the test cannot make is not one that shows course code)
                    pass
        displayed = [node.args[0] for node in ast.walk(tree)
                     if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print" and node.args]
        if tree.body and isinstance(tree.body[-1], ast.Expr):
            displayed.append(tree.body[-1].value)
        for expression in displayed:
            if (isinstance(expression, ast.Call) and ast.unparse(expression.func) in ("inspect.getsource", "getsource")
                    and expression.args):
                target = ast.unparse(expression.args[0])
                try:
                    shown[target] = inspect.getsource(eval(target, namespace))  # a name or an attribute of an import
                except Exception:  # noqa: BLE001  (defined on the page itself: its lines are the page's already)
                    pass
    return shown


def page_lines(cells: list[str]) -> dict[str, str]:
    """normalised line -> where the reader sees it (a cell, or the displayed source of an object)."""
    lines = {}
    for number, source in enumerate(cells, 1):
        for line in source.splitlines():
            if text := substantial(line):
                lines.setdefault(text, f"code cell {number}: {line.strip()}")
    for target, source in displayed_sources(cells).items():
        for line in source.splitlines():
            if text := substantial(line):
                lines.setdefault(text, f"inspect.getsource({target}): {line.strip()}")
    return lines


def answers_shown(page: str, answers: dict[str, set[str]]) -> list[str]:
    """'answer id: where' for every answer line the page shows before its exercises link."""
    cells, _ = page_before_exercises(page)
    seen = page_lines(cells)
    return sorted(f"{answer}: {seen[text]}" for answer, texts in answers.items() for text in texts if text in seen)


OPERATIONS = (ast.Call, ast.BinOp, ast.UnaryOp, ast.Subscript, ast.Compare, ast.BoolOp)
KEPT_NAMES = {"torch", "F", "nn", "math", "np"} | set(dir(__builtins__) if isinstance(__builtins__, dict) else dir(__builtins__))


class _Renamed(ast.NodeTransformer):
    """Every variable called ``_``: the same expression under other names compares equal."""

    def visit_Name(self, node):
        return ast.copy_location(ast.Name(id=node.id if node.id in KEPT_NAMES else "_", ctx=ast.Load()), node)


def _operations(node: ast.AST) -> int:
    return sum(isinstance(n, OPERATIONS) and not (isinstance(n, ast.UnaryOp) and isinstance(n.operand, ast.Constant))
               for n in ast.walk(node))


def expressions(source: str, minimum: int = 4) -> set[str]:
    """The expressions of ``source`` with at least ``minimum`` operations, variables renamed to ``_``."""
    tree = _parse(source)
    if tree is None:
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, OPERATIONS) and _operations(node) >= minimum:
            renamed = _Renamed().visit(ast.parse(ast.unparse(node), mode="eval"))
            found.add(ast.unparse(renamed.body))
    return found


def solution_expressions(path: Path) -> dict[str, set[str]]:
    """answer id -> the expressions of its reference answer's lines (see ``expressions``)."""
    answers: dict[str, set[str]] = {}
    for answer, line in answer_lines(path):
        statement = re.sub(r"^(?:if|elif|while|for .+ in|return|with)\s+|:$", "", line.split("  #")[0].strip())
        answers.setdefault(answer, set()).update(expressions(statement))
    return answers


def expressions_shown(page: str, answers: dict[str, set[str]]) -> list[str]:
    """'answer id: expression' for every answer expression the page's code shows before its exercises link."""
    cells, _ = page_before_exercises(page)
    seen = set().union(*(expressions(source) for source in cells)) if cells else set()
    return sorted(f"{answer}: {text}" for answer, texts in answers.items() for text in texts if text in seen)


def chapter_answers(chapter: Path) -> dict[str, set[str]]:
    answers: dict[str, set[str]] = {}
    solution = REPO / "solutions" / f"{chapter.stem}.py"
    for table in (solution_lines(solution) if solution.exists() else {}, reference_lines(chapter.stem)):
        for answer, texts in table.items():
            answers.setdefault(answer, set()).update(texts)
    return answers


# Pages that still show an answer, each with what it shows: strict, so the mark must go when the page is fixed.
KNOWN: dict[str, str] = {}


@pytest.mark.parametrize("chapter", [pytest.param(path, marks=pytest.mark.xfail(reason=KNOWN[path.stem], strict=True))
                                     if path.stem in KNOWN else path for path in CHAPTERS],
                         ids=[path.stem for path in CHAPTERS])
def test_chapter_shows_no_answer_before_its_exercises(chapter):
    page = chapter.read_text()
    cells, linked = page_before_exercises(page)
    assert linked, f"{chapter.name} has no link to its exercises (../exercises/{chapter.stem}/{chapter.stem}.ipynb)"
    shown = answers_shown(page, chapter_answers(chapter))
    solution = REPO / "solutions" / f"{chapter.stem}.py"
    shown += expressions_shown(page, solution_expressions(solution) if solution.exists() else {})
    assert not shown, (f"{chapter.name} shows lines of its exercises' answers before the link to them; explain the idea "
                       "and the equations, use the reference through `course`, and show its code after the link if at all:\n  "
                       + "\n  ".join(shown))


# --- the check itself can fail -------------------------------------------------------------------------------

FAKE_PAGE = """---
jupytext:
  text_representation:
    extension: .md
    format_name: myst
kernelspec:
  display_name: Python 3
  language: python
  name: python3
---
# 3. A page

```{{code-cell}} ipython3
import inspect
from course.attention import masked_softmax
{before}
```

Now the exercises: [exercises for chapter 3](../exercises/ch03_attention/ch03_attention.ipynb).

```{{code-cell}} ipython3
{after}
```
"""
ANSWER = {"masked_softmax": {normalised("exps = (scores - shift).exp()  # masked entries: exp(-inf) = 0")}}


def test_an_answer_line_before_the_link_is_found_whatever_its_spacing_and_comment():
    page = FAKE_PAGE.format(before="exps = ( scores-shift ).exp()   # the numerators", after="")
    assert answers_shown(page, ANSWER) == ["masked_softmax: code cell 1: exps = ( scores-shift ).exp()   # the numerators"]


def test_the_same_line_after_the_link_is_allowed():
    page = FAKE_PAGE.format(before="weights = masked_softmax(scores)", after="exps = (scores - shift).exp()")
    assert answers_shown(page, ANSWER) == []


def test_the_printed_source_of_a_course_reference_is_what_the_page_shows():
    page = FAKE_PAGE.format(before="print(inspect.getsource(masked_softmax))", after="")
    shown = answers_shown(page, reference_lines("ch03_attention"))
    assert any(line.startswith("masked_softmax: inspect.getsource(masked_softmax): ") for line in shown), shown
    assert all(": inspect.getsource(masked_softmax): " in line for line in shown), shown
    counted_only = FAKE_PAGE.format(before="n = len(inspect.getsource(masked_softmax))", after="")
    assert answers_shown(counted_only, reference_lines("ch03_attention")) == []


def test_trivial_lines_are_not_answers():
    for line in ("return x", "import torch", "super().__init__()", "else:", "    )", "# a comment", "h = x",
                 "return weights, values", "loss.backward()", "with torch.no_grad():"):
        assert substantial(line) is None, line
    assert substantial("scores = q @ k.transpose(-2, -1) / math.sqrt(D // H)  # (B, H, T, T)") == \
        "scores=q@k.transpose(-2,-1)/math.sqrt(D//H)"


def test_an_answer_expression_inside_a_longer_line_under_other_names_is_found():
    answer = {"lstm_cell": expressions("pre_activation = x @ weight_ih.T + bias_ih + h @ weight_hh.T + bias_hh")}
    page = FAKE_PAGE.format(before="print(torch.tanh(u @ W.T + b + s @ U.T + c))", after="")
    assert "lstm_cell: _ @ _.T + _ + _ @ _.T + _" in expressions_shown(page, answer)
    assert expressions_shown(FAKE_PAGE.format(before="", after="torch.tanh(u @ W.T + b + s @ U.T + c)"), answer) == []
    assert expressions("x.transpose(-2, -1) @ y") == set(), "a negative constant is not an operation"


def test_a_page_without_a_link_to_its_exercises_is_reported():
    assert page_before_exercises("# 1. A page\n\nNo exercises here.\n")[1] is False


if __name__ == "__main__":
    for chapter in CHAPTERS:
        solution = REPO / "solutions" / f"{chapter.stem}.py"
        shown = answers_shown(chapter.read_text(), chapter_answers(chapter))
        shown += expressions_shown(chapter.read_text(), solution_expressions(solution) if solution.exists() else {})
        print(f"{chapter.stem}: {len(shown)} answer line(s) before the exercises link")
        for line in shown:
            print("   ", line)
