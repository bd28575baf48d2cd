"""Write the book's claims register, ``_build/claims.json``, at the end of every build, and fail on a false claim.

Each chapter checks its claims as it executes and writes them to ``_build/claims/<chapter>.json``
(``course/claims.py``; ``$COURSE_CLAIMS_DIR`` if set). A claim that does not hold does not stop its
chapter: it shows a box on the chapter's page, and the chapter and the rest of the book go on. Once
every page is written (``build-finished``), this gathers the files of the chapters in the book into
one list next to the HTML folder (``_build/claims.json``), prints a one-screen summary of the claims
that do not hold, and raises an ``ExtensionError``, so that the build ends with a non-zero status after
writing the whole site.
"""

import json
import sys
from pathlib import Path

from sphinx.errors import ExtensionError
from sphinx.util import logging

from course.claims import gather, register_folder, summary

logger = logging.getLogger(__name__)


def _write_register(app, exception):
    if exception is not None:
        return
    chapters = [Path(docname).name for docname in app.env.found_docs if docname.startswith("chapters/")]
    claims = gather(register_folder(), chapters)
    register = Path(app.outdir).parent / "claims.json"
    register.write_text(json.dumps(claims, indent=1) + "\n")
    failed = summary(claims)
    logger.info(f"claims register: {len(claims)} claims written to {register}")
    if failed:
        # Printed whole, in one place, after Sphinx's own output: the last thing the reader sees.
        print("\n" + "=" * 100 + "\n" + failed + "\n" + "=" * 100, file=sys.stderr, flush=True)
        count = sum(not claim["holds"] for claim in claims)
        raise ExtensionError(f"{count} claim(s) do not hold (listed above and in {register}); "
                             f"every page was written, each failed claim is shown on its page")


def setup(app):
    app.connect("build-finished", _write_register)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
