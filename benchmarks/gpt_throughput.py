"""Throughput, MFU, peak memory and validation loss of course/gpt.py against a nanoGPT-style reference.

    python benchmarks/gpt_throughput.py                    # CPU: a small shape, ratios only mean something relative
    python benchmarks/gpt_throughput.py --compile          # GPU: the ~85 M-parameter shape in bf16 (see README.md)

Three models of identical shape train on the same batches, one after the other, on one device:
    course (sdpa)    course.gpt.GPT, F.scaled_dot_product_attention (the fast path)
    course (manual)  course.gpt.GPT with chapter 3's attention (materialises the T x T weights)
    reference        benchmarks/reference_gpt.py, written from nanoGPT's public description
Each trains for --steps steps; the first --warmup steps (and compilation) are not timed. The
validation loss after those steps is estimated on the same fixed batches for all three.

On a GPU the results (hardware, date, torch version, command, tokens/s, MFU, memory, loss) are written to
benchmarks/results/gpt_throughput_<shape>[_compile].json, which chapter 7 shows; on a CPU only with --results PATH.
"""

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))  # reference_gpt.py sits next to this file

from reference_gpt import ReferenceGPT  # noqa: E402

from course.gpt import GPT, GPTConfig, flops_per_token  # noqa: E402
from course.text_data import load_shakespeare, random_batch  # noqa: E402
from course import gpu_results  # noqa: E402
from course.train_gpt import autocast_context, measure_matmul_flops  # noqa: E402

SHAPES = {
    "cpu_small": dict(n_layer=2, n_head=4, n_embd=128, block_size=128, batch_size=8, steps=25, warmup=5),
    "gpu_100m": dict(n_layer=12, n_head=12, n_embd=768, block_size=1024, batch_size=16, steps=300, warmup=20),
}


def build(kind, shape, vocab_size, device):
    torch.manual_seed(0)
    if kind == "reference":
        model = ReferenceGPT(vocab_size, shape["block_size"], shape["n_layer"], shape["n_head"], shape["n_embd"])
    else:
        config = GPTConfig(vocab_size=vocab_size, block_size=shape["block_size"], n_layer=shape["n_layer"],
                           n_head=shape["n_head"], n_embd=shape["n_embd"], attention=kind)
        model = GPT(config)
    return model.to(device)


