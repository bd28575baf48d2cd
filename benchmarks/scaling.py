"""Scale, measured small: held-out loss against model size at one fixed token budget (chapter 10, "Scale").

Trains GPTs of several sizes (course.gpt, chapter 7's character-level tiny Shakespeare and its 90/10 split), one
after the other on one torch thread, each with the same recipe (chapter 7's cpu_tiny: AdamW, peak 1e-2, warm-up then
cosine decay to 1e-3, clipping, batches of 32 windows of 64 characters) and the SAME number of steps, so every size
reads the same number of training tokens. Each model is scored on the whole validation split. The script writes the
losses against the non-embedding parameter count N, and the fitted power law L(N) = (N_c / N)^alpha, with and without
an irreducible term E, to benchmarks/results/scaling.json (hardware, date, command and torch version included):

    python benchmarks/scaling.py                       # the committed run: 6 sizes x 2 seeds, about 20 min on one core
    python benchmarks/scaling.py --seeds 0 --steps 100 --out /tmp/scaling_quick.json   # a quick look

N counts every parameter except the token and position embeddings (Kaplan et al. 2020's convention): the blocks'
matrices, about 12 L d^2, plus the LayerNorm gains. The fit itself is course.scaling.fit_power_law.
"""

import argparse
import datetime
import json
import platform
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from course import gpu_results  # noqa: E402
from course.scaling import fit_power_law, fit_power_law_with_floor, non_embedding_parameters  # noqa: E402
from course.train_gpt import TrainConfig, train  # noqa: E402

# (layers, channels): from about 12 thousand to about 0.8 million non-embedding parameters, 4 heads each
SIZES = [(1, 32), (2, 32), (2, 48), (3, 64), (3, 96), (4, 128)]
N_HEAD = 4


def run(n_layer, n_embd, seed, steps):
    config = TrainConfig(
        n_layer=n_layer, n_head=N_HEAD, n_embd=n_embd, max_iters=steps, seed=seed, full_val=True, eval_interval=steps,
        save_checkpoint=False, progress=False, device="cpu", dtype="float32",
    )
    started = time.perf_counter()
    history = train(config)
    from course.gpt import GPT, GPTConfig  # the same shape, to count its parameters the book's way

    model = GPT(GPTConfig(vocab_size=65, block_size=config.block_size, n_layer=n_layer, n_head=N_HEAD, n_embd=n_embd))
    return {
        "n_layer": n_layer, "n_head": N_HEAD, "n_embd": n_embd, "seed": seed,
        "non_embedding_parameters": non_embedding_parameters(model),
        "total_parameters": model.num_parameters(non_embedding=False),
        "val_loss": history["val_loss"][-1], "train_loss_estimate": history["train_loss"][-1],
        "seconds": time.perf_counter() - started,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=600)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--sizes", type=str, default=None, help="e.g. 1x32,2x48 (layers x channels)")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results" / "scaling.json")
    arguments = parser.parse_args()
    sizes = SIZES if not arguments.sizes else [tuple(int(v) for v in s.split("x")) for s in arguments.sizes.split(",")]
    torch.set_num_threads(1)
    base = TrainConfig()
    runs = []
    started = time.perf_counter()
    for seed in arguments.seeds:
        for n_layer, n_embd in sizes:
            result = run(n_layer, n_embd, seed, arguments.steps)
            runs.append(result)
            print(f"seed {seed}  {n_layer} x {n_embd:4d}  N = {result['non_embedding_parameters']:9,d}  "
                  f"val loss {result['val_loss']:.4f}  ({result['seconds']:.0f} s)", flush=True)
    parameters = [r["non_embedding_parameters"] for r in runs]
    losses = [r["val_loss"] for r in runs]
    pure, floor = fit_power_law(parameters, losses), fit_power_law_with_floor(parameters, losses)
    results = {
        "what": "held-out loss (nats per character, whole validation split) against non-embedding parameters, "
                "every size trained for the same steps on the same number of tokens",
        "command": "python " + " ".join(sys.argv),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "torch": torch.__version__, "python": platform.python_version(), "threads": torch.get_num_threads(),
        "hardware": f"{platform.processor() or platform.machine()}, {gpu_results.hardware()['cpu']}; shared 2-core machine, 1 thread",
        "minutes": (time.perf_counter() - started) / 60,
        "recipe": {"steps": arguments.steps, "batch_size": base.batch_size, "block_size": base.block_size,
                   "tokens": arguments.steps * base.batch_size * base.block_size, "learning_rate": base.learning_rate,
                   "min_lr": base.min_lr, "warmup_iters": base.warmup_iters, "weight_decay": base.weight_decay,
                   "grad_clip": base.grad_clip, "n_head": N_HEAD},
        "runs": runs,
        "fit": {"power_law": pure, "power_law_with_floor": floor},
    }
    arguments.out.parent.mkdir(parents=True, exist_ok=True)
    arguments.out.write_text(json.dumps(results, indent=1) + "\n")
    print(f"alpha = {pure['alpha']:.3f} (pure power law), {floor['alpha']:.3f} with a floor E = {floor['E']:.3f}; "
          f"{results['minutes']:.1f} min; written to {arguments.out}")


if __name__ == "__main__":
    main()
