"""Train the GPT of course/gpt.py on tiny Shakespeare (chapter 7).

    python -m course.train_gpt --config cpu_tiny                    # the book's run, minutes on a CPU
    python -m course.train_gpt --config gpu                         # nanoGPT's shakespeare-char shape
    python -m course.train_gpt --config gpu --compile --max-iters 200 --out-dir _build/gpt
    python -m course.train_gpt --config cpu_tiny --resume           # continue from out_dir/checkpoint.pt
    torchrun --standalone --nproc_per_node=8 -m course.train_gpt --config gpu   # DistributedDataParallel

In Python: ``history = train(named_config("cpu_tiny", max_iters=200))``.
"""

import argparse
import math
import os
import sys
import time
import typing
from contextlib import nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel
from tqdm.auto import tqdm

from course import gpu_results
from course.gpt import GPT, GPTConfig, flops_per_token, learning_rate
from course.text_data import DATA_PATH, load_shakespeare, random_batch

REPO = Path(__file__).resolve().parent.parent
H100_BF16_PEAK_FLOPS = gpu_results.BF16_PEAK_FLOPS["H100"]  # NVIDIA's dense bf16 tensor-core figure for the H100 SXM


@dataclass
class TrainConfig:
    # model
    n_layer: int = 3
    n_head: int = 4
    n_embd: int = 96
    block_size: int = 64
    dropout: float = 0.0
    attention: str = "sdpa"  # or "manual": chapter 3's attention, for comparison
    # optimisation
    batch_size: int = 32  # per process; the global batch is batch_size * grad_accum * world_size
    grad_accum: int = 1
    max_iters: int = 700
    lr_decay_iters: int | None = None  # None: decay until max_iters
    learning_rate: float = 1e-2  # ten times nanoGPT's CPU example: a model this small tolerates it, warmed up
    min_lr: float = 1e-3
    warmup_iters: int = 60
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    # when to stop: after max_iters steps, or earlier when one of these is met
    max_seconds: float | None = None  # a wall-clock budget for the training steps (evaluation not counted)
    target_val_loss: float | None = None  # stop at the first evaluation at or below this validation loss
    # measuring and saving
    eval_interval: int = 100
    eval_iters: int = 6
    full_val: bool = False  # validation loss on the whole validation split instead of eval_iters batches
    out_dir: str = "_build/gpt/cpu_tiny"
    save_checkpoint: bool = True
    resume: bool = False
    progress: bool = True
    # machine
    device: str = "auto"  # auto: cuda when there is one
    dtype: str = "auto"  # auto: bfloat16 on cuda, float32 on the CPU
    compile: bool = False
    seed: int = 1337
    data_path: str = str(DATA_PATH)


CONFIGS = {
    # The book's run: a third of a million parameters (nanoGPT's CPU example has 0.8 M), 700 steps that end
    # below a full-split validation loss of 1.91 for seeds 0-2 (chapter 7 explains the choices).
    "cpu_tiny": {},
    # nanoGPT's config/train_shakespeare_char.py shape and schedule: best val loss 1.4697 reported.
    "gpu": dict(
        n_layer=6, n_head=6, n_embd=384, block_size=256, dropout=0.2, batch_size=64, max_iters=5000,
        learning_rate=1e-3, min_lr=1e-4, warmup_iters=100, eval_interval=250, eval_iters=200, out_dir="_build/gpt/gpu",
    ),
    # The throughput benchmark's shape, GPT-2 small's body (~85 M parameters with 65 characters).
    "gpu_100m": dict(
        n_layer=12, n_head=12, n_embd=768, block_size=1024, batch_size=16, grad_accum=1, max_iters=2000,
        learning_rate=6e-4, min_lr=6e-5, warmup_iters=100, eval_interval=500, eval_iters=50, out_dir="_build/gpt/gpu_100m",
    ),
}


def named_config(name: str, **overrides) -> TrainConfig:
    return replace(TrainConfig(**CONFIGS[name]), **overrides)


def model_config(config: TrainConfig, vocab_size: int) -> GPTConfig:
    return GPTConfig(
        vocab_size=vocab_size, block_size=config.block_size, n_layer=config.n_layer, n_head=config.n_head,
        n_embd=config.n_embd, dropout=config.dropout, attention=config.attention,
    )


def distributed_setup():
    """Read torchrun's environment. Returns (rank, local_rank, world_size); (0, 0, 1) without torchrun."""
    if int(os.environ.get("RANK", -1)) == -1:
        return 0, 0, 1
    rank, local_rank, world_size = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"]), int(os.environ["WORLD_SIZE"])
    if not dist.is_initialized():
        # nccl moves gradients between GPUs directly; gloo is the CPU fallback (and what the tests use)
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    return rank, local_rank, world_size


