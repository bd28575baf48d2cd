"""benchmarks/claims_robustness.py's table, on fake claim files (no chapter runs)."""

import importlib.util
import json
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
spec = importlib.util.spec_from_file_location("claims_robustness", REPO / "benchmarks" / "claims_robustness.py")
robustness = importlib.util.module_from_spec(spec)
spec.loader.exec_module(robustness)


def claim(name, value, relation, limit, kind="learned"):
    return {"name": name, "value": value, "bound": f"{relation} {limit:g}", "holds": True, "chapter": "ch99_demo",
            "relation": relation, "limit": float(limit), "statement": name, "kind": kind}


def fake_runs(tmp_path, values):
    """values: {(seed, threads): {"accuracy": .., "loss": .., "speedup": ..}}"""
    for (seed, threads), by_name in values.items():
        folder = tmp_path / f"seed{seed}-threads{threads}"
        folder.mkdir()
        claims = [claim("accuracy", by_name["accuracy"], ">=", 0.9), claim("loss", by_name["loss"], "<=", 1.0),
                  claim("speedup", by_name["speedup"], ">=", 2, kind="timing")]
        (folder / "ch99_demo.json").write_text(json.dumps(claims))
        (folder / "ch99_demo.status.json").write_text(json.dumps(
            {"chapter": "ch99_demo", "seed": seed, "threads": threads, "seconds": 12.0, "ok": True, "error": ""}))


VALUES = {(0, 1): {"accuracy": 0.97, "loss": 0.5, "speedup": 3.0}, (0, 2): {"accuracy": 0.95, "loss": 0.5, "speedup": 3.5},
          (1, 1): {"accuracy": 0.93, "loss": 0.8, "speedup": 2.5}, (1, 2): {"accuracy": 0.93, "loss": 0.8, "speedup": 2.1}}


def test_worst_margin_and_thread_sensitivity(tmp_path):
    fake_runs(tmp_path, VALUES)
    rows = {row["name"]: row for row in robustness.summarise(robustness.load_runs(tmp_path), kinds=None)}
    accuracy, loss, speedup = rows["accuracy"], rows["loss"], rows["speedup"]
    assert accuracy["worst"] == 0.93 and abs(accuracy["margin"] - 0.03) < 1e-12 and accuracy["holds_at_worst"]
    assert accuracy["differs_with_threads"] and abs(accuracy["thread_difference"] - 0.02) < 1e-12
    assert loss["worst"] == 0.8 and abs(loss["margin"] - 0.2) < 1e-12 and not loss["differs_with_threads"]
    assert speedup["worst"] == 2.1 and speedup["holds_at_worst"]
    assert set(robustness.summarise(robustness.load_runs(tmp_path)) [0].keys()) >= {"worst", "margin"}
    assert [row["name"] for row in robustness.summarise(robustness.load_runs(tmp_path))] == ["accuracy", "loss"]


def test_a_bound_above_the_worst_value_is_reported(tmp_path):
    fake_runs(tmp_path, {**VALUES, (2, 1): {"accuracy": 0.88, "loss": 1.2, "speedup": 1.5}})
    text = robustness.report(tmp_path, kinds=("learned",))
    lines = {line.split(" | ")[0].strip("| "): line for line in text.splitlines() if line.startswith("| ch99")}
    assert "**NO** (missing in 0" not in lines["ch99_demo.accuracy"]
    assert "| 0.88 | -0.02 (-2%) | **NO** |" in lines["ch99_demo.accuracy"]
    assert "**differs** (up to 0.02)" in lines["ch99_demo.accuracy"]
    assert "| 1.2 | -0.2 (-20%) | **NO** | equal |" in lines["ch99_demo.loss"]
    assert "ch99_demo.speedup" not in text.split("\n\n")[1]  # timing claims only with --kinds all
    assert "bound not clear of the worst value: 2 (ch99_demo.accuracy, ch99_demo.loss)" in text
    assert "learned values that change between 1 and 2 threads: 1 (ch99_demo.accuracy)" in text
    header = next(line for line in text.splitlines() if line.startswith("| claim"))
    assert header == ("| claim | kind | bound | s0/t1 | s0/t2 | s1/t1 | s1/t2 | s2/t1 | worst | margin | "
                      "holds at worst | 1 vs 2 threads |")


def test_a_claim_missing_from_a_run_and_a_non_finite_value(tmp_path):
    fake_runs(tmp_path, VALUES)
    folder = tmp_path / "seed0-threads1"
    claims = json.loads((folder / "ch99_demo.json").read_text())
    claims[0]["value"] = float("nan")
    (folder / "ch99_demo.json").write_text(json.dumps(claims[:2]))
    (tmp_path / "seed1-threads1" / "ch99_demo.json").write_text(json.dumps(claims[1:]))
    rows = {row["name"]: row for row in robustness.summarise(robustness.load_runs(tmp_path))}
    assert rows["accuracy"]["worst"] == float("-inf") and not rows["accuracy"]["holds_at_worst"]
    assert rows["accuracy"]["missing"] == [(1, 1)]
    assert "missing in 1 run(s)" in robustness.report(tmp_path, kinds=("learned",))


def test_the_grid_runs_one_thread_runs_two_at_a_time(tmp_path, monkeypatch):
    started = []
    monkeypatch.setattr(robustness, "run_one", lambda chapter, seed, threads, out: started.append((chapter, seed, threads)))
    robustness.run_grid(["ch99"], [0, 1, 2], [2, 1], tmp_path, cores=2)
    assert [threads for _, _, threads in started] == [1, 1, 1, 2, 2, 2]


def test_chapters_with_learned_claims_are_found_by_their_kind(tmp_path):
    chapter = tmp_path / "ch99_demo.md"
    chapter.write_text("---\njupytext: {text_representation: {extension: .md, format_name: myst}}\n"
                       "kernelspec: {display_name: Python 3, language: python, name: python3}\n---\n# Demo\n\n"
                       "```{code-cell} ipython3\nclaims.check(\"accuracy\", acc, \">=\", 0.9,\n  \"learns\", kind=\"learned\")\n"
                       "claims.check(f\"gap_{name}\", 1, \">\", 0, \"x\", kind=\"computed\")\n```\n")
    assert robustness.claim_kinds_in(chapter) == {"accuracy": "learned", "f\"gap_{name}": "computed"}
