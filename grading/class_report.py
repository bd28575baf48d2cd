"""One page about the class, for the instructor, after ``python -m grading class <assignment>``.

The class command says each student's score; it says nothing about the class: whether an
exercise was too hard, which test separates those who understood from those who did not, and
which mistake half the class made (worth five minutes of the next lecture). This page says that,
from what grading left behind: the gradebook (nbgrader's scores per grade cell, and its review
flags) and the graded notebooks (the error each failed test cell printed).

    python -m grading report ch03_attention            # at the course root, like nbgrader
    python -m grading report ch03_attention --course path/to/course

writes ``<submitted folder>/../reports/<assignment>.html`` (``_grading/reports/`` here): one
self-contained file, figures inline as SVG and the style inline, that opens offline and can be
mailed. Students are named only in the table of whom to look at (not graded, flagged for
review, written answers to grade by hand); the figures and the failure causes are anonymous.
"""

import html
import io
import json
import os
import re
import statistics
import sys
import time
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field, is_dataclass
from pathlib import Path

import numpy as np

from grading.classroom import Outcome, _read_gradebook, course_settings

EXAMPLE_CHARS = 400  # of one student's error message, quoted as the example of a cause
EXAMPLE_LINES = 6
CAUSES_SHOWN = 5  # per test cell; the rest are counted together
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"
NOT_SHOWN = "(example not shown: it quotes the hidden tests)"
NO_ERROR = "lost points without an error output (a score changed by hand, or partial credit)"


# ---------------------------------------------------------------- the class command's outcomes


def _beside_submitted(course: Path, settings: dict, *parts: str) -> Path:
    """A path in the folder that holds the submitted folder (``_grading/`` here), where nbgrader's logs are kept."""
    return Path(os.path.normpath(Path(course).resolve() / settings["submitted_directory"] / ".." / Path(*parts)))


def outcomes_path(assignment: str, course: Path, settings: dict | None = None) -> Path:
    """Where the class command keeps its outcomes: beside nbgrader's logs (``_grading/logs/`` here)."""
    return _beside_submitted(course, settings or course_settings(Path(course).resolve()), "logs", f"class-{assignment}.json")


def save_outcomes(assignment: str, course: Path, outcomes: list) -> Path:
    """Keep the class command's outcomes (``Outcome`` dataclasses or dicts) for the report: who was not graded and
    why is known only to the class command (a notebook nbgrader never read leaves no trace in the gradebook)."""
    path = outcomes_path(assignment, course)
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = {}
    if path.is_file():  # a run for some students (--student, --shard) updates theirs and keeps the others'
        try:
            rows = {row["student"]: row for row in json.loads(path.read_text())}
        except (ValueError, KeyError, TypeError):
            rows = {}
    for outcome in outcomes:
        row = asdict(outcome) if is_dataclass(outcome) else dict(outcome)
        rows[row["student"]] = row
    path.write_text(json.dumps(sorted(rows.values(), key=lambda row: row["student"]), indent=1, ensure_ascii=False) + "\n")
    return path


def load_outcomes(assignment: str, course: Path, settings: dict | None = None) -> tuple[list[dict], str]:
    """The class command's outcomes if it saved them, else what the gradebook says of the graded students, and of
    a submission it lacks what the submitted folder shows (a notebook the class command would not read, or one
    nbgrader did not grade); and a sentence saying which."""
    from nbgrader.api import Gradebook

    from grading.classroom import precheck

    course = Path(course).resolve()
    settings = settings or course_settings(course)
    path = outcomes_path(assignment, course, settings)
    if path.is_file():
        return json.loads(path.read_text()), f"the class command's outcomes ({path.name})"
    with Gradebook(settings["db_url"]) as gradebook:
        students = [submission.student_id for submission in gradebook.assignment_submissions(assignment)]
    outcomes = {student: Outcome(student, graded=True) for student in students}
    _read_gradebook(settings["db_url"], assignment, outcomes)
    for folder in sorted((course / settings["submitted_directory"]).glob(f"*/{assignment}")):
        if folder.parent.name not in outcomes:
            notebooks = sorted(folder.glob("*.ipynb"))
            problems = [problem for problem in map(precheck, notebooks) if problem] or ([] if notebooks else ["no notebook submitted"])
            outcomes[folder.parent.name] = Outcome(folder.parent.name, reason="; ".join(problems) or "not in the gradebook (see the logs)")
    return ([asdict(outcome) for outcome in outcomes.values()],
            "the gradebook and the submitted folders (the class command saved no outcomes)")


