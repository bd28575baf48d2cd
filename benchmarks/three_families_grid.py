"""Chapter 10's learned claims over seeds and thread counts, cheaper than rerunning the whole chapter.

Trains chapter 10's GPT and masked-LM encoder (course.bert.train_family, the chapter's settings) for
each seed and thread count, measures what the chapter's learned claims measure, and prints one row
per run and the worst value of each claim against the chapter's bound. ``--keep DIR`` saves the
trained weights and reuses them when they are there.

    python benchmarks/three_families_grid.py                          # seeds 0-2 x threads 1-2
    python benchmarks/three_families_grid.py --seeds 0 --threads 1 --keep /tmp/families
    python benchmarks/three_families_grid.py --seeds 0 --threads 1 --position learned   # chapter 7's positions

``benchmarks/claims_robustness.py --chapters ch10`` reruns the chapter itself over the same grid.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from course.bert import (FamilyConfig, evaluation_windows, gpt_candidate_accuracy, gpt_next_accuracy,  # noqa: E402
                         mlm_accuracy_by_position, mlm_blank_accuracy, new_model, train_family)
from course.text_data import load_shakespeare  # noqa: E402

# claim: (relation, the chapter's bound)
BOUNDS = {
    "middle_lead": (">=", 0.03),
    "gpt_middle_over_baseline": (">=", 0.2),
    "candidate_gain": (">=", 0.1),
    "candidate_over_encoder": (">=", 0.1),
    "continuation_lead": (">=", 0.05),
    "encoder_right_side_drop": (">=", 0.1),
    "encoder_end_over_baseline": (">=", 0.03),
}


def measure(gpt, mlm, train_ids, val_ids, characters, config):
    """The chapter's learned quantities, computed as the chapter computes them."""
    windows = evaluation_windows(val_ids, 400, config.block_size - 1, seed=0)
    positions = [*range(0, config.block_size, 4), config.block_size - 1]
    mlm_by_position = mlm_accuracy_by_position(mlm, windows, characters, positions)
    gpt_by_position = torch.cat([torch.zeros(1), gpt_next_accuracy(gpt, windows)])[positions]
    space = torch.bincount(train_ids, minlength=characters).argmax()
    baseline = (windows == space).float().mean(0)[positions]
    middle = [i for i, t in enumerate(positions) if 16 <= t < 48]
    mlm_middle, gpt_middle = mlm_by_position[middle].mean().item(), gpt_by_position[middle].mean().item()
    few = windows[:100]
    candidate = gpt_candidate_accuracy(gpt, few, 32, characters)
    gpt_left = torch.cat([torch.zeros(1), gpt_next_accuracy(gpt, few)])[32].item()
    mlm_blank = mlm_blank_accuracy(mlm, few, 32, characters)
    return {
        "middle_lead": mlm_middle - gpt_middle,
        "gpt_middle_over_baseline": gpt_middle - baseline[middle].mean().item(),
        "candidate_gain": candidate - gpt_left,
        "candidate_over_encoder": candidate - mlm_blank,
        "continuation_lead": gpt_by_position[-1].item() - mlm_by_position[-1].item(),
        "encoder_right_side_drop": mlm_middle - mlm_by_position[-1].item(),
        "encoder_end_over_baseline": mlm_by_position[-1].item() - baseline[-1].item(),
        "mlm_middle": mlm_middle, "gpt_middle": gpt_middle, "candidate": candidate,
        "gpt_end": gpt_by_position[-1].item(), "mlm_end": mlm_by_position[-1].item(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--keep", type=Path, help="a folder for the trained weights (reused when present)")
    parser.add_argument("--position", default="rope", choices=["rope", "learned"],
                        help="the positions of both models: the chapter's rotary ones, or chapter 7's learned table")
    parser.add_argument("--steps", type=int, default=FamilyConfig.steps)
    args = parser.parse_args()
    tokenizer, train_ids, val_ids = load_shakespeare()
    characters = tokenizer.vocab_size
    config = FamilyConfig(position=args.position, steps=args.steps)
    rows = []
    for threads in args.threads:
        for seed in args.seeds:
            torch.set_num_threads(threads)
            models, start = {}, time.perf_counter()
            for family in ("gpt", "mlm"):
                name = f"{family}_seed{seed}_threads{threads}" + ("" if (args.position, args.steps) == ("rope", FamilyConfig.steps)
                                                                   else f"_{args.position}_{args.steps}")
                path = args.keep / f"{name}.pt" if args.keep else None
                if path is not None and path.exists():
                    models[family] = new_model(family, config, characters + 1, seed)
                    models[family].load_state_dict(torch.load(path))
                    models[family].eval()
                    continue
                torch.manual_seed(seed)
                models[family], _ = train_family(family, train_ids, characters, config, seed)
                if path is not None:
                    path.parent.mkdir(parents=True, exist_ok=True)
                    torch.save(models[family].state_dict(), path)
            torch.set_num_threads(threads)  # the chapter measures on its training threads too
            values = measure(models["gpt"], models["mlm"], train_ids, val_ids, characters, config)
            rows.append({"seed": seed, "threads": threads, **values})
            print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in rows[-1].items()}),
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
    print("\nclaim                         bound      worst    margin")
    for name, (relation, bound) in BOUNDS.items():
        worst = min(row[name] for row in rows)
        print(f"{name:28s} {relation} {bound:<7} {worst:8.4f} {worst - bound:8.4f} {'holds' if worst >= bound else 'FAILS'}")


if __name__ == "__main__":
    main()
