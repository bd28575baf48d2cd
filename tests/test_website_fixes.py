"""_ext/website_fixes.py: the repairs to the website's HTML, checked on small documents (no build needed).

tests/test_website.py checks their effect on the built site in a browser.
"""

import sys
from pathlib import Path

from docutils import nodes
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Parser
from docutils.utils import new_document

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "_ext"))

from website_fixes import exercises_section, list_citations, merge_adjacent_streams, name_toggles  # noqa: E402


def document():
    return new_document("test", get_default_settings(Parser))


def stream(text, kind="stream"):
    return nodes.literal_block(text, text, classes=["output", kind], language="myst-ansi")


def test_printed_rows_split_by_glue_calls_become_one_box():
    # What MyST-NB makes of a loop that prints a row, then glues a value (display=False): one stream per row.
    doc = document()
    output = nodes.container(classes=["cell_output"])
    output += [stream("header\nrow 1\n"), stream("row 2\n"), stream("row 3\n"), stream("warning\n", "stderr"), stream("row 4\n")]
    image = nodes.image(uri="figure.png")
    second = nodes.container(classes=["cell_output"])
    second += [stream("before the figure\n"), image, stream("after the figure\n")]
    doc += [output, second]
    assert merge_adjacent_streams(doc) == 2
    assert [child.astext() for child in output.children] == ["header\nrow 1\nrow 2\nrow 3\n", "warning\n", "row 4\n"]
    # Text printed after a figure stays after it.
    assert [child.astext() for child in second.children] == ["before the figure\n", "", "after the figure\n"]
    assert second.children[1] is image


def chapter(*closing_children, exercises_heading=False):
    doc = document()
    top = nodes.section("", nodes.title("", "3. Attention"), names=["3. attention"])
    summary = nodes.section("", nodes.title("", "Summary"), nodes.paragraph("", "", nodes.Text("What we saw.")))
    summary += nodes.paragraph("", "", nodes.Text(""), *closing_children)
    top += summary
    if exercises_heading:
        top += nodes.section("", nodes.title("", "Exercises"), nodes.paragraph("", "", nodes.Text("Do them.")))
    doc += top
    return doc, top, summary


def test_a_closing_exercises_paragraph_becomes_an_exercises_section():
    link = nodes.reference("", "exercises for chapter 3", refuri="../exercises/ch03.html")
    doc, top, summary = chapter(nodes.strong("", "Exercises."), nodes.Text(" write the masks yourself: "), link, nodes.Text("."))
    section = exercises_section(doc)
    assert section is not None and section.parent is top and top.children[-1] is section
    assert section["ids"] == ["exercises"] and section[0].astext() == "Exercises"
    assert section[1].astext() == "Write the masks yourself: exercises for chapter 3."
    assert summary.astext() == "Summary\n\nWhat we saw."


def test_a_closing_lead_followed_by_the_link_keeps_the_link_first():
    link = nodes.reference("", "Exercises 9", refuri="../exercises/ch09.html")
    doc, _, _ = chapter(nodes.strong("", "Exercises:"), nodes.Text(" "), link, nodes.Text(": a patch embedding."))
    section = exercises_section(doc)
    assert section[1].children[0] is link and section[1].astext() == "Exercises 9: a patch embedding."


def test_a_chapter_with_an_exercises_heading_or_without_the_lead_is_left_alone():
    doc, _, _ = chapter(nodes.strong("", "Exercises."), nodes.Text(" more."), exercises_heading=True)
    before = doc.pformat()
    assert exercises_section(doc) is None and doc.pformat() == before
    doc, _, _ = chapter(nodes.strong("", "Note."), nodes.Text(" not the exercises."))
    assert exercises_section(doc) is None


def test_navigation_toggles_are_named_after_their_page():
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(
        '<ul><li class="has-children"><a class="reference internal" href="ch03.html">3. Attention</a>'
        '<details><summary><span class="toctree-toggle" role="presentation"><i></i></span></summary><ul></ul></details></li>'
        '<li class="has-children"><details><summary><p class="caption">Part</p></summary></details></li></ul>',
        "html.parser",
    )
    summaries = name_toggles(soup).select("summary")
    assert summaries[0]["aria-label"] == "Pages under 3. Attention"
    assert "aria-label" not in summaries[1].attrs  # its caption names it


def test_bibliography_entries_are_list_items():
    body = '<div role="list" class="citation-list">\n<div class="citation" id="id2" role="doc-biblioentry">'
    assert list_citations(body) == '<div role="list" class="citation-list">\n<div class="citation" id="id2" role="listitem">'
