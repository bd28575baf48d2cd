"""The chapters as Jupyter notebooks, for the website's Binder and Colab buttons.

Chapters are written in MyST Markdown (``chapters/*.md``): Jupyter opens them through jupytext,
but Colab opens only ``.ipynb``. So ``python -m course.notebooks`` (part of ``make release``)
writes ``chapters/<chapter>.ipynb`` next to each chapter, without outputs, and with one cell in
front that fetches the course's shared code and data when they are missing, as on Colab. The
book build ignores these files (``exclude_patterns`` in _config.yml), and the theme points its
launch buttons at them, since it prefers an ``.ipynb`` of the same name. The exercises get the
same cell, read-only, before their first code cell (grading/assignments.py puts it in).

tests/test_notebooks.py fails while a notebook is out of date with its chapter.
"""

import argparse
from pathlib import Path

import jupytext
import nbformat
import yaml

REPO = Path(__file__).resolve().parent.parent
CHAPTERS = REPO / "chapters"
SETUP_CELL_ID = "colab-setup"


def repository_url() -> str:
    """The course's public repository, as _config.yml gives it to the website's buttons."""
    config = yaml.safe_load((REPO / "_config.yml").read_text(encoding="utf-8"))
    return config["repository"]["url"]


def setup_cell_source(url: str, for_chapter: bool = True) -> str:
    """Code that, where ``course`` is not importable, clones the repository and puts it on sys.path.

    Colab has torch, numpy, matplotlib, scikit-learn and tqdm; of the chapters' imports it lacks
    myst_nb and sacrebleu, which the chapter's cell installs too (the exercises do not use myst_nb).
    """
    folder = url.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")
    source = f"""\
# Colab, or any Jupyter without this course installed: fetch the course's shared code and data.
# Where the course is installed (`make setup`, Binder) this cell does nothing.
import importlib.util
import os
import subprocess
import sys

if importlib.util.find_spec("course") is None:
    if not os.path.isdir({folder!r}):
        subprocess.run(["git", "clone", "--quiet", "--depth=1", {url!r}, {folder!r}], check=True)
    sys.path.insert(0, os.path.abspath({folder!r}))"""
    if for_chapter:
        source += """
# What Colab lacks: myst_nb (`glue`, which hands numbers to the website's text), sacrebleu (chapter 8).
for module, package in [("myst_nb", "myst-nb"), ("sacrebleu", "sacrebleu")]:
    if importlib.util.find_spec(module) is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", package], check=True)"""
    return source


def chapter_notebook(chapter: Path, url: str) -> nbformat.NotebookNode:
    """A chapter as a notebook: the setup cell, then the chapter's own cells, no outputs."""
    notebook = jupytext.read(chapter)
    setup = nbformat.v4.new_code_cell(setup_cell_source(url), id=SETUP_CELL_ID)
    setup.metadata["tags"] = ["remove-cell"]
    notebook.cells.insert(0, setup)
    for index, cell in enumerate(notebook.cells[1:]):
        cell.id = f"cell-{index:03d}"  # stable ids: regenerating an unchanged chapter changes nothing
    notebook.metadata.pop("jupytext", None)
    return notebook


def chapter_paths() -> list[Path]:
    return sorted(CHAPTERS.glob("ch*.md"))


def notebook_path(chapter: Path) -> Path:
    return chapter.with_suffix(".ipynb")


def write_notebooks(chapters: list[Path]) -> None:
    url = repository_url()
    for chapter in chapters:
        nbformat.write(chapter_notebook(chapter, url), notebook_path(chapter))
        print(f"wrote {notebook_path(chapter).relative_to(REPO)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("chapters", nargs="*", type=Path, help="default: every chapters/ch*.md")
    args = parser.parse_args()
    write_notebooks([path.resolve() for path in args.chapters] or chapter_paths())


if __name__ == "__main__":
    main()
