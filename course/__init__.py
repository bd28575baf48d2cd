"""Shared code of the course *Attention and Transformers*.

Chapters (``chapters/``) and exercises (``exercises/``) import from here; each module is the
single home of what a chapter teaches, so later chapters reuse it rather than paste it.

``PROFILE`` picks the size of the experiments: ``book`` (default) is small enough for every
chapter to execute in the website build on a 2-core CPU; ``full`` is for longer runs
(set the environment variable ``COURSE_PROFILE=full``).
"""

import os

PROFILE = os.environ.get("COURSE_PROFILE", "book")
if PROFILE not in ("book", "full"):
    raise ValueError(f"COURSE_PROFILE must be 'book' or 'full', not {PROFILE!r}")
