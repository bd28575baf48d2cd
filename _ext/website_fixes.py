"""Small repairs to the HTML that Jupyter Book 1's theme stack writes, found by tests/test_website.py.

* sphinx-thebe registers its configuration script twice, and the second copy throws
  "Identifier 'THEBE_JS_URL' has already been declared" in every page's console.
* pydata-sphinx-theme logs "Got invalid theme mode" when ``default_mode`` is empty; "auto" follows
  the reader's system setting, which is what the empty value was meant to do.
* The "suggest edit" button of an exercise page would edit the student version, which nbgrader
  generates; it points at the exercise's source in solutions/ instead.
"""

import re

# .../edit/<branch>/exercises/<assignment>/<assignment>.ipynb -> .../edit/<branch>/solutions/<assignment>.py
EXERCISE_EDIT_URL = re.compile(r"(/edit/[^/]+/)exercises/([^/]+)/\2\.ipynb$")


def _script_key(script):
    # An inline script's filename is None or "" depending on who added it; its body is an attribute.
    attributes = tuple(sorted((key, str(value)) for key, value in getattr(script, "attributes", {}).items()))
    return (getattr(script, "filename", None) or "", attributes)


def _edit_exercise_sources(buttons):
    for button in buttons:
        if "url" in button:
            button["url"] = EXERCISE_EDIT_URL.sub(r"\1solutions/\2.py", button["url"])
        _edit_exercise_sources(button.get("buttons", []))


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


def setup(app):
    # Late (priority above the default 500), after the theme and its extensions have added their scripts.
    app.connect("html-page-context", _tidy_page, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
