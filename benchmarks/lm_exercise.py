"""Chapter 7's training-loop exercise (exercise 7.4): the reference loop's held-out loss over seeds and peak rates.

The figures the exercise's model answer quotes (peak 1e-2 against 1e-3, seeds 0 and 1, on the text itself) and the
spread that sets ``course.lm_exercise.TARGET`` (the hidden test's setting: the relabelled text, four seeds), from the
solution's own ``train_language_model`` (solutions/ch07_training_gpt.py), one torch thread, 600 steps each:

    python benchmarks/lm_exercise.py                     # both tables, about 10 minutes on one core
    python benchmarks/lm_exercise.py --rates 1e-2 3e-3   # other peak rates (the minimum is a tenth of the peak)
"""

import argparse
import sys
from pathlib import Path

import jupytext
import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from course import lm_exercise  # noqa: E402
from course.gpt import GPT  # noqa: E402
from course.text_data import load_shakespeare  # noqa: E402

REFERENCE_RATES = "max_lr, min_lr, warmup_steps = 1e-2, 1e-3, 30"


def reference_loop(peak: float):
    """The solution's train_language_model (and its learning_rate), with the peak rate replaced."""
    namespace: dict = {}
    for cell in jupytext.read(REPO / "solutions" / "ch07_training_gpt.py").cells:
        if cell.cell_type == "code" and (cell.metadata.get("solution") in ("learning_rate", "training_loop") or cell.source.startswith("import math")):
            assert cell.metadata.get("solution") != "training_loop" or REFERENCE_RATES in cell.source, "the loop's rates moved"
            exec(cell.source.replace(REFERENCE_RATES, f"max_lr, min_lr, warmup_steps = {peak}, {peak / 10}, 30"), namespace)
    return namespace["train_language_model"]


def held_out(peak: float, seed: int, generator_seed: int, train_ids, val_ids, evaluate_on) -> float:
    torch.manual_seed(seed)
    model = GPT(lm_exercise.CONFIG)
    reference_loop(peak)(model, train_ids, val_ids, lm_exercise.STEPS, torch.Generator().manual_seed(generator_seed))
    return lm_exercise.loss_on(model.eval(), evaluate_on)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rates", nargs="+", type=float, default=[1e-2, 1e-3])
    arguments = parser.parse_args()
    torch.set_num_threads(1)
    _, train_ids, val_ids = load_shakespeare()
    print(f"{lm_exercise.STEPS} steps; target {lm_exercise.TARGET}\n\nthe text itself (the visible test), seeds 0 and 1:")
    for peak in arguments.rates:
        losses = [held_out(peak, seed, seed, train_ids, val_ids, val_ids) for seed in (0, 1)]
        print(f"  peak {peak:g}: " + ", ".join(f"{loss:.3f}" for loss in losses), flush=True)
    relabelled = lm_exercise.relabelled(train_ids)
    cut = int(0.95 * len(relabelled))  # as the hidden test splits it
    print("\nthe relabelled text (the hidden test; seed 7 with generator 8 is its own), peak 1e-2:")
    losses = [held_out(1e-2, seed, generator, relabelled[:cut], relabelled[cut:], lm_exercise.relabelled(val_ids))
              for seed, generator in ((7, 8), (1, 1), (2, 2), (3, 3))]
    print("  " + ", ".join(f"{loss:.3f}" for loss in losses) + f"; worst {max(losses):.3f} against the target {lm_exercise.TARGET}")


if __name__ == "__main__":
    main()
