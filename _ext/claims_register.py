"""Write the book's claims register, ``_build/claims.json``, at the end of every build, and fail on a false claim.

Each chapter checks its claims as it executes and writes them to ``_build/claims/<chapter>.json``
(``course/claims.py``; ``$COURSE_CLAIMS_DIR`` if set). A claim that does not hold does not stop its
chapter: it shows a box on the chapter's page, and the chapter and the rest of the book go on. Once
every page is written (``build-finished``), this gathers the files of the chapters in the book into
one list next to the HTML folder (``_build/claims.json``), prints a one-screen summary of the claims
that do not hold, and raises an ``ExtensionError``, so that the build ends with a non-zero status after
writing the whole site.

A chapter whose claims failed still executed without error, so MyST-NB cached it; the next build
would show the same failure without measuring again. So the failing chapters are dropped from the
execution cache, and the next build re-reads (and so re-executes) every chapter whose register file
lists a failed claim: `make book` again measures again, which is what a timing claim on a busy
machine needs.
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
        _forget_executions(app, {claim["chapter"] for claim in claims if not claim["holds"]})
        count = sum(not claim["holds"] for claim in claims)
        raise ExtensionError(f"{count} claim(s) do not hold (listed above and in {register}); "
                             f"every page was written, each failed claim is shown on its page")


def _chapters_with_failed_claims(names) -> list[str]:
    failed = []
    for name in names:
        path = register_folder() / f"{name}.json"
        try:
            if any(not claim["holds"] for claim in json.loads(path.read_text())):
                failed.append(name)
        except (OSError, ValueError, KeyError, TypeError):
            continue
    return failed


def _reread_failed_chapters(app, env, added, changed, removed):
    chapters = {Path(docname).name: docname for docname in env.found_docs if docname.startswith("chapters/")}
    return [chapters[name] for name in _chapters_with_failed_claims(chapters) if chapters[name] not in added | changed]


def _forget_executions(app, chapters):
    path = getattr(getattr(app.env, "mystnb_config", None), "execution_cache_path", None)
    if not path or not Path(path).exists():
        return
    from jupyter_cache import get_cache

    cache = get_cache(path)
    for record in cache.list_cache_records():
        if Path(record.uri).stem in chapters:
            cache.remove_cache(record.pk)


def setup(app):
    app.connect("env-get-outdated", _reread_failed_chapters)
    app.connect("build-finished", _write_register)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
