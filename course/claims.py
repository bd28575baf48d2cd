"""The claims register: every sentence of the book that states a measured direction or size rests on a claim.

A claim is a name, the value a chapter measured, the bound that value must meet, the chapter, and its
kind. The chapter checks it where it measures it::

    from course.claims import Claims
    claims = Claims("ch06_transformer")        # once, at the top of the chapter
    ...
    claims.check("decoder_speedup_t256", rnn_seconds / transformer_seconds, ">=", 3.0,
                 "At T = 256 the transformer decoder trains at least 3x faster per step.", kind="timing")

and the text uses the same number through MyST-NB's glue: ``{glue:text}`decoder_speedup_t256:.1f```
(``check`` glues the value under the claim's name, whether or not the claim holds).

A claim that does not hold does not stop its chapter: ``check`` records it as not holding and shows,
in the cell's output, a warning box with the claim, the value measured, the bound, the sentence it
backs and what about this machine may differ (threads, torch version, CPU, load). The chapter goes on,
every page of the book is written, and at the end of the build the Sphinx extension
``_ext/claims_register.py`` prints a summary of the claims that failed and ends the build with a
non-zero status. ``Claims(..., strict=True)`` raises :class:`ClaimDoesNotHold` instead (for scripts).

Each chapter writes its claims to ``<register folder>/<chapter>.json`` when it executes (a chapter read
back from the execution cache keeps the file its run wrote). The register folder is
``_build/claims`` unless the environment variable ``COURSE_CLAIMS_DIR`` names another one
(benchmarks/claims_robustness.py gives each run its own). At the end of the book build the extension
gathers them into ``_build/claims.json``, a list of objects with ``name``, ``value``, ``bound``,
``holds``, ``chapter`` and ``kind`` (plus ``relation``, ``limit`` and the ``statement`` the claim backs;
a claim that does not hold also records ``machine``, what :func:`machine` saw).

For testing only: ``COURSE_FORCE_FAIL_CLAIM=<chapter>.<name>`` (comma-separated for several;
``<chapter>.*`` for all of a chapter's claims) records those claims as not holding whatever their
value, so that the failure path (box, summary, exit status) can be exercised
(tests/test_claims.py does, on a small book).

Bounds are chosen with margin: a busy 2-core machine must never flip a claim. A claim about
speed compares two timings taken on the same machine in the same run (a ratio), never a time
against a fixed number of seconds.
"""

from __future__ import annotations

import html
import json
import math
import operator
import os
import platform
from pathlib import Path

REGISTER_FOLDER = Path(__file__).resolve().parent.parent / "_build" / "claims"

KINDS = ("learned", "timing", "computed", "memory")

RELATIONS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}

FORCE_FAIL_VARIABLE = "COURSE_FORCE_FAIL_CLAIM"

# What each kind of claim depends on, said to a reader whose run did not meet the bound.
WHY = {
    "learned": "A learned value depends only on the seed (COURSE_SEED) and the training thread count "
               "(COURSE_THREADS); its bound was chosen below the worst of seeds 0-2 on 1 and 2 threads. "
               "A different torch version or CPU can still change the floating-point sums training makes.",
    "timing": "A timing claim is a ratio of timings taken side by side on this machine: a different CPU, "
              "fewer cores or other programs running at the same time (see the load) change it. "
              "Rebuild on a quiet machine before concluding anything.",
    "computed": "A computed value involves no training and no clock: a failure points to a different "
                "torch version (or platform) or to a change in the code.",
    "memory": "A memory figure is what a profiler (torch.profiler, tracemalloc) saw allocated during a call: no "
              "training and no clock, but it depends on the torch version, its allocator and the Python build "
              "(tracemalloc also counts what else the interpreter allocates).",
    None: "This claim does not say what kind of value it is (learned, timing, computed or memory).",
}


class ClaimDoesNotHold(AssertionError):
    """A measurement no longer supports the sentence its claim backs (raised only by strict registers)."""


def register_folder() -> Path:
    """Where chapters write their claims: ``$COURSE_CLAIMS_DIR`` if set, else ``_build/claims``."""
    folder = os.environ.get("COURSE_CLAIMS_DIR")
    return Path(folder) if folder else REGISTER_FOLDER


