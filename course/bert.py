"""The encoder-only family (BERT's recipe) beside chapter 7's GPT, on the same characters (chapter 10).

    IGNORE_INDEX             the target of a position that is not scored (PyTorch's cross-entropy default)
    mask_tokens              BERT's corruption: select 15 % of positions; of those 80 % [MASK], 10 % random, 10 % kept
    masked_lm_loss           the mean cross-entropy over the selected positions only
    BidirectionalSelfAttention  chapter 7's attention with the causal mask taken away
    MaskedLanguageModel      chapter 7's GPT whose blocks attend both ways: an encoder-only model
    FamilyConfig             the shape and schedule both families share (chapter 7's cpu_tiny)
    train_family             train a GPT (next character) or an MLM (masked characters) with the same steps
    train_families           both at once, in worker processes when the cores allow it
    mlm_accuracy_by_position the MLM's accuracy at a blank at each position of a window, both sides visible
    gpt_next_accuracy        the GPT's accuracy at each position of a window, from the left side only
    gpt_candidate_accuracy   a GPT made to use the right side too: every character tried in the blank

Shapes: B batch, T positions, V vocabulary (the text's characters plus one [MASK] id).

Both families are built from the same pieces of ``course/gpt.py`` (embeddings, pre-LN blocks, a final
LayerNorm, the tied output layer) with the same initial weights for the same seed; they differ in the
attention's mask, in what they read (the text, or the text with some characters corrupted) and in
which positions their loss scores.
"""

import time
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from course.attention import scaled_dot_product_attention
from course.gpt import GPT, CausalSelfAttention, GPTConfig, learning_rate
from course.train_gpt import named_config
from course.text_data import random_batch

IGNORE_INDEX = -100  # F.cross_entropy's default ignore_index: a position with this target is not scored


def mask_tokens(tokens, mask_id, vocab_size, generator=None, select_prob=0.15, special_ids=()):
    """BERT's masking of a batch of token ids (B, T) int64 -> (inputs, targets), both (B, T) int64.

    Every position whose token is not in ``special_ids`` is selected independently with probability
    ``select_prob``. A selected position's input becomes ``mask_id`` with probability 0.8, a token drawn
    uniformly from ``range(vocab_size)`` with probability 0.1, and stays as it was with probability 0.1;
    its target is the original token. Every other position keeps its input and gets the target
    IGNORE_INDEX. All randomness comes from ``generator``; ``tokens`` is not modified.
    """
    special = torch.zeros_like(tokens, dtype=torch.bool)
    for special_id in special_ids:
        special |= tokens == special_id
    draws = torch.rand(tokens.shape, generator=generator)  # one uniform number per position decides its fate
    selected = (draws < select_prob) & ~special
    # Read the same draw again, rescaled to [0, 1) among the selected: below 0.8 mask, below 0.9 random, else keep.
    fate = draws / select_prob
    to_mask = selected & (fate < 0.8)
    to_random = selected & (fate >= 0.8) & (fate < 0.9)
    random_tokens = torch.randint(vocab_size, tokens.shape, generator=generator)
    inputs = torch.where(to_mask, torch.full_like(tokens, mask_id), tokens)
    inputs = torch.where(to_random, random_tokens, inputs)
    targets = torch.where(selected, tokens, torch.full_like(tokens, IGNORE_INDEX))
    return inputs, targets


def masked_lm_loss(logits, targets):
    """logits (B, T, V), targets (B, T) with IGNORE_INDEX where not selected -> scalar mean cross-entropy
    over the selected positions only (the others neither add to the sum nor count in the mean)."""
    scored = targets != IGNORE_INDEX  # (B, T)
    log_probabilities = torch.log_softmax(logits[scored], dim=-1)  # (N, V), N selected positions
    return -log_probabilities[torch.arange(len(log_probabilities)), targets[scored]].mean()


class BidirectionalSelfAttention(CausalSelfAttention):
    """Chapter 7's attention, fused QKV and heads alike, with no mask: every position attends to every position."""

    def attend(self, q, k, v):
        dropout_p = self.dropout if self.training else 0.0
        if self.attention == "sdpa":
            return F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p)  # no attn_mask, not is_causal
        return scaled_dot_product_attention(q, k, v)[0]  # chapter 3's, with no mask


