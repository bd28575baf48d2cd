"""Figures (and tables, code listings) numbered per chapter: "Fig. 7.1", not "Fig. 14".

Sphinx numbers figures per section only under a numbered toctree, and Jupyter Book restarts that
numbering in each part of the book; the chapters' titles carry their numbers already ("# 3.
Attention as an operator"). So after Sphinx has numbered every figure through the book, this
renumbers them from the page's chapter: a page ``chapters/chNN_*`` or ``exercises/chNN_*/...`` is
chapter NN, and its figures become (NN, 1), (NN, 2), ... in the order Sphinx found them, the
chapter's page before its exercises. Captions and {numref} references both read these numbers.
Pages outside a chapter keep Sphinx's numbers.
"""

import re

CHAPTER_PAGE = re.compile(r"^(chapters|exercises)/ch(\d+)_")


def chapter_of(docname: str) -> int | None:
    match = CHAPTER_PAGE.match(docname)
    return int(match.group(2)) if match else None


def renumber_per_chapter(fignumbers: dict) -> dict:
    """{docname: {figtype: {id: number}}} -> the same with each chapter's figures numbered (chapter, k)."""
    renumbered = {docname: {figtype: dict(ids) for figtype, ids in numbers.items()} for docname, numbers in fignumbers.items()}
    chapters: dict[int, list[str]] = {}
    for docname in fignumbers:
        if chapter_of(docname) is not None:
            chapters.setdefault(chapter_of(docname), []).append(docname)
    for chapter, docnames in chapters.items():
        counters: dict[str, int] = {}
        for docname in sorted(docnames, key=lambda name: (not name.startswith("chapters/"), name)):
            for figtype, ids in fignumbers[docname].items():
                for figure_id in sorted(ids, key=lambda i: ids[i]):
                    counters[figtype] = counters.get(figtype, 0) + 1
                    renumbered[docname][figtype][figure_id] = (chapter, counters[figtype])
    return renumbered


def _renumber(app, env):
    env.toc_fignumbers = renumber_per_chapter(env.toc_fignumbers)
    return []


def setup(app):
    # After Sphinx's own numbering (the toctree collector, default priority 500).
    app.connect("env-get-updated", _renumber, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
