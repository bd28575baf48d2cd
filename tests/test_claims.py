"""The claims register: a claim that does not hold stops its chapter; the book build writes them all.

The register's own behaviour is tested here on a temporary folder; the register the book build
wrote (``_build/claims.json``) is checked against the chapters that exist.
"""

import json
from pathlib import Path

import pytest

from course.claims import Claims, ClaimDoesNotHold, gather

REPO = Path(__file__).resolve().parent.parent
REGISTER = REPO / "_build" / "claims.json"
CHAPTERS = sorted(path.stem for path in (REPO / "chapters").glob("ch*.md"))


def test_a_claim_that_holds_is_recorded(tmp_path):
    claims = Claims("ch99_demo", folder=tmp_path)
    assert claims.check("speedup", 4.2, ">=", 3, "four times faster", glue=False) is None  # no Out[] under a figure
    (record,) = json.loads((tmp_path / "ch99_demo.json").read_text())
    assert record == {"name": "speedup", "value": 4.2, "bound": ">= 3", "holds": True, "chapter": "ch99_demo",
                      "relation": ">=", "limit": 3.0, "statement": "four times faster"}


@pytest.mark.parametrize("value", [2.9, float("nan"), float("inf") * -1])
def test_a_claim_that_does_not_hold_raises_and_is_recorded_as_false(tmp_path, value):
    claims = Claims("ch99_demo", folder=tmp_path)
    with pytest.raises(ClaimDoesNotHold, match="(?s)ch99_demo.speedup does not hold.*four times faster"):
        claims.check("speedup", value, ">=", 3, "four times faster", glue=False)
    (record,) = gather(tmp_path)
    assert record["holds"] is False


def test_a_chapter_that_runs_again_starts_its_register_afresh(tmp_path):
    Claims("ch99_demo", folder=tmp_path).check("old", 1, ">", 0, "an old sentence", glue=False)
    Claims("ch99_demo", folder=tmp_path).check("new", 1, ">", 0, "a new sentence", glue=False)
    assert [claim["name"] for claim in gather(tmp_path)] == ["new"]


def test_a_name_is_registered_once_and_relations_are_known(tmp_path):
    claims = Claims("ch99_demo", folder=tmp_path)
    claims.check("ratio", 2, ">", 1, "twice", glue=False)
    with pytest.raises(ValueError, match="twice"):
        claims.check("ratio", 2, ">", 1, "twice", glue=False)
    with pytest.raises(ValueError, match="relation"):
        claims.check("other", 2, "=>", 1, "twice", glue=False)


def test_gather_keeps_only_the_chapters_asked_for(tmp_path):
    Claims("ch01_a", folder=tmp_path).check("x", 1, ">", 0, "x", glue=False)
    Claims("ch02_gone", folder=tmp_path).check("y", 1, ">", 0, "y", glue=False)
    assert [claim["chapter"] for claim in gather(tmp_path, ["ch01_a"])] == ["ch01_a"]


@pytest.mark.skipif(not REGISTER.exists(), reason="the book is not built: run `make book` first")
def test_the_book_build_wrote_a_register_in_which_every_claim_holds():
    claims = json.loads(REGISTER.read_text())
    for claim in claims:
        assert {"name", "value", "bound", "holds", "chapter"} <= claim.keys()
        assert claim["holds"], claim
        assert claim["chapter"] in CHAPTERS
    names = [(claim["chapter"], claim["name"]) for claim in claims]
    assert len(names) == len(set(names)), "a claim is registered twice"
    assert len(claims) >= 20, f"only {len(claims)} claims are registered"