def synchronize(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def run(kind, shape, data, device, compile_model, learning_rate=1e-3):
    """Train one model; returns tokens/s, non-embedding parameters, peak memory (GB) and the val loss."""
    tokenizer, train_ids, val_ids = data
    model = build(kind, shape, tokenizer.vocab_size, device)
    parameters = model.num_parameters()
    optimizer = torch.optim.AdamW(model.parameters(), lr=learning_rate, betas=(0.9, 0.95), weight_decay=0.1,
                                  fused=device.startswith("cuda"))
    step_model = torch.compile(model) if compile_model else model
    autocast = autocast_context(device, "auto")
    batches = torch.Generator().manual_seed(1)  # the same training batches for every model
    if device.startswith("cuda"):
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    B, T = shape["batch_size"], shape["block_size"]
    timed_seconds = 0.0
    for step in range(shape["steps"]):
        x, y = random_batch(train_ids, B, T, batches, device)
        synchronize(device)
        start = time.perf_counter()
        with autocast:
            _, loss = step_model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        synchronize(device)
        if step >= shape["warmup"]:
            timed_seconds += time.perf_counter() - start
    tokens_per_second = (shape["steps"] - shape["warmup"]) * B * T / timed_seconds
    peak_memory = torch.cuda.max_memory_allocated() / 1e9 if device.startswith("cuda") else None
    model.eval()
    evaluation = torch.Generator().manual_seed(2)
    with torch.no_grad(), autocast:
        val_loss = sum(step_model(*random_batch(val_ids, B, T, evaluation, device))[1].item() for _ in range(10)) / 10
    return dict(tokens_per_second=tokens_per_second, parameters=parameters, peak_memory_gb=peak_memory, val_loss=val_loss)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=sorted(SHAPES), default=None, help="default: gpu_100m on CUDA, cpu_small otherwise")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--compile", action="store_true", help="torch.compile every model (same flag for all three)")
    parser.add_argument("--skip-manual", action="store_true", help="leave out the manual-attention model")
    parser.add_argument("--threads", type=int, default=1, help="CPU only: torch threads (1 is fastest for small shapes on a loaded machine)")
    parser.add_argument("--results", default=None, help="write the results (JSON) here; on a GPU the default is "
                        "benchmarks/results/gpt_throughput_<shape>.json, on a CPU nothing is written without it")
    arguments = parser.parse_args()

    device = "cuda" if torch.cuda.is_available() else "cpu"
    shape = dict(SHAPES[arguments.shape or ("gpu_100m" if device == "cuda" else "cpu_small")])
    if arguments.steps:
        shape["steps"] = arguments.steps
        shape["warmup"] = min(shape["warmup"], arguments.steps // 4)
    if arguments.batch_size:
        shape["batch_size"] = arguments.batch_size
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = True
        device_name = torch.cuda.get_device_name()
        peak, peak_source = gpu_results.bf16_peak(device_name)
        if peak is None:  # MFU against the H100's figure is still a comparison, if a named one
            peak, peak_source = gpu_results.BF16_PEAK_FLOPS["H100"], f"H100 dense bf16 datasheet ({peak_source})"
    else:
        torch.set_num_threads(arguments.threads)
        peak, peak_source = measure_matmul_flops(), f"measured float32 1024x1024 matmul, {arguments.threads} thread(s)"
        device_name = f"CPU, {torch.get_num_threads()} threads"

    data = load_shakespeare()
    print(f"device: {device_name}; torch {torch.__version__}; compile={arguments.compile}; dtype "
          f"{'bfloat16 autocast' if device == 'cuda' else 'float32'}")
    print(f"shape: {shape}")
    print(f"peak used for MFU: {peak / 1e12:.3f} TFLOP/s ({peak_source})")
    kinds = ["sdpa"] + ([] if arguments.skip_manual else ["manual"]) + ["reference"]
    names = {"sdpa": "course (sdpa)", "manual": "course (manual)", "reference": "nanoGPT-style reference"}
    results = {}
    print(f"\n{'model':26s} {'params':>9s} {'tokens/s':>12s} {'MFU':>7s} {'peak mem':>9s} {'val loss':>9s}")
    for kind in kinds:
        result = run(kind, shape, data, device, arguments.compile)
        config = GPTConfig(block_size=shape["block_size"], n_layer=shape["n_layer"], n_embd=shape["n_embd"])
        result["mfu"] = result["tokens_per_second"] * flops_per_token(config, result["parameters"]) / peak
        results[kind] = result
        memory = "n/a" if device == "cpu" else f"{result['peak_memory_gb']:.2f}G"
        print(f"{names[kind]:26s} {result['parameters'] / 1e6:8.2f}M {result['tokens_per_second']:12,.0f} "
              f"{result['mfu']:7.1%} {memory:>9s} {result['val_loss']:9.4f}", flush=True)
    reference = results["reference"]["tokens_per_second"]
    print(f"\nval loss after {shape['steps']} steps of {shape['batch_size']} x {shape['block_size']} tokens (10 fixed val batches)")
    for kind in kinds[:-1]:
        print(f"throughput {names[kind]} / reference: {results[kind]['tokens_per_second'] / reference:.2f}x")
    if device == "cpu":
        print("(CPU run: a small shape; only the ratios are meaningful, and timings vary with the machine's load)")
    path = arguments.results
    shape_name = arguments.shape or ("gpu_100m" if device == "cuda" else "cpu_small")
    if path is None and device == "cuda":
        path = gpu_results.RESULTS_DIR / f"gpt_throughput_{shape_name}{'_compile' if arguments.compile else ''}.json"
    if path is not None:
        record = {"script": "benchmarks/gpt_throughput.py", "shape_name": shape_name, "shape": shape,
                  "compile": arguments.compile, "dtype": "bfloat16 autocast" if device == "cuda" else "float32",
                  "peak_flops": peak, "peak_source": peak_source,
                  "models": {kind: dict(results[kind], name=names[kind]) for kind in kinds},
                  "sdpa_over_reference": results["sdpa"]["tokens_per_second"] / reference}
        print(f"results written to {gpu_results.write(path, record, gpu_results.command_line())}")


if __name__ == "__main__":
    main()
