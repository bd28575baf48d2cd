"""Chapter 7: the GPT, its training loop, the KV cache and the data split (CPU, seconds each)."""

import json
import math
import typing
from dataclasses import fields, replace

import pytest
import torch
import torch.nn.functional as F

from course.attention import causal_mask, scaled_dot_product_attention
from course.gpt import (
    GPT,
    GPTConfig,
    KVCache,
    cached_attention_step,
    flops_per_token,
    generate,
    learning_rate,
    next_token_loss,
)
from course.text_data import DATA_PATH, load_shakespeare, random_batch
from course import gpu_results
from course.train_gpt import TrainConfig, flag_type, main, named_config, parse_arguments, train

TINY = GPTConfig(vocab_size=11, block_size=16, n_layer=2, n_head=2, n_embd=16)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models run faster on one thread (and much faster on a loaded machine); restore afterwards."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_model(**changes):
    torch.manual_seed(0)
    return GPT(replace(TINY, **changes)).eval()


def tiny_training(tmp_path, **changes):
    """A run small enough for a test: 2 layers of width 32, context 32."""
    settings = dict(n_layer=2, n_head=2, n_embd=32, block_size=32, batch_size=8, max_iters=40, warmup_iters=5,
                    learning_rate=3e-3, eval_interval=20, eval_iters=2, out_dir=str(tmp_path), progress=False)
    settings.update(changes)
    return replace(TrainConfig(), **settings)


def test_shapes_and_loss_at_initialisation():
    model = tiny_model()
    idx = torch.randint(11, (3, 7))
    logits, loss = model(idx, idx)
    assert logits.shape == (3, 7, 11)
    # GPT-2 initialisation: the first predictions are nearly uniform, loss close to ln(V)
    assert abs(loss.item() - math.log(11)) < 0.2


def test_weight_tying():
    model = tiny_model()
    assert model.lm_head.weight is model.token_embedding.weight
    counted_once = sum(p.numel() for p in model.parameters())  # parameters() yields a shared tensor once
    untied = counted_once + model.lm_head.weight.numel()
    assert model.num_parameters(non_embedding=False) == counted_once < untied


def test_manual_and_sdpa_attention_agree():
    sdpa = tiny_model(attention="sdpa")
    manual = tiny_model(attention="manual")
    manual.load_state_dict(sdpa.state_dict())
    idx = torch.randint(11, (2, 16))
    torch.testing.assert_close(manual(idx)[0], sdpa(idx)[0], atol=1e-5, rtol=1e-5)


def test_causal_future_tokens_do_not_change_the_past():
    model = tiny_model()
    idx = torch.randint(11, (1, 10))
    changed = idx.clone()
    changed[0, 6:] = (changed[0, 6:] + 1) % 11
    torch.testing.assert_close(model(idx)[0][:, :6], model(changed)[0][:, :6])


@pytest.mark.parametrize("attention", ["sdpa", "manual"])
def test_kv_cache_gives_the_same_logits(attention):
    model = tiny_model(attention=attention)
    idx = torch.randint(11, (2, 12))
    full, _ = model(idx)  # (2, 12, V), every position recomputed from scratch
    cache = KVCache(TINY.n_layer)
    prefix, _ = model(idx[:, :5], cache=cache)  # a prompt of 5 tokens at once
    steps = [model(idx[:, t : t + 1], cache=cache)[0] for t in range(5, 12)]  # then one token at a time
    cached = torch.cat([prefix, *steps], dim=1)
    assert len(cache) == 12
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-5)


def test_cached_generation_equals_uncached_even_past_block_size():
    model = tiny_model()
    prompt = torch.randint(11, (2, 3))
    # 20 new tokens pass block_size (16): the window slides and the cache must be rebuilt
    with_cache = generate(model, prompt, 20, temperature=0, use_cache=True)
    without = generate(model, prompt, 20, temperature=0, use_cache=False)
    assert torch.equal(with_cache, without)
    sampled = [generate(model, prompt, 8, temperature=0.8, top_k=3, use_cache=c, generator=torch.Generator().manual_seed(5))
               for c in (True, False)]
    assert torch.equal(*sampled)


def test_cached_attention_step_equals_recomputing_the_prefix():
    q, k, v = torch.randn(3, 2, 2, 6, 8).unbind(0)  # (B=2, H=2, T=6, Dh=8) each
    full, _ = scaled_dot_product_attention(q, k, v, causal_mask(6))
    out, keys, values = cached_attention_step(q[:, :, -1:], k[:, :, -1:], v[:, :, -1:], k[:, :, :-1], v[:, :, :-1])
    torch.testing.assert_close(out, full[:, :, -1:])
    assert torch.equal(keys, k) and torch.equal(values, v)
    first, _, _ = cached_attention_step(q[:, :, :1], k[:, :, :1], v[:, :, :1])
    torch.testing.assert_close(first, v[:, :, :1])


def test_next_token_loss_shifts_targets():
    logits = torch.randn(2, 5, 7)
    tokens = torch.randint(7, (2, 5))
    expected = F.cross_entropy(logits[:, :4].reshape(-1, 7), tokens[:, 1:].reshape(-1))
    torch.testing.assert_close(next_token_loss(logits, tokens), expected)


def test_learning_rate_schedule():
    schedule = [learning_rate(s, max_lr=1.0, warmup_steps=10, decay_steps=110, min_lr=0.1) for s in range(130)]
    assert schedule[0] == pytest.approx(0.1) and schedule[9] == pytest.approx(1.0)  # linear warm-up
    assert schedule[10] == pytest.approx(1.0)  # the peak, start of the cosine
    assert schedule[60] == pytest.approx(0.55)  # half-way: the middle of max and min
    assert schedule[110] == pytest.approx(0.1) and schedule[129] == pytest.approx(0.1)  # flat at min_lr
    assert all(a >= b for a, b in zip(schedule[10:], schedule[11:]))  # never rises after the peak


