"""The claims register: every sentence of the book that states a measured direction or size rests on a claim.

A claim is a name, the value a chapter measured, the bound that value must meet, and the chapter.
The chapter checks it where it measures it, so the book build fails as soon as a measurement stops
supporting the sentence written next to it::

    from course.claims import Claims
    claims = Claims("ch06_transformer")        # once, at the top of the chapter
    ...
    claims.check("decoder_speedup_t256", rnn_seconds / transformer_seconds, ">=", 3.0,
                 "At T = 256 the transformer decoder trains at least 3x faster per step.")

and the text uses the same number through MyST-NB's glue: ``{glue:text}`decoder_speedup_t256:.1f```
(``check`` glues the value under the claim's name).

Each chapter writes its claims to ``_build/claims/<chapter>.json`` when it executes (a chapter read
back from the execution cache keeps the file its run wrote); at the end of the book build the local
Sphinx extension ``_ext/claims_register.py`` gathers them into ``_build/claims.json``, a list of
objects with ``name``, ``value``, ``bound``, ``holds`` and ``chapter`` (plus ``relation``, ``limit``
and the ``statement`` the claim backs).

Bounds are chosen with margin: a busy 2-core machine must never flip a claim. A claim about
speed compares two timings taken on the same machine in the same run (a ratio), never a time
against a fixed number of seconds.
"""

from __future__ import annotations

import json
import math
import operator
from pathlib import Path

REGISTER_FOLDER = Path(__file__).resolve().parent.parent / "_build" / "claims"

KINDS = ("learned", "timing", "computed")

RELATIONS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}


class ClaimDoesNotHold(AssertionError):
    """A measurement no longer supports the sentence its claim backs."""


class Claims:
    """The claims of one chapter: check each where it is measured, and write them down."""

    def __init__(self, chapter: str, folder: Path | str = REGISTER_FOLDER):
        self.chapter = chapter
        self.path = Path(folder) / f"{chapter}.json"
        self.records: list[dict] = []
        self._write()  # a chapter that runs again starts its register afresh

    def check(self, name: str, value, relation: str, limit, statement: str, glue: bool = True, kind: str | None = None):
        """Record the claim ``value <relation> limit`` and raise ``ClaimDoesNotHold`` if it is false.

        ``kind`` says what the value is (:data:`KINDS`): ``"learned"`` (training produced it: it
        depends on seeds and step counts, and its bound must hold over seeds 0-2 and 1-2 threads),
        ``"timing"`` (a ratio of timings taken side by side) or ``"computed"`` (no training, no
        clock: an exact or seeded computation).

        ``statement`` is the sentence (or the gist of it) that the claim backs. With ``glue`` the
        value is glued under ``name`` for the chapter's text. Returns nothing, so that a check on
        the last line of a cell adds no output (a figure cell must have one output, the figure).
        """
        if relation not in RELATIONS:
            raise ValueError(f"relation must be one of {sorted(RELATIONS)}, not {relation!r}")
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if any(record["name"] == name for record in self.records):
            raise ValueError(f"claim {name!r} is registered twice in {self.chapter}")
        number = float(value)
        holds = math.isfinite(number) and bool(RELATIONS[relation](number, float(limit)))
        self.records.append({
            "name": name,
            "value": number,
            "bound": f"{relation} {limit:g}",
            "holds": holds,
            "chapter": self.chapter,
            "relation": relation,
            "limit": float(limit),
            "statement": statement,
            "kind": kind,
        })
        self._write()
        if glue:
            from myst_nb import glue as myst_glue

            myst_glue(name, value, display=False)
        if not holds:
            raise ClaimDoesNotHold(
                f"claim {self.chapter}.{name} does not hold: measured {number:.4g}, must be {relation} {limit:g}.\n"
                f"The sentence it backs: {statement}"
            )

    def _write(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.records, indent=1) + "\n")


def gather(folder: Path | str = REGISTER_FOLDER, chapters: list[str] | None = None) -> list[dict]:
    """Every registered claim, chapter by chapter; ``chapters`` limits them to chapters that exist."""
    claims = []
    for path in sorted(Path(folder).glob("*.json")):
        if chapters is None or path.stem in chapters:
            claims.extend(json.loads(path.read_text()))
    return claims
