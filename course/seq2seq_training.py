"""Training and measuring sequence-to-sequence models (chapters 1, 2 and 6).

Any model with the course's seq2seq interface works here (``course.rnn.Seq2Seq``,
``course.transformer.EncoderDecoderTransformer``):

    model(src, src_lengths, tgt_in) -> logits (B, T, V)
    model.greedy_decode(src, src_lengths, max_len) -> token ids (B, <= max_len), stopping at EOS

Typical use::

    task = reversal_task(**LENGTH_TASK)
    model = attention_model(len(task.source_vocab), len(task.target_vocab))
    history = train_seq2seq(model, task.splits["train"], task.source_vocab, task.target_vocab, **BUDGET)
    accuracy = exact_match_by_length(model, task.splits["test"], task.source_vocab, task.target_vocab)

For a fair comparison, every model of chapters 1, 2 and 6 trains on the same data with the same
budget (:data:`BUDGET`: steps, batch size, learning rate, seed).
"""

import functools
import random
import time
from collections import defaultdict

import torch
import torch.nn.functional as F

import course
from course.seq2seq_data import PAD, Vocabulary, make_batch

# One training budget per profile: "book" executes in the website build on a 2-core CPU,
# "full" (COURSE_PROFILE=full) trains longer, for numbers closer to convergence.
BUDGET = {
    "book": dict(steps=300, batch_size=64, lr=3e-3, seed=course.SEED),
    "full": dict(steps=3000, batch_size=64, lr=2e-3, seed=course.SEED),
}[course.PROFILE]

# The sizes of chapters 1-2's models (embedding width, decoder state width), the same for every model.
MODEL_SIZE = {
    "book": dict(embed_dim=32, hidden_size=64),
    "full": dict(embed_dim=64, hidden_size=128),
}[course.PROFILE]

# The length-controlled task: reversal of random strings with lengths uniform in [min_len, max_len].
LENGTH_TASK = {
    "book": dict(n=12_000, min_len=3, max_len=24, seed=0),
    "full": dict(n=60_000, min_len=3, max_len=48, seed=0),
}[course.PROFILE]

# Copying long strings (chapter 6): lengths uniform in [min_len, max_len].
COPY_TASK = {
    "book": dict(n=4_000, min_len=24, max_len=32, seed=0),
    "full": dict(n=20_000, min_len=64, max_len=96, seed=0),
}[course.PROFILE]

# Chapter 6's comparison of the RNN with attention and the transformer: every run has a fixed
# number of steps, its learning rate falls linearly to a tenth over them (``decay``), and its exact
# match on the first ``test_size`` test pairs is measured every ``evaluate_every`` steps.
# Reversal: every model trains ``steps``; the transformer also ``long_steps`` (for the step count
# the RNN's training time buys it, and to see its loss flatten).
REVERSAL_BUDGET = {
    "book": dict(steps=300, long_steps=600, batch_size=32, lr=3e-3, decay=True, evaluate_every=50, test_size=200),
    "full": dict(steps=3000, long_steps=6000, batch_size=64, lr=2e-3, decay=True, evaluate_every=250, test_size=1000),
}[course.PROFILE]
# Copying: both models train ``steps``.
COPY_BUDGET = {
    "book": dict(steps=400, batch_size=16, lr=3e-3, decay=True, evaluate_every=50, test_size=100),
    "full": dict(steps=3000, batch_size=32, lr=2e-3, decay=True, evaluate_every=250, test_size=500),
}[course.PROFILE]

# The date task: number of (written date, ISO date) pairs before the 80/10/10 split.
DATE_TASK = {
    "book": dict(n=12_000, seed=0),
    "full": dict(n=50_000, seed=0),
}[course.PROFILE]


def sequence_loss(logits: torch.Tensor, tgt_out: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per target token, padding excluded: logits (B, T, V), tgt_out (B, T)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1), ignore_index=PAD)