def pick_device(config: TrainConfig, local_rank: int) -> str:
    if config.device != "auto":
        return config.device
    return f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu"


def autocast_context(device: str, dtype: str):
    """bf16 autocast on the GPU: matmuls in bfloat16 on the tensor cores, weights and sums in float32.
    bfloat16 keeps float32's exponent range, so no loss scaling is needed (float16 would need it)."""
    if dtype == "auto":
        dtype = "bfloat16" if device.startswith("cuda") else "float32"
    if dtype == "float32":
        return nullcontext()
    return torch.autocast(device_type=device.split(":")[0], dtype=getattr(torch, dtype))


@torch.no_grad()
def split_loss(model, ids, block_size, device="cpu", autocast=None, batch_size=128):
    """Mean loss over every token of a split, cut into consecutive windows of block_size: the exact
    figure that estimates on a few random batches approximate. Each window predicts its block_size
    next tokens from 1 .. block_size characters of context, as in training."""
    windows = (len(ids) - 1) // block_size
    inputs = ids[: windows * block_size].view(windows, block_size)  # (N, T)
    targets = ids[1 : windows * block_size + 1].view(windows, block_size)  # (N, T), shifted by one
    was_training = model.training
    model.eval()
    total = 0.0
    for start in range(0, windows, batch_size):
        x, y = inputs[start : start + batch_size].to(device), targets[start : start + batch_size].to(device)
        with autocast or nullcontext():
            total += model(x, y)[1].item() * len(x)  # the batch's mean, weighted by its windows
    model.train(was_training)
    return total / windows


@torch.no_grad()
def estimate_loss(model, splits, config, device, autocast, world_size=1):
    """Mean loss over eval_iters batches of each split. The batches are drawn with a fixed seed, so
    every evaluation of a run scores the same windows and successive estimates differ only by the model.
    Each batch has the global batch's size (every process computes the same estimate, equal to one
    process's with the larger batch).
    With config.full_val, the validation loss is the whole split's instead (split_loss)."""
    model.eval()
    losses = {}
    for name, ids in splits.items():
        if name == "val" and config.full_val:
            losses[name] = split_loss(model, ids, config.block_size, device, autocast, batch_size=4 * config.batch_size)
            continue
        generator = torch.Generator().manual_seed(config.seed + 1)
        total = 0.0
        for _ in range(config.eval_iters):
            x, y = random_batch(ids, config.batch_size * world_size, config.block_size, generator, device)
            with autocast:
                total += model(x, y)[1].item()
        losses[name] = total / config.eval_iters
    model.train()
    return losses


def measure_matmul_flops(size: int = 1024, repeats: int = 10, device: str = "cpu", dtype=torch.float32) -> float:
    """This machine's peak, measured: FLOP/s of the best of several square matmuls (2 n^3 FLOPs each)."""
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(repeats):
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        a @ b
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return 2 * size**3 / best


def save_checkpoint(path, raw_model, optimizer, step, config, history, batch_generator):
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {
        "model": raw_model.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
        "config": asdict(config), "model_config": asdict(raw_model.config), "history": history,
        "batch_generator": batch_generator.get_state(), "torch_rng": torch.get_rng_state(),
    }
    torch.save(state, path)


def load_model(checkpoint_path, device="cpu"):
    """The trained model of a checkpoint, in eval mode."""
    state = torch.load(checkpoint_path, map_location=device, weights_only=False)
    model = GPT(GPTConfig(**state["model_config"])).to(device)
    model.load_state_dict(state["model"])
    return model.eval()


def new_history():
    return {"step": [], "loss": [], "lr": [], "eval_step": [], "eval_seconds": [], "train_loss": [], "val_loss": [],
            "train_seconds": 0.0, "train_tokens": 0, "wall_seconds": 0.0, "stopped_by": "max_iters"}


def schedule_step(step, wall_seconds, config):
    """The step the learning-rate schedule is at. With a time budget the schedule runs on whichever
    clock is further ahead, steps or seconds: on a slow machine the run has fewer steps, but the
    learning rate still warms up, decays and ends low when the budget ends, instead of being cut mid-decay."""
    if not config.max_seconds:
        return step
    decay_iters = config.lr_decay_iters or config.max_iters
    return max(step, int(wall_seconds / config.max_seconds * decay_iters))


