"""Execute the chapters a build is about to read several at a time, into MyST-NB's execution cache.

MyST-NB executes notebooks one after another as Sphinx reads them, and most chapters train on one
thread (``course.TRAIN_THREADS``), so a 2-core machine builds the book on about one core. Before
Sphinx reads any page (``env-before-read-docs``), this runs every chapter it will read that the
cache (MyST-NB's ``execution_cache_path``, in execution mode ``cache``) does not already hold, ``jobs`` at a
time (``COURSE_BUILD_JOBS``; default 2 where two cores are free, and 1 leaves execution to MyST-NB), the longest first, each in its own
kernel with the working directory and timeout MyST-NB would use, and stores each result in the
cache exactly as MyST-NB would. MyST-NB then finds every chapter cached and only renders it.

What a chapter learns does not change: learned values depend on seeds and step counts only
(course/__init__.py), and the book's claims are built to hold on a machine that is doing something
else too (benchmarks/claims_robustness.py), and so are its timing claims (see ``build_jobs``). A
chapter that fails is not cached: MyST-NB executes it again as it reads it, and reports its error as it
always does.
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from sphinx.util import logging

import course

logger = logging.getLogger(__name__)

# The read format MyST-NB records in the cache for a MyST Markdown notebook (myst_nb.core.read.create_nb_reader).
MYST_READ_FORMAT = {"type": "plugin", "name": "myst_nb_md"}


def build_jobs() -> int:
    """``COURSE_BUILD_JOBS`` (default 2), at most the cores this process may run on (``taskset -c 0``: one).

    The learned values do not change with it. The timing claims were once the reason for a default of 1 (in
    early trial builds on 2 cores, chapter 6's large-batch speed-up and chapter 7's cache past the window each
    failed once); since they compare timings taken side by side under the same load, every claim has held in
    builds of two chapters at a time and in two whole builds run at once (load 7 to 10 on 2 cores). More than 2
    by default would only add memory: the longest chapter (6) is then the critical path."""
    return max(1, min(course.usable_cores(), int(os.environ.get("COURSE_BUILD_JOBS", "2"))))


def read_notebook(path: Path):
    """The notebook MyST-NB reads from a MyST Markdown file (None when the file is not one)."""
    from myst_nb.core.read import is_myst_markdown_notebook, read_myst_markdown_notebook

    text = path.read_text(encoding="utf8")
    if not is_myst_markdown_notebook(text):
        return None
    return read_myst_markdown_notebook(text, add_source_map=True, path=str(path))


def notebooks_to_execute(app, docnames) -> list[tuple[str, Path, object]]:
    """(docname, path, notebook) of each page about to be read that is a MyST notebook the cache lacks."""
    from jupyter_cache import get_cache
    from sphinx.util.matching import Matcher

    config = app.env.mystnb_config
    cache = get_cache(config.execution_cache_path)
    excluded = Matcher(config.execution_excludepatterns or [])
    todo = []
    for docname in docnames:
        path = Path(app.env.doc2path(docname))
        if path.suffix != ".md" or excluded(docname) or excluded(str(path)):
            continue
        notebook = read_notebook(path)
        if notebook is None or not any(cell.cell_type == "code" for cell in notebook.cells):
            continue
        try:
            cache.match_cache_notebook(notebook)
            continue  # already cached: MyST-NB will use it
        except KeyError:
            todo.append((docname, path, notebook))
    return todo


def execute(path: Path, notebook, timeout: int, allow_errors: bool):
    from jupyter_cache.executors.utils import single_nb_execution

    return single_nb_execution(notebook, cwd=str(path.parent), timeout=timeout, allow_errors=allow_errors, meta_override=True)


def execute_in_parallel(app, env, docnames) -> None:
    # MyST-NB's settings as it resolved them (its cache is <build folder>/.jupyter_cache unless configured)
    config = app.env.mystnb_config
    if config.execution_mode != "cache":
        return
    todo = notebooks_to_execute(app, docnames)
    jobs = min(build_jobs(), len(todo))
    if jobs < 2:
        return  # nothing to gain: MyST-NB executes it as usual
    from jupyter_cache import get_cache
    from jupyter_cache.base import CacheBundleIn

    # the longest first (the size of the file is a fair guess), so that no long chapter starts last
    todo.sort(key=lambda item: item[1].stat().st_size, reverse=True)
    logger.info(f"parallel execution: {len(todo)} notebook(s), {jobs} at a time: {', '.join(d for d, _, _ in todo)}")
    cache = get_cache(config.execution_cache_path)
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {pool.submit(execute, path, notebook, config.execution_timeout,
                               config.execution_allow_errors): (docname, path, notebook)
                   for docname, path, notebook in todo}
        for future in as_completed(futures):
            docname, path, notebook = futures[future]
            result = future.result()
            if result.err is not None:  # MyST-NB executes it again while reading it, and reports the error
                logger.info(f"parallel execution: {docname} failed ({type(result.err).__name__}); "
                            "it executes again as the page is read")
                continue
            stage = cache.add_nb_to_project(str(path), read_data=MYST_READ_FORMAT)
            cache.cache_notebook_bundle(CacheBundleIn(notebook, stage.uri, data={"execution_seconds": result.time}),
                                        check_validity=False, overwrite=True)
            logger.info(f"parallel execution: {docname} executed in {result.time:.0f} s "
                        f"({time.perf_counter() - start:.0f} s since the first started)")


def setup(app):
    # before MyST-NB (priority 500) reads any page
    app.connect("env-before-read-docs", execute_in_parallel, priority=400)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
