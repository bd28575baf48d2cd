"""Chapter 8's models trained again from other seeds: how much the training run moves a score.

    python benchmarks/translation_seeds.py                 # seeds 1 and 2, all four models, two at a time
    python benchmarks/translation_seeds.py --models transformer transformer_bpe --seeds 3 --jobs 1

Chapter 8 compares models that were each trained once, from seed 0 (the files in
``data/translation_models/``), and its paired bootstrap measures the test verses' sampling, not
the training run's. This script measures the training run: it trains the fixed-context RNN, the
Bahdanau RNN, the word transformer and the subword transformer again from each seed given, with the
chapter's data, steps, batches and optimisers (``course.translation.train_with_validation``; a seed
sets the initial weights and the order of the batches), saves and reloads each in float16 as the
shipped models are, and scores its beam-4 translations of the test verses with sacrebleu's BLEU and
chrF.

Each training runs on one thread, so its numbers depend only on the seed and the step count
(``--jobs`` trainings run side by side). The scores are written to
``benchmarks/results/translation_seeds.json``, merged with the runs already there, which chapter 8
reads beside its own seed-0 scores. On the course's 2-core machine, sharing it with other work, the
eight trainings of seeds 1 and 2 took 41 minutes with two jobs (69 minutes of one core between them;
benchmarks/README.md gives the measured figures).
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere without installing

import course  # noqa: E402
from course import translation as T  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results" / "translation_seeds.json"
BEAM_SIZE = 4  # as chapter 8's comparison
MODELS = (*T.MODEL_NAMES, T.SUBWORD_MODEL)


def data_for(name: str) -> T.TranslationData:
    data = T.translation_data()
    if name == T.SUBWORD_MODEL:
        from course.bpe import subword_data

        data = subword_data(data)
    return data


def train_and_score(name: str, seed: int) -> dict:
    """Train model ``name`` from ``seed`` as chapter 8's was, reload it in float16, score its beam search."""
    torch.set_num_threads(1)
    data = data_for(name)
    settings = dict(T.TRAINING, seed=seed)
    model, record = T.train_with_validation(name, data, **settings)
    with tempfile.TemporaryDirectory() as folder:  # the shipped models are float16: score what would be shipped
        T.save_model(model, record, data, folder)
        model, record = T.load_model(name, data, folder)
    start = time.perf_counter()
    hypotheses = T.translate(model, data, "test", beam_size=BEAM_SIZE)
    scores = T.corpus_scores(hypotheses, data.references("test"))
    return {"model": name, "seed": seed, "bleu": scores["bleu"], "chrf": scores["chrf"],
            "length_ratio": scores["length_ratio"], "best_val_loss": record["best_val_loss"],
            "best_step": record["best_step"], "steps": record["steps_trained"],
            "train_seconds": round(record["seconds"], 1), "translate_seconds": round(time.perf_counter() - start, 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2], help="seeds to train (0 is the shipped models')")
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=MODELS)
    parser.add_argument("--jobs", type=int, default=2, help="trainings side by side, one thread each")
    parser.add_argument("--results", type=Path, default=RESULTS)
    args = parser.parse_args()

    jobs = [(name, seed) for seed in args.seeds for name in args.models]
    print(f"profile {course.PROFILE}, {T.TRAINING['steps']} steps of {T.TRAINING['batch_size']} pairs, "
          f"{len(jobs)} trainings, {args.jobs} at a time, one thread each", flush=True)
    saved = json.loads(args.results.read_text()) if args.results.exists() else {"runs": []}
    runs = {(run["model"], run["seed"]): run for run in saved["runs"]}
    with ProcessPoolExecutor(max_workers=args.jobs) as pool:
        for run in pool.map(train_and_score, *zip(*jobs)):
            runs[run["model"], run["seed"]] = run
            print(f"  {run['model']:16} seed {run['seed']}: BLEU {run['bleu']:5.2f}  chrF {run['chrf']:5.2f}  "
                  f"best validation loss {run['best_val_loss']:.3f} (step {run['best_step']}), "
                  f"{run['train_seconds']:.0f} s to train", flush=True)
            args.results.parent.mkdir(parents=True, exist_ok=True)
            args.results.write_text(json.dumps({
                "what": "chapter 8's models trained again from other seeds; beam-4 scores of the test verses",
                "command": "python benchmarks/translation_seeds.py",
                "profile": course.PROFILE, "training": {k: v for k, v in T.TRAINING.items() if k != "seed"},
                "torch": torch.__version__, "threads": 1, "date": datetime.date.today().isoformat(),
                "hardware": f"{platform.machine()}, {os.cpu_count()} cores",
                "runs": sorted(runs.values(), key=lambda r: (r["model"], r["seed"]))}, indent=1) + "\n")
    print(f"written to {args.results}")


if __name__ == "__main__":
    main()
