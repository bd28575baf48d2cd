"""Chapter 8's three translation models: train them, then score them with BLEU and chrF.

    python benchmarks/translation.py --train                     # book profile: train, save, evaluate
    COURSE_PROFILE=full python benchmarks/translation.py --train # the full profile (under an hour on 2 cores)
    python benchmarks/translation.py                             # evaluate the saved models only
    python benchmarks/translation.py --train --steps 2000        # another step budget (saved too)
    python benchmarks/translation.py --train --tokenizer bpe --threads 1   # the transformer on subwords

Training writes ``data/translation_models/<profile>/<model>.pt`` (float16 weights and the training
record: course.translation.save_model). The book profile's files ship with the course: chapter 8
loads them, because training all three models takes longer than a chapter may run. Every model
gets the same batches (the same seed) and the same number of steps; the weights kept are those
with the lowest validation loss. Evaluation translates the test split greedily and with beam
search (beam 4, length normalisation alpha = 1; the transformer with its key-value cache) and prints
sacrebleu's BLEU and chrF, after those of two baselines (copy the source, a constant sentence).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere without installing

import course  # noqa: E402
from course import translation as T  # noqa: E402

BEAM_SIZE = 4
LENGTH_GROUPS = 5


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--train", action="store_true", help="train and save the models before evaluating them")
    parser.add_argument("--steps", type=int, default=None, help=f"training steps (default {T.TRAINING['steps']})")
    parser.add_argument("--models", nargs="+", default=list(T.MODEL_NAMES), choices=T.MODEL_NAMES,
                        help="with --tokenizer bpe: the subword transformer only")
    parser.add_argument("--folder", type=Path, default=T.CHECKPOINT_FOLDER, help="where the models are saved")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--tokenizer", choices=("word", "bpe"), default="word",
                        help="bpe: the transformer on byte-pair subwords (course.bpe), saved as "
                             f"{T.SUBWORD_MODEL}.pt; the vocabularies as large as the word ones")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    data = T.translation_data()
    if args.tokenizer == "bpe":
        from course.bpe import subword_data

        data = subword_data(data)
        args.models = [T.SUBWORD_MODEL]
    print(f"profile {course.PROFILE}: {data.settings}, train/val/test = "
          + "/".join(str(len(data.pairs[s])) for s in ("train", "val", "test"))
          + f", vocabularies {len(data.source_vocab)} English / {len(data.target_vocab)} French", flush=True)
    references = data.references("test")
    # Two baselines that translate nothing (chapter 8 scores them beside the models)
    constant = Counter(pair.french for pair in data.pairs["train"]).most_common(1)[0][0]
    for label, hypotheses in (("copy the source", [pair.english for pair in data.pairs["test"]]),
                              ("constant sentence", [constant] * len(references))):
        scores = T.corpus_scores(hypotheses, references)
        print(f"  {label:22} BLEU {scores['bleu']:5.2f}  chrF {scores['chrf']:5.2f}", flush=True)
    steps = args.steps or T.TRAINING["steps"]
    settings = {k: v for k, v in T.TRAINING.items() if k != "steps"}
    for name in args.models:
        if args.train:
            model, record = T.train_with_validation(name, data, steps=steps, progress=True, **settings)
            path = T.save_model(model, record, data, args.folder)
            print(f"{name}: trained {steps} steps in {record['seconds']:.0f} s, best validation loss "
                  f"{record['best_val_loss']:.3f} at step {record['best_step']}, saved to {path} "
                  f"({path.stat().st_size / 1e6:.1f} MB)", flush=True)
        model, record = T.load_model(name, data, args.folder)  # evaluate what was saved: float16 weights
        # BLEU by the English source's length (tokens), in LENGTH_GROUPS groups of about equal size
        source_lengths = [len(source) for source, _ in data.ids["test"]]
        ordered = sorted(source_lengths)
        edges = sorted({ordered[len(ordered) * k // LENGTH_GROUPS] for k in range(LENGTH_GROUPS)} | {ordered[-1] + 1})
        for label, beam_size in (("greedy", 1), (f"beam {BEAM_SIZE}", BEAM_SIZE)):
            start = time.perf_counter()
            hypotheses = T.translate(model, data, "test", beam_size=beam_size)
            seconds = time.perf_counter() - start
            scores = T.corpus_scores(hypotheses, references)
            print(f"  {name:14} {label:7} BLEU {scores['bleu']:5.2f}  chrF {scores['chrf']:5.2f}  "
                  f"length ratio {scores['length_ratio']:.2f}  ({seconds:.0f} s to translate "
                  f"{len(references)} verses)", flush=True)
        rows = T.bleu_by_length(hypotheses, references, source_lengths, edges)
        print(f"  {name:14} {label:7} BLEU by source length: "
              + "  ".join(f"{row['low']}-{row['high']}: {row['bleu']:.2f} ({row['sentences']})" for row in rows), flush=True)


if __name__ == "__main__":
    main()
