"""Results files of the GPU runs (chapter 7): what ran, where, when, and what it measured.

``benchmarks/gpt_throughput.py`` and ``python -m course.train_gpt --config gpu`` write one JSON file
each under ``benchmarks/results/`` when they run on a GPU (on a CPU only when given ``--results``), so
that the figures live in the repository beside the command that produced them. Chapter 7 reads them
with :func:`load` and says plainly when a file is missing: no figure is typed in by hand.

A record holds at least ``date`` (UTC), ``command``, ``torch``, ``hardware`` (device name, count,
CPU), ``git_commit`` and the script's measurements (tokens/s, MFU and the peak it is relative to,
the validation loss).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO / "benchmarks" / "results"

# Dense bfloat16 tensor-core peaks from NVIDIA's datasheets (SXM parts), in FLOP/s: MFU is relative to these.
BF16_PEAK_FLOPS = {"H100": 989e12, "H200": 989e12, "A100": 312e12}


def bf16_peak(device_name: str) -> tuple[float | None, str]:
    """(peak FLOP/s, where it comes from) for a GPU's name; (None, ...) for a GPU not in the table."""
    for model, peak in BF16_PEAK_FLOPS.items():
        if model in device_name:
            return peak, f"NVIDIA datasheet, {model} dense bf16"
    return None, f"no datasheet peak known for {device_name!r}"


def hardware() -> dict:
    """The machine: accelerator name and count (if any), CPU, cores, platform."""
    import torch

    facts = {"platform": platform.platform(), "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count()}
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                facts["cpu"] = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    if torch.cuda.is_available():
        facts["device"] = torch.cuda.get_device_name()
        facts["device_count"] = torch.cuda.device_count()
        facts["cuda"] = torch.version.cuda
    else:
        facts["device"] = "cpu"
        facts["torch_threads"] = torch.get_num_threads()
    return facts


def git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def command_line(module: str | None = None, argv: list[str] | None = None) -> str:
    """The command as typed: ``python -m module args`` or ``python script args``, under torchrun if it started us."""
    argv = sys.argv[1:] if argv is None else argv
    if module:
        head = f"python -m {module}"
    else:
        script = Path(sys.argv[0]).resolve()
        head = f"python {script.relative_to(REPO) if script.is_relative_to(REPO) else script}"
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1:
        head = f"torchrun --nproc_per_node={os.environ.get('LOCAL_WORLD_SIZE', world)} " + head.replace("python ", "", 1)
    return " ".join([head, *map(shlex.quote, argv)])


def write(path: str | Path, measurements: dict, command: str) -> Path:
    """Write one results record (the measurements plus date, command, torch, hardware, commit); returns the path."""
    import torch

    record = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "command": command,
        "torch": torch.__version__,
        "hardware": hardware(),
        "git_commit": git_commit(),
        **measurements,
    }
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1) + "\n")
    return path


def load(name: str, folder: str | Path = RESULTS_DIR) -> dict | None:
    """The record ``<folder>/<name>.json``, or None when it has not been measured (no file)."""
    path = Path(folder) / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


# The files the two GPU commands write: python -m course.train_gpt (train_gpt_<config>.json) and
# benchmarks/gpt_throughput.py (gpt_throughput_<shape>[_compile].json). Other results kept in the same folder
# (benchmarks/scaling.py's CPU run, scaling.json) are not GPU runs.
GPU_RUN_PREFIXES = ("train_gpt_", "gpt_throughput_")


def gpu_runs(folder: str | Path = RESULTS_DIR) -> list[tuple[str, dict]]:
    """(name, record) of every GPU run recorded in ``folder``, by name: the files the GPU commands write whose
    device is not the CPU (a CPU run written there with ``--results`` is not a GPU figure)."""
    runs = []
    for path in sorted(Path(folder).glob("*.json")):
        if path.stem.startswith(GPU_RUN_PREFIXES):
            record = load(path.stem, folder)
            if record["hardware"].get("device", "cpu") != "cpu":
                runs.append((path.stem, record))
    return runs
