"""Every chapter executes from top to bottom, as the book build runs it, and every claim it checks holds.

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
    client = NotebookClient(notebook, timeout=1800, kernel_name="python3", resources={"metadata": {"path": str(chapter.parent)}})
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


def failed_claims(notebook) -> list[str]:
    """The claims that did not hold in an executed chapter: each left a box in its cell's outputs
    (course.claims.ClaimFailure, marked by its output metadata)."""
    failed = []
    for cell in notebook.cells:
        for output in cell.get("outputs", []):
            marker = output.get("metadata", {}).get("course_claim_failed")
            if marker is None and "claim-failed" in str(output.get("data", {}).get("text/html", "")):
                marker = {"chapter": "?", "name": "?", "value": "?", "bound": "?"}
            if marker is not None:
                text = output.get("data", {}).get("text/plain", "")
                failed.append(f"{marker['chapter']}.{marker['name']}: measured {marker['value']}, must be {marker['bound']}\n{text}")
    return failed


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[path.stem for path in CHAPTERS])
def test_chapter_claims_hold(chapter, progress):
    """A claim that does not hold no longer stops its chapter (it shows a box on the page), so it is caught here."""
    failed = failed_claims(executed(chapter, progress))
    if failed:
        pytest.fail(f"{len(failed)} claim(s) of {chapter.stem} do not hold:\n" + "\n".join(failed), pytrace=False)


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[path.stem for path in CHAPTERS])
def test_chapter_and_its_exercises_are_in_the_table_of_contents(chapter):
    assert f"chapters/{chapter.stem}" in TOC
    if (REPO / "solutions" / f"{chapter.stem}.py").exists():
        assert f"exercises/{chapter.stem}/{chapter.stem}" in TOC


def test_a_failed_claim_in_an_executed_notebook_is_found():
    import nbformat

    from course.claims import ClaimFailure

    record = {"chapter": "ch99_demo", "name": "speedup", "value": 2.5, "bound": ">= 3", "kind": "timing",
              "statement": "three times faster", "machine": {"cores": 2, "cpu": "a CPU", "platform": "Linux",
                                                             "COURSE_SEED": "0", "COURSE_THREADS": "1"}}
    data, metadata = ClaimFailure(record)._repr_mimebundle_()
    cell = nbformat.v4.new_code_cell("claims.check(...)", outputs=[nbformat.v4.new_output("display_data", data=data, metadata=metadata)])
    notebook = nbformat.v4.new_notebook(cells=[cell, nbformat.v4.new_code_cell("print(1)")])
    (failed,) = failed_claims(notebook)
    assert failed.startswith("ch99_demo.speedup: measured 2.5, must be >= 3") and "three times faster" in failed
    assert failed_claims(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("1")])) == []