def forced_to_fail(chapter: str, name: str) -> bool:
    """Whether ``COURSE_FORCE_FAIL_CLAIM`` asks for this claim to fail (for testing the failure path)."""
    wanted = {item.strip() for item in os.environ.get(FORCE_FAIL_VARIABLE, "").split(",") if item.strip()}
    return f"{chapter}.{name}" in wanted or f"{chapter}.*" in wanted


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> dict:
    """What about this machine and run can make a measurement differ from the author's."""
    facts = {"cpu": _cpu_name(), "cores": os.cpu_count(), "platform": platform.platform(),
             "python": platform.python_version(),
             "COURSE_SEED": os.environ.get("COURSE_SEED", "0"),
             "COURSE_THREADS": os.environ.get("COURSE_THREADS", "1")}
    try:
        import torch

        facts["torch"] = torch.__version__
        facts["torch_threads"] = torch.get_num_threads()
    except ImportError:  # pragma: no cover - the course always has torch
        pass
    try:
        facts["load_average"] = [round(load, 2) for load in os.getloadavg()]
    except (OSError, AttributeError):  # not on Windows
        pass
    return facts


class ClaimFailure:
    """The box a chapter shows where a claim does not hold: HTML on the page, plain text elsewhere."""

    def __init__(self, record: dict):
        self.record = record

    def _lines(self) -> list[tuple[str, str]]:
        record, facts = self.record, self.record["machine"]
        load = facts.get("load_average")
        this_machine = (f"torch {facts.get('torch', '?')} on {facts.get('torch_threads', '?')} thread(s) "
                        f"(COURSE_THREADS={facts['COURSE_THREADS']}, COURSE_SEED={facts['COURSE_SEED']}); "
                        f"{facts['cores']} cores, {facts['cpu']}; {facts['platform']}"
                        + (f"; load average {load[0]:.2f} (1 min)" if load else ""))
        lines = [("Measured", f"{record['value']:.4g}"),
                 ("Must be", record["bound"]),
                 ("Kind", record["kind"] or "not stated"),
                 ("The sentence it backs", record["statement"]),
                 ("This machine", this_machine),
                 ("What may differ", WHY.get(record["kind"], WHY[None]))]
        if record.get("forced"):
            lines.insert(0, ("Forced", f"this claim was made to fail on purpose by {FORCE_FAIL_VARIABLE} (for testing)"))
        return lines

    def title(self) -> str:
        return f"Claim {self.record['chapter']}.{self.record['name']} does not hold in this run"

    def __str__(self) -> str:
        return "\n".join([f"WARNING: {self.title()}"] + [f"  {label}: {text}" for label, text in self._lines()])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        # The theme's admonition classes style it on the website; the inline style keeps it visible in
        # Jupyter and anywhere else the theme's CSS is absent.
        rows = "".join(f"<li><strong>{html.escape(label)}:</strong> {html.escape(text)}</li>" for label, text in self._lines())
        return (f'<div class="admonition warning claim-failed" data-claim="{html.escape(self.record["chapter"])}.'
                f'{html.escape(self.record["name"])}" role="alert" '
                'style="border-left: 0.3rem solid #d9822b; background: #fff4e5; color: #1a1a1a; padding: 0.5rem 1rem;">'
                f'<p class="admonition-title">{html.escape(self.title())}</p>'
                f"<ul>{rows}</ul>"
                "<p>The text next to this box states something this run did not measure: read it with this "
                "box in mind. The book's build ends with a list of every claim that failed (README, "
                "<em>When a claim fails</em>).</p></div>")

    def _repr_mimebundle_(self, include=None, exclude=None):
        # The metadata lets tests find a failed claim in an executed notebook without parsing HTML.
        data = {"text/plain": str(self), "text/html": self._repr_html_()}
        return data, {"course_claim_failed": {key: self.record[key] for key in ("chapter", "name", "value", "bound")}}


