"""The instructor's class report (grading/class_report.py), on a small class graded through the real commands.

Six students submit ch03_attention in a temporary course: three make the same common mistake
(attention without the 1/√d scale; the visible test's check names it), one submits the reference
answers (full marks, flagged for review as a copy), one the untouched stub, and one a notebook cut
in half (not graded). ``python -m grading class`` grades them, ``python -m grading report`` writes
the page. Checked: the page is one self-contained file; the planted mistake is the top failure
cause of its test cell, counted 3 times; the figures are inline SVG with no student's name in
them; the table of whom to look at names the student not graded and the flagged one; in a browser
the page has no console errors and its figures are visible. Also, on hand-made numbers: the
message normalisation and the discrimination statistic.
"""

import re
import shutil
import subprocess
import sys
import warnings
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import numpy as np
import pytest

from class_course import course_with_a_class, own_version, reference_answers
from grading.assignments import REPO
from grading.points import points
from grading.class_report import (GradeCell, build_page, item_discrimination, names_pattern, normalise_message, outcomes_path,
                                  save_outcomes, write_report)

ASSIGNMENT = "ch03_attention"
TIMEOUT_S = 20  # per cell in this course (the real course uses 120 s); its cells take under 2 s
REFERENCE = reference_answers(ASSIGNMENT)

NO_SCALE = own_version(REFERENCE["scaled_dot_product_attention"]).replace(" / math.sqrt(d)", "")
assert NO_SCALE != own_version(REFERENCE["scaled_dot_product_attention"])
PLANTED = {"masked_softmax": own_version(REFERENCE["masked_softmax"]), "masks": own_version(REFERENCE["masks"]),
           "scaled_dot_product_attention": NO_SCALE}
# student id: (first name, last name, answers or None for the stub, "half" for a notebook cut in half)
STUDENTS = {
    "ada_lovelace": ("Ada", "Lovelace", PLANTED),
    "alan_turing": ("Alan", "Turing", PLANTED),
    "emmy_noether": ("Emmy", "Noether", PLANTED),
    "grace_hopper": ("Grace", "Hopper", REFERENCE),  # the reference itself: full marks, flagged as a copy
    "katherine_johnson": ("Katherine", "Johnson", None),  # the stub, untouched
    "barbara_liskov": ("Barbara", "Liskov", "half"),  # not valid JSON: not graded
}
NAMES = [part for student, (first, last, _) in STUDENTS.items() for part in (student, first, last)]


def submission(release: Path, answers) -> str:
    notebook = nbformat.read(release, as_version=4)
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution") and isinstance(answers, dict) and meta["grade_id"] in answers:
            cell.source = answers[meta["grade_id"]]
    text = nbformat.writes(notebook)
    return text[: len(text) // 2] if answers == "half" else text


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, progress):
    if shutil.which("bwrap") is None:
        pytest.skip("bubblewrap (bwrap) is not installed: the class command grades in its sandbox only")
    course = tmp_path_factory.mktemp("class-report") / "course"
    release = course_with_a_class(course, ASSIGNMENT, "class-report", {s: (first, last) for s, (first, last, _) in STUDENTS.items()},
                                  f"c.Execute.timeout = {TIMEOUT_S}\n")
    for student, (first, last, answers) in STUDENTS.items():
        target = course / "submitted" / student / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        target.parent.mkdir(parents=True)
        target.write_text(submission(release, answers))
    environment = {"PATH": f"{Path(sys.executable).parent}:/usr/bin:/bin"}
    progress(f"class report: python -m grading class {ASSIGNMENT}, {len(STUDENTS)} students")
    graded = subprocess.run([sys.executable, "-m", "grading", "class", ASSIGNMENT], cwd=course, capture_output=True, text=True,
                            env=environment)
    assert "5 graded, 1 not graded" in graded.stdout, graded.stdout + graded.stderr[-3000:]
    written_by_the_class_command = course / "reports" / f"{ASSIGNMENT}.html"  # beside submitted/, like _grading/reports
    assert f"class report: {written_by_the_class_command.relative_to(course)}" in graded.stdout, graded.stdout
    assert (course / "logs" / f"class-{ASSIGNMENT}.json").is_file(), "the outcomes the report reads"
    reported = subprocess.run([sys.executable, "-m", "grading", "report", ASSIGNMENT], cwd=course, capture_output=True, text=True,
                              env=environment)
    assert reported.returncode == 0, reported.stderr[-3000:]
    path = Path(reported.stdout.strip().splitlines()[-1])
    return course, path


