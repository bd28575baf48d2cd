"""Chapter 2's training-loop exercise: the model a student trains, its data, its budget, and how the grader judges it.

The student writes the loop (optimizer, learning rate, batch size, clipping, how batches are drawn) for a
fixed model (``make_model``: chapter 2's attention model at ``SIZES``), on a fixed task (reversal of strings
of ``MIN_LEN`` to ``MAX_LEN`` letters drawn by ``course.seq2seq_data.reversal_pairs``) and a fixed budget:
``STEPS`` optimizer steps, each on one batch of at most ``MAX_BATCH`` strings. The trained model must reverse
at least ``TARGET`` of new strings exactly.

No number the student's kernel states is believed: the tests report the trained model's *weights* as one
flat vector, and the grader rebuilds the model from them in a process of its own (grading/metrics.py, with
the course's ``attention_model`` from the repository) and decodes held-out strings itself
(``held_out_exact_match``), so a patched ``greedy_decode`` or a forged accuracy changes nothing. Reversal is
a function, and the held-out strings are many: training on them is training on the task, and gains little (see
guide/instructors.md for the routes the tests do not close).
"""

import torch

from course.rnn import attention_model
from course.seq2seq_data import REVERSAL_VOCAB, make_batch, reversal_pairs

SIZES = dict(embed_dim=16, hidden_size=64, attention_size=32)  # the model's widths
STEPS = 150  # optimizer steps
MAX_BATCH = 64  # strings per step
MIN_LEN, MAX_LEN = 3, 8  # the task: strings of 3 to 8 letters of REVERSAL_VOCAB's alphabet
TARGET = 0.7  # exact match on held-out strings; the reference loop reached 0.94 to 0.98 over five seeds, and its
# anti-diagonal share 0.69 to 0.98 (python benchmarks/reversal_exercise.py --only seeds)
ANTI_DIAGONAL = 0.5  # the share of output steps whose largest weight is on the mirrored input
UNTRAINED = 0.05  # an untrained model reverses (almost) nothing: the control's bound
HELD_OUT_SEED = 107  # the grader's held-out strings
HELD_OUT_COUNT = 2000  # many, so that training on them (their seed is public) gains little: a model trained on these
# strings only reversed 96.7 % of them and 93.3 % of fresh ones


def make_model(seed: int):
    """A fresh, untrained model of the exercise: chapter 2's attention model, its weights drawn from ``seed``."""
    torch.manual_seed(seed)
    return attention_model(len(REVERSAL_VOCAB), len(REVERSAL_VOCAB), **SIZES)


def held_out_pairs(count: int = HELD_OUT_COUNT, seed: int = HELD_OUT_SEED) -> list[tuple[str, str]]:
    """``count`` (string, reversed string) pairs of the task's lengths, drawn from ``seed``."""
    return reversal_pairs(count, MIN_LEN, MAX_LEN, seed=seed)


@torch.no_grad()
def exact_match(model, pairs) -> float:
    """The fraction of sources whose greedy decoding by ``model`` is exactly the target."""
    batch = make_batch(pairs, REVERSAL_VOCAB, REVERSAL_VOCAB)
    outputs = model.eval().greedy_decode(batch.src, batch.src_lengths, max_len=batch.tgt_out.shape[1] + 2)
    return sum(REVERSAL_VOCAB.decode(out) == target for out, (_, target) in zip(outputs, pairs)) / len(pairs)


@torch.no_grad()
def on_anti_diagonal(model, pairs) -> float:
    """The fraction of output steps t < n (teacher-forced, the course's decoder) whose largest weight is on input n - 1 - t."""
    batch = make_batch(pairs, REVERSAL_VOCAB, REVERSAL_VOCAB)
    model.eval()
    state = model.decoder.start(model.encoder(batch.src, batch.src_lengths))
    weights = []
    for t in range(batch.tgt_in.shape[1]):
        _, state = model.decoder.step(batch.tgt_in[:, t], state)
        weights.append(state.weights)
    weights = torch.stack(weights, dim=1)  # (B, T, S)
    steps = torch.arange(weights.shape[1])[None, :]  # (1, T)
    mirrored = batch.src_lengths[:, None] - 1 - steps  # (B, T): the input position output t copies
    real = steps < batch.src_lengths[:, None]  # the last step predicts EOS and has no partner
    return (weights.argmax(dim=-1) == mirrored)[real].float().mean().item()