def train(config: TrainConfig) -> dict:
    """Train, evaluate, checkpoint. Returns the history: per-step loss and lr, periodic train/val
    estimates, and the measured throughput (tokens/s, excluding evaluation and the first steps)."""
    rank, local_rank, world_size = distributed_setup()
    is_main = rank == 0  # only one process prints, saves and plots
    device = pick_device(config, local_rank)
    if device.startswith("cuda"):
        torch.cuda.set_device(device)
        torch.backends.cuda.matmul.allow_tf32 = True  # float32 matmuls outside autocast on tensor cores
        torch.backends.cudnn.allow_tf32 = True
    torch.manual_seed(config.seed)  # the same initial weights in every process
    # the same generator in every process: each draws the global batch's starts and keeps its own slice, so
    # W processes of B windows train on exactly the batches of one process with W * B windows
    batch_generator = torch.Generator().manual_seed(config.seed + 1000)
    autocast = autocast_context(device, config.dtype)

    tokenizer, train_ids, val_ids = load_shakespeare(config.data_path)
    model = GPT(model_config(config, tokenizer.vocab_size)).to(device)
    optimizer = model.configure_optimizer(
        config.weight_decay, config.learning_rate, (config.beta1, config.beta2), fused=device.startswith("cuda")
    )
    out_dir = Path(config.out_dir)
    if not out_dir.is_absolute():
        out_dir = REPO / out_dir
    checkpoint_path = out_dir / "checkpoint.pt"
    history, start_step = new_history(), 0
    if config.resume and checkpoint_path.exists():
        state = torch.load(checkpoint_path, map_location=device, weights_only=False)
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        history, start_step = state["history"], state["step"]
        batch_generator.set_state(state["batch_generator"])
        torch.set_rng_state(state["torch_rng"])
    raw_model = model
    if config.compile:
        model = torch.compile(model)  # fuses the small operations between matmuls into fewer kernels
    if world_size > 1 or dist.is_initialized():
        model = DistributedDataParallel(model, device_ids=[local_rank] if device.startswith("cuda") else None)

    decay_iters = config.lr_decay_iters or config.max_iters
    splits = {"train": train_ids, "val": val_ids}
    tokens_per_step = config.batch_size * config.block_size * config.grad_accum * world_size
    timed_from = start_step + min(5, max(0, (config.max_iters - start_step) // 5))  # skip warm-up (and compile) steps

    def evaluate(step):
        losses = estimate_loss(model, splits, config, device, autocast, world_size)
        history["eval_step"].append(step)
        history["eval_seconds"].append(history["wall_seconds"])  # training time so far, evaluations excluded
        history["train_loss"].append(losses["train"])
        history["val_loss"].append(losses["val"])
        if is_main and config.progress:
            tqdm.write(f"step {step:5d}: train loss {losses['train']:.4f}, val loss {losses['val']:.4f}")

    steps = tqdm(range(start_step, config.max_iters), disable=not (is_main and config.progress), desc="training")
    for step in steps:
        if step % config.eval_interval == 0 and step not in history["eval_step"]:
            evaluate(step)
            if config.target_val_loss is not None and history["val_loss"][-1] <= config.target_val_loss:
                history["stopped_by"] = "target"
                break
        if config.max_seconds and history["wall_seconds"] >= config.max_seconds:
            history["stopped_by"] = "max_seconds"
            break
        lr = learning_rate(schedule_step(step, history["wall_seconds"], config), config.learning_rate,
                           config.warmup_iters, decay_iters, config.min_lr)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        started = time.perf_counter()
        for micro_step in range(config.grad_accum):
            x, y = random_batch(train_ids, config.batch_size, config.block_size, batch_generator, device, rank, world_size)
            # DDP averages gradients across processes at every backward; only the last micro-step needs it
            sync = micro_step == config.grad_accum - 1 or not isinstance(model, DistributedDataParallel)
            with autocast, (nullcontext() if sync else model.no_sync()):
                loss = model(x, y)[1] / config.grad_accum
            loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)  # a rare huge gradient cannot wreck the model
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        step_loss = loss.detach() * config.grad_accum
        if world_size > 1:  # the loss of the global batch: the mean of the processes' means (equal slices)
            dist.all_reduce(step_loss)
            step_loss /= world_size
        step_loss = step_loss.item()  # .item() waits for the GPU, so the timing below is honest
        history["wall_seconds"] += time.perf_counter() - started  # every step, compilation included
        if step >= timed_from:
            history["train_seconds"] += time.perf_counter() - started
            history["train_tokens"] += tokens_per_step
        history["step"].append(step)
        history["loss"].append(step_loss)
        history["lr"].append(lr)
        steps.set_postfix(loss=f"{step_loss:.3f}", lr=f"{lr:.1e}")
    last_step = history["step"][-1] + 1 if history["step"] else start_step
    if history["stopped_by"] != "target" and last_step not in history["eval_step"]:
        evaluate(last_step)

    history["num_parameters"] = raw_model.num_parameters()
    history["flops_per_token"] = flops_per_token(raw_model.config, history["num_parameters"])
    history["tokens_per_second"] = history["train_tokens"] / max(history["train_seconds"], 1e-9)
    history["world_size"] = world_size
    if is_main and config.save_checkpoint:
        save_checkpoint(checkpoint_path, raw_model, optimizer, last_step, config, history, batch_generator)
        plot_history(history, out_dir / "loss.png")
    if dist.is_initialized():
        dist.barrier()
    return history


def plot_history(history, path=None, ax=None):
    """Per-step training loss (thin) and the periodic train/val estimates (markers)."""
    import matplotlib.pyplot as plt

    from course.plotting import use_course_style

    use_course_style()
    figure = None
    if ax is None:
        figure, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot(history["step"], history["loss"], lw=0.8, alpha=0.5, label="training batch")
    ax.plot(history["eval_step"], history["train_loss"], "o-", label="train (estimate)")
    ax.plot(history["eval_step"], history["val_loss"], "s-", label="validation (estimate)")
    ax.set_xlabel("step")
    ax.set_ylabel("cross-entropy (nats per character)")
    ax.legend()
    if path is not None and figure is not None:
        figure.tight_layout()
        figure.savefig(path, dpi=120, facecolor="white")
        plt.close(figure)
    return ax


def flag_type(annotation):
    """The argparse type of a TrainConfig field: ``float | None`` parses as float (None is the
    default, not something to type), ``int`` as int, and so on; bool fields are --flag/--no-flag."""
    arguments = [a for a in typing.get_args(annotation) if a is not type(None)]
    if arguments:  # an optional field, X | None
        (annotation,) = arguments
    if annotation not in (bool, int, float, str):
        raise TypeError(f"no command-line flag for a field of type {annotation!r}")
    return annotation


def argument_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="cpu_tiny", choices=sorted(CONFIGS))
    parser.add_argument("--results", default=None, help="write the run's results (JSON) here; on a GPU the default "
                        "is benchmarks/results/train_gpt_<config>.json, on a CPU nothing is written without it")
    for name, annotation in typing.get_type_hints(TrainConfig).items():  # every field: --max-iters 200, --attention manual
        flag = "--" + name.replace("_", "-")
        kind = flag_type(annotation)
        if kind is bool:
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None)
        else:
            parser.add_argument(flag, type=kind, default=None)
    return parser