class Page(HTMLParser):
    """The page's tags with a source (src, href), what a reader can see or hear of it (`readable`: its text and
    labels; `svgs`: the same for each inline SVG), and its tables as rows of cell text. Ids and path data are left
    out: matplotlib's ids are hex hashes, and a hash may spell 'ada'."""

    LABELS = ("aria-label", "alt", "title")

    def __init__(self, text: str):
        super().__init__()
        self.links, self.svgs, self.tables, self.readable = [], [], [], ""
        self._svg_depth, self._cell, self._row = 0, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.links += [attrs[name] for name in ("src", "href", "xlink:href") if attrs.get(name)]
        if tag == "svg":
            if self._svg_depth == 0:
                self.svgs.append("")
            self._svg_depth += 1
        labels = " ".join(attrs[name] for name in self.LABELS if attrs.get(name)) + " "
        self.readable += labels
        if self._svg_depth:
            self.svgs[-1] += labels
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self._row = []
            self.tables[-1].append(self._row)
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag == "svg":
            self._svg_depth -= 1
        elif tag in ("td", "th") and self._row is not None:
            self._row.append(self._cell.strip())
            self._cell = None

    def handle_data(self, data):
        self.readable += data
        if self._svg_depth:
            self.svgs[-1] += data
        if self._cell is not None:
            self._cell += data


def cause_tables(text: str) -> dict[str, list[list[str]]]:
    """{test cell: rows (students, cause, example)} of the failure causes' section."""
    section = text.split("<h2>Why test cells failed</h2>", 1)[1]
    tables = {}
    for heading, table in re.findall(r"<h3>(\w+) .*?</h3>\s*(<table>.*?</table>)", section, flags=re.S):
        tables[heading] = Page(table).tables[0][1:]
    return tables


def test_the_report_is_one_self_contained_page_where_the_class_command_keeps_its_files(graded_class):
    course, path = graded_class
    assert path == course / "reports" / f"{ASSIGNMENT}.html" and path.is_file()
    text = path.read_text()
    page = Page(text)
    outside = [link for link in page.links if not link.startswith("#")]
    assert outside == [], f"the page links outside itself: {outside}"
    assert not re.search(r"""(src|href)\s*=\s*["']?https?:""", text) and "<script" not in text and "<link" not in text


def test_the_planted_mistake_is_the_top_cause_of_its_test_cell(graded_class):
    _, path = graded_class
    causes = cause_tables(path.read_text())
    count, cause, example = causes["attention_visible"][0]
    assert count == "3" and "not divided by √d" in cause, causes["attention_visible"]
    assert "√d" in example and "weights vs F.scaled_dot_product_attention" in example
    # the hidden cell's out-of-kernel verdicts: the same three students, counted together despite their own numbers
    assert causes["attention_hidden"][0][0] == "3" and causes["attention_hidden"][0][1].startswith("ResultDiffers"), causes
    # the stub fails every test cell, once, with its own cause
    assert [row[:2] for row in causes["masked_softmax_visible"]] == [["1", "NotImplementedError"]], causes
    assert sum(int(row[0]) for row in causes["attention_visible"]) == 4, "the planted three and the stub"


def test_figures_are_inline_svg_and_name_no_student(graded_class):
    _, path = graded_class
    page = Page(path.read_text())
    assert len(page.svgs) == 2, "the score histogram and the test cells' figure"
    assert f"score (of {sum(points(ASSIGNMENT)):g})" in page.svgs[0] and "discrimination" in page.svgs[1]
    for svg in page.svgs:
        named = [name for name in NAMES if name.lower() in svg.lower()]
        assert named == [], f"a figure names {named}"


