"""Every chapter executes from top to bottom, as the book build will run it."""

from pathlib import Path

import jupytext
import pytest
from nbclient import NotebookClient

REPO = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((REPO / "chapters").glob("ch*.md"))
TOC = (REPO / "_toc.yml").read_text()


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[path.stem for path in CHAPTERS])
def test_chapter_executes_without_error(chapter):
    notebook = jupytext.read(chapter)
    NotebookClient(notebook, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(chapter.parent)}}).execute()
    errors = [output for cell in notebook.cells for output in cell.get("outputs", []) if output.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[path.stem for path in CHAPTERS])
def test_chapter_and_its_exercises_are_in_the_table_of_contents(chapter):
    assert f"chapters/{chapter.stem}" in TOC
    if (REPO / "solutions" / f"{chapter.stem}.py").exists():
        assert f"exercises/{chapter.stem}/{chapter.stem}" in TOC