def flat_weights(model) -> torch.Tensor:
    """Every parameter of ``model``, in ``parameters()`` order, as one float32 vector: what the tests report."""
    return torch.nn.utils.parameters_to_vector(model.parameters()).detach().float()


def model_from_weights(weights):
    """The exercise's model with these weights. Raises ValueError when they cannot be its parameters."""
    weights = torch.as_tensor(weights)
    if weights.dim() != 1 or not weights.dtype.is_floating_point:
        raise ValueError(f"expected one vector of floats, got shape {tuple(weights.shape)} of {weights.dtype}")
    model = make_model(0)
    expected = sum(p.numel() for p in model.parameters())
    if weights.numel() != expected:
        raise ValueError(f"expected the {expected} parameters of the exercise's model, got {weights.numel()} numbers")
    if not torch.isfinite(weights).all():
        raise ValueError("the weights are not all finite")
    torch.nn.utils.vector_to_parameters(weights.to(torch.float32), model.parameters())
    return model.eval()


def held_out_exact_match(weights) -> float:
    """The grader's judgement: the model with these weights, its exact match on the held-out strings."""
    torch.set_num_threads(1)
    return exact_match(model_from_weights(weights), held_out_pairs())


def held_out_anti_diagonal(weights) -> float:
    """The grader's judgement of the alignment: ``on_anti_diagonal`` of the model with these weights, held out."""
    torch.set_num_threads(1)
    return on_anti_diagonal(model_from_weights(weights), held_out_pairs())


# The open-ended experiment at the end of chapter 2's exercises: its compute budget, all runs together.
EXPERIMENT_STEPS = 800  # optimizer steps in total
EXPERIMENT_MAX_LEN = 12  # letters per training string


def run_within_budget(run, max_steps: int, max_batch: int = MAX_BATCH, max_len: int = MAX_LEN, counts: dict | None = None):
    """``run()``, counting the optimizer steps (of any ``torch.optim`` optimizer) and the training passes (an encoder
    of ``course.rnn`` called with gradients on) it makes; AssertionError when they exceed the budget: more than
    ``max_steps`` of either, or a training batch of more than ``max_batch`` strings or longer than ``max_len``. A loop
    that goes over its budget of steps is stopped at the first step too many (the rest would only spend time), and is
    refused at the end even if it catches that error.
    ``counts``, when given, receives the numbers: {"steps": optimizer steps, "passes": training passes}."""
    from torch.nn.modules.module import register_module_forward_pre_hook
    from torch.optim.optimizer import register_optimizer_step_post_hook

    from course.rnn import Encoder

    steps, passes = [], []

    def count_pass(module, inputs):
        if isinstance(module, Encoder) and torch.is_grad_enabled():
            passes.append(tuple(inputs[0].shape))

    def count_step(optimizer, args, kwargs):
        steps.append(1)
        if len(steps) == max_steps + 1:
            raise AssertionError(f"optimizer step {len(steps)}: the budget is {max_steps} (the loop was stopped here)")

    step_hook = register_optimizer_step_post_hook(count_step)
    pass_hook = register_module_forward_pre_hook(count_pass)
    try:
        result = run()
    finally:
        step_hook.remove()
        pass_hook.remove()
    if counts is not None:
        counts.update(steps=len(steps), passes=len(passes))
    assert len(steps) <= max_steps, f"{len(steps)} optimizer steps; the budget is {max_steps}"
    assert len(passes) <= max_steps, (f"{len(passes)} forward passes with gradients on; the budget is {max_steps} "
                                      "(evaluate under torch.no_grad())")
    too_big = [shape for shape in passes if shape[0] > max_batch or shape[1] > max_len]
    assert not too_big, f"a training batch of shape {too_big[0]}: at most {max_batch} strings of at most {max_len} letters"
    return result
