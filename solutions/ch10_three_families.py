# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Exercises 10: masked language modelling
#
# The two pieces that make a transformer encoder a BERT-style model of text: the corruption of
# the input, and the loss that scores only what was corrupted. Then a question on why the
# corruption is not simply "[MASK] everywhere". Then an experiment of your own: BERT's masking rate
# against a larger one, at equal steps.
#
# | exercise | points |
# | --- | --- |
# | 1. BERT's masking: select 15 %, then 80 % [MASK], 10 % random, 10 % unchanged | 5 |
# | 2. the masked-LM loss, at the selected positions only | 3 |
# | 3. why 80/10/10 (written answer, graded by hand) | 2 |
# | 4. an experiment of your own, the masking rate: it runs and reports (1), your report (5, graded by hand) | 6 |
#
# **How you are graded.** Each test cell below is worth points. The tests you see check the
# basics and say what went wrong; when the notebook is graded, further hidden tests run your
# functions on the grader's own inputs: for the masking, the shares of each kind of position on a
# large batch (random draws differ between correct answers, so the grader compares statistics,
# with a margin far wider than chance can move them) and the rules every output must keep exactly;
# for the loss, the course's reference on random shapes, `float32` and `float64`, and its gradient.
# Exercise 4 trains small models for about a minute. Run every cell from the top
# (*Kernel → Restart & Run All*) before you submit.

# %%
import torch
import torch.nn.functional as F

from course.bert import IGNORE_INDEX
from course.checks import check_close, check_shape

torch.manual_seed(0)

# %% [markdown]
# ## Exercise 1: BERT's masking (5 points)
#
# A masked language model reads a text in which some tokens have been corrupted and is trained
# to recover them. BERT's recipe, for a batch of token ids `(B, T)`:
#
# 1. **Select** each position independently with probability `select_prob` (0.15), except the
#    positions holding a special token (`special_ids`, e.g. padding or a start token): those are
#    never selected.
# 2. Of the selected positions, the input becomes the `mask_id` token with probability 0.8, a token
#    drawn uniformly from `range(vocab_size)` with probability 0.1, and stays unchanged with
#    probability 0.1 (decide for each selected position independently).
# 3. The **target** of a selected position is its original token; every other position gets the
#    target `IGNORE_INDEX` (-100), so that the loss skips it. Unselected inputs are unchanged.
#
# Draw every random number from `generator` (pass `generator=generator` to `torch.rand`,
# `torch.randint` or `torch.bernoulli`), so that the same seed gives the same masking, and do not
# modify `tokens` in place.

# %% solution="mask_tokens"
def mask_tokens(tokens, mask_id, vocab_size, generator, select_prob=0.15, special_ids=()):
    """tokens (B, T) int64 -> (inputs (B, T) int64, targets (B, T) int64).

    inputs: the corrupted tokens; targets: the original token where selected, IGNORE_INDEX elsewhere.
    mask_id: the id of [MASK]; random replacements come from range(vocab_size); special_ids are never selected.
    Every random number comes from generator (a torch.Generator). tokens is left unchanged.
    """
    ### BEGIN SOLUTION
    eligible = ~torch.isin(tokens, torch.tensor(list(special_ids), dtype=tokens.dtype))
    probability = torch.full(tokens.shape, float(select_prob))
    selected = torch.bernoulli(probability, generator=generator).bool() & eligible
    masked = torch.bernoulli(torch.full(tokens.shape, 0.8), generator=generator).bool() & selected
    # Half of the remaining 20 % gets a random token, the other half stays as it was.
    randomised = torch.bernoulli(torch.full(tokens.shape, 0.5), generator=generator).bool() & selected & ~masked
    random_tokens = torch.randint(0, vocab_size, tokens.shape, generator=generator, dtype=tokens.dtype)

    inputs = tokens.clone()
    inputs[masked] = mask_id
    inputs[randomised] = random_tokens[randomised]
    targets = torch.full_like(tokens, IGNORE_INDEX)
    targets[selected] = tokens[selected]
    return inputs, targets
    ### END SOLUTION