def test_flops_per_token():
    config = GPTConfig(n_layer=6, n_embd=384, block_size=256)
    assert flops_per_token(config, 10_000_000) == 60_000_000 + 12 * 6 * 384 * 256


def test_data_split_is_deterministic_and_disjoint():
    tokenizer, train_ids, val_ids = load_shakespeare()
    text = DATA_PATH.read_text(encoding="utf-8")
    assert tokenizer.vocab_size == 65 and len(train_ids) + len(val_ids) == len(text) == 1_115_394
    assert len(train_ids) == int(0.9 * len(text))  # nanoGPT's shakespeare_char split
    assert tokenizer.decode(train_ids[-20:]) + tokenizer.decode(val_ids[:20]) == text[len(train_ids) - 20 : len(train_ids) + 20]
    _, again_train, again_val = load_shakespeare()
    assert torch.equal(train_ids, again_train) and torch.equal(val_ids, again_val)
    x, y = random_batch(val_ids, 4, 8, torch.Generator().manual_seed(0))
    assert x.shape == y.shape == (4, 8) and torch.equal(x[:, 1:], y[:, :-1])


def test_training_lowers_the_loss(tmp_path):
    history = train(tiny_training(tmp_path))
    assert history["val_loss"][-1] < history["val_loss"][0] - 0.5, history["val_loss"]
    assert history["tokens_per_second"] > 0
    assert (tmp_path / "checkpoint.pt").exists() and (tmp_path / "loss.png").exists()


def test_resume_gives_the_same_next_losses(tmp_path):
    straight = train(tiny_training(tmp_path / "a", max_iters=12, lr_decay_iters=12, eval_interval=100))
    train(tiny_training(tmp_path / "b", max_iters=6, lr_decay_iters=12, eval_interval=100))
    resumed = train(tiny_training(tmp_path / "b", max_iters=12, lr_decay_iters=12, eval_interval=100, resume=True))
    assert resumed["step"] == list(range(12))
    assert resumed["loss"][6:] == pytest.approx(straight["loss"][6:], abs=1e-5)


def test_every_config_field_has_a_flag_of_its_type():
    """Each TrainConfig field parses from its flag to a value of the field's type (issue: a float | None
    field, --target-val-loss 1.91, used to be parsed as an integer and rejected)."""
    representative = {int: ("7", 7), float: ("1.91", 1.91), str: ("manual", "manual")}
    hints = typing.get_type_hints(TrainConfig)
    assert len(hints) == len(fields(TrainConfig)) > 30
    for name, annotation in hints.items():
        flag = "--" + name.replace("_", "-")
        kind = flag_type(annotation)
        if kind is bool:
            assert getattr(parse_arguments([flag]), name) is True, flag
            assert getattr(parse_arguments(["--no-" + flag[2:]]), name) is False, flag
            continue
        text, value = representative[kind]
        parsed = getattr(parse_arguments([flag, text]), name)
        assert type(parsed) is kind and parsed == value, (flag, parsed)
    # the two fields of the report, with the values it used
    config = parse_arguments(["--target-val-loss", "1.91", "--max-seconds", "90.5"])
    assert (config.target_val_loss, config.max_seconds) == (1.91, 90.5)
    with pytest.raises(SystemExit):  # and an integer field still refuses a fraction
        parse_arguments(["--max-iters", "2.5"])


def test_command_line_run_writes_its_results(tmp_path):
    main(["--n-layer", "1", "--n-embd", "16", "--n-head", "2", "--block-size", "16", "--batch-size", "4",
          "--max-iters", "4", "--eval-interval", "2", "--eval-iters", "1", "--out-dir", str(tmp_path), "--no-progress",
          "--results", str(tmp_path / "results.json")])
    record = gpu_results.load("results", tmp_path)
    for key in ("date", "command", "torch", "hardware", "tokens_per_second", "mfu", "peak_source", "final_val_loss"):
        assert record[key] is not None, key
    assert record["command"].startswith("python -m course.train_gpt --n-layer 1")
    assert record["hardware"]["device"] == "cpu" and record["steps"] == 4 and record["tokens_per_second"] > 0
    assert gpu_results.load("not_measured", tmp_path) is None


def test_gpu_runs_are_only_the_gpu_commands_files(tmp_path):
    """Chapter 7 shows the GPU runs of benchmarks/results/: not a CPU run, nor another benchmark's file kept there."""
    gpu = {"device": "NVIDIA H100 80GB HBM3", "device_count": 1}
    (tmp_path / "train_gpt_gpu.json").write_text(json.dumps({"hardware": gpu, "tokens_per_second": 1.0}))
    (tmp_path / "gpt_throughput_gpt2.json").write_text(json.dumps({"hardware": {"device": "cpu"}}))
    (tmp_path / "scaling.json").write_text(json.dumps({"hardware": "x86_64, a CPU", "runs": []}))
    assert [name for name, _ in gpu_results.gpu_runs(tmp_path)] == ["train_gpt_gpu"]
    for name, record in gpu_results.gpu_runs():  # the repository's own folder reads (scaling.json is not a GPU run)
        assert name.startswith(gpu_results.GPU_RUN_PREFIXES) and record["hardware"]["device"] != "cpu"


def test_command_line_overrides():
    config = parse_arguments(["--config", "gpu", "--max-iters", "7", "--attention", "manual", "--compile"])
    assert (config.max_iters, config.attention, config.compile, config.n_embd) == (7, "manual", True, 384)
    assert named_config("cpu_tiny").device == "auto"


# The several-process path (torchrun, two processes on gloo) is tested in tests/test_ddp.py.
