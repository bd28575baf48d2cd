"""Chapter 2's exercises 5 to 7: the reference training loop over seeds, one change of it, and the experiment.

The figures that chapter 2's model answers quote and the spread that sets ``course.reversal_exercise.TARGET``, from the
solution's own code (solutions/ch02_bahdanau_attention.py: its answer cells are executed, not copied), on one torch
thread, 150 steps per run:

    python benchmarks/reversal_exercise.py              # all three tables, a few minutes on one core
    python benchmarks/reversal_exercise.py --only seeds  # or: change, experiment

1. ``seeds``: ``train_reverser`` from several (model seed, data seed) pairs, among them the visible test's (0, 0) and
   the hidden test's (7, 8): the exact match and the anti-diagonal share on the grader's held-out strings.
2. ``change``: exercise 6's model answer, the learning rate 1e-3 against the loop's 1e-2 (model and data seed 0,
   measured on the visible test's strings).
3. ``experiment``: the solution's ``experiment()`` (exercise 7), its table as the model answer prints it.
"""

import argparse
import sys
import time
from pathlib import Path

import jupytext
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from course import reversal_exercise  # noqa: E402
from course.seq2seq_data import reversal_pairs  # noqa: E402

REFERENCE_SETTINGS = "learning_rate, batch_size, clip_norm = 1e-2, 64, 1.0"


def solution_namespace(learning_rate: float = 1e-2) -> dict:
    """The solution's code cells (answers and read-only cells, no tests) executed, with the loop's rate replaced."""
    namespace: dict = {}
    for cell in jupytext.read(REPO / "solutions" / "ch02_bahdanau_attention.py").cells:
        if cell.cell_type == "code" and "tests" not in cell.metadata:
            source = cell.source
            if cell.metadata.get("solution") == "train_reverser":
                assert REFERENCE_SETTINGS in source, "the loop's settings moved: update REFERENCE_SETTINGS"
                source = source.replace(REFERENCE_SETTINGS, f"learning_rate, batch_size, clip_norm = {learning_rate}, 64, 1.0")
            exec(source, namespace)
    return namespace


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=("seeds", "change", "experiment"))
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    reference = solution_namespace()
    if arguments.only in (None, "seeds"):
        print(f"train_reverser, {reversal_exercise.STEPS} steps, on the grader's {reversal_exercise.HELD_OUT_COUNT} held-out "
              f"strings (target {reversal_exercise.TARGET}, anti-diagonal {reversal_exercise.ANTI_DIAGONAL}):")
        for model_seed, data_seed in ((0, 0), (7, 8), (1, 1), (2, 2), (3, 3)):
            start = time.perf_counter()
            model = reference["train_reverser"](reversal_exercise.make_model(model_seed), reversal_exercise.STEPS, data_seed)
            seconds = time.perf_counter() - start
            weights = reversal_exercise.flat_weights(model)
            print(f"  model seed {model_seed}, data seed {data_seed}: exact match "
                  f"{reversal_exercise.held_out_exact_match(weights):.3f}, anti-diagonal "
                  f"{reversal_exercise.held_out_anti_diagonal(weights):.3f} ({seconds:.1f} s)", flush=True)
        untrained = reversal_exercise.held_out_exact_match(reversal_exercise.flat_weights(reversal_exercise.make_model(7)))
        print(f"  untrained (model seed 7): exact match {untrained:.3f}")
    if arguments.only in (None, "change"):
        test_pairs = reversal_pairs(300, 3, 8, seed=100)  # the visible test's strings
        print("\nexercise 6: the learning rate, model and data seed 0, on the visible test's strings:")
        for rate in (1e-2, 1e-3):
            loop = reference["train_reverser"] if rate == 1e-2 else solution_namespace(rate)["train_reverser"]
            model = loop(reversal_exercise.make_model(0), reversal_exercise.STEPS, 0)
            print(f"  learning rate {rate:g}: exact match {reversal_exercise.exact_match(model, test_pairs):.3f}", flush=True)
    if arguments.only in (None, "experiment"):
        start = time.perf_counter()
        results = reference["experiment"]()
        print(f"\nexercise 7: the solution's experiment() ({time.perf_counter() - start:.0f} s):")
        for name, row in results.items():
            print(f"  {name:>14}: " + "  ".join(f"{value:.3f}" for value in row)
                  + f"   mean {sum(row) / len(row):.3f}, spread {max(row) - min(row):.3f}")


if __name__ == "__main__":
    main()