# %% tests="mask_tokens_visible" points=2
def masking_shares(tokens, inputs, targets, mask_id):
    """What a masking did: the share of positions selected, and among them the shares masked, randomised, kept."""
    selected = targets != IGNORE_INDEX
    chosen = selected.sum().item()
    masked = (selected & (inputs == mask_id)).sum().item() / max(chosen, 1)
    kept = (selected & (inputs == tokens)).sum().item() / max(chosen, 1)
    return {"selected": chosen / tokens.numel(), "masked": masked, "kept": kept, "random": 1 - masked - kept}


PAD, START, MASK, VOCAB = 0, 1, 2, 40
tokens = torch.randint(3, VOCAB, (200, 100), generator=torch.Generator().manual_seed(1))
tokens[:, 0] = START
tokens[:, 90:] = PAD  # the end of every row is padding
original = tokens.clone()
inputs, targets = mask_tokens(tokens, MASK, VOCAB, torch.Generator().manual_seed(2), special_ids=(PAD, START))
check_shape(inputs, (200, 100), "inputs")
check_shape(targets, (200, 100), "targets")
assert inputs.dtype == targets.dtype == torch.int64, f"inputs and targets must be int64, got {inputs.dtype} and {targets.dtype}"
assert torch.equal(tokens, original), "mask_tokens modified `tokens` in place: work on a copy (tokens.clone())"
selected = targets != IGNORE_INDEX
assert torch.equal(targets[selected], tokens[selected]), \
    "at a selected position the target must be the ORIGINAL token, not the corrupted input"
assert not selected[:, 0].any() and not selected[:, 90:].any(), \
    "special tokens (here START and PAD) were selected: they must never be, whatever select_prob is"
assert torch.equal(inputs[~selected], tokens[~selected]), \
    "an unselected position's input changed: only selected positions may be corrupted (is the 80/10/10 choice " \
    "applied to every position instead of the selected ones only?)"
if selected[:, 1:90].all():
    raise AssertionError("every position is selected: targets must be IGNORE_INDEX where a position was not selected")
shares = masking_shares(tokens[:, 1:90], inputs[:, 1:90], targets[:, 1:90], MASK)
print({name: round(share, 3) for name, share in shares.items()})
assert abs(shares["selected"] - 0.15) < 0.02, (
    f"{shares['selected']:.1%} of the ordinary positions were selected, expected about 15 %"
    + (" (about 12 %: is the 80 % [MASK] applied to the selection itself?)" if abs(shares["selected"] - 0.12) < 0.02 else ""))
assert shares["masked"] < 0.95, "every selected position became [MASK]: BERT keeps 10 % and randomises 10 %"
assert abs(shares["masked"] - 0.8) < 0.05, f"{shares['masked']:.1%} of the selected positions became [MASK], expected about 80 %"
assert shares["random"] > 0.03, "no selected position got a random token: 10 % of them should"
assert abs(shares["random"] - 0.1) < 0.04 and abs(shares["kept"] - 0.1) < 0.04, \
    f"random {shares['random']:.1%} and unchanged {shares['kept']:.1%} of the selected positions, expected about 10 % each"
assert ((inputs >= 0) & (inputs < VOCAB)).all(), "a random replacement lies outside range(vocab_size)"
again = mask_tokens(tokens, MASK, VOCAB, torch.Generator().manual_seed(2), special_ids=(PAD, START))
assert torch.equal(again[0], inputs) and torch.equal(again[1], targets), \
    "the same generator seed gave a different masking: draw every random number from `generator`"
print("Exercise 1: visible tests passed.")
### BEGIN HIDDEN TESTS
from course.checks import report

generator = torch.Generator().manual_seed(100)
tokens = torch.randint(3, VOCAB, (50, 80), generator=generator)
inputs, targets = mask_tokens(tokens, MASK, VOCAB, generator)
report("mask/visible/shapes", [*inputs.shape, *targets.shape])
report("mask/visible/targets_are_originals", bool(torch.equal(targets[targets != IGNORE_INDEX], tokens[targets != IGNORE_INDEX])))
report("mask/visible/unselected_unchanged", bool(torch.equal(inputs[targets == IGNORE_INDEX], tokens[targets == IGNORE_INDEX])))
### END HIDDEN TESTS

