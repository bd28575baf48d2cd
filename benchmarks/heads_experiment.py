"""Chapter 5's open-ended experiment (exercise 5.5): the solution's own run, for the model answer of exercise 5.6.

Executes, from solutions/ch05_multi_head_attention.py, the cells the experiment needs (the imports, the solution's
``split_heads``/``merge_heads`` and ``MultiHeadAttention``, the read-only task and model, and the solution's
``run_experiment``), on one torch thread, and prints what ``run_experiment`` returns: 1 head against 4 at width 32,
400 Adam steps at 1e-2 each, seeds 0 and 1, the share of held-out positions right.

    python benchmarks/heads_experiment.py           # about 20 s on one quiet core
"""

import sys
import time
from pathlib import Path

import jupytext

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

NEEDED = ("heads", "multi_head_attention", "heads_experiment")


def main() -> None:
    namespace: dict = {"__name__": "heads_experiment"}
    cells = [cell for cell in jupytext.read(REPO / "solutions" / "ch05_multi_head_attention.py").cells if cell.cell_type == "code"]
    for cell in cells:
        if cell.metadata.get("solution") in NEEDED or cell.source.startswith("import math") or "class TinyEncoder" in cell.source:
            exec(cell.source, namespace)
    start = time.perf_counter()
    results = namespace["run_experiment"]()
    for condition, values in results.items():
        print(f"{condition:8s} " + "  ".join(f"seed {seed}: {value:.3f}" for seed, value in enumerate(values)))
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