def decayed_rate(lr: float, step: int, steps: int) -> float:
    """``lr`` lowered linearly to ``lr / 10`` over ``steps`` steps (``step`` counts from 0)."""
    return lr * (1 - 0.9 * min(1.0, step / steps))


def train_seq2seq(model, train_pairs, source_vocab: Vocabulary, target_vocab: Vocabulary, steps: int,
                  batch_size: int = 64, lr: float = 3e-3, seed: int = 0, clip_norm: float = 1.0,
                  device=None, progress: bool = False, evaluate=None, evaluate_at=(), decay: bool = False) -> dict:
    """Train ``model`` with teacher forcing, Adam and gradient clipping, for ``steps`` random batches.

    What it learns depends only on the initial weights, ``seed`` and the step count (and torch's
    thread count, which the caller fixes, e.g. with ``course.training_setup``): there is no budget
    in seconds. Without ``decay`` the first k steps of a longer run are exactly a k-step run, so the
    evaluations of one run give the model at every step count in ``evaluate_at``.

    Args:
        model: a seq2seq model (interface in the module docstring); trained in place.
        train_pairs: list of (source text, target text).
        source_vocab, target_vocab: turn the texts into ids.
        steps, batch_size, lr: the budget; each step draws ``batch_size`` pairs at random.
        seed: fixes the order of the batches (the model's initial weights are fixed by whoever
            built it, e.g. ``torch.manual_seed`` before construction).
        clip_norm: gradients are rescaled to at most this norm (RNNs occasionally produce huge ones).
        device: where to train (default: where the model's parameters are).
        progress: show a tqdm progress bar (off by default, so the book stays quiet).
        evaluate, evaluate_at: ``evaluate(model) -> float`` is called (in eval mode) after each
            number of steps in ``evaluate_at``, and after the last step; its time is not counted
            in ``seconds``.
        decay: lower the learning rate linearly from ``lr`` to ``lr / 10`` over the ``steps``
            (:func:`decayed_rate`). Without it the rate stays ``lr``.

    Returns:
        ``{"loss": [mean token cross-entropy at each step], "seconds": wall time of the training,
        "steps": steps taken, "evaluations": {step: evaluate(model)}}``.
    """
    device = device or next(model.parameters()).device
    rng = random.Random(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    iterator = range(steps)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, leave=False)
    evaluations, evaluation_seconds = {}, 0.0
    start = time.perf_counter()
    for step in iterator:
        batch = make_batch(rng.sample(train_pairs, batch_size), source_vocab, target_vocab).to(device)
        logits = model(batch.src, batch.src_lengths, batch.tgt_in)  # (B, T, V)
        loss = sequence_loss(logits, batch.tgt_out)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), clip_norm)
        if decay:
            for group in optimizer.param_groups:
                group["lr"] = decayed_rate(lr, step, steps)
        optimizer.step()
        losses.append(loss.item())
        if evaluate is not None and (step + 1 in evaluate_at or step + 1 == steps):
            evaluation_start = time.perf_counter()
            model.eval()
            evaluations[step + 1] = evaluate(model)
            model.train()
            evaluation_seconds += time.perf_counter() - evaluation_start
    model.eval()
    return {"loss": losses, "seconds": time.perf_counter() - start - evaluation_seconds, "steps": len(losses),
            "evaluations": evaluations}


def predict(model, sources: list[str], source_vocab: Vocabulary, target_vocab: Vocabulary, max_len: int,
            batch_size: int = 512, device=None) -> list[str]:
    """Greedy predictions of ``model`` for a list of source texts, as texts."""
    device = device or next(model.parameters()).device
    model.eval()
    predictions = []
    for start in range(0, len(sources), batch_size):
        chunk = [(source, "") for source in sources[start : start + batch_size]]
        batch = make_batch(chunk, source_vocab, target_vocab).to(device)
        tokens = model.greedy_decode(batch.src, batch.src_lengths, max_len)
        predictions.extend(target_vocab.decode(row) for row in tokens.cpu())
    return predictions