class MaskedLanguageModel(GPT):
    """An encoder-only transformer: chapter 7's GPT (embeddings, pre-LN blocks, final LayerNorm, tied output
    layer) whose blocks attend to both sides. Built from a GPT of the same config, with its initial weights."""

    def __init__(self, config: GPTConfig):
        super().__init__(config)
        for block in self.blocks:
            bidirectional = BidirectionalSelfAttention(config, block.attn.layer_index)
            bidirectional.load_state_dict(block.attn.state_dict())  # the same weights; only the mask goes
            block.attn = bidirectional


# Chapter 7's book run, the one source of the shape and schedule both families share.
_CPU_TINY = named_config("cpu_tiny")


@dataclass
class FamilyConfig:
    """Chapter 7's cpu_tiny shape and schedule, for both families (with rotary positions)."""
    n_layer: int = _CPU_TINY.n_layer
    n_head: int = _CPU_TINY.n_head
    n_embd: int = _CPU_TINY.n_embd
    block_size: int = _CPU_TINY.block_size
    batch_size: int = _CPU_TINY.batch_size
    steps: int = 600  # chapter 7 trains 700; two models must fit in this page's time
    learning_rate: float = _CPU_TINY.learning_rate
    min_lr: float = _CPU_TINY.min_lr
    warmup_steps: int = _CPU_TINY.warmup_iters
    weight_decay: float = _CPU_TINY.weight_decay
    betas: tuple[float, float] = (_CPU_TINY.beta1, _CPU_TINY.beta2)
    grad_clip: float = _CPU_TINY.grad_clip
    select_prob: float = 0.15  # BERT's share of positions scored
    # Rotary positions (chapter 9) for both: attention then scores offsets, "the character just before", directly.
    # With chapter 7's learned positions the encoder stayed at the unigram plateau for hundreds of steps.
    position: str = "rope"

    def model_config(self, vocab_size: int) -> GPTConfig:
        return GPTConfig(vocab_size=vocab_size, block_size=self.block_size, n_layer=self.n_layer,
                         n_head=self.n_head, n_embd=self.n_embd, position=self.position)


def new_model(family: str, config: FamilyConfig, vocab_size: int, seed: int):
    """A fresh "gpt" or "mlm"; the same seed gives both families the same initial weights."""
    torch.manual_seed(seed)
    model_class = {"gpt": GPT, "mlm": MaskedLanguageModel}[family]
    return model_class(config.model_config(vocab_size))


def train_family(family: str, train_ids, characters: int, config: FamilyConfig, seed: int):
    """Train a "gpt" (next-character loss at every position) or an "mlm" (masked-LM loss at the selected
    positions) for ``config.steps`` steps: the same initial weights, windows, optimiser and schedule for both.
    The text has ``characters`` distinct ids; [MASK] is one more, id ``characters``, which the GPT never reads
    but has an embedding for, so that both models have the same size. Returns (model in eval mode, history)."""
    mask_id = characters  # the text's characters are ids 0 .. characters - 1
    model = new_model(family, config, characters + 1, seed)
    optimizer = model.configure_optimizer(config.weight_decay, config.learning_rate, config.betas)
    windows = torch.Generator().manual_seed(seed + 1000)  # the same windows for both families
    masking = torch.Generator().manual_seed(seed + 2000)
    history = {"loss": [], "seconds": 0.0}
    start = time.perf_counter()
    for step in range(config.steps):
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config.learning_rate, config.warmup_steps, config.steps, config.min_lr)
        x, y = random_batch(train_ids, config.batch_size, config.block_size, windows)  # (B, T) each
        if family == "gpt":
            loss = model(x, y)[1]  # every position predicts the next character
        else:
            inputs, targets = mask_tokens(x, mask_id, characters, masking, config.select_prob)
            loss = masked_lm_loss(model(inputs)[0], targets)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), config.grad_clip)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        history["loss"].append(loss.item())
    history["seconds"] = time.perf_counter() - start
    return model.eval(), history


