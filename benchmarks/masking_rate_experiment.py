"""Chapter 10's open-ended experiment (exercise 4): the model answer's numbers, from the solution's own code.

Executes the code cells of solutions/ch10_three_families.py (answers and read-only cells, not the tests) and runs
its ``experiment()``: a small encoder (2 blocks, width 48) trained 300 steps at masking rates 15 % and 40 %, seeds 0
and 1, the middle character of 400 held-out windows blanked and recovered. One torch thread, about a minute:

    python benchmarks/masking_rate_experiment.py
"""

import sys
import time
from pathlib import Path

import jupytext
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def main() -> None:
    namespace: dict = {}
    for cell in jupytext.read(REPO / "solutions" / "ch10_three_families.py").cells:
        if cell.cell_type == "code" and "tests" not in cell.metadata:
            exec(cell.source, namespace)
    torch.set_num_threads(1)
    start = time.perf_counter()
    results = namespace["experiment"]()
    print(f"the solution's experiment() ({time.perf_counter() - start:.0f} s), share of blanks recovered:")
    for name, row in results.items():
        print(f"  {name:>5}: " + "  ".join(f"{value:.3f}" for value in row)
              + f"   mean {sum(row) / len(row):.3f}, spread {max(row) - min(row):.3f}")


if __name__ == "__main__":
    main()
