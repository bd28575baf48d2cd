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
    "book": dict(steps=300, batch_size=64, lr=3e-3, seed=0),
    "full": dict(steps=3000, batch_size=64, lr=2e-3, seed=0),
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

# Copying long strings (chapter 6): lengths uniform in [min_len, max_len], at least 64 characters.
COPY_TASK = {
    "book": dict(n=4_000, min_len=64, max_len=72, seed=0),
    "full": dict(n=20_000, min_len=64, max_len=96, seed=0),
}[course.PROFILE]

# Its budget: the transformer trains for ``steps``; the RNN gets the same wall-clock time, and both
# lower their learning rate over their budget (``decay``). Exact match on the test set is measured
# after each number of steps in ``evaluate_at``.
COPY_BUDGET = {
    "book": dict(steps=400, batch_size=16, lr=3e-3, seed=0, decay=True, evaluate_at=(100, 200, 300, 400)),
    "full": dict(steps=3000, batch_size=32, lr=2e-3, seed=0, decay=True, evaluate_at=(300, 1200, 3000)),
}[course.PROFILE]

# The date task: number of (written date, ISO date) pairs before the 80/10/10 split.
DATE_TASK = {
    "book": dict(n=12_000, seed=0),
    "full": dict(n=50_000, seed=0),
}[course.PROFILE]


def sequence_loss(logits: torch.Tensor, tgt_out: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy per target token, padding excluded: logits (B, T, V), tgt_out (B, T)."""
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), tgt_out.reshape(-1), ignore_index=PAD)


def decayed_rate(lr: float, step: int, steps: int, seconds: float = 0.0, max_seconds: float | None = None) -> float:
    """``lr`` lowered linearly to ``lr / 10`` as the budget is used up: the steps, or the seconds where that is further."""
    used = step / steps
    if max_seconds is not None:
        used = max(used, seconds / max_seconds)
    return lr * (1 - 0.9 * min(1.0, used))


def train_seq2seq(model, train_pairs, source_vocab: Vocabulary, target_vocab: Vocabulary, steps: int,
                  batch_size: int = 64, lr: float = 3e-3, seed: int = 0, clip_norm: float = 1.0,
                  device=None, progress: bool = False, evaluate=None, evaluate_at=(),
                  max_seconds: float | None = None, decay: bool = False) -> dict:
    """Train ``model`` with teacher forcing, Adam and gradient clipping, for ``steps`` random batches.

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
        max_seconds: stop after the first step that brings the training time (evaluations not
            counted) to this many seconds, even if fewer than ``steps`` were taken: a wall-clock
            budget, for comparing models at equal training time.
        decay: lower the learning rate linearly from ``lr`` to ``lr / 10`` over the budget, by
            whichever is further used up, the steps or ``max_seconds``: so a model stopped by the
            clock ends its schedule too. Without it the rate stays ``lr``.

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
            seconds = time.perf_counter() - start - evaluation_seconds
            for group in optimizer.param_groups:
                group["lr"] = decayed_rate(lr, step, steps, seconds, max_seconds)
        optimizer.step()
        losses.append(loss.item())
        out_of_time = max_seconds is not None and time.perf_counter() - start - evaluation_seconds >= max_seconds
        if evaluate is not None and (step + 1 in evaluate_at or step + 1 == steps or out_of_time):
            evaluation_start = time.perf_counter()
            model.eval()
            evaluations[step + 1] = evaluate(model)
            model.train()
            evaluation_seconds += time.perf_counter() - evaluation_start
        if out_of_time:
            break
    model.eval()
    return {"loss": losses, "seconds": time.perf_counter() - start - evaluation_seconds, "steps": len(losses),
            "evaluations": evaluations}


def fastest_threads(models, train_pairs, source_vocab: Vocabulary, target_vocab: Vocabulary, batch_size: int = 64,
                    choices=(1, 2), steps: int = 3) -> int:
    """The number of torch threads, of ``choices``, with which training steps of ``models`` take the least time; it is set.

    Each count is timed on ``steps`` training steps (:func:`train_seq2seq`) of a copy of every model,
    after one untimed step: on a quiet machine a second thread helps even small models, on a busy
    one it can cost more than it saves, so it is measured, not assumed. The models are not changed.
    """
    import copy

    seconds = {}
    for threads in choices:
        torch.set_num_threads(threads)
        seconds[threads] = 0.0
        for model in models:
            probe = copy.deepcopy(model)
            train_seq2seq(probe, train_pairs, source_vocab, target_vocab, steps=1, batch_size=batch_size)  # warm-up
            seconds[threads] += train_seq2seq(probe, train_pairs, source_vocab, target_vocab, steps=steps, batch_size=batch_size)["seconds"]
    best = min(seconds, key=seconds.get)
    torch.set_num_threads(best)
    return best


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
