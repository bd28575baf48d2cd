"""Chapter 7's several-process path on the CPU: two processes under torchrun (gloo) train exactly as one
process with the doubled batch. A single process per GPU is what `torchrun --nproc_per_node=8` starts on
a GPU machine; here the same code runs on two CPU processes, and the losses must agree to float rounding."""

import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from course.train_gpt import named_config, train

REPO = Path(__file__).resolve().parent.parent
TINY = dict(n_layer=1, n_head=2, n_embd=16, block_size=16, max_iters=8, warmup_iters=2, learning_rate=3e-3,
            eval_interval=4, eval_iters=2, progress=False)


def flags(settings):
    out = []
    for key, value in settings.items():
        flag = "--" + key.replace("_", "-")
        out += [flag if value else "--no-" + flag[2:]] if isinstance(value, bool) else [flag, str(value)]
    return out


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process_with_the_doubled_batch(tmp_path):
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
        "--master_addr=127.0.0.1", f"--master_port={free_port()}", "-m", "course.train_gpt", "--config", "cpu_tiny",
        *flags(dict(TINY, batch_size=4, out_dir=str(tmp_path / "ddp"))),
    ]
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "tokens/s" in result.stdout  # rank 0 reports; the other rank stays quiet
    assert result.stdout.count("tokens/s") == 1, result.stdout
    ddp = torch.load(tmp_path / "ddp" / "checkpoint.pt", weights_only=False)["history"]
    assert ddp["world_size"] == 2

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # torchrun gives each process one thread
    try:
        single = train(named_config("cpu_tiny", **TINY, batch_size=8, out_dir=str(tmp_path / "single")))
    finally:
        torch.set_num_threads(threads)
    assert single["world_size"] == 1
    assert ddp["step"] == single["step"] == list(range(8))
    # the same global batches, the same averaged gradients, the same steps: the same curves up to rounding
    assert ddp["loss"] == pytest.approx(single["loss"], abs=1e-4, rel=1e-4)
    assert ddp["val_loss"] == pytest.approx(single["val_loss"], abs=1e-4, rel=1e-4)
    assert ddp["train_loss"] == pytest.approx(single["train_loss"], abs=1e-4, rel=1e-4)
    assert single["loss"][-1] < single["loss"][0]  # and the run learnt something, so the curves are not trivially equal
    # a control: a process of half the batch alone follows another curve, so the comparison can fail
    half = train(named_config("cpu_tiny", **TINY, batch_size=4, out_dir=str(tmp_path / "half")))
    assert max(abs(a - b) for a, b in zip(half["loss"], single["loss"])) > 1e-2