def test_students_are_named_only_in_the_table_of_whom_to_look_at(graded_class):
    _, path = graded_class
    text = path.read_text()
    page = Page(text)
    look = {}  # {student: {status: reason}}: a student may have several rows (flagged, and a written answer to grade)
    for name, status, reason, *_ in page.tables[0][1:]:
        look.setdefault(name, {})[status] = reason
    assert "not valid JSON" in look["barbara_liskov"]["not graded"], look
    assert "reference answer" in look["grace_hopper"]["flagged for review"], look
    # the only student who wrote chapter 3's written answer (the reference's): it waits for a person
    assert look["grace_hopper"]["to grade by hand"] == "written answer saturation_gradient", look
    assert set(look) == {"barbara_liskov", "grace_hopper"}, look
    after = Page(text.split("</table>", 1)[1])
    # what a reader sees, and where the page's links lead (a link within the page, "#...", names an svg id)
    shown = " ".join([after.readable, *(link for link in after.links if not link.startswith("#"))]).lower()
    assert not [name for name in NAMES if name.lower() in shown], "a name outside the table of whom to look at"


def test_the_class_commands_saved_outcomes_are_what_the_report_reads(graded_class, tmp_path):
    course, _ = graded_class
    saved = outcomes_path(ASSIGNMENT, course)
    kept = saved.read_text() if saved.exists() else None
    try:
        save_outcomes(ASSIGNMENT, course, [
            {"student": "barbara_liskov", "graded": False, "reason": "a reason only the class command knew", "score": None,
             "max_score": None, "review": [], "by_hand": [], "unlisted": True}]
            + [{"student": s, "graded": True, "reason": "", "score": None, "max_score": 12, "review": [], "by_hand": [], "unlisted": False}
               for s in STUDENTS if s != "barbara_liskov"])
        text = write_report(ASSIGNMENT, course).read_text()
    finally:
        saved.unlink()
        if kept is not None:
            saved.write_text(kept)
    look = [row for row in Page(text).tables[0][1:]]
    assert ["barbara_liskov", "not graded", "a reason only the class command knew"] in look, look
    assert ["barbara_liskov", "not on the class list"] in [row[:2] for row in look], look
    assert "grace_hopper" not in [row[0] for row in look], "the saved outcomes, not the gradebook, say who is flagged"


def test_the_page_opens_in_a_browser_without_errors_and_its_figures_show(graded_class):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("Chromium is absent: `apt-get install chromium` to run the browser test")
    from playwright.sync_api import sync_playwright

    _, path = graded_class
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, headless=True,
                                             args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            problems = []
            page.on("console", lambda message: message.type in ("error", "warning") and problems.append(message.text))
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.on("request", lambda request: not request.url.startswith("file:") and problems.append(f"request: {request.url}"))
            page.goto(path.as_uri(), wait_until="load")
            boxes = page.evaluate("Array.from(document.querySelectorAll('figure svg')).map(s => {"
                                  " const r = s.getBoundingClientRect(); return [r.width, r.height]; })")
            drawn = page.evaluate("Array.from(document.querySelectorAll('figure svg')).map(s => s.querySelectorAll('path').length)")
        finally:
            browser.close()
    assert problems == [], problems
    assert len(boxes) == 2 and all(width > 300 and height > 100 for width, height in boxes), boxes
    assert all(count > 10 for count in drawn), drawn


# ---------------------------------------------------------------- on hand-made numbers


