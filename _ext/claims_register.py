"""Write the book's claims register, ``_build/claims.json``, at the end of every build.

Each chapter checks its claims as it executes and writes them to ``_build/claims/<chapter>.json``
(``course/claims.py``); this gathers the files of the chapters in the book into one list. A claim
that does not hold has already failed its chapter's execution, and so the build; a register that
still lists one (a stale file) fails here too.
"""

import json
from pathlib import Path

from sphinx.errors import ExtensionError

from course.claims import REGISTER_FOLDER, gather


def _write_register(app, exception):
    if exception is not None:
        return
    chapters = [Path(docname).name for docname in app.env.found_docs if docname.startswith("chapters/")]
    claims = gather(REGISTER_FOLDER, chapters)
    register = REGISTER_FOLDER.parent / "claims.json"
    register.write_text(json.dumps(claims, indent=1) + "\n")
    failing = [f"{claim['chapter']}.{claim['name']}" for claim in claims if not claim["holds"]]
    if failing:
        raise ExtensionError(f"claims that do not hold: {', '.join(failing)}")


def setup(app):
    app.connect("build-finished", _write_register)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
