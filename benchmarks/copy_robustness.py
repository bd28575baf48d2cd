"""How steady chapter 6's copying result is: the transformer's exact match over seeds and threads.

Chapter 6 claims that within its budget (``COPY_BUDGET``: 400 steps) the transformer copies long
strings, with exact match of at least 70 % on the test strings. This trains the chapter's
transformer on the chapter's copying task for each seed and number of threads, with and without
the learning-rate decay the chapter uses, and prints exact match after each evaluated step.

    python benchmarks/copy_robustness.py                      # seeds 0-3, 1 and 2 threads, decay on and off
    python benchmarks/copy_robustness.py --seeds 0 --threads 2
"""

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere without installing

from course.seq2seq_data import copy_task  # noqa: E402
from course.seq2seq_training import COPY_BUDGET, COPY_TASK, exact_match, train_seq2seq  # noqa: E402
from course.transformer import EncoderDecoderTransformer  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    copying = copy_task(**COPY_TASK)
    test = copying.splits["test"][:100]  # as chapter 6 evaluates
    vocabulary = len(copying.source_vocab)
    budget = dict(COPY_BUDGET)
    evaluate_at = budget.pop("evaluate_at")
    print("seed  threads  decay  seconds  exact match after each evaluated step")
    for seed in args.seeds:
        for threads in args.threads:
            for decay in (True, False):
                torch.set_num_threads(threads)
                torch.manual_seed(seed)  # chapter 6 builds its models after torch.manual_seed(0)
                model = EncoderDecoderTransformer(vocabulary, vocabulary, d_model=64, num_heads=4, num_layers=2, d_ff=128, max_len=128)
                run = train_seq2seq(model, copying.splits["train"], copying.source_vocab, copying.target_vocab,
                                    **{**budget, "seed": seed, "decay": decay}, evaluate_at=evaluate_at,
                                    evaluate=lambda m: exact_match(m, test, copying.source_vocab, copying.target_vocab))
                print(f"{seed:4d}  {threads:7d}  {str(decay):5s}  {run['seconds']:7.1f}  "
                      + ", ".join(f"{step}: {accuracy:.0%}" for step, accuracy in run["evaluations"].items()), flush=True)


if __name__ == "__main__":
    main()
