"""How robust the book's claims are: every chapter with learned claims, rerun over seeds and thread counts.

A learned claim's bound must sit below its worst value over seeds 0-2 and 1-2 training threads
(COURSE.md). This executes each chosen chapter once per (COURSE_SEED, COURSE_THREADS), each run
writing its claims into its own folder (``COURSE_CLAIMS_DIR``, course/claims.py), and then writes a
markdown table: for every claim its kind, bound, the value in each run, the worst of them, the
margin between the worst and the bound, whether the bound holds at the worst, and, for learned
claims, whether a value changed between 1 and 2 threads at the same seed (learned values should
depend on seeds and step counts only; float reductions on 2 threads may still move them).

Runs on 1 thread go two at a time on a 2-core machine (``--cores``), runs on 2 threads one at a time.
A chapter takes up to 3 minutes: the whole grid (every chapter with learned claims, 6 runs each) takes
an hour or more on 2 cores.

    python benchmarks/claims_robustness.py                               # the whole grid, learned claims
    python benchmarks/claims_robustness.py --chapters ch03 ch05 --seeds 0 1 --kinds all
    python benchmarks/claims_robustness.py --table-only                  # the table again, from the runs kept

The runs are kept in ``--out`` (default ``_build/claims_robustness/``: ``seed<S>-threads<T>/<chapter>.json``
and ``.status.json``); the table is printed and written to ``--out``/claims_robustness.md.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))  # run from anywhere without installing

RELATIONS = {">": lambda a, b: a > b, ">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "<=": lambda a, b: a <= b}


# ---------------------------------------------------------------- which chapters
def claim_kinds_in(chapter: Path) -> dict[str, str | None]:
    """The literal claim names of a chapter's ``claims.check`` calls and their ``kind`` (None if not stated)."""
    import jupytext

    kinds = {}
    for cell in jupytext.read(chapter).cells:
        if cell.cell_type != "code":
            continue
        source = "\n".join("" if line.lstrip().startswith(("%", "!")) else line for line in cell.source.splitlines())
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "check":
                name = node.args[0] if node.args else None
                label = ast.get_source_segment(source, name) if name is not None else "?"
                kind = next((k.value.value for k in node.keywords if k.arg == "kind" and isinstance(k.value, ast.Constant)), None)
                kinds[label.strip("\"'")] = kind
    return kinds


def chapters_with_learned_claims() -> list[Path]:
    return [path for path in sorted((REPO / "chapters").glob("ch*.md")) if "learned" in claim_kinds_in(path).values()]


def pick_chapters(prefixes: list[str] | None) -> list[Path]:
    if not prefixes:
        return chapters_with_learned_claims()
    chosen = [path for path in sorted((REPO / "chapters").glob("ch*.md")) if any(path.stem.startswith(p) for p in prefixes)]
    if not chosen:
        raise SystemExit(f"no chapter matches {prefixes}")
    return chosen


# ---------------------------------------------------------------- running
def run_folder(out: Path, seed: int, threads: int) -> Path:
    return out / f"seed{seed}-threads{threads}"


def execute_chapter(chapter: Path) -> None:
    """Execute one chapter in a fresh kernel (this process's environment passes to it); raise on an error."""
    import jupytext
    from nbclient import NotebookClient

    notebook = jupytext.read(chapter)
    NotebookClient(notebook, timeout=1800, kernel_name="python3",
                   resources={"metadata": {"path": str(chapter.parent)}}).execute()


def run_one(chapter: Path, seed: int, threads: int, out: Path) -> dict:
    folder = run_folder(out, seed, threads)
    folder.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "COURSE_SEED": str(seed), "COURSE_THREADS": str(threads), "COURSE_CLAIMS_DIR": str(folder),
           "OMP_NUM_THREADS": str(threads)}
    env.pop("COURSE_FORCE_FAIL_CLAIM", None)
    start = time.perf_counter()
    result = subprocess.run([sys.executable, __file__, "--execute-one", str(chapter)], env=env, capture_output=True, text=True)
    status = {"chapter": chapter.stem, "seed": seed, "threads": threads, "seconds": round(time.perf_counter() - start, 1),
              "ok": result.returncode == 0, "error": result.stderr[-2000:] if result.returncode else ""}
    (folder / f"{chapter.stem}.status.json").write_text(json.dumps(status, indent=1) + "\n")
    print(f"{chapter.stem} seed {seed} threads {threads}: {'ok' if status['ok'] else 'FAILED'} in {status['seconds']:.0f} s",
          flush=True)
    return status