# %% tests="mask_tokens_hidden" points=3
# Hidden tests, run when the notebook is graded: the shares of selected, masked, random and kept
# positions on 200,000 tokens (compared with the reference's within margins of about five standard
# deviations of chance), another select_prob, special tokens, the rules every output keeps exactly,
# and that the generator alone decides the draws.
### BEGIN HIDDEN TESTS
from course.checks import report


def hidden_shares(tokens, inputs, targets, mask_id):
    selected = targets != IGNORE_INDEX
    chosen = max(selected.sum().item(), 1)
    masked = (selected & (inputs == mask_id)).sum().item() / chosen
    kept = (selected & (inputs == tokens)).sum().item() / chosen
    return selected.float().mean().item(), masked, kept, 1 - masked - kept


PAD, START, MASK, VOCAB = 0, 1, 2, 50
generator = torch.Generator().manual_seed(101)
tokens = torch.randint(3, VOCAB, (400, 500), generator=generator)
original = tokens.clone()
inputs, targets = mask_tokens(tokens, MASK, VOCAB, torch.Generator().manual_seed(102))
selected_share, masked, kept, randomised = hidden_shares(tokens, inputs, targets, MASK)
report("mask/hidden/selected_share", selected_share, atol=0.006, rtol=0)
report("mask/hidden/masked_share", masked, atol=0.02, rtol=0)
report("mask/hidden/kept_share", kept, atol=0.015, rtol=0)
report("mask/hidden/random_share", randomised, atol=0.015, rtol=0)
report("mask/hidden/tokens_untouched", bool(torch.equal(tokens, original)))
report("mask/hidden/dtypes", [str(inputs.dtype), str(targets.dtype)])
selected = targets != IGNORE_INDEX
report("mask/hidden/targets_are_originals", bool(torch.equal(targets[selected], tokens[selected])))
report("mask/hidden/ignored_elsewhere", bool((targets[~selected] == IGNORE_INDEX).all()))
report("mask/hidden/unselected_unchanged", bool(torch.equal(inputs[~selected], tokens[~selected])))
report("mask/hidden/inputs_in_vocabulary", bool(((inputs >= 0) & (inputs < VOCAB) | (inputs == MASK)).all()))
# random replacements spread over the whole vocabulary, not one token
changed = selected & (inputs != tokens) & (inputs != MASK)
report("mask/hidden/random_tokens_spread", len(torch.unique(inputs[changed])) >= VOCAB - 5)

# another selection probability
inputs, targets = mask_tokens(tokens, MASK, VOCAB, torch.Generator().manual_seed(103), select_prob=0.5)
selected_share, masked, kept, randomised = hidden_shares(tokens, inputs, targets, MASK)
report("mask/hidden/selected_share_p0.5", selected_share, atol=0.008, rtol=0)
report("mask/hidden/masked_share_p0.5", masked, atol=0.012, rtol=0)

# special tokens: never selected, never changed; the others selected at the usual rate
tokens = torch.randint(3, VOCAB, (300, 200), generator=generator)
tokens[:, 0] = START
tokens[:, 150:] = PAD
tokens[torch.rand(tokens.shape, generator=generator) < 0.05] = PAD  # padding in the middle too
inputs, targets = mask_tokens(tokens, MASK, VOCAB, torch.Generator().manual_seed(104), special_ids=(PAD, START))
special = (tokens == PAD) | (tokens == START)
report("mask/hidden/special_never_selected", bool((targets[special] == IGNORE_INDEX).all()))
report("mask/hidden/special_unchanged", bool(torch.equal(inputs[special], tokens[special])))
report("mask/hidden/ordinary_selected_share", (targets[~special] != IGNORE_INDEX).float().mean().item(), atol=0.008, rtol=0)