def test_the_same_mistake_by_different_students_normalises_to_one_message():
    names = names_pattern(["ada_lovelace", "Ada", "Lovelace", "al"])  # names under 3 letters are not looked for
    one = normalise_message("AssertionError", "weights: values differ (relative error 2.10e-01); first mismatch at index (0, 1, 2): "
                            "got 0.31, expected -0.2\n tensor([[0.1, 0.2]])\nLikely cause: the scores are not divided by √d (d = 8).")
    other = normalise_message("AssertionError", "weights: values differ (relative error 3.5e-02); first mismatch at index (1, 0, 3): "
                              "got 1.5, expected 2\n tensor([[0.9, 0.7]])\nLikely cause: the scores are not divided by √d (d = 8).")
    assert one == other
    assert one.startswith("AssertionError: weights: values differ (relative error …)") and one.endswith("not divided by √d (d = …).")
    assert "tensor" not in one, "printed tensors are each student's own"
    # names (any case), paths and addresses taken out; names of things that hold digits kept
    message = normalise_message("FileNotFoundError", "/home/Ada/course/submitted/ada_lovelace/ch03_attention/data.npy at 0x7f3a2b "
                                "for ADA_LOVELACE (float32, case3, masked_softmax/hidden/plain/case3)", names)
    assert "ada" not in message.lower() and "/home" not in message and "0x7f" not in message, message
    assert "<path>" in message and "<student>" in message and "float32, case3, masked_softmax/hidden/plain/case3" in message
    assert normalise_message("ResultDiffers", "attention/hidden/weights/case3: 12 of 35 values differ (largest error 0.31") == \
        normalise_message("ResultDiffers", "attention/hidden/weights/case3: 30 of 35 values differ (largest error 0.029")
    assert normalise_message("A", "x is 3") != normalise_message("B", "x is 3")


def test_discrimination_is_positive_where_the_strong_pass_and_negative_where_they_fail():
    rest = [10, 8, 7, 5, 3, 1]  # each student's points on the other cells, strongest first

    def totals(item):
        return [r + i for r, i in zip(rest, item)]

    strong_pass, weak_pass = [2, 2, 2, 0, 0, 0], [0, 0, 0, 2, 2, 2]
    assert item_discrimination(strong_pass, totals(strong_pass)) > 0.5
    assert item_discrimination(weak_pass, totals(weak_pass)) < -0.5
    # corrected: a cell worth most of the points, unrelated to the rest, does not score high by correlating with itself
    heavy, unrelated = [20, 20, 0, 20, 0, 0], [10, 0, 10, 0, 10, 0]
    with_itself = [h + u for h, u in zip(heavy, unrelated)]
    assert np.corrcoef(heavy, with_itself)[0, 1] > 0.8 and item_discrimination(heavy, with_itself) < 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a constant column must give None, not NaN with a RuntimeWarning
        assert item_discrimination([1, 1, 1, 1], [5, 3, 2, 1]) is None, "everyone passed: no discrimination"
        assert item_discrimination([1, 0, 1, 0], [3, 2, 3, 2]) is None, "the rest is constant"
        assert item_discrimination([1, 0], [3, 0]) is None, "two students"


def test_written_answers_waiting_for_a_person_are_counted_and_their_students_named():
    students = ["s1", "s2", "s3", "s4"]
    test = GradeCell("nb", "attention_visible", 2, written=False, scores=dict(zip(students, [2, 2, 0, 0])))
    test.causes["AssertionError: x"], test.examples["AssertionError: x"] = 2, "AssertionError: x"
    essay = GradeCell("nb", "scale_explained", 2, written=True, scores=dict.fromkeys(students, 0.0), waiting=["s1", "s3"])
    outcomes = [{"student": s, "graded": True, "review": [], "by_hand": ["scale_explained"] if s in ("s1", "s3") else []}
                for s in students]
    cells = {("nb", "attention_visible"): test, ("nb", "scale_explained"): essay}
    text = build_page("ch05", outcomes, "hand-made outcomes", cells, list(cells), {"s1": 2, "s2": 2, "s3": 0, "s4": 0})
    tables = Page(text).tables
    assert [row[:2] for row in tables[0][1:]] == [["s1", "to grade by hand"], ["s3", "to grade by hand"]], tables[0]
    assert tables[1][1][:3] == ["scale_explained", "2", "2"], "the answer, its points, the students still to grade"
    assert "<b>2</b>answers to grade by hand" in text