# ---------------------------------------------------------------- statistics


def item_discrimination(item, totals) -> float | None:
    """The corrected item–total correlation: Pearson's r between a test cell's points and each student's total
    *without* that cell (with it, the cell would correlate with itself). Near +1: the cell separates strong from
    weak students; near 0: it says nothing about the rest; negative: the strong fail it (a broken test?).
    None where it is undefined: fewer than 3 students, or everyone scored the same on the cell or on the rest."""
    item = np.asarray(item, dtype=float)
    rest = np.asarray(totals, dtype=float) - item
    if item.size < 3 or np.std(item) < 1e-12 or np.std(rest) < 1e-12:
        return None
    return float(np.corrcoef(item, rest)[0, 1])


_ADDRESS = re.compile(r"0x[0-9a-fA-F]+")
# a number on its own (0.31, -2, 1e-05, 2.10e-01), not a digit inside a name (float32, case3, ch03_attention)
_NUMBER = re.compile(r"(?<![\w.])[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?(?![\w])")
# an absolute path of two or more parts (not a report name such as attention/hidden/case3, which has no leading /)
_PATH = re.compile(r"(?<![\w/<>.])(?:[A-Za-z]:)?(?:/[^\s/:;,'\"()\[\]]+){2,}/?")
_SPACES = re.compile(r"[ \t]+")


def names_pattern(names) -> re.Pattern | None:
    """A pattern that finds any of these names (student ids, first and last names) as a word, in any case."""
    names = sorted({name for name in names if name and len(name) >= 3}, key=len, reverse=True)
    if not names:
        return None
    return re.compile(r"(?<![\w])(?:" + "|".join(map(re.escape, names)) + r")(?![\w])", re.IGNORECASE)


def anonymise(text: str, names: re.Pattern | None = None) -> str:
    """One student's message with the grader's paths and any student's name taken out."""
    from grading.config import hide_paths

    text = _PATH.sub("<path>", hide_paths(text))
    return names.sub("<student>", text) if names else text


def normalise_message(ename: str, evalue: str, names: re.Pattern | None = None) -> str:
    """What failed, with what differs between students who made the same mistake taken out, so that they count
    together: numbers (an error of 0.31 for one, 0.29 for another), memory addresses, paths and names; and of a
    long message only its first line and the course's diagnosis ("Likely cause: ...", course/checks.py), not
    the printed tensors between them, whose values are each student's own."""
    lines = [line.strip() for line in evalue.strip().splitlines() if line.strip()]
    kept = lines[:1] + [line for line in lines[1:] if line.startswith("Likely cause:")]
    text = (f"{ename}: " + "\n".join(kept)) if kept else ename
    text = _ADDRESS.sub("0x…", anonymise(text, names))
    return _SPACES.sub(" ", _NUMBER.sub("…", text)).strip()


def example_of(ename: str, evalue: str, names: re.Pattern | None, hidden: set[str]) -> str:
    """One student's message, anonymised and cut to a few lines; withheld if it quotes a hidden test's line."""
    text = anonymise(f"{ename}: {evalue}" if evalue.strip() else ename, names)
    if any(line in text for line in hidden):
        return NOT_SHOWN
    lines = text.splitlines()
    short = "\n".join(lines[:EXAMPLE_LINES])
    if len(short) > EXAMPLE_CHARS:
        short = short[:EXAMPLE_CHARS].rstrip()
    return short + (" …" if short != text else "")


# ---------------------------------------------------------------- what grading left behind


@dataclass
class GradeCell:
    notebook: str
    name: str
    max_score: float
    written: bool  # a written answer (markdown, graded by hand); else an autograded test cell
    scores: dict[str, float] = field(default_factory=dict)  # student: points
    waiting: list[str] = field(default_factory=list)  # students whose answer still needs a person's score
    causes: Counter = field(default_factory=Counter)  # normalised failure: students
    examples: dict[str, str] = field(default_factory=dict)  # normalised failure: one anonymised example


