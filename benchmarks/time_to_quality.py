"""Time to quality: how long the course's CPU recipe and nanoGPT's CPU recipe take to reach a validation loss.

    python benchmarks/time_to_quality.py            # target 1.91, both runs in full (about 10 minutes on a quiet 2-core machine, evaluations included)
    python benchmarks/time_to_quality.py --quick    # target 2.2: a few minutes, a smoke test of the same comparison
    python benchmarks/time_to_quality.py --only course --compile   # the course's run with torch.compile

Two runs, one after the other, on the same machine:
    reference  benchmarks/reference_gpt.py trained with nanoGPT's CPU command from its README
               (--device=cpu --compile=False --eval_iters=20 --log_interval=1 --block_size=64 --batch_size=12
                --n_layer=4 --n_head=4 --n_embd=128 --max_iters=2000 --lr_decay_iters=2000 --dropout=0.0, on top of
                config/train_shakespeare_char.py: lr 1e-3, min lr 1e-4, 100 warm-up steps, beta2 0.99, weight
                decay 0.1, gradient clipping at 1), one thread, nanoGPT's batch loader (a Python loop over rows)
    course     course.train_gpt.train with the cpu_tiny configuration of chapter 7, on course.TRAIN_THREADS
               threads (1 unless COURSE_THREADS says otherwise; or --threads), stopped at the target
Each is evaluated every --eval-every training tokens on the WHOLE validation split (course.train_gpt.split_loss,
consecutive windows of 64 characters), and stops at the first evaluation at or below the target. The time
reported is the wall time of the training steps up to that evaluation: evaluations are NOT counted (they
are the benchmark's, not the recipe's); model construction is not counted either; torch.compile, if a
recipe used it, would be counted (it happens inside the first step).
"""

import argparse
import math
import os
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # reference_gpt.py sits next to this file

from reference_gpt import ReferenceGPT  # noqa: E402

import course  # noqa: E402
from course.text_data import load_shakespeare  # noqa: E402
from course.train_gpt import named_config, split_loss, train  # noqa: E402

NANOGPT_CPU = dict(n_layer=4, n_head=4, n_embd=128, block_size=64, batch_size=12, max_iters=2000, lr_decay_iters=2000,
                   learning_rate=1e-3, min_lr=1e-4, warmup_iters=100, beta1=0.9, beta2=0.99, weight_decay=0.1,
                   grad_clip=1.0, threads=1)


def nanogpt_lr(step, recipe):
    """nanoGPT's get_lr: linear warm-up, cosine decay to min_lr at lr_decay_iters."""
    if step < recipe["warmup_iters"]:
        return recipe["learning_rate"] * (step + 1) / (recipe["warmup_iters"] + 1)
    if step > recipe["lr_decay_iters"]:
        return recipe["min_lr"]
    ratio = (step - recipe["warmup_iters"]) / (recipe["lr_decay_iters"] - recipe["warmup_iters"])
    return recipe["min_lr"] + 0.5 * (1.0 + math.cos(math.pi * ratio)) * (recipe["learning_rate"] - recipe["min_lr"])


def nanogpt_batch(data, batch_size, block_size, rng):
    """nanoGPT's get_batch: random offsets, then one small array per row, stacked."""
    starts = torch.randint(len(data) - block_size, (batch_size,), generator=rng)
    x = torch.stack([torch.from_numpy(data[i : i + block_size].astype(np.int64)) for i in starts])
    y = torch.stack([torch.from_numpy(data[i + 1 : i + 1 + block_size].astype(np.int64)) for i in starts])
    return x, y


