"""Chapter prose types no measured-looking number: a measurement reaches the text through glue.

Every number a chapter's prose states about its own run comes from the executed run through
``{glue:text}`` (course/claims.py glues every claim's value). A number typed into the prose next to a
unit of measurement (%, s, ms, µs, ×, "times faster", BLEU, chrF, MiB/GiB/MB/GB, GFLOP/s, tokens/s,
parameters) or a decimal beside a word such as accuracy or loss is either such a measurement, typed
by hand (it goes stale: glue it and back it with a claim), or a value from the literature or a
definition, which then goes on the explicit list in ``tests/prose_numbers_allowed.yaml`` with the
exact phrase and why it is allowed.

What is not a measurement and not flagged: math (``$...$``, ``$$...$$``, math blocks), code (cells,
fences, inline code), glued values, cross-references and citations, chapter/section/figure/equation
numbers, years, list counts, and each chapter's "**Time:** about 45 minutes" line (a reading time).

``python tests/test_prose_numbers.py`` lists the flagged sentences chapter by chapter (issue 21).
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parent.parent
CHAPTERS = sorted((REPO / "chapters").glob("ch*.md"))
ALLOWED_FILE = Path(__file__).with_name("prose_numbers_allowed.yaml")

NUMBER = r"(?<![\w.])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
SPELLED = r"(?:two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|twenty|thirty|forty|fifty|hundred|a hundred|a thousand|half|one and a half)"
UNIT = (r"%|per ?cent\b|percentage points?\b|pp\b"
        r"|(?:ms|µs|us|ns|s|sec|secs|seconds?|milliseconds?|microseconds?|minutes?|min|hours?|h)\b"
        r"|(?:×|x\b)(?!\s*\d)"
        r"|(?:[KMGT]i?B|kB)\b|(?:bytes?)\b"
        r"|(?:[kMGTP]?FLOP/s|[kMGTP]?FLOPS?|MFU)\b|(?:tokens?|samples?|steps?|images?|sentences?|verses?) ?(?:/ ?s|per second)\b"
        r"|(?:BLEU|chrF)\b"
        r"|(?:[kKMB] )?(?:parameters|params)\b")
PATTERNS = [
    ("number with a unit", re.compile(rf"{NUMBER}\s*(?:{UNIT})", re.IGNORECASE)),
    ("score after its name", re.compile(rf"\b(?:BLEU|chrF|MFU|accuracy|perplexity|loss)\s*(?:of|=|:|is|was|at|reaches|near|around|about)?\s*(?:about\s+)?{NUMBER}", re.IGNORECASE)),
    ("N times faster", re.compile(rf"(?:{NUMBER}|\b{SPELLED})\s*(?:-|\s)?times\s+(?:faster|slower|more|fewer|less|larger|smaller|bigger|longer|shorter|as|higher|lower|the)\b", re.IGNORECASE)),
    ("a spelled-out duration", re.compile(rf"\b{SPELLED}\s+(?:seconds?|minutes?|hours?|milliseconds?)\b", re.IGNORECASE)),
    ("twice or half", re.compile(r"\b(?:twice as (?:fast|slow|long|many|much|large)|twice the|half the (?:time|cost|memory|steps|computation))\b", re.IGNORECASE)),
    ("a fraction in M or k", re.compile(rf"{NUMBER}\s?(?:M|k|B)\b(?!\w)")),
]
# A decimal in a sentence about a measured quantity: "an accuracy near 0.97", "the loss falls to 1.9".
DECIMAL = re.compile(r"(?<![\w.$])\d+\.\d+(?![\w.])")
MEASURE_WORDS = re.compile(r"\b(?:accurac(?:y|ies)|loss(?:es)?|perplexity|error|score|BLEU|chrF|exact[- ]match|reach(?:es|ed)?|"
                           r"measured|falls?|fell|drops?|dropped|rises?|rose|gets?|got|achiev(?:es|ed)|speed-?up|faster|slower)\b",
                           re.IGNORECASE)

# Removed before looking for numbers: what is not prose, or whose numbers are not measurements.
STRIP = [
    re.compile(r"\{glue(?::\w+)?\}`[^`]*`"),                 # glued values: from the run
    re.compile(r"\{(?:numref|ref|doc|eq|cite(?::\w+)?|term|download|abbr)\}`[^`]*`"),  # references, citations
    re.compile(r"``[^`]*``|`[^`]*`"),                        # inline code
    re.compile(r"\$\$.*?\$\$|\$[^$]*\$", re.DOTALL),        # math
    re.compile(r"\]\([^)]*\)"),                              # link targets
    re.compile(r"<!--.*?-->", re.DOTALL),                    # comments
    re.compile(r"https?://\S+"),
    re.compile(r"\b(?:chapters?|sections?|figures?|fig\.|tables?|equations?|eq\.|exercises?|parts?|steps?|lines?|verses?|"
               r"listing|appendix|version|python|torch|pytorch|level|page|issue|#)\s*\(?\d+(?:\.\d+)*\)?(?:\s*(?:and|to|-|–|,)\s*\d+(?:\.\d+)*)*",
               re.IGNORECASE),
    re.compile(r"\b(?:1[89]|20)\d\d[a-z]?\b"),               # years
    re.compile(r"\bet al\.?,?\s*\(?\d{4}\)?"),
]


def prose_paragraphs(text: str):
    """(first line number, paragraph) for the markdown outside code cells, fences, math blocks and front matter."""
    lines = text.splitlines()
    start = 0
    if lines and lines[0].strip() == "---":
        start = next(i for i in range(1, len(lines)) if lines[i].strip() == "---") + 1
    paragraph, first, fence = [], None, None
    for number, line in enumerate(lines[start:], start=start + 1):
        stripped = line.strip()
        if fence:
            if stripped.startswith(fence) and stripped.strip("`~:") == "":
                fence = None
            continue
        opening = re.match(r"^(`{3,}|~{3,}|:{3,})\s*(\{[\w:-]+\})?\s*(.*)$", stripped)
        if opening:
            kind = opening.group(2) or ""
            if kind in ("", "{code-cell}", "{code-block}", "{code}", "{math}", "{raw}", "{glue:figure}", "{glue:math}") \
                    or not kind and opening.group(1).startswith("`"):
                fence = opening.group(1)[:3]
                if paragraph:
                    yield first, " ".join(paragraph)
                    paragraph, first = [], None
                continue
            # An admonition or figure: its options are not prose, its body is.
            if paragraph:
                yield first, " ".join(paragraph)
                paragraph, first = [], None
            continue
        if stripped.startswith(":") and re.match(r"^:[\w-]+:", stripped) or stripped.startswith("+++") \
                or re.match(r"^\(\S+\)=$", stripped) or stripped.startswith("**Time:**"):
            continue
        if not stripped:
            if paragraph:
                yield first, " ".join(paragraph)
            paragraph, first = [], None
            continue
        stripped = re.sub(r"^(?:[*+-]|\d+[.)])\s+", "", stripped)  # list markers and their counts
        stripped = re.sub(r"^#+\s*\d+(?:\.\d+)*\.?\s*", "", stripped)  # numbered headings
        if first is None:
            first = number
        paragraph.append(stripped)
    if paragraph:
        yield first, " ".join(paragraph)


def sentences(paragraph: str):
    return [s for s in re.split(r"(?<=[.!?])\s+(?=[A-Z({*_\"'])", paragraph) if s.strip()]


def clean(sentence: str) -> str:
    for pattern in STRIP:
        sentence = pattern.sub(" ", sentence)
    return sentence


def measured_numbers(sentence: str) -> list[str]:
    """The measured-looking numbers typed in one sentence of prose (after ``clean``)."""
    text = clean(sentence)
    found = [match.group(0).strip() for _, pattern in PATTERNS for match in pattern.finditer(text)]
    if MEASURE_WORDS.search(text):
        found += [match.group(0) for match in DECIMAL.finditer(text)
                  if not any(match.group(0) in hit for hit in found)]
    return found


def load_allowed() -> list[dict]:
    entries = yaml.safe_load(ALLOWED_FILE.read_text()) or [] if ALLOWED_FILE.exists() else []
    for entry in entries:
        assert {"chapter", "phrase", "why"} <= entry.keys(), entry
    return entries


def flagged(chapter: Path, allowed: list[dict] | None = None) -> list[tuple[int, str, list[str]]]:
    """(line, sentence, numbers) for every sentence that types a measured-looking number not on the list."""
    allowed = load_allowed() if allowed is None else allowed
    phrases = [entry["phrase"] for entry in allowed if entry["chapter"] == chapter.stem]
    result = []
    for line, paragraph in prose_paragraphs(chapter.read_text()):
        for sentence in sentences(paragraph):
            numbers = measured_numbers(sentence)
            if numbers and not any(phrase in sentence for phrase in phrases):
                result.append((line, sentence, numbers))
    return result


FLAG = [
    "The transformer trains 3.2 times faster than the RNN.",
    "It reaches 97% exact match.",
    "Training takes about 36 s on two cores.",
    "one step costs 12 ms",
    "a speed-up of 7.8× at T = 256",
    "The model scores 12.3 BLEU on the test verses.",
    "BLEU of 14 and chrF of 40",
    "the cache needs 256 MiB",
    "about 2.1 GFLOP/s",
    "it processes 12,000 tokens/s",
    "a model of 0.33 M parameters",
    "The accuracy falls to 0.35 at length 20.",
    "the validation loss reaches 1.91",
    "in three times the steps, twice as fast: three times faster",
    "The run takes about three minutes.",
    "It trains in half the time.",
]
PASS = [
    "Scores are divided by $\\sqrt{d}$ with $d = 64$.",
    "See chapter 3 and section 2.1, equation (4) and figure 2.",
    "Vaswani et al. (2017) introduced the transformer; Bahdanau et al., 2015.",
    "The accuracy is {glue:text}`accuracy:.0%` after {glue:text}`steps:d` steps.",
    "1. First item with 3 heads",
    "The model has 4 layers and 8 heads of width 64.",
    "We use `torch.set_num_threads(1)` and `x = 3.5 * y`.",
    "**Time:** about 45 minutes to read, 60 minutes for the exercises.",
    "The run prints its loss every 100 steps.",
    "a 1024 × 1024 matrix product of 64 × 256 tokens",
    "the largest of 16 weights",
]


@pytest.mark.parametrize("sentence", FLAG)
def test_the_detector_flags_a_typed_measurement(sentence):
    found = [numbers for _, paragraph in prose_paragraphs(sentence) for s in sentences(paragraph) if (numbers := measured_numbers(s))]
    assert found, sentence


@pytest.mark.parametrize("sentence", PASS)
def test_the_detector_leaves_math_references_glue_and_counts_alone(sentence):
    found = [numbers for _, paragraph in prose_paragraphs(sentence) for s in sentences(paragraph) if (numbers := measured_numbers(s))]
    assert not found, (sentence, found)


def test_code_cells_math_blocks_and_front_matter_are_not_prose():
    text = ("---\njupytext: {x: 1}\n---\n# 3. A chapter\n\n```{code-cell} ipython3\nprint('97% in 3 s')\n```\n\n"
            "$$\n x = 0.97 \\text{ accuracy} \n$$\n\n```{admonition} Note\n:class: tip\nIt runs 5 times faster.\n```\n")
    flagged_text = [s for _, p in prose_paragraphs(text) for s in sentences(p) if measured_numbers(s)]
    assert flagged_text == ["It runs 5 times faster."]


def test_every_allowed_phrase_is_still_in_its_chapter_and_says_why():
    texts = {chapter.stem: chapter.read_text() for chapter in CHAPTERS}
    for entry in load_allowed():
        assert entry["why"].strip(), entry
        assert entry["chapter"] in texts, f"no chapter {entry['chapter']}"
        assert entry["phrase"] in " ".join(texts[entry["chapter"]].split()), f"not in {entry['chapter']}: {entry['phrase']!r}"


@pytest.mark.parametrize("chapter", CHAPTERS, ids=[path.stem for path in CHAPTERS])
def test_chapter_prose_types_no_measured_number_that_is_not_glued_or_listed(chapter):
    found = flagged(chapter)
    if found:
        pytest.fail(f"{chapter.stem}: {len(found)} sentence(s) type a measured-looking number; glue it from the run "
                    f"(and back it with a claim) or, for a cited or definitional value, list the phrase in "
                    f"{ALLOWED_FILE.name}:\n" + "\n".join(f"  line {line}: {numbers}: {sentence}" for line, sentence, numbers in found),
                    pytrace=False)


if __name__ == "__main__":
    total = 0
    for chapter in CHAPTERS if len(sys.argv) < 2 else [c for c in CHAPTERS if any(c.stem.startswith(a) for a in sys.argv[1:])]:
        found = flagged(chapter)
        total += len(found)
        print(f"## {chapter.stem}: {len(found)}")
        for line, sentence, numbers in found:
            print(f"- line {line}: {', '.join(numbers)} — {sentence}")
    print(f"{total} sentences flagged")