def read_grades(db_url: str, assignment: str, students: list[str]) -> tuple[dict[tuple, GradeCell], dict[str, float], list[str]]:
    """{(notebook, cell): GradeCell with each student's points}, {student: total}, and the students' own names
    (first and last, as the class list gave them: to be taken out of any message quoted)."""
    from nbgrader.api import Gradebook

    from grading.classroom import submissions

    cells: dict[tuple, GradeCell] = {}
    totals: dict[str, float] = {}
    names: list[str] = []
    with Gradebook(db_url) as gradebook:
        for student, submission in submissions(gradebook, assignment, students):
            record = submission.student
            names += [record.first_name or "", record.last_name or ""]
            totals[student] = float(submission.score)
            for notebook in submission.notebooks:
                for grade in notebook.grades:
                    key = (notebook.name, grade.name)
                    if key not in cells:
                        cells[key] = GradeCell(notebook.name, grade.name, float(grade.max_score), grade.cell.cell_type == "markdown")
                    cells[key].scores[student] = float(grade.score or 0.0)
                    if grade.needs_manual_grade and cells[key].written:
                        cells[key].waiting.append(student)
    return cells, totals, names


def read_failures(autograded: Path, assignment: str, cells: dict[tuple, GradeCell], names: re.Pattern | None) -> list[tuple]:
    """Count in each test cell why students lost its points: the first error output the cell holds in their graded
    notebook. Returns the cells' order in the notebooks (the order a reader meets them)."""
    order: list[tuple] = []
    hidden: set[str] = set()
    notebooks = sorted({cell.notebook for cell in cells.values()})
    students = sorted({student for cell in cells.values() for student in cell.scores})
    errors: dict[tuple, dict[str, tuple[str, str]]] = defaultdict(dict)
    for student in students:
        for notebook_name in notebooks:
            path = autograded / student / assignment / f"{notebook_name}.ipynb"
            try:
                notebook = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            for source_cell in notebook.get("cells", []):
                meta = source_cell.get("metadata", {}).get("nbgrader", {})
                key = (notebook_name, meta.get("grade_id"))
                if not meta.get("grade") or key not in cells:
                    continue
                if key not in order:
                    order.append(key)
                if cells[key].written:
                    continue
                source = "".join(source_cell.get("source", ""))
                hidden |= _hidden_lines(source)
                error = next((o for o in source_cell.get("outputs", []) if o.get("output_type") == "error"), None)
                if error is not None:
                    errors[key][student] = (str(error.get("ename", "Error")), str(error.get("evalue", "")))
    for key, cell in cells.items():
        if cell.written:
            continue
        for student, score in cell.scores.items():
            if score >= cell.max_score:
                continue
            ename, evalue = errors[key].get(student, ("", ""))
            cause = normalise_message(ename, evalue, names) if ename else NO_ERROR
            cell.causes[cause] += 1
            if cause not in cell.examples:
                cell.examples[cause] = example_of(ename, evalue, names, hidden) if ename else ""
    return order + sorted(set(cells) - set(order))


def _hidden_lines(source: str) -> set[str]:
    """The lines of a test cell's hidden block long enough to recognise in a message (as the feedback's HideHiddenTests)."""
    if HIDDEN_BEGIN not in source:
        return set()
    inside = source.split(HIDDEN_BEGIN, 1)[1].split(HIDDEN_END, 1)[0]
    return {line.strip() for line in inside.splitlines() if len(line.strip()) >= 12 and not line.strip().startswith("#")}


# ---------------------------------------------------------------- figures


def _svg(figure, label: str, number: int) -> str:
    """The figure as inline SVG: no XML prolog, ids made unique on the page (matplotlib numbers each figure's
    from 1), text kept as text (small, and readable by a screen reader), labelled for one. The ids' hashes are
    salted with a constant, so the same class gives the same page byte for byte."""
    import matplotlib

    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "class-report"}):
        figure.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None, "Format": None, "Type": None})
    svg = buffer.getvalue()
    svg = svg[svg.index("<svg"):]
    prefix = f"fig{number}-"
    svg = re.sub(r'\bid="', f'id="{prefix}', svg)
    svg = re.sub(r'href="#', f'href="#{prefix}', svg)
    svg = re.sub(r"url\(#", f"url(#{prefix}", svg)
    return svg.replace("<svg ", f'<svg role="img" aria-label="{html.escape(label)}" ', 1)