# the generator alone decides: the same seed twice, under different global seeds, gives the same masking
tokens = torch.randint(3, VOCAB, (20, 30), generator=generator)
torch.manual_seed(1)
first = mask_tokens(tokens, MASK, VOCAB, torch.Generator().manual_seed(105))
torch.manual_seed(2)
second = mask_tokens(tokens, MASK, VOCAB, torch.Generator().manual_seed(105))
third = mask_tokens(tokens, MASK, VOCAB, torch.Generator().manual_seed(106))
report("mask/hidden/same_seed_same_masking", bool(torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])))
report("mask/hidden/other_seed_other_masking", bool(not torch.equal(first[1], third[1])))
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 2: the masked-LM loss (3 points)
#
# The model returns logits `(B, T, V)` for every position, but only the selected positions have
# something to learn: the loss is the mean cross-entropy over the positions whose target is not
# `IGNORE_INDEX`,
#
# $$\mathcal{L} = \frac{1}{|S|} \sum_{(b,t) \in S} \Big( \log \sum_{v} e^{z_{b,t,v}} - z_{b,t,y_{b,t}} \Big),
# \qquad S = \{(b, t) : y_{b,t} \neq \text{IGNORE\_INDEX}\}.$$
#
# The ignored positions neither add to the sum nor count in $|S|$ (at least one position is
# selected). Compute the log-sum-exp stably (`torch.logsumexp` and `torch.log_softmax` are allowed).

# %% solution="masked_lm_loss"
def masked_lm_loss(logits, targets):
    """logits (B, T, V) float, targets (B, T) int64 with IGNORE_INDEX where not selected -> scalar, logits' dtype.

    Do not call F.cross_entropy, F.nll_loss, torch.nn.CrossEntropyLoss or torch.nn.NLLLoss.
    """
    ### BEGIN SOLUTION
    V = logits.shape[-1]
    flat_logits, flat_targets = logits.reshape(-1, V), targets.reshape(-1)
    keep = (flat_targets != IGNORE_INDEX).nonzero().squeeze(1)  # (N,) the selected positions
    scores = flat_logits[keep]  # (N, V)
    target_scores = scores.gather(1, flat_targets[keep].unsqueeze(1)).squeeze(1)  # (N,)
    return (torch.logsumexp(scores, dim=1) - target_scores).sum() / len(keep)
    ### END SOLUTION


# %% tests="masked_lm_loss_visible" points=1
logits = torch.randn(3, 8, 11)
targets = torch.full((3, 8), IGNORE_INDEX)
targets[0, 2], targets[1, 5], targets[2, 0], targets[2, 7] = 4, 0, 10, 3
got = masked_lm_loss(logits, targets)
check_shape(got, (), "the loss (a scalar)")
want = F.cross_entropy(logits.reshape(-1, 11), targets.reshape(-1), ignore_index=IGNORE_INDEX)
everywhere = want * 4 / 24  # the same sum divided by all B * T positions
check_close(got, want, "loss vs F.cross_entropy with ignore_index",
            mistakes={"the sum over the 4 selected positions is divided by all 24 positions": everywhere})
print("Exercise 2: visible tests passed.")
### BEGIN HIDDEN TESTS
from course.checks import report

generator = torch.Generator().manual_seed(110)
logits = torch.randn(3, 8, 11, generator=generator)
targets = torch.where(torch.rand(3, 8, generator=generator) < 0.3, torch.randint(11, (3, 8), generator=generator), IGNORE_INDEX)
targets[0, 0] = 1
report("loss/visible", masked_lm_loss(logits, targets), atol=1e-6)
### END HIDDEN TESTS

# %% tests="masked_lm_loss_hidden" points=2
# Hidden tests, run when the notebook is graded: random shapes, vocabularies and shares of selected
# positions, float32 and float64, a single selected position, huge logits, the gradient (zero at the
# ignored positions), and no call to a built-in cross-entropy.
### BEGIN HIDDEN TESTS
from course.checks import forbidden_calls, report

generator = torch.Generator().manual_seed(111)
for dtype in (torch.float32, torch.float64):
    for B, T, V, share in [(1, 1, 2, 1.0), (2, 16, 66, 0.15), (4, 9, 5, 0.5), (3, 40, 300, 0.05)]:
        logits = (4 * torch.randn(B, T, V, generator=generator, dtype=dtype)).requires_grad_()
        targets = torch.randint(V, (B, T), generator=generator)
        targets[torch.rand(B, T, generator=generator) >= share] = IGNORE_INDEX
        targets.view(-1)[0] = 0  # at least one selected position
        with forbidden_calls((F, "cross_entropy"), (F, "nll_loss"), (torch.nn, "CrossEntropyLoss"), (torch.nn, "NLLLoss")):
            loss = masked_lm_loss(logits, targets)
        loss.backward()
        case = f"{dtype}/B={B} T={T} V={V}"
        report(f"loss/hidden/{case}", loss.detach(), atol=1e-6)
        report(f"loss/hidden/gradient/{case}", logits.grad, atol=1e-7)