def train_reference(recipe, target, eval_every_tokens, train_ids, val_ids, vocab_size, log):
    """nanoGPT's training loop on the reference model. Returns (seconds to target or inf, history)."""
    torch.set_num_threads(recipe["threads"])
    torch.manual_seed(1337)
    model = ReferenceGPT(vocab_size, recipe["block_size"], recipe["n_layer"], recipe["n_head"], recipe["n_embd"])
    matrices = [p for p in model.parameters() if p.dim() >= 2]
    vectors = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": matrices, "weight_decay": recipe["weight_decay"]},
                                   {"params": vectors, "weight_decay": 0.0}],
                                  lr=recipe["learning_rate"], betas=(recipe["beta1"], recipe["beta2"]))
    data = train_ids.numpy().astype(np.uint16)  # nanoGPT keeps the tokens as uint16 on disk
    rng = torch.Generator().manual_seed(1337)
    tokens_per_step = recipe["batch_size"] * recipe["block_size"]
    eval_every = max(1, round(eval_every_tokens / tokens_per_step))
    seconds, history = 0.0, []
    for step in range(recipe["max_iters"] + 1):
        if step % eval_every == 0 or step == recipe["max_iters"]:
            val = split_loss(model, val_ids, recipe["block_size"])
            history.append((step, seconds, val))
            log(f"  reference step {step:5d}  train {seconds:6.1f} s  val {val:.4f}")
            if val <= target:
                return seconds, history
        if step == recipe["max_iters"]:
            break
        started = time.perf_counter()
        for group in optimizer.param_groups:
            group["lr"] = nanogpt_lr(step, recipe)
        x, y = nanogpt_batch(data, recipe["batch_size"], recipe["block_size"], rng)
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), recipe["grad_clip"])
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        loss.item()
        seconds += time.perf_counter() - started
    return math.inf, history


def train_course(config, target, eval_every_tokens, threads, log):
    """Chapter 7's run, stopped at the first evaluation at or below the target. Returns (seconds or inf, history)."""
    torch.set_num_threads(threads)
    tokens_per_step = config.batch_size * config.block_size
    config = replace(config, target_val_loss=target, max_seconds=None, full_val=True, save_checkpoint=False,
                     progress=False, eval_interval=max(1, round(eval_every_tokens / tokens_per_step)),
                     out_dir="_build/gpt/time_to_quality")
    history = train(config)
    for step, seconds, val in zip(history["eval_step"], history["eval_seconds"], history["val_loss"]):
        log(f"  course    step {step:5d}  train {seconds:6.1f} s  val {val:.4f}")
    reached = history["stopped_by"] == "target"
    return (history["eval_seconds"][-1] if reached else math.inf), history


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--target", type=float, default=None, help="validation loss to reach (default 1.91; 2.2 with --quick)")
    parser.add_argument("--quick", action="store_true", help="target 2.2: the same comparison in a few minutes")
    parser.add_argument("--threads", type=int, default=course.TRAIN_THREADS, help="threads for the course's run (default: "
                        "course.TRAIN_THREADS, what chapter 7 trains on; the reference always runs on one)")
    parser.add_argument("--eval-every", type=int, default=80_000, help="training tokens between full validation passes (each costs a forward pass over 111,000 characters)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the course's model (compilation time counts)")
    parser.add_argument("--only", choices=["course", "reference"], default=None, help="run one of the two")
    arguments = parser.parse_args()
    target = arguments.target or (2.2 if arguments.quick else 1.91)

    tokenizer, train_ids, val_ids = load_shakespeare()
    config = named_config("cpu_tiny", compile=arguments.compile)
    log = lambda line: print(line, flush=True)  # noqa: E731
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    log(f"torch {torch.__version__}, {os.cpu_count()} CPUs, load average {load:.1f}; target: full-split validation "
        f"loss <= {target}, evaluated every {arguments.eval_every:,} training tokens (evaluation time excluded)")
    results = {}
    if arguments.only != "course":
        log(f"reference (nanoGPT CPU recipe, 1 thread): {NANOGPT_CPU}")
        results["reference"], _ = train_reference(NANOGPT_CPU, target, arguments.eval_every, train_ids, val_ids,
                                                  tokenizer.vocab_size, log)
    if arguments.only != "reference":
        shown = {k: getattr(config, k) for k in ("n_layer", "n_head", "n_embd", "block_size", "batch_size", "max_iters",
                                                  "learning_rate", "min_lr", "warmup_iters", "compile", "dtype")}
        threads = arguments.threads
        log(f"course (chapter 7's cpu_tiny, {threads} thread(s)): {shown}")
        results["course"], _ = train_course(config, target, arguments.eval_every, threads, log)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    log(f"\nwall time of training to full-split val loss <= {target} (evaluation excluded); load average now {load:.1f}")
    for name, seconds in results.items():
        log(f"  {name:10s} {seconds:7.1f} s" if math.isfinite(seconds) else f"  {name:10s} not reached")
    if len(results) == 2:
        log(f"  ratio course / reference: {results['course'] / results['reference']:.2f}  (goal <= 0.5)")


if __name__ == "__main__":
    main()
