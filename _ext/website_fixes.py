"""Small repairs to the HTML that Jupyter Book 1's theme stack writes, found by tests/test_website.py.

* sphinx-thebe registers its configuration script twice, and the second copy throws
  "Identifier 'THEBE_JS_URL' has already been declared" in every page's console.
* pydata-sphinx-theme logs "Got invalid theme mode" when ``default_mode`` is empty; "auto" follows
  the reader's system setting, which is what the empty value was meant to do.
* The "suggest edit" button of an exercise page would edit the student version, which nbgrader
  generates; it points at the exercise's source in solutions/ instead.

Accessibility and layout (the axe-core audit and the layout checks of tests/test_website.py):

* A printed table whose rows are each followed by ``glue(..., display=False)`` reached the page as
  one output box per row: every glue call is a display output between two pieces of printed text,
  and MyST-NB removes it but keeps the text on each side as separate stream outputs. Stream
  outputs of the same kind that end up next to each other are joined back into one box
  (MyST-NB's ``nb_merge_streams`` would instead move all of a cell's printed text above its
  figures).
* A chapter that ends with a paragraph led by "**Exercises.**" or "**Exercises:**" gets an
  "Exercises" section there instead, so that the page's contents (the right-hand sidebar) list
  it, as they do for a chapter that has an "## Exercises" heading.
* The navigation sidebar's expand/collapse toggles (``<summary>`` holding only an icon) have no
  name for a screen reader (axe: summary-name); each is named after the page it opens.
* The bibliography is a ``role="list"`` whose entries have the DPUB role ``doc-biblioentry``,
  deprecated and not a list item (axe: aria-required-children, critical); they become list items.
"""

import re

from docutils import nodes
from sphinx.transforms import SphinxTransform

# .../edit/<branch>/exercises/<assignment>/<assignment>.ipynb -> .../edit/<branch>/solutions/<assignment>.py
EXERCISE_EDIT_URL = re.compile(r"(/edit/[^/]+/)exercises/([^/]+)/\2\.ipynb$")
# The lead of a chapter's last paragraph that points to its exercises.
EXERCISES_LEAD = re.compile(r"^Exercises\s*[.:]?$")


def _script_key(script):
    # An inline script's filename is None or "" depending on who added it; its body is an attribute.
    attributes = tuple(sorted((key, str(value)) for key, value in getattr(script, "attributes", {}).items()))
    return (getattr(script, "filename", None) or "", attributes)


def _edit_exercise_sources(buttons):
    for button in buttons:
        if "url" in button:
            button["url"] = EXERCISE_EDIT_URL.sub(r"\1solutions/\2.py", button["url"])
        _edit_exercise_sources(button.get("buttons", []))


def merge_adjacent_streams(doctree) -> int:
    """Join each run of neighbouring stream outputs (stdout with stdout, stderr with stderr) of a cell; returns how many were joined."""
    joined = 0
    for output in list(doctree.findall(lambda node: isinstance(node, nodes.container) and "cell_output" in node["classes"])):
        previous = None
        for child in list(output.children):
            if (
                isinstance(child, nodes.literal_block)
                and isinstance(previous, nodes.literal_block)
                and "output" in child["classes"]
                and child["classes"] == previous["classes"]
                and child.get("language") == previous.get("language")
            ):
                text = previous.astext() + child.astext()
                previous.rawsource = text
                previous.children = []
                previous += nodes.Text(text)
                output.remove(child)
                joined += 1
                continue
            previous = child
    return joined


def _strip_leading_space(paragraph):
    # MyST starts a paragraph with an empty text node; what follows a removed lead starts with a space.
    while paragraph.children and isinstance(paragraph.children[0], nodes.Text):
        rest = paragraph.children[0].astext().lstrip()
        if rest:
            paragraph.replace(paragraph.children[0], nodes.Text(rest))
            return
        paragraph.remove(paragraph.children[0])


def _exercises_lead(paragraph) -> nodes.strong | None:
    first = next((child for child in paragraph.children if not (isinstance(child, nodes.Text) and not child.astext().strip())), None)
    return first if isinstance(first, nodes.strong) and EXERCISES_LEAD.match(first.astext().strip()) else None


def exercises_section(document) -> nodes.section | None:
    """Turn a chapter's closing "**Exercises.** ..." paragraph into an "Exercises" section (None when there is none to make)."""
    top = next(iter(document.findall(nodes.section)), None)
    if top is None:
        return None
    titles = {section[0].astext().strip().lower() for section in document.findall(nodes.section) if section.children}
    if "exercises" in titles:
        return None
    paragraphs = [p for p in document.findall(nodes.paragraph) if p.parent is not None and isinstance(p.parent, nodes.section)]
    lead = _exercises_lead(paragraphs[-1]) if paragraphs else None
    if lead is None:
        return None
    paragraph = paragraphs[-1]
    paragraph.parent.remove(paragraph)
    paragraph.remove(lead)
    # What followed the lead starts the paragraph now: no leading space, a capital letter.
    _strip_leading_space(paragraph)
    if paragraph.children and isinstance(paragraph.children[0], nodes.Text):
        text = paragraph.children[0].astext()
        paragraph.replace(paragraph.children[0], nodes.Text(text[0].upper() + text[1:]))
    section = nodes.section("", nodes.title("", "Exercises"), paragraph, names=["exercises"])
    section.source, section.line = paragraph.source, paragraph.line
    top += section
    document.note_implicit_target(section, section)
    return section


class ChapterOutputsAndExercises(SphinxTransform):
    """Stream outputs joined on every page; the Exercises section on the chapters' pages."""

    default_priority = 500

    def apply(self, **kwargs):
        merge_adjacent_streams(self.document)
        if self.env.docname.startswith("chapters/"):
            exercises_section(self.document)


def name_toggles(soup):
    """Give each navigation ``<summary>`` that holds only an icon a name: the page whose sub-pages it shows."""
    for summary in soup.select("li.has-children > details > summary"):
        if summary.get_text(strip=True) or summary.get("aria-label"):
            continue
        link = summary.find_parent("li").find("a", recursive=False)
        title = link.get_text(" ", strip=True) if link else ""
        summary["aria-label"] = f"Pages under {title}" if title else "Sub-pages"
    return soup


def _named_toggles(generate):
    def generate_toctree_html(*args, **kwargs):
        html = generate(*args, **kwargs)
        return name_toggles(html) if hasattr(html, "select") else html

    return generate_toctree_html


def list_citations(body: str) -> str:
    """The entries of a ``role="list"`` bibliography as list items (``doc-biblioentry`` is deprecated and no list item)."""
    return body.replace(' role="doc-biblioentry"', ' role="listitem"')


def _tidy_page(app, pagename, templatename, context, doctree):
    seen, unique = set(), []
    for script in context.get("script_files", []):
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    context["script_files"] = unique
    context.setdefault("default_mode", "auto")
    if not context["default_mode"]:
        context["default_mode"] = "auto"
    if pagename.startswith("exercises/"):
        _edit_exercise_sources(context.get("header_buttons", []))
    if "generate_toctree_html" in context:
        context["generate_toctree_html"] = _named_toggles(context["generate_toctree_html"])
    if "body" in context:
        context["body"] = list_citations(context["body"])


def setup(app):
    app.add_transform(ChapterOutputsAndExercises)
    # Late (priority above the default 500), after the theme and its extensions have added their scripts.
    app.connect("html-page-context", _tidy_page, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