def _train_state(arguments):
    """In a worker process: train one family on course.TRAIN_THREADS threads; its weights and history come back."""
    import course

    torch.set_num_threads(course.TRAIN_THREADS)
    model, history = train_family(**arguments)
    return model.state_dict(), history


def train_families(families, train_ids, characters: int, config: FamilyConfig, seed: int):
    """train_family for each family, side by side in worker processes when the cores allow it (each on
    course.TRAIN_THREADS threads, so the results are those of training them one after the other).
    Returns {family: (model in eval mode, history)}."""
    import multiprocessing
    import os
    from concurrent.futures import ProcessPoolExecutor

    import course

    runs = [dict(family=family, train_ids=train_ids, characters=characters, config=config, seed=seed) for family in families]
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    workers = min(len(runs), max(1, cores // course.TRAIN_THREADS))
    if workers <= 1:
        results = [_train_state(run) for run in runs]
    else:
        with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
            results = list(pool.map(_train_state, runs))
    trained = {}
    for family, (state, history) in zip(families, results):
        model = new_model(family, config, characters + 1, seed)
        model.load_state_dict(state)
        trained[family] = (model.eval(), history)
    return trained


def evaluation_windows(ids, count: int, length: int, seed: int = 0):
    """``count`` windows of ``length`` + 1 characters from random places of ``ids`` (B, length + 1), seeded."""
    starts = torch.randint(len(ids) - length - 1, (count,), generator=torch.Generator().manual_seed(seed))
    return ids[starts[:, None] + torch.arange(length + 1)[None, :]]


@torch.no_grad()
def mlm_blank_accuracy(model, windows, position: int, mask_id: int) -> float:
    """The MLM's accuracy at recovering the character at ``position`` of each window (B, T), replaced by [MASK];
    it reads every other character of the window, left and right."""
    inputs = windows.clone()
    inputs[:, position] = mask_id
    predictions = model(inputs)[0][:, position].argmax(-1)  # (B,)
    return (predictions == windows[:, position]).float().mean().item()


@torch.no_grad()
def gpt_next_accuracy(model, windows) -> torch.Tensor:
    """(T - 1,) accuracy of the GPT at predicting character t + 1 of each window (B, T) from characters 0 .. t."""
    predictions = model(windows[:, :-1])[0].argmax(-1)  # (B, T - 1)
    return (predictions == windows[:, 1:]).float().mean(0)


@torch.no_grad()
def mlm_accuracy_by_position(model, windows, mask_id: int, positions) -> torch.Tensor:
    """(len(positions),) the MLM's accuracy when position t alone is masked, for each t of ``positions``:
    one forward pass of all the windows (B, T) per position."""
    return torch.tensor([mlm_blank_accuracy(model, windows, position, mask_id) for position in positions])


@torch.no_grad()
def gpt_candidate_accuracy(model, windows, position: int, vocab_size: int, batch_size: int = 1024) -> float:
    """A GPT made to use the right context: fill the blank at ``position`` with each of the ``vocab_size``
    characters, score each whole window by the GPT's log-likelihood and keep the best. V forward passes per blank."""
    B, T = windows.shape
    correct = 0
    for row in range(B):
        candidates = windows[row].repeat(vocab_size, 1)  # (V, T): the window, once per candidate character
        candidates[:, position] = torch.arange(vocab_size)
        log_likelihood = torch.zeros(vocab_size)
        for start in range(0, vocab_size, batch_size):
            chunk = candidates[start : start + batch_size]
            log_probabilities = torch.log_softmax(model(chunk[:, :-1])[0], dim=-1)  # (v, T - 1, V_model)
            picked = log_probabilities.gather(-1, chunk[:, 1:, None])[..., 0]  # (v, T - 1)
            log_likelihood[start : start + batch_size] = picked[:, position - 1 :].sum(-1)  # the terms the blank changes
        correct += int(log_likelihood.argmax().item() == windows[row, position].item())
    return correct / B
