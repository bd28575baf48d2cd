"""Shared code of the course *Attention and Transformers*.

Chapters (``chapters/``) and exercises (``exercises/``) import from here; each module is the
single home of what a chapter teaches, so later chapters reuse it rather than paste it.

``PROFILE`` picks the size of the experiments: ``book`` (default) is small enough for every
chapter to execute in the website build on a 2-core CPU; ``full`` is for longer runs
(set the environment variable ``COURSE_PROFILE=full``).

Everything a chapter *learns* (accuracies, losses, alignments, BLEU) depends only on seeds and
step counts, never on the machine's load or core count: models train on ``TRAIN_THREADS`` torch
threads (float reductions differ with the thread count, so a count picked by timing would pick
results) for a fixed number of steps, from ``SEED``. ``COURSE_SEED`` and ``COURSE_THREADS`` change
them for ``benchmarks/claims_robustness.py``, which reruns every learned claim over seeds 0-2 and
1-2 threads; the book is built with the defaults. Timings may use any number of threads.
"""

import os

PROFILE = os.environ.get("COURSE_PROFILE", "book")
if PROFILE not in ("book", "full"):
    raise ValueError(f"COURSE_PROFILE must be 'book' or 'full', not {PROFILE!r}")

SEED = int(os.environ.get("COURSE_SEED", "0"))
TRAIN_THREADS = int(os.environ.get("COURSE_THREADS", "1"))


def usable_cores() -> int:
    """The cores this process may run on: its CPU affinity where the system has one (``taskset -c 0``: one), else all."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def training_setup(seed_offset: int = 0) -> int:
    """Set torch to ``TRAIN_THREADS`` threads and seed it with ``SEED + seed_offset``; returns that seed.

    Call it before building and training a model (torch is imported here, not at package import,
    so that the grader's processes, which import ``course.channel``, stay free of it).
    """
    import torch

    torch.set_num_threads(TRAIN_THREADS)
    torch.manual_seed(SEED + seed_offset)
    return SEED + seed_offset