def exact_match_by_length(model, pairs, source_vocab: Vocabulary, target_vocab: Vocabulary,
                          batch_size: int = 512, device=None) -> dict[int, float]:
    """Fraction of pairs whose whole predicted target is right, for each source length: {length: accuracy}.

    Decoding may run a few tokens past the longest target, so a model that does not stop is wrong, not cut short.
    """
    max_len = max(len(target) for _, target in pairs) + 5
    predictions = predict(model, [source for source, _ in pairs], source_vocab, target_vocab, max_len, batch_size, device)
    correct, total = defaultdict(int), defaultdict(int)
    for (source, target), prediction in zip(pairs, predictions):
        total[len(source)] += 1
        correct[len(source)] += prediction == target
    return {length: correct[length] / total[length] for length in sorted(total)}


def exact_match(model, pairs, source_vocab: Vocabulary, target_vocab: Vocabulary, batch_size: int = 512, device=None) -> float:
    """Fraction of pairs whose whole predicted target is right."""
    max_len = max(len(target) for _, target in pairs) + 5
    predictions = predict(model, [source for source, _ in pairs], source_vocab, target_vocab, max_len, batch_size, device)
    return sum(p == target for (_, target), p in zip(pairs, predictions)) / len(pairs)


def accuracy_in_range(by_length: dict[int, float], pairs, low: int, high: int) -> float:
    """Pooled exact match over the sources with low <= length <= high, from :func:`exact_match_by_length`."""
    counts = defaultdict(int)
    for source, _ in pairs:
        counts[len(source)] += 1
    lengths = [n for n in by_length if low <= n <= high]
    total = sum(counts[n] for n in lengths)
    return sum(by_length[n] * counts[n] for n in lengths) / total if total else float("nan")


def build_and_train(make_model, task, budget: dict | None = None, **model_options):
    """Seed, build ``make_model(source vocab size, target vocab size, **model_options)``, train it on ``task``.

    The seed of the budget fixes both the initial weights and the batches, so two chapters that
    call this with the same arguments get the same model (chapter 2 retrains chapter 1's model
    this way rather than loading it from a file). Returns ``(model, history)``.
    """
    budget = dict(BUDGET if budget is None else budget)
    torch.manual_seed(budget["seed"])
    model = make_model(len(task.source_vocab), len(task.target_vocab), **model_options)
    history = train_seq2seq(model, task.splits["train"], task.source_vocab, task.target_vocab, **budget)
    return model, history


# ---- Chapter 6: the RNN with attention against the transformer, over seeds, in parallel workers ----

CHAPTER6_MODELS = ("RNN + attention", "transformer", "transformer, positions from the end")


def chapter6_model(name: str, vocabulary_size: int):
    """Chapter 6's models, built with torch's current seed: chapter 2's RNN with attention, or the
    2-block encoder-decoder transformer, with its source positions counted from the start or the end."""
    from course.rnn import attention_model
    from course.transformer import EncoderDecoderTransformer

    if name == "RNN + attention":
        return attention_model(vocabulary_size, vocabulary_size)
    if name in ("transformer", "transformer, positions from the end"):
        return EncoderDecoderTransformer(vocabulary_size, vocabulary_size, d_model=64, num_heads=4, num_layers=2,
                                         d_ff=128, max_len=128, source_positions="end" if name.endswith("end") else "start")
    raise ValueError(f"unknown model {name!r}; one of {CHAPTER6_MODELS}")


@functools.lru_cache(maxsize=None)
def chapter6_task(name: str):
    """``"reversal"`` (:data:`LENGTH_TASK`) or ``"copy"`` (:data:`COPY_TASK`), built once per process."""
    from course.seq2seq_data import copy_task, reversal_task

    if name == "reversal":
        return reversal_task(**LENGTH_TASK)
    if name == "copy":
        return copy_task(**COPY_TASK)
    raise ValueError(f"unknown task {name!r}")