def run_grid(chapters: list[Path], seeds: list[int], threads: list[int], out: Path, cores: int) -> None:
    for count in sorted(threads):  # all runs on 1 thread (several at a time), then on 2, ...
        jobs = [(chapter, seed) for chapter in chapters for seed in seeds]
        with ThreadPoolExecutor(max_workers=max(1, cores // count)) as pool:
            list(pool.map(lambda job: run_one(job[0], job[1], count, out), jobs))


# ---------------------------------------------------------------- the table
def load_runs(out: Path) -> dict[tuple[int, int], dict[str, list[dict]]]:
    """{(seed, threads): {chapter: [claim, ...]}} from the run folders in ``out``."""
    runs = {}
    for folder in sorted(out.glob("seed*-threads*")):
        seed, threads = (int(part) for part in folder.name.removeprefix("seed").split("-threads"))
        runs[(seed, threads)] = {path.stem: json.loads(path.read_text()) for path in sorted(folder.glob("*.json"))
                                 if not path.name.endswith(".status.json")}
    return runs


def worst_of(relation: str, values: list[float]) -> float:
    """The value closest to failing: the smallest for a lower bound, the largest for an upper one."""
    values = [value if math.isfinite(value) else (-math.inf if relation.startswith(">") else math.inf) for value in values]
    return min(values) if relation.startswith(">") else max(values)


def margin_of(relation: str, worst: float, limit: float) -> float:
    """How far the worst value is on the right side of the bound (negative: the bound does not hold)."""
    return worst - limit if relation.startswith(">") else limit - worst


def summarise(runs: dict, kinds: tuple[str, ...] | None = ("learned",)) -> list[dict]:
    """One row per (chapter, claim): values per run, worst, margin, holds at worst, thread sensitivity."""
    keys = sorted(runs)
    rows: dict[tuple[str, str], dict] = {}
    for key in keys:
        for chapter, claims in runs[key].items():
            for claim in claims:
                if kinds is not None and claim.get("kind") not in kinds:
                    continue
                row = rows.setdefault((chapter, claim["name"]), {
                    "chapter": chapter, "name": claim["name"], "kind": claim.get("kind"), "relation": claim["relation"],
                    "limit": claim["limit"], "bound": claim["bound"], "values": {}})
                row["values"][key] = claim["value"]
                if claim["bound"] != row["bound"]:
                    row["bound"] = f"{row['bound']} / {claim['bound']}"  # a bound that depends on the run: say so
    result = []
    for (chapter, name), row in sorted(rows.items()):
        values = [row["values"][key] for key in keys if key in row["values"]]
        row["missing"] = [key for key in keys if key not in row["values"] and chapter in runs[key]]
        row["worst"] = worst_of(row["relation"], values)
        row["margin"] = margin_of(row["relation"], row["worst"], row["limit"])
        row["relative_margin"] = row["margin"] / abs(row["limit"]) if row["limit"] else math.nan
        row["holds_at_worst"] = bool(RELATIONS[row["relation"]](row["worst"], row["limit"]))
        differences = [abs(row["values"][(seed, 1)] - row["values"][(seed, 2)])
                       for seed in {seed for seed, _ in keys}
                       if (seed, 1) in row["values"] and (seed, 2) in row["values"]]
        row["thread_difference"] = max(differences) if differences else None
        row["differs_with_threads"] = bool(differences) and max(differences) > 1e-9 * max(1.0, abs(row["worst"]))
        result.append(row)
    return result


def number(value) -> str:
    if value is None:
        return "—"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


def markdown_table(rows: list[dict], keys: list[tuple[int, int]]) -> str:
    runs = [f"s{seed}/t{threads}" for seed, threads in keys]
    header = ["claim", "kind", "bound", *runs, "worst", "margin", "holds at worst", "1 vs 2 threads"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        threads = ("—" if row["thread_difference"] is None else
                   f"**differs** (up to {number(row['thread_difference'])})" if row["differs_with_threads"] else "equal")
        if row["kind"] != "learned" and row["thread_difference"] is not None:
            threads = threads.replace("**differs**", "differs")  # expected for timings
        verdict = "yes" if row["holds_at_worst"] else "**NO**"
        if row["missing"]:
            verdict += f" (missing in {len(row['missing'])} run(s))"
        margin = f"{number(row['margin'])}" + (f" ({row['relative_margin']:.0%})" if math.isfinite(row["relative_margin"]) else "")
        cells = [f"{row['chapter']}.{row['name']}", row["kind"] or "?", row["bound"],
                 *[number(row["values"].get(key)) for key in keys], number(row["worst"]), margin, verdict, threads]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def report(out: Path, kinds: tuple[str, ...] | None) -> str:
    runs = load_runs(out)
    keys = sorted(runs)
    rows = summarise(runs, kinds)
    statuses = [json.loads(path.read_text()) for path in sorted(out.glob("seed*-threads*/*.status.json"))]
    failed_runs = [status for status in statuses if not status["ok"]]
    lines = [f"Claims over {len(keys)} runs (s = COURSE_SEED, t = COURSE_THREADS); kinds: {', '.join(kinds) if kinds else 'all'}.",
             "worst: the value closest to failing; margin: its distance from the bound (in brackets, relative to the bound); "
             "holds at worst: the bound sits on the safe side of the worst value (below it for a lower bound, above it for "
             "an upper bound); 1 vs 2 threads: whether a value changed with COURSE_THREADS at the same seed.", "",
             markdown_table(rows, keys), ""]
    weak = [row for row in rows if not row["holds_at_worst"]]
    moved = [row for row in rows if row["kind"] == "learned" and row["differs_with_threads"]]
    lines.append(f"{len(rows)} claims; bound not clear of the worst value: {len(weak)}"
                 + (f" ({', '.join(r['chapter'] + '.' + r['name'] for r in weak)})" if weak else "")
                 + f"; learned values that change between 1 and 2 threads: {len(moved)}"
                 + (f" ({', '.join(r['chapter'] + '.' + r['name'] for r in moved)})" if moved else "") + ".")
    if statuses:
        lines.append("Run times: " + ", ".join(f"{s['chapter']} s{s['seed']}/t{s['threads']} {s['seconds']:.0f} s" for s in statuses) + ".")
    for status in failed_runs:
        lines.append(f"FAILED RUN {status['chapter']} s{status['seed']}/t{status['threads']}: {status['error'][-500:]}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--chapters", nargs="+", help="chapter name prefixes (default: every chapter with a learned claim)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cores", type=int, default=2, help="cores to fill: runs on T threads go cores // T at a time")
    parser.add_argument("--kinds", nargs="+", default=["learned"], help="claim kinds in the table, or 'all'")
    parser.add_argument("--out", type=Path, default=REPO / "_build" / "claims_robustness")
    parser.add_argument("--table-only", action="store_true", help="do not run: the table from the runs in --out")
    parser.add_argument("--execute-one", type=Path, help=argparse.SUPPRESS)  # internal: one run, in a fresh process
    args = parser.parse_args(argv)
    if args.execute_one:
        execute_chapter(args.execute_one)
        return 0
    kinds = None if args.kinds == ["all"] else tuple(args.kinds)
    if not args.table_only:
        chapters = pick_chapters(args.chapters)
        print(f"chapters: {', '.join(c.stem for c in chapters)}; seeds {args.seeds}; threads {args.threads}", flush=True)
        run_grid(chapters, args.seeds, args.threads, args.out, args.cores)
    text = report(args.out, kinds)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "claims_robustness.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
