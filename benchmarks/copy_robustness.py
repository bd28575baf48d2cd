"""How steady chapter 6's copying result is: both models' exact match over seeds and thread counts.

Chapter 6 trains the RNN with attention and the transformer on copying long strings
(``COPY_TASK``, ``COPY_BUDGET``) with seeds ``course.SEED`` + 0, 1, 2 on ``course.TRAIN_THREADS``
threads. This reruns those runs for any seeds and thread counts, one after the other in this
process, and prints exact match on the chapter's test strings at every checkpoint, so that the
chapter's bounds can be set below the worst value over seeds and threads.

    python benchmarks/copy_robustness.py                      # seeds 0-2, 1 and 2 threads, both models
    python benchmarks/copy_robustness.py --seeds 0 --threads 2 --models transformer
"""

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # run from anywhere without installing

import course  # noqa: E402
from course.seq2seq_training import COPY_BUDGET, train_run  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--models", nargs="+", default=["transformer", "RNN + attention"])
    args = parser.parse_args()
    print("model            seed  threads  exact match at each checkpoint")
    for seed in args.seeds:
        for threads in args.threads:
            course.SEED, course.TRAIN_THREADS = seed, threads  # what COURSE_SEED / COURSE_THREADS set for the chapter
            for model in args.models:
                run = train_run("copy", model, seed_offset=0, **COPY_BUDGET)
                print(f"{model:16s} {seed:4d}  {threads:7d}  "
                      + ", ".join(f"{step}: {accuracy:.0%}" for step, accuracy in run["evaluations"].items()), flush=True)


if __name__ == "__main__":
    main()
