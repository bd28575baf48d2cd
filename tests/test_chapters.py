"""Every chapter executes from top to bottom, as the book build runs it.

A chapter is executed at most once per change: the tests and the book build share Jupyter
Book's execution cache (_build/.jupyter_cache, keyed by the chapter's code). Whichever runs
first executes the chapter; the other reads the executed notebook back. The Makefile empties
the cache when the shared code in course/ changes, since the cache key cannot see it.
"""

import time
from pathlib import Path

import jupytext
import pytest
from jupyter_cache import get_cache
from jupyter_cache.cache.main import CacheBundleIn
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((REPO / "chapters").glob("ch*.md"))
TOC = (REPO / "_toc.yml").read_text()
CACHE = get_cache(REPO / "_build" / ".jupyter_cache")


def executed(chapter: Path, progress=lambda message: None):
    notebook = jupytext.read(chapter)
    try:
        return CACHE.get_cache_bundle(CACHE.match_cache_notebook(notebook).pk).nb
    except KeyError:
        pass
    progress(f"executing {chapter.relative_to(REPO)} (not in the execution cache; up to 3 minutes)")
    client = NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(chapter.parent)}})
    start = time.perf_counter()
    client.execute()  # raises CellExecutionError, with the failing cell, on the first error
    seconds = time.perf_counter() - start
    progress(f"executed {chapter.relative_to(REPO)} in {seconds:.0f} s")
    bundle = CacheBundleIn(notebook, str(chapter), data={"execution_seconds": seconds})  # as the book build records it
    CACHE.cache_notebook_bundle(bundle, check_validity=False, overwrite=True)
    return notebook


def execution_seconds() -> dict[str, float]:
    """Each chapter's execution time, as recorded in the cache by whichever run executed it."""
    times = {}
    for chapter in CHAPTERS:
        try:
            record = CACHE.match_cache_notebook(jupytext.read(chapter))
        except KeyError:
            continue
        if "execution_seconds" in record.data:
            times[chapter.stem] = record.data["execution_seconds"]
    return times


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[path.stem for path in CHAPTERS])
def test_chapter_executes_without_error(chapter, progress):
    notebook = executed(chapter, progress)
    errors = [output for cell in notebook.cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not errors
    code_cells = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code_cells and all(cell.get("execution_count") for cell in code_cells), "some cells did not run"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[path.stem for path in CHAPTERS])
def test_chapter_and_its_exercises_are_in_the_table_of_contents(chapter):
    assert f"chapters/{chapter.stem}" in TOC
    if (REPO / "solutions" / f"{chapter.stem}.py").exists():
        assert f"exercises/{chapter.stem}/{chapter.stem}" in TOC
