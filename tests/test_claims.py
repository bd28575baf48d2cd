"""The claims register: a claim that does not hold is shown on its page and fails the build at the end.

The register's own behaviour is tested here on a temporary folder; the failure path end to end on a
small book built with the same extension and the same ``Claims`` class; the register the book build
wrote (``_build/claims.json``) is checked against the chapters that exist; and every claim in the
chapters states its kind.
"""

import ast
import json
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import jupytext
import pytest

from course.claims import KINDS, ClaimDoesNotHold, ClaimFailure, Claims, gather, summary

REPO = Path(__file__).resolve().parent.parent
REGISTER = REPO / "_build" / "claims.json"
CHAPTERS = sorted(path.stem for path in (REPO / "chapters").glob("ch*.md"))
JUPYTER_BOOK = Path(sys.executable).parent / "jupyter-book"


def test_a_claim_that_holds_is_recorded(tmp_path):
    claims = Claims("ch99_demo", folder=tmp_path)
    assert claims.check("speedup", 4.2, ">=", 3, "four times faster", glue=False, kind="timing") is None  # no Out[] under a figure
    (record,) = json.loads((tmp_path / "ch99_demo.json").read_text())
    assert record == {"name": "speedup", "value": 4.2, "bound": ">= 3", "holds": True, "chapter": "ch99_demo",
                      "relation": ">=", "limit": 3.0, "statement": "four times faster", "kind": "timing"}


@pytest.mark.parametrize("value", [2.9, float("nan"), float("inf") * -1])
def test_a_claim_that_does_not_hold_is_shown_recorded_as_false_and_the_chapter_goes_on(tmp_path, value, capsys):
    claims = Claims("ch99_demo", folder=tmp_path)
    claims.check("speedup", value, ">=", 3, "four times faster", glue=False, kind="timing")
    claims.check("after", 1, ">", 0, "a later claim still runs", glue=False, kind="computed")
    shown = capsys.readouterr().out  # outside a kernel, display() prints the box's text
    assert "ch99_demo.speedup does not hold" in shown and "four times faster" in shown and "load average" in shown
    failed, later = gather(tmp_path)
    assert failed["holds"] is False and later["holds"] is True
    assert {"torch", "torch_threads", "cpu", "cores"} <= failed["machine"].keys()
    assert [record["name"] for record in claims.failed()] == ["speedup"]


def test_the_box_names_the_claim_the_value_the_bound_the_sentence_and_the_machine(tmp_path):
    claims = Claims("ch99_demo", folder=tmp_path)
    claims.check("accuracy", 0.5, ">=", 0.9, "The model learns the <task>.", glue=False, kind="learned")
    box = ClaimFailure(claims.records[0])
    page = box._repr_html_()
    assert 'class="admonition warning claim-failed"' in page and 'data-claim="ch99_demo.accuracy"' in page
    for text in ["0.5", "&gt;= 0.9", "The model learns the &lt;task&gt;.", "learned", "COURSE_THREADS", "torch "]:
        assert text in page
    data, metadata = box._repr_mimebundle_()
    assert set(data) == {"text/plain", "text/html"}
    assert metadata["course_claim_failed"]["name"] == "accuracy"


def test_a_strict_register_raises(tmp_path):
    with pytest.raises(ClaimDoesNotHold, match="(?s)ch99_demo.speedup does not hold.*four times faster"):
        Claims("ch99_demo", folder=tmp_path, strict=True).check("speedup", 2.9, ">=", 3, "four times faster", glue=False)