single = torch.full((2, 5), IGNORE_INDEX)
single[1, 3] = 2
report("loss/hidden/single_position", masked_lm_loss(torch.randn(2, 5, 7, generator=generator), single), atol=1e-6)
huge = 1e4 * torch.randn(2, 6, 10, generator=generator)
targets = torch.randint(10, (2, 6), generator=generator)
targets[:, ::2] = IGNORE_INDEX
report("loss/hidden/huge_logits", masked_lm_loss(huge, targets), atol=1e-2, rtol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 3: why not [MASK] everywhere? (2 points, written)
#
# BERT replaces only 80 % of the selected tokens by [MASK]; 10 % get a random token and 10 % stay
# as they were, although the loss is computed at all of them. Explain in a few sentences (a) what a
# model trained with [MASK] at every selected position could get away with, given that the texts
# it is later used on contain no [MASK] at all, and (b) what the random and the unchanged tokens
# force it to learn instead. Answer in the cell below.

# %% [markdown] answer="why_80_10_10" points=2
# ### BEGIN SOLUTION
# **Model answer.** (a) If every selected position were [MASK], the model would know exactly which
# inputs it is asked about: only the [MASK] positions would need a prediction, and the
# representation of every visible token could ignore whether that token fits its context (it is
# never scored there). At use time, when a model reads real text (fine-tuning, features for
# another task) there is no [MASK] at all: every input looks like the positions the model never
# had to model, a mismatch between pre-training and use. (b) With 10 % random tokens, a visible
# token may be wrong, and with 10 % unchanged, a visible token may be one that is scored: the model
# cannot tell from the input which positions are corrupted, so it must build, at *every*
# position, a representation of the token that the context predicts and check the observed token
# against it. The unchanged 10 % also pull the prediction towards the observed token when it fits,
# and the random 10 % teach it not to trust a token that does not (only 1.5 % of all tokens are
# random, too few to harm the language it learns).
#
# **Rubric (2 points).**
# - 1 point: (a) names the mismatch: [MASK] never appears in real inputs / the model would only
#   need to model the masked positions, so its representations of ordinary tokens need not be useful.
# - 1 point: (b) says the model cannot know which inputs are corrupted (random) or scored
#   (unchanged), so it must model every token from its context; or that the unchanged tokens bias
#   the prediction towards the observed token and the random ones teach it to doubt the input.
# - 0 points for a part that is missing or only restates the percentages.
# ### END SOLUTION

# %% [markdown]
# ## Exercise 4: an experiment of your own, the masking rate (1 point for running and reporting, 5 for the report)
#
# BERT selects 15 % of the positions. Wettig et al. (2023, *Should You Mask 15% in Masked Language
# Modeling?*) asked whether that is right and found
# that larger rates, up to 40 %, train models as good or better. With your `mask_tokens` and
# `masked_lm_loss`, design a controlled comparison of masking rates for a small encoder on chapter
# 7's text: **does masking 40 % of the positions beat 15 %, at an equal number of steps?** (or two
# other rates of your choice, or 80/10/10 against [MASK] everywhere at one rate).
#
# **Fixed:** the model, `new_model("mlm", EXPERIMENT_CONFIG, characters + 1, seed)` (2 blocks,
# 2 heads, width 48, rotary positions; [MASK] is id `characters`), windows of 32 characters of
# `train_ids` (`random_batch(train_ids, batch_size, 32, generator=...)`). **The budget**, all runs
# together: at most **1,600 optimizer steps** (`EXPERIMENT_STEPS`), batches of at most 32 windows;
# about a minute on one core. **The measure:** something between 0 and 1 on the held-out text, e.g.
# `mlm_blank_accuracy(model, windows, 16, MASK)` on `evaluation_windows(val_ids, 400, 31)` (the share
# of blanked middle characters recovered; the same blanks for every condition, whatever the rate it
# was trained with).
#
# **The rules.** Change one thing (the rate) and keep everything else equal: steps, learning rate and
# schedule, batches (the same windows for every condition: seed the window generator, not only the
# model), initial weights. At least **2 seeds** for each condition, the same seeds. Write
# `experiment()`: it returns **`{condition: [one value per seed]}`**, at least two conditions, the
# same number of seeds (at least 2) for each, every value between 0 and 1, each measured on a model
# trained in the call. The test runs it once, checks the budget and the structure (1 point), and
# prints the table; your report follows it (5 points, graded by hand).

# %%
# Read-only: the experiment's model, text and budget.
from course.bert import FamilyConfig, evaluation_windows, mlm_blank_accuracy, new_model
from course.text_data import load_shakespeare, random_batch

torch.set_num_threads(1)  # a model this small trains fastest on one thread
_, train_ids, val_ids = load_shakespeare()  # chapter 7's characters and its 90/10 split
characters = int(train_ids.max()) + 1
MASK = characters  # [MASK] is one more id than the text has
EXPERIMENT_CONFIG = FamilyConfig(n_layer=2, n_head=2, n_embd=48, block_size=32, batch_size=32)
EXPERIMENT_STEPS = 1600  # optimizer steps, all runs together
EXPERIMENT_MAX_BATCH = 32  # windows per step, of 32 characters


# %% solution="experiment"
def experiment():
    """The comparison: returns {condition: [one value in [0, 1] per seed]}."""
    ### BEGIN SOLUTION
    # Question: at 300 steps each, does a masking rate of 40 % beat BERT's 15 %? One thing changes, the rate; the
    # initial weights (seed), the windows (seed + 1000), AdamW at 1e-2 constant, clipping at 1 and the steps are the
    # same. 2 rates x 2 seeds x 300 steps = 1,200 optimizer steps. Measured: the middle character of 400 held-out
    # windows blanked with [MASK], recovered or not.
    windows = evaluation_windows(val_ids, 400, EXPERIMENT_CONFIG.block_size - 1, seed=0)
    results = {"15 %": [], "40 %": []}
    for seed in (0, 1):
        for condition, rate in (("15 %", 0.15), ("40 %", 0.40)):
            model = new_model("mlm", EXPERIMENT_CONFIG, characters + 1, seed)
            optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2, weight_decay=0.0, betas=(0.9, 0.99))
            window_order = torch.Generator().manual_seed(seed + 1000)  # the same windows at both rates
            masking = torch.Generator().manual_seed(seed + 2000)
            model.train()
            for _ in range(300):
                x, _ = random_batch(train_ids, EXPERIMENT_CONFIG.batch_size, EXPERIMENT_CONFIG.block_size, generator=window_order)
                inputs, targets = mask_tokens(x, MASK, characters, generator=masking, select_prob=rate)
                loss = masked_lm_loss(model(inputs)[0], targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
            results[condition].append(mlm_blank_accuracy(model.eval(), windows, EXPERIMENT_CONFIG.block_size // 2, MASK))
    return results
    ### END SOLUTION


# %% tests="experiment_visible" points=1
import time

from torch.nn.modules.module import register_module_forward_pre_hook
from torch.optim.optimizer import register_optimizer_step_post_hook

from course.bert import MaskedLanguageModel

steps, passes = [], []
step_hook = register_optimizer_step_post_hook(lambda optimizer, args, kwargs: steps.append(1))
pass_hook = register_module_forward_pre_hook(
    lambda module, inputs: passes.append(tuple(inputs[0].shape)) if isinstance(module, MaskedLanguageModel) and torch.is_grad_enabled() else None)
start = time.perf_counter()
try:
    measurements = experiment()
finally:
    step_hook.remove()
    pass_hook.remove()
seconds = time.perf_counter() - start
assert len(steps) <= EXPERIMENT_STEPS and len(passes) <= EXPERIMENT_STEPS, (
    f"{len(steps)} optimizer steps and {len(passes)} forward passes with gradients on; the budget is {EXPERIMENT_STEPS}")
too_big = [shape for shape in passes if shape[0] > EXPERIMENT_MAX_BATCH or shape[1] > EXPERIMENT_CONFIG.block_size]
assert not too_big, f"a training batch of shape {too_big[0]}: at most {EXPERIMENT_MAX_BATCH} windows of {EXPERIMENT_CONFIG.block_size}"
assert isinstance(measurements, dict) and len(measurements) >= 2, "return a dict with at least two conditions"
assert all(isinstance(name, str) for name in measurements), "name each condition with a string"
seeds = {len(values) if isinstance(values, (list, tuple)) else 0 for values in measurements.values()}
assert len(seeds) == 1 and min(seeds) >= 2, "give each condition a list with one value per seed: the same seeds (at least 2) for each"
values = [value for row in measurements.values() for value in row]
assert all(isinstance(value, (int, float)) and 0 <= value <= 1 for value in values), "every value a number between 0 and 1"
assert len(steps) >= len(values), f"{len(steps)} optimizer steps for {len(values)} values: each value should come from a model trained in this call"
for name, row in measurements.items():
    print(f"{name:>12}: " + "  ".join(f"{value:.3f}" for value in row) + f"   (mean {sum(row) / len(row):.3f}, "
          f"spread {max(row) - min(row):.3f})")
print(f"Exercise 4: the experiment ran in {seconds:.0f} s, {len(steps)} optimizer steps, and returned "
      f"{len(measurements)} conditions x {min(seeds)} seeds.")
### BEGIN HIDDEN TESTS
from course.checks import report

report("experiment/ran_and_reported", True)
### END HIDDEN TESTS

# %% [markdown]
# Your report, in the cell below: (1) the question and the one thing your conditions change; (2) what
# you kept equal and the budget you used; (3) the numbers, each condition for each seed, with the mean
# and the spread between seeds; (4) your conclusion and how sure it can be: is the difference between
# conditions larger than the difference between seeds? What would make it firmer?

# %% [markdown] answer="experiment_report" points=5
# ### BEGIN SOLUTION
# **Model answer.** *Question:* at an equal number of steps, does masking 40 % of the positions train
# a better small encoder than BERT's 15 %? *The one change:* the rate given to `mask_tokens`
# (80/10/10 kept). *Equal:* the model (2 blocks, width 48), its initial weights (seed), the windows
# (their generator seeded with seed + 1000, so both rates see the same text in the same order), AdamW
# at 1e-2 constant, clipping at 1, 300 steps of 32 windows; seeds 0 and 1 for both rates; 1,200 of
# the 1,600 steps of the budget. *Measured:* the middle character of 400 held-out windows blanked
# with [MASK] and recovered (the same blanks for both):
#
# | rate | seed 0 | seed 1 | mean | spread |
# | --- | --- | --- | --- | --- |
# | 15 % | 0.205 | 0.183 | 0.194 | 0.022 |
# | 40 % | 0.257 | 0.235 | 0.246 | 0.022 |
#
# (the solution's `experiment()`, rerun by `python benchmarks/masking_rate_experiment.py`, one thread.)
#
# *Conclusion:* at 40 % the encoder recovered more blanks with both seeds, 0.246 against 0.194 on
# average. The difference, 0.052, is a little more than twice the spread between the two seeds of
# either rate (0.022), and each seed ranks the rates the same way: the direction agrees with Wettig
# et al. (2023), and a plausible cause is that 40 % scores almost three times as many positions per
# step. But two seeds estimate the spread poorly, both models are early in training (a fifth of the
# blanks recovered), and one step count cannot say whether 15 % only starts later. More seeds, and the
# comparison at a few step counts (does 15 % catch up?), would make it firmer.
#
# **Rubric (5 points).** 1 point: the question and the **one** thing changed are stated, and the code
# changes only that. 1 point: what is kept equal is said (the same steps for every condition, the same
# windows and initial weights), within the budget. 1 point: at least 2 seeds per condition, the same
# for each, with the spread between seeds reported. 1 point: the numbers, per seed and condition, the
# ones the code returned, on held-out text. 1 point: a conclusion that compares the difference between
# conditions with the spread between seeds and says how sure it is (and what would make it surer).
# The conclusion is not marked on whether it agrees with the paper: a careful null result earns every point.
# ### END SOLUTION