def config_from(arguments: argparse.Namespace) -> TrainConfig:
    overrides = {key: value for key, value in vars(arguments).items() if value is not None and key not in ("config", "results")}
    return named_config(arguments.config, **overrides)


def parse_arguments(argv=None) -> TrainConfig:
    return config_from(argument_parser().parse_args(argv))


def results_record(history, config_name, config) -> dict:
    """What a results file keeps of a run: throughput, MFU against the device's peak, losses."""
    if pick_device(config, 0).startswith("cuda"):
        peak, peak_source = gpu_results.bf16_peak(torch.cuda.get_device_name())
    else:
        peak, peak_source = measure_matmul_flops(), "measured float32 1024 x 1024 matmul on this CPU"
    per_device = history["tokens_per_second"] / max(history["world_size"], 1)  # MFU is per device
    return {
        "script": "course.train_gpt", "config_name": config_name, "config": asdict(config),
        "world_size": history["world_size"], "num_parameters": history["num_parameters"],
        "flops_per_token": history["flops_per_token"], "steps": len(history["step"]),
        "tokens_per_second": history["tokens_per_second"],
        "mfu": per_device * history["flops_per_token"] / peak if peak else None,
        "peak_flops": peak, "peak_source": peak_source,
        "final_val_loss": history["val_loss"][-1], "best_val_loss": min(history["val_loss"]),
        "eval_step": history["eval_step"], "val_loss": history["val_loss"], "train_loss": history["train_loss"],
        "train_seconds": history["wall_seconds"],
    }


def main(argv=None):
    arguments = argument_parser().parse_args(argv)
    config = config_from(arguments)
    history = train(config)
    if int(os.environ.get("RANK", 0)) == 0:
        record = results_record(history, arguments.config, config)
        print(f"parameters {history['num_parameters'] / 1e6:.2f} M, final val loss {history['val_loss'][-1]:.4f}")
        mfu = f"MFU {record['mfu']:.1%} of {record['peak_flops'] / 1e9:,.0f} GFLOP/s" if record["mfu"] else "MFU not computed"
        print(f"{history['tokens_per_second']:,.0f} tokens/s, {mfu} ({record['peak_source']})")
        path = arguments.results
        if path is None and pick_device(config, 0).startswith("cuda"):
            path = gpu_results.RESULTS_DIR / f"train_gpt_{arguments.config}.json"
        if path is not None:
            command = gpu_results.command_line("course.train_gpt", sys.argv[1:] if argv is None else argv)
            print(f"results written to {gpu_results.write(path, record, command)}")
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