def test_a_claim_can_be_forced_to_fail_for_testing(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_FORCE_FAIL_CLAIM", "ch99_demo.speedup, ch98_other.*")
    claims = Claims("ch99_demo", folder=tmp_path)
    claims.check("speedup", 4.2, ">=", 3, "four times faster", glue=False, kind="timing")
    claims.check("other", 4.2, ">=", 3, "not forced", glue=False, kind="timing")
    forced, other = gather(tmp_path)
    assert forced["holds"] is False and forced["forced"] is True and other["holds"] is True
    assert "forced" in capsys.readouterr().out.lower()
    Claims("ch98_other", folder=tmp_path).check("any", 1, ">", 0, "any", glue=False, kind="computed")
    assert gather(tmp_path, ["ch98_other"])[0]["holds"] is False


def test_the_register_folder_can_be_moved(tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_CLAIMS_DIR", str(tmp_path / "run1"))
    Claims("ch99_demo").check("x", 1, ">", 0, "x", glue=False, kind="computed")
    assert (tmp_path / "run1" / "ch99_demo.json").exists()
    assert [claim["name"] for claim in gather()] == ["x"]


def test_the_summary_fits_on_a_screen():
    claims = [{"chapter": "ch99_demo", "name": f"c{i}", "value": 1.0, "bound": ">= 2", "holds": False,
               "kind": "learned", "statement": "word " * 60} for i in range(30)]
    text = summary(claims + [{**claims[0], "name": "fine", "holds": True}])
    assert text.startswith("30 of 31 claims do not hold")
    assert len(text.splitlines()) <= 25 and max(map(len, text.splitlines())) <= 400
    assert "and 20 more" in text and summary(claims[:0]) == ""


def test_a_chapter_that_runs_again_starts_its_register_afresh(tmp_path):
    Claims("ch99_demo", folder=tmp_path).check("old", 1, ">", 0, "an old sentence", glue=False)
    Claims("ch99_demo", folder=tmp_path).check("new", 1, ">", 0, "a new sentence", glue=False)
    assert [claim["name"] for claim in gather(tmp_path)] == ["new"]


def test_a_name_is_registered_once_and_relations_and_kinds_are_known(tmp_path):
    claims = Claims("ch99_demo", folder=tmp_path)
    claims.check("ratio", 2, ">", 1, "twice", glue=False)
    with pytest.raises(ValueError, match="twice"):
        claims.check("ratio", 2, ">", 1, "twice", glue=False)
    with pytest.raises(ValueError, match="relation"):
        claims.check("other", 2, "=>", 1, "twice", glue=False)
    with pytest.raises(ValueError, match="kind"):
        claims.check("other", 2, ">", 1, "twice", glue=False, kind="measured")


def test_gather_keeps_only_the_chapters_asked_for(tmp_path):
    Claims("ch01_a", folder=tmp_path).check("x", 1, ">", 0, "x", glue=False)
    Claims("ch02_gone", folder=tmp_path).check("y", 1, ">", 0, "y", glue=False)
    assert [claim["chapter"] for claim in gather(tmp_path, ["ch01_a"])] == ["ch01_a"]


SMALL_BOOK = {
    "_config.yml": """
        title: Claims test book
        only_build_toc_files: true
        execute:
          execute_notebooks: cache
          timeout: 120
          allow_errors: false
        sphinx:
          local_extensions:
            claims_register: {ext}
          config:
            nb_execution_raise_on_error: true
            numfig: true
        """,
    "_toc.yml": """
        format: jb-book
        root: intro
        chapters:
        - file: chapters/ch01_fine
        - file: chapters/ch02_fails
        - file: chapters/ch03_after
        """,
    "intro.md": "# A small book\n\nThree chapters.\n",
    "chapters/ch01_fine.md": """
        ---
        jupytext:
          text_representation: {{extension: .md, format_name: myst}}
        kernelspec: {{display_name: Python 3, language: python, name: python3}}
        ---
        # Fine

        ```{{code-cell}} ipython3
        from course.claims import Claims
        claims = Claims("ch01_fine")
        claims.check("holds", 4.0, ">=", 3, "It holds.", kind="computed")
        ```

        The value is {{glue:text}}`holds:.1f`.
        """,
    "chapters/ch02_fails.md": """
        ---
        jupytext:
          text_representation: {{extension: .md, format_name: myst}}
        kernelspec: {{display_name: Python 3, language: python, name: python3}}
        ---
        # Fails

        ```{{code-cell}} ipython3
        from course.claims import Claims
        claims = Claims("ch02_fails")
        claims.check("speedup", 2.5, ">=", 3, "The matrix form is at least three times faster.", kind="timing")
        claims.check("forced", 7.0, ">=", 3, "A sentence whose claim is forced to fail.", kind="learned")
        ```

        The speed-up is {{glue:text}}`speedup:.2f` and the other value {{glue:text}}`forced:.1f`.

        ```{{code-cell}} ipython3
        ---
        mystnb:
          image:
            alt: A straight line.
          figure:
            name: fig-line
            caption: A figure whose cell also checks a claim that fails.
        ---
        import matplotlib
        matplotlib.use("agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(2, 2))
        ax.plot([0, 1], [0, 1])
        claims.check("in_figure_cell", 0.0, ">", 1, "A claim checked in a figure's cell.", kind="computed")
        ```

        {{numref}}`fig-line` is still a figure.

        ```{{code-cell}} ipython3
        print("the chapter went on after its failed claims")
        ```
        """,
    "chapters/ch03_after.md": """
        ---
        jupytext:
          text_representation: {{extension: .md, format_name: myst}}
        kernelspec: {{display_name: Python 3, language: python, name: python3}}
        ---
        # After

        ```{{code-cell}} ipython3
        from course.claims import Claims
        Claims("ch03_after").check("later", 1.0, ">", 0, "A later chapter still runs.", kind="computed")
        ```
        """,
}


def test_a_book_with_a_failed_claim_writes_every_page_shows_the_claim_and_exits_non_zero(tmp_path):
    """The failure path end to end, as `make book` runs it (jupyter-book build . -W -n --keep-going)."""
    book = tmp_path / "book"
    for name, text in SMALL_BOOK.items():
        (book / name).parent.mkdir(parents=True, exist_ok=True)
        (book / name).write_text(textwrap.dedent(text.format(ext=REPO / "_ext")).lstrip())
    env = {**os.environ, "COURSE_CLAIMS_DIR": str(book / "_build" / "claims"),
           "COURSE_FORCE_FAIL_CLAIM": "ch02_fails.forced", "PYTHONPATH": str(REPO)}
    run = subprocess.run([str(JUPYTER_BOOK), "build", str(book), "-W", "-n", "--keep-going"],
                         capture_output=True, text=True, env=env, timeout=240)
    output = run.stdout + run.stderr
    assert run.returncode != 0, output
    # The non-zero status comes from the failed claims, not from a Sphinx warning (-W turns those into errors).
    assert "claim(s) do not hold" in output and not re.search(r"WARNING: |ERROR: ", output), output[-3000:]
    html = book / "_build" / "html"
    for page in ["intro", "chapters/ch01_fine", "chapters/ch02_fails", "chapters/ch03_after"]:
        assert (html / f"{page}.html").exists(), f"{page} was not written\n{output[-3000:]}"
    failed_page = (html / "chapters" / "ch02_fails.html").read_text()
    assert failed_page.count("claim-failed") >= 2 and 'data-claim="ch02_fails.speedup"' in failed_page
    assert "The matrix form is at least three times faster." in failed_page
    assert "the chapter went on after its failed claims" in failed_page
    assert "2.50" in failed_page and "7.0" in failed_page, "the glued values are missing"
    assert 'data-claim="ch02_fails.in_figure_cell"' in failed_page and "<figure" in failed_page
    assert "claim-failed" not in (html / "chapters" / "ch01_fine.html").read_text()
    summary_text = output[output.index("claims do not hold in this build"):]
    assert "ch02_fails.speedup [timing]: measured 2.5, must be >= 3" in summary_text
    assert "ch02_fails.forced [learned]" in summary_text and "ch01_fine" not in summary_text
    from jupyter_cache import get_cache

    cached = {Path(record.uri).stem for record in get_cache(book / "_build" / ".jupyter_cache").list_cache_records()}
    assert cached == {"ch01_fine", "ch03_after"}, "a chapter whose claims failed must execute again next time"
    register = json.loads((book / "_build" / "claims.json").read_text())
    assert {(claim["name"], claim["holds"]) for claim in register} == {
        ("holds", True), ("speedup", False), ("forced", False), ("in_figure_cell", False), ("later", True)}


def _checks_in_chapters():
    """Every ``claims.check(...)`` call in the chapters' code cells: (chapter, line, its keywords)."""
    for chapter in sorted((REPO / "chapters").glob("ch*.md")):
        for cell in jupytext.read(chapter).cells:
            if cell.cell_type != "code":
                continue
            source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell.source.splitlines())
            for node in ast.walk(ast.parse(source)):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "check" \
                        and isinstance(node.func.value, ast.Name) and node.func.value.id == "claims":
                    yield chapter.stem, ast.get_source_segment(source, node).splitlines()[0], node.keywords


def test_every_claim_in_the_chapters_states_its_kind():
    checks = list(_checks_in_chapters())
    assert len(checks) >= 20
    missing = [f"{chapter}: {line}" for chapter, line, keywords in checks if not any(k.arg == "kind" for k in keywords)]
    if missing:
        pytest.fail(f"{len(missing)} of {len(checks)} claims.check calls lack kind= ({', '.join(KINDS)}):\n" + "\n".join(missing), pytrace=False)


@pytest.mark.skipif(not REGISTER.exists(), reason="the book is not built: run `make book` first")
def test_the_book_build_wrote_a_register_in_which_every_claim_holds_and_has_a_kind():
    claims = json.loads(REGISTER.read_text())
    for claim in claims:
        assert {"name", "value", "bound", "holds", "chapter", "kind"} <= claim.keys()
        assert claim["holds"], claim
        assert claim["kind"] in KINDS, f"{claim['chapter']}.{claim['name']} has no kind"
        assert claim["chapter"] in CHAPTERS
    names = [(claim["chapter"], claim["name"]) for claim in claims]
    assert len(names) == len(set(names)), "a claim is registered twice"
    assert len(claims) >= 20, f"only {len(claims)} claims are registered"


def test_the_summary_command_prints_the_failed_claims_of_a_register(tmp_path, capsys):
    from course.claims import main

    Claims("ch99_demo", folder=tmp_path).check("ok", 1, ">", 0, "fine", glue=False, kind="computed")
    register = tmp_path / "claims.json"
    register.write_text(json.dumps(gather(tmp_path)))
    assert main([str(register)]) == 0 and "all 1 claims hold" in capsys.readouterr().out
    register.write_text(json.dumps(gather(tmp_path) + [{**gather(tmp_path)[0], "name": "bad", "holds": False}]))
    assert main([str(register)]) == 1 and "ch99_demo.bad [computed]" in capsys.readouterr().out
    assert main([str(tmp_path / "absent.json")]) == 0