def score_histogram(scores: list[float], max_score: float, number: int) -> str:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(8.0, 2.8))
    axes = figure.add_subplot()
    whole = all(float(s).is_integer() for s in scores) and max_score <= 60
    bins = np.arange(-0.5, max_score + 1.5, 1.0) if whole else np.linspace(0, max_score or 1, 21)
    axes.hist(scores, bins=bins, color="#4c72b0", edgecolor="white")
    mean, median = float(np.mean(scores)), float(np.median(scores))
    axes.axvline(mean, color="#c44e52", linewidth=2, label=f"mean {mean:.3g}")
    axes.axvline(median, color="#222222", linewidth=2, linestyle="--", label=f"median {median:.3g}")
    axes.set_xlim(-0.5 if whole else 0, max_score + (0.5 if whole else 0))
    axes.set_xlabel(f"score (of {max_score:g})")
    axes.set_ylabel("students")
    axes.yaxis.get_major_locator().set_params(integer=True)
    axes.legend(frameon=False, loc="upper left")
    axes.spines[["top", "right"]].set_visible(False)
    return _svg(figure, f"Histogram of the {len(scores)} graded scores: mean {mean:.3g}, median {median:.3g}, of {max_score:g}", number)


def test_cells_figure(rows: list[dict], number: int) -> str:
    """Two panels, one row per test cell: the share of students who earned its points, and its discrimination."""
    from matplotlib.figure import Figure

    names = [row["name"] for row in rows]
    y = np.arange(len(rows))
    figure = Figure(figsize=(8.0, 0.9 + 0.42 * len(rows)))
    passed, separates = figure.subplots(1, 2, sharey=True, gridspec_kw={"width_ratios": [3, 2], "wspace": 0.08})
    passed.barh(y, [100 * row["pass_rate"] for row in rows], color="#4c72b0", height=0.6)
    for k, row in enumerate(rows):
        passed.text(101, k, f"{row['earned']:g} / {row['possible']:g} pts", va="center", fontsize=8)
    passed.set_xlim(0, 130)
    passed.set_xticks([0, 25, 50, 75, 100])
    passed.set_xlabel("students who earned the cell's points (%)")
    passed.set_yticks(y, names)
    passed.invert_yaxis()
    values = [row["discrimination"] for row in rows]
    colours = ["#55a868" if v is not None and v >= 0.2 else "#c44e52" if v is not None and v < 0 else "#999999" for v in values]
    separates.barh(y, [v or 0.0 for v in values], color=colours, height=0.6)
    for k, value in enumerate(values):
        if value is None:
            separates.text(0.03, k, "n/a", va="center", fontsize=8, color="#555555")
    separates.axvline(0, color="#222222", linewidth=0.8)
    separates.set_xlim(-1, 1)
    separates.set_xlabel("discrimination (corrected item–total r)")
    for axes in (passed, separates):
        axes.spines[["top", "right"]].set_visible(False)
    return _svg(figure, "Per test cell: share of students who earned its points, and its discrimination", number)


# ---------------------------------------------------------------- the page


STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; color: #1d1d1f; line-height: 1.45; }
h1 { font-size: 1.6rem; margin-bottom: .2rem; } h2 { font-size: 1.25rem; margin-top: 2.2rem; border-bottom: 1px solid #ddd; }
h3 { font-size: 1.05rem; margin-top: 1.5rem; }
.meta { color: #555; margin-top: 0; }
.numbers { display: flex; flex-wrap: wrap; gap: 1rem; margin: 1rem 0; padding: 0; list-style: none; }
.numbers li { background: #f3f5f8; border-radius: 6px; padding: .5rem .9rem; }
.numbers b { display: block; font-size: 1.4rem; }
figure { margin: 1rem 0; } figcaption { color: #444; font-size: .9rem; }
svg { max-width: 100%; height: auto; }
table { border-collapse: collapse; width: 100%; margin: .6rem 0; font-size: .92rem; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid #e3e3e3; }
th { background: #f3f5f8; }
td.count { text-align: right; width: 4rem; font-variant-numeric: tabular-nums; }
pre { white-space: pre-wrap; word-break: break-word; margin: 0; font-size: .82rem; background: #f7f7f7; padding: .3rem .4rem; }
.note { color: #555; font-size: .9rem; }
"""


def _escape(text) -> str:
    return html.escape(str(text))


def _table(header: list[str], rows: list[list[str]], classes: list[str] | None = None) -> str:
    """An HTML table; the cells are HTML already (escape what comes from outside first)."""
    classes = classes or [""] * len(header)
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="{c}">{v}</td>' if c else f"<td>{v}</td>" for v, c in zip(row, classes)) + "</tr>"
                   for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _shortened(text: str, limit: int = 240) -> str:
    return text if len(text) <= limit else text[:limit].rstrip() + " …"


def _figure(svg: str, caption: str) -> str:
    return f"<figure>{svg}<figcaption>{caption}</figcaption></figure>"


def build_page(assignment: str, outcomes: list[dict], source: str, cells: dict[tuple, GradeCell], order: list[tuple],
               totals: dict[str, float]) -> str:
    graded = [o for o in outcomes if o.get("graded") and o["student"] in totals]
    not_graded = [o for o in outcomes if not o.get("graded")]
    flagged = [o for o in graded if o.get("review")]
    by_hand = [o for o in graded if o.get("by_hand")]
    scores = [totals[o["student"]] for o in graded]
    max_score = max((o.get("max_score") or 0 for o in graded), default=0) or sum(c.max_score for c in cells.values())
    figures = 0
    parts = [f"<h1>Class report: {_escape(assignment)}</h1>",
             f'<p class="meta">Written {time.strftime("%Y-%m-%d %H:%M")}. Scores from the gradebook, why tests failed from the '
             f"graded notebooks, who was graded (and why not) from {_escape(source)}. Students are named only in the table of "
             "whom to look at.</p>"]

    # ---- the scores
    numbers = [("submissions", len(outcomes)), ("graded", len(graded)), ("not graded", len(not_graded)),
               ("flagged for review", len(flagged)), ("answers to grade by hand", sum(len(o["by_hand"]) for o in by_hand))]
    if scores:
        numbers[2:2] = [("mean", f"{statistics.fmean(scores):.3g} / {max_score:g}"), ("median", f"{statistics.median(scores):.3g} / {max_score:g}")]
    parts.append("<h2>Scores</h2><ul class=\"numbers\">"
                 + "".join(f"<li><b>{_escape(value)}</b>{_escape(label)}</li>" for label, value in numbers) + "</ul>")
    if scores:
        figures += 1
        parts.append(_figure(score_histogram(scores, max_score, figures),
                             f"The {len(scores)} graded students' scores (written answers not yet graded by hand count 0). "
                             "Red: the mean; dashed: the median."))
    else:
        parts.append("<p>No student is graded yet.</p>")

    # ---- whom to look at
    parts.append("<h2>Students to look at</h2>")
    look = []
    for o in sorted(not_graded, key=lambda o: o["student"]):
        look.append([_escape(o["student"]), "not graded", _escape(o.get("reason") or "(no reason recorded)")])
    for o in sorted(flagged, key=lambda o: o["student"]):
        look.append([_escape(o["student"]), "flagged for review", "<br>".join(map(_escape, o["review"]))])
    for o in sorted(by_hand, key=lambda o: o["student"]):
        look.append([_escape(o["student"]), "to grade by hand", "written answer" + ("s " if len(o["by_hand"]) > 1 else " ")
                     + ", ".join(map(_escape, o["by_hand"]))])
    for o in sorted((o for o in outcomes if o.get("unlisted")), key=lambda o: o["student"]):
        look.append([_escape(o["student"]), "not on the class list",
                     "not on the class list the gradebook held before grading: a misspelt folder name, or a student to add "
                     "to the class list (nbgrader db student import)?"])
    parts.append(_table(["student", "what", "why"], look) if look else "<p>None: every submission was graded, none is flagged.</p>")

    # ---- written answers
    written = [cells[key] for key in order if cells[key].written]
    if written:
        parts.append("<h2>Written answers</h2>")
        rows = [[_escape(c.name), f"{c.max_score:g}", str(len(c.waiting)), f"{len(c.scores) - len(c.waiting)}"] for c in written]
        parts.append(_table(["answer", "points", "students still to grade by hand", "graded"], rows, ["", "count", "count", "count"]))
        parts.append('<p class="note">Grade them in the formgrader (<code>nbgrader formgrader</code>), then run this report again.</p>')

    # ---- test cells
    tests = [cells[key] for key in order if not cells[key].written]
    students = [o["student"] for o in graded]
    if tests and students:
        rows = []
        for cell in tests:
            points = [cell.scores.get(student, 0.0) for student in students]
            rows.append({"name": cell.name, "pass_rate": sum(p >= cell.max_score for p in points) / len(points),
                         "earned": sum(points), "possible": cell.max_score * len(points),
                         "discrimination": item_discrimination(points, [totals[s] for s in students])})
        figures += 1
        parts.append("<h2>Test cells</h2>")
        parts.append(_figure(test_cells_figure(rows, figures),
                             "Left: the share of graded students who earned all of each test cell's points, and the points "
                             "earned of those possible. Right: how well the cell separates strong from weak students."))
        parts.append(
            '<p class="note"><b>Discrimination</b> is the corrected item–total correlation: Pearson\'s r between the points '
            "each student earned on the cell and their total on the rest of the assignment (the cell itself left out). "
            "Green (0.2 or more): the students who do well elsewhere pass it, the usual sign of a good test. Grey: near 0, "
            "or n/a where everyone scored the same on the cell (or on the rest): it tells the class apart by nothing. "
            f"Red (negative): the strong fail it and the weak pass it; read the test. With {len(students)} students "
            + ("the values are rough: a few students more or less can change them much." if len(students) < 30 else
               "the values are reasonably stable.") + "</p>")

        # ---- failure causes
        parts.append("<h2>Why test cells failed</h2>")
        parts.append('<p class="note">For each test cell, the error it printed in the graded notebooks of the students who lost '
                     "its points, most frequent first. Messages are counted together when they differ only in numbers, paths "
                     "or names (shown as …); the example is one student's message, anonymised.</p>")
        any_failure = False
        for cell in tests:
            if not cell.causes:
                continue
            any_failure = True
            failed = sum(cell.causes.values())
            parts.append(f"<h3>{_escape(cell.name)} <span class=\"note\">({failed} of {len(students)} students lost points)</span></h3>")
            common = cell.causes.most_common()
            table = [[str(count), _escape(_shortened(cause)).replace("\n", "<br>"), f"<pre>{_escape(cell.examples[cause])}</pre>" if cell.examples[cause] else ""]
                     for cause, count in common[:CAUSES_SHOWN]]
            rest = common[CAUSES_SHOWN:]
            if rest:
                table.append([str(sum(count for _, count in rest)), f"{len(rest)} other causes", ""])
            parts.append(_table(["students", "cause", "example"], table, ["count", "", ""]))
        if not any_failure:
            parts.append("<p>Every graded student earned every test cell's points.</p>")
    return ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>Class report: {_escape(assignment)}</title><style>{STYLE}</style></head>\n<body>\n"
            + "\n".join(parts) + "\n</body></html>\n")


def report_path(assignment: str, course: Path, settings: dict | None = None) -> Path:
    return _beside_submitted(course, settings or course_settings(Path(course).resolve()), "reports", f"{assignment}.html")


def write_report(assignment: str, course: Path, outcomes: list[dict] | None = None) -> Path:
    """Write the class report of ``assignment`` (see the module's docstring) and return its path.

    ``outcomes``: the class command's, as dicts (``Outcome``'s fields); by default those it saved
    (``save_outcomes``), else what the gradebook alone says.
    """
    course = Path(course).resolve()
    settings = course_settings(course)
    if outcomes is None:
        outcomes, source = load_outcomes(assignment, course, settings)
    else:
        source = "the class command's outcomes"
    outcomes = [asdict(o) if is_dataclass(o) else dict(o) for o in outcomes]
    for outcome in outcomes:
        outcome.setdefault("review", []), outcome.setdefault("by_hand", [])
    graded = [o["student"] for o in outcomes if o.get("graded")]
    cells, totals, names = read_grades(settings["db_url"], assignment, graded)
    hide = names_pattern([o["student"] for o in outcomes] + names)
    order = read_failures(course / settings["autograded_directory"], assignment, cells, hide)
    page = build_page(assignment, outcomes, source, cells, order, totals)
    path = report_path(assignment, course, settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m grading report",
                                     description="Write an HTML report of a graded class: scores, test cells, why tests failed.")
    parser.add_argument("assignment")
    parser.add_argument("--course", type=Path, default=Path("."), help="the course's folder (default: here, like nbgrader)")
    args = parser.parse_args(argv)
    print(write_report(args.assignment, args.course))
    return 0


if __name__ == "__main__":
    sys.exit(main())