def train_run(task: str, model: str, seed_offset: int, steps: int, batch_size: int, lr: float, decay: bool = False,
              evaluate_every: int = 50, test_size: int = 200, by_length: bool = False, weights: bool = False) -> dict:
    """Train one of chapter 6's models on one of its tasks, from seed ``course.SEED + seed_offset``.

    Sets torch to ``course.TRAIN_THREADS`` threads and seeds it (``course.training_setup``), builds
    the model, trains it (:func:`train_seq2seq`, the same seed for the batch order) and measures the
    exact match on the first ``test_size`` test pairs every ``evaluate_every`` steps. So the result
    depends only on the arguments, ``course.SEED`` and ``course.TRAIN_THREADS``, not on which process
    runs it or when. Returns :func:`train_seq2seq`'s history plus ``task``, ``model``, ``seed``, the
    exact match by length on the whole test set (``by_length``) and the trained weights (``weights``).
    """
    seed = course.training_setup(seed_offset)
    data = chapter6_task(task)
    network = chapter6_model(model, len(data.source_vocab))
    test = data.splits["test"][:test_size]

    def evaluate(trained) -> float:
        return exact_match(trained, test, data.source_vocab, data.target_vocab)

    run = train_seq2seq(network, data.splits["train"], data.source_vocab, data.target_vocab, steps=steps,
                        batch_size=batch_size, lr=lr, seed=seed, decay=decay, evaluate=evaluate,
                        evaluate_at=range(evaluate_every, steps + 1, evaluate_every))
    run.update(task=task, model=model, seed=seed)
    if by_length:
        run["by_length"] = exact_match_by_length(network, data.splits["test"], data.source_vocab, data.target_vocab)
    if weights:
        run["weights"] = network.state_dict()
    return run


def _train_run(arguments: dict) -> dict:
    return train_run(**arguments)


def train_runs(runs: list[dict], workers: int = 2) -> list[dict]:
    """:func:`train_run` for each dict of arguments, in ``workers`` fresh processes; results in order.

    Each run sets its own seed and thread count, so the results are those of running them one after
    the other in this process; only the wall time changes. Put the longest runs first. No more
    processes than the cores hold runs of ``course.TRAIN_THREADS`` threads: two runs of two threads
    on two cores take several times as long as one after the other (their threads wait on each other).
    """
    workers = min(workers, max(1, course.usable_cores() // course.TRAIN_THREADS))
    if workers <= 1:
        return [train_run(**arguments) for arguments in runs]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        return list(pool.map(_train_run, runs))


def median_step_seconds(models: dict, task, batch_size: int, repeats: int = 7, seed: int = 0) -> dict:
    """Median time of one training step (forward, backward, Adam) of each model: {name: seconds}.

    The models are timed in turn, interleaved (A, B, A, B, ...), on the same batches, after one
    untimed step each, so that both see the same machine load; the median of ``repeats`` discards
    the steps a busy moment slowed down. Copies of the models are trained; the models are not changed.
    """
    import copy
    import statistics

    probes = {name: copy.deepcopy(model).train() for name, model in models.items()}
    optimizers = {name: torch.optim.Adam(probe.parameters(), lr=1e-3) for name, probe in probes.items()}
    rng = random.Random(seed)
    seconds = {name: [] for name in models}
    for repeat in range(repeats + 1):
        batch = make_batch(rng.sample(task.splits["train"], batch_size), task.source_vocab, task.target_vocab)
        for name, probe in probes.items():
            start = time.perf_counter()
            loss = sequence_loss(probe(batch.src, batch.src_lengths, batch.tgt_in), batch.tgt_out)
            optimizers[name].zero_grad(set_to_none=True)
            loss.backward()
            optimizers[name].step()
            if repeat > 0:
                seconds[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in seconds.items()}