class Claims:
    """The claims of one chapter: check each where it is measured, and write them down."""

    def __init__(self, chapter: str, folder: Path | str | None = None, strict: bool = False):
        self.chapter = chapter
        self.path = Path(folder if folder is not None else register_folder()) / f"{chapter}.json"
        self.strict = strict
        self.records: list[dict] = []
        self._write()  # a chapter that runs again starts its register afresh

    def check(self, name: str, value, relation: str, limit, statement: str, glue: bool = True, kind: str | None = None):
        """Record the claim ``value <relation> limit``; where it is false, show a warning box and go on.

        ``kind`` says what the value is (:data:`KINDS`): ``"learned"`` (training produced it: it
        depends on seeds and step counts, and its bound must hold over seeds 0-2 and 1-2 threads),
        ``"timing"`` (a ratio of timings taken side by side), ``"computed"`` (no training, no
        clock: an exact or seeded computation) or ``"memory"`` (what a profiler or tracemalloc saw
        allocated: it depends on torch's allocator and the Python build). Every claim in the book states it (tests/test_claims.py).

        ``statement`` is the sentence (or the gist of it) that the claim backs. With ``glue`` the
        value is glued under ``name`` for the chapter's text, whether or not the claim holds. A claim
        that holds adds no output (a figure cell must have one output, the figure); one that does not
        displays a :class:`ClaimFailure` box (or raises :class:`ClaimDoesNotHold` if the register is strict).
        Returns nothing.
        """
        if relation not in RELATIONS:
            raise ValueError(f"relation must be one of {sorted(RELATIONS)}, not {relation!r}")
        if kind is not None and kind not in KINDS:
            raise ValueError(f"kind must be one of {KINDS}, not {kind!r}")
        if any(record["name"] == name for record in self.records):
            raise ValueError(f"claim {name!r} is registered twice in {self.chapter}")
        number = float(value)
        holds = math.isfinite(number) and bool(RELATIONS[relation](number, float(limit)))
        record = {
            "name": name,
            "value": number,
            "bound": f"{relation} {limit:g}",
            "holds": holds,
            "chapter": self.chapter,
            "relation": relation,
            "limit": float(limit),
            "statement": statement,
            "kind": kind,
        }
        if forced_to_fail(self.chapter, name):
            record.update(holds=False, forced=True)
        if not record["holds"]:
            record["machine"] = machine()
        self.records.append(record)
        self._write()
        if glue:
            from myst_nb import glue as myst_glue

            if hasattr(value, "item"):  # a numpy or torch scalar: glue the Python number, which MyST formats
                value = value.item()
            myst_glue(name, value, display=False)
        if not record["holds"]:
            failure = ClaimFailure(record)
            if self.strict:
                raise ClaimDoesNotHold(str(failure))
            from IPython.display import display

            display(failure)

    def failed(self) -> list[dict]:
        """The claims checked so far that do not hold."""
        return [record for record in self.records if not record["holds"]]

    def _write(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self.records, indent=1) + "\n")


def gather(folder: Path | str | None = None, chapters: list[str] | None = None) -> list[dict]:
    """Every registered claim, chapter by chapter; ``chapters`` limits them to chapters that exist."""
    claims = []
    for path in sorted(Path(folder if folder is not None else register_folder()).glob("*.json")):
        if chapters is None or path.stem in chapters:
            claims.extend(json.loads(path.read_text()))
    return claims


def summary(claims: list[dict], width: int = 100) -> str:
    """A one-screen summary of the claims that do not hold (empty if every claim holds)."""
    failing = [claim for claim in claims if not claim["holds"]]
    if not failing:
        return ""
    lines = [f"{len(failing)} of {len(claims)} claims do not hold in this build:"]
    shown, rest = failing[:10], failing[10:]  # one screen: the rest by name only
    for claim in shown:
        forced = " (forced by COURSE_FORCE_FAIL_CLAIM)" if claim.get("forced") else ""
        lines.append(f"  {claim['chapter']}.{claim['name']} [{claim.get('kind') or 'kind?'}]: "
                     f"measured {claim['value']:.4g}, must be {claim['bound']}{forced}")
        statement = " ".join(claim["statement"].split())
        lines.append(f"      backs: {statement if len(statement) <= width - 12 else statement[:width - 15] + '...'}")
    if rest:
        lines.append(f"  and {len(rest)} more: " + ", ".join(f"{claim['chapter']}.{claim['name']}" for claim in rest))
    lines.append("Each is shown in a box on its chapter's page. What to do: README.md, 'When a claim fails'.")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """``python -m course.claims [register.json]``: the summary of the failed claims in a register; status 1 if any."""
    import sys
    import time

    arguments = sys.argv[1:] if argv is None else argv
    path = Path(arguments[0]) if arguments else REGISTER_FOLDER.parent / "claims.json"
    if not path.exists():
        print(f"no claims register at {path}")
        return 0
    claims = json.loads(path.read_text())
    text = summary(claims)
    written = time.strftime("%Y-%m-%d %H:%M", time.localtime(path.stat().st_mtime))
    print(f"{path} (written {written}): " + (text if text else f"all {len(claims)} claims hold."))
    return 1 if text else 0


if __name__ == "__main__":
    raise SystemExit(main())
