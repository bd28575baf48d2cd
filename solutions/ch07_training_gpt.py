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
# # Exercises 7: training a GPT
#
# Three pieces of the training and sampling code of chapter 7, each small, each easy to get
# subtly wrong: the loss that makes a transformer a language model, the learning-rate schedule,
# and one step of attention with a KV cache.
#
# | exercise | points |
# | --- | --- |
# | 1. the causal language-model loss, with shifted targets | 3 |
# | 2. linear warm-up, then cosine decay | 3 |
# | 3. one KV-cached attention step | 4 |
#
# **How you are graded.** Each test cell below is worth points. The tests you see check the
# basics and say what went wrong; when the notebook is graded, further hidden tests compare your
# functions with the course's reference implementation (`course.gpt`) on random shapes,
# `float32` and `float64`, and many steps of the schedule. Run every cell from the top
# (*Kernel → Restart & Run All*) before you submit.

# %%
import math

import torch
import torch.nn.functional as F

from course.attention import causal_mask, scaled_dot_product_attention
from course.checks import check_close, check_shape

torch.manual_seed(0)

# %% [markdown]
# ## Exercise 1: the causal language-model loss (3 points)
#
# A GPT reads tokens `(B, T)` and returns logits `(B, T, V)`: at position `t` a score for every
# possible *next* token. So position `t` is scored against token `t + 1`; the last position has no
# target, and the first token is never predicted. The loss is the mean cross-entropy over those
# `B * (T - 1)` predictions:
#
# $$\mathcal{L} = \frac{1}{B (T-1)} \sum_{b} \sum_{t=0}^{T-2} \Big( \log \sum_{v} e^{z_{b,t,v}} - z_{b,t,x_{b,t+1}} \Big)$$
#
# where $z$ are the logits and $x$ the tokens. Compute the log-sum-exp stably (`torch.logsumexp`
# is allowed) and pick each target's logit with `gather` or advanced indexing.

# %% solution="next_token_loss"
def next_token_loss(logits, tokens):
    """logits (B, T, V) float, computed from tokens (B, T) int64 -> scalar mean loss, same dtype as logits.

    Do not call F.cross_entropy, F.nll_loss, torch.nn.CrossEntropyLoss or torch.nn.NLLLoss.
    """
    ### BEGIN SOLUTION
    scores = logits[:, :-1]  # (B, T-1, V): the last position predicts nothing we can check
    targets = tokens[:, 1:]  # (B, T-1): what each position should have predicted
    target_scores = scores.gather(-1, targets.unsqueeze(-1)).squeeze(-1)  # (B, T-1)
    return (torch.logsumexp(scores, dim=-1) - target_scores).mean()
    ### END SOLUTION


# %% tests="next_token_loss_visible" points=1
logits = torch.randn(2, 5, 7)
tokens = torch.randint(7, (2, 5))
got = next_token_loss(logits, tokens)
check_shape(got, (), "the loss (a scalar)")
want = F.cross_entropy(logits[:, :-1].reshape(-1, 7), tokens[:, 1:].reshape(-1))
check_close(got, want, "loss vs F.cross_entropy on shifted targets")

# A model that puts all its weight on the right next token has a loss close to zero.
sure = torch.full((1, 4, 7), -30.0)
sure[0, torch.arange(3), tokens[0, 1:4]] = 30.0
assert next_token_loss(sure, tokens[:1, :4]).item() < 1e-6, "a perfectly sure, right model should have loss ~0"
print("Exercise 1: visible tests passed.")
### BEGIN HIDDEN TESTS
# The same check on the grader's own inputs; the grader compares the result with the reference's.
from course.checks import report

generator = torch.Generator().manual_seed(70)
report("loss/visible", next_token_loss(torch.randn(2, 5, 7, generator=generator), torch.randint(7, (2, 5), generator=generator)), atol=1e-6)
### END HIDDEN TESTS

# %% tests="next_token_loss_hidden" points=2
# Hidden tests, run when the notebook is graded: random shapes and vocabularies, float32 and
# float64, huge logits, and no call to a built-in cross-entropy.
### BEGIN HIDDEN TESTS
from course.checks import forbidden_calls, report

generator = torch.Generator().manual_seed(71)
for dtype in (torch.float32, torch.float64):
    for B, T, V in [(1, 2, 2), (3, 9, 65), (2, 33, 5), (4, 4, 300)]:
        logits = 5 * torch.randn(B, T, V, generator=generator, dtype=dtype)
        tokens = torch.randint(V, (B, T), generator=generator)
        with forbidden_calls((F, "cross_entropy"), (F, "nll_loss"), (torch.nn, "CrossEntropyLoss"), (torch.nn, "NLLLoss")):
            got = next_token_loss(logits, tokens)
        report(f"loss/hidden/{dtype}/B={B} T={T} V={V}", got, atol=1e-6)
huge = 1e4 * torch.randn(2, 6, 10, generator=generator)
tokens = torch.randint(10, (2, 6), generator=generator)
report("loss/hidden/huge_logits", next_token_loss(huge, tokens), atol=1e-2, rtol=1e-5)
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 2: warm-up, then cosine decay (3 points)
#
# At step `s` (counted from 0):
#
# * **warm-up**, `s < warmup_steps`: rise linearly, `max_lr * (s + 1) / warmup_steps`, so that step 0
#   already moves and step `warmup_steps - 1` reaches `max_lr`;
# * **cosine decay**, `warmup_steps <= s < decay_steps`: with `p = (s - warmup_steps) / (decay_steps - warmup_steps)`
#   going from 0 to 1, `min_lr + (max_lr - min_lr) * (1 + cos(pi * p)) / 2`;
# * **after**, `s >= decay_steps`: stay at `min_lr`.

# %% solution="learning_rate"
def learning_rate(step, max_lr, warmup_steps, decay_steps, min_lr):
    """int step -> float learning rate. warmup_steps >= 1 and decay_steps > warmup_steps.

    Do not use torch.optim.lr_scheduler; plain Python and math are enough.
    """
    ### BEGIN SOLUTION
    if step >= decay_steps:
        return min_lr
    if step >= warmup_steps:
        progress = (step - warmup_steps) / (decay_steps - warmup_steps)
        cosine = (1 + math.cos(math.pi * progress)) / 2  # 1 -> 0
        return min_lr + (max_lr - min_lr) * cosine
    return max_lr * (step + 1) / warmup_steps
    ### END SOLUTION


# %% tests="learning_rate_visible" points=1
rates = [learning_rate(s, max_lr=1.0, warmup_steps=4, decay_steps=14, min_lr=0.1) for s in range(20)]
expected_start = [0.25, 0.5, 0.75, 1.0, 1.0]
assert all(abs(a - b) < 1e-12 for a, b in zip(rates, expected_start)), f"first 5 steps should be {expected_start}, got {rates[:5]}"
assert abs(rates[9] - 0.55) < 1e-12, f"half-way through the decay (step 9) the rate should be 0.55, got {rates[9]}"
assert all(abs(r - 0.1) < 1e-12 for r in rates[14:]), f"from decay_steps on the rate should stay at min_lr, got {rates[14:]}"
print("Exercise 2: visible tests passed.")
### BEGIN HIDDEN TESTS
from course.checks import report

report("learning_rate/visible", [float(learning_rate(s, max_lr=2.0, warmup_steps=5, decay_steps=12, min_lr=0.2)) for s in range(16)],
       atol=1e-12, rtol=1e-9)
### END HIDDEN TESTS

# %% tests="learning_rate_hidden" points=2
# Hidden tests, run when the notebook is graded: every step of several schedules.
### BEGIN HIDDEN TESTS
from course.checks import report

for case, (max_lr, warmup, decay, min_lr) in enumerate([(1e-3, 100, 5000, 1e-4), (6e-4, 1, 3, 0.0), (3e-3, 30, 300, 3e-4), (2.0, 7, 8, 1.0)]):
    rates = [float(learning_rate(step, max_lr, warmup, decay, min_lr)) for step in range(decay + 20)]
    report(f"learning_rate/hidden/case{case}", rates, atol=1e-12, rtol=1e-9)  # the name never holds the input
### END HIDDEN TESTS

# %% [markdown]
# ## Exercise 3: one KV-cached attention step (4 points)
#
# When a GPT generates, token `P` (counted from 0) needs attention over tokens `0 .. P`. The keys and
# values of tokens `0 .. P-1` were already computed at earlier steps and kept in a cache, shape
# `(B, H, P, Dh)`. One step takes the new token's query, key and value, each `(B, H, 1, Dh)`,
# appends the key and value to the cache, and lets the query attend to all `P + 1` keys: no mask is
# needed, since nothing in the cache lies in the new token's future.
#
# The result must equal the **last row** of causal attention recomputed over the whole prefix, which
# is what the visible test checks. With `past_keys=None` (the first token) the cache starts empty.

# %% solution="cached_attention_step"
def cached_attention_step(query, new_key, new_value, past_keys=None, past_values=None):
    """query, new_key, new_value (B, H, 1, Dh); past_keys, past_values (B, H, P, Dh) or None.

    Returns (output (B, H, 1, Dh), keys (B, H, P + 1, Dh), values (B, H, P + 1, Dh)), the new token's
    key and value last. Do not call torch.nn.functional.scaled_dot_product_attention.
    """
    ### BEGIN SOLUTION
    if past_keys is None:
        keys, values = new_key, new_value
    else:
        keys = torch.cat((past_keys, new_key), dim=2)
        values = torch.cat((past_values, new_value), dim=2)
    scores = (query @ keys.transpose(-1, -2)) / math.sqrt(query.shape[-1])  # (B, H, 1, P+1)
    weights = torch.softmax(scores, dim=-1)
    return weights @ values, keys, values
    ### END SOLUTION


# %% tests="cached_attention_step_visible" points=2
q, k, v = torch.randn(3, 2, 4, 6, 8).unbind(0)  # each (B=2, H=4, T=6, Dh=8)
recomputed, _ = scaled_dot_product_attention(q, k, v, causal_mask(6))  # (2, 4, 6, 8): the whole prefix, from scratch
out, keys, values = cached_attention_step(q[:, :, 5:], k[:, :, 5:], v[:, :, 5:], k[:, :, :5], v[:, :, :5])
check_shape(out, (2, 4, 1, 8), "output")
check_shape(keys, (2, 4, 6, 8), "keys after the step")
check_close(keys, k, "keys: the cache, then the new key")
check_close(values, v, "values: the cache, then the new value")
check_close(out, recomputed[:, :, 5:], "output vs the last row of causal attention over the prefix")
print("Exercise 3: visible tests passed.")
### BEGIN HIDDEN TESTS
from course.checks import report

generator = torch.Generator().manual_seed(72)
q, k, v = torch.randn(3, 2, 4, 6, 8, generator=generator).unbind(0)
for name, value in zip(("out", "keys", "values"), cached_attention_step(q[:, :, 5:], k[:, :, 5:], v[:, :, 5:], k[:, :, :5], v[:, :, :5])):
    report(f"cached_attention/visible/{name}", value)
### END HIDDEN TESTS

# %% tests="cached_attention_step_hidden" points=2
# Hidden tests, run when the notebook is graded: a whole sequence decoded step by step from an
# empty cache, float32 and float64, large activations, no built-in attention.
### BEGIN HIDDEN TESTS
from course.checks import forbidden_calls, report

generator = torch.Generator().manual_seed(73)
for dtype, atol in ((torch.float32, 1e-5), (torch.float64, 1e-10)):
    for B, H, T, Dh in [(1, 1, 1, 1), (2, 3, 7, 16), (1, 2, 12, 5)]:
        q, k, v = (torch.randn(B, H, T, Dh, generator=generator, dtype=dtype) for _ in range(3))
        keys = values = None
        for t in range(T):
            with forbidden_calls((F, "scaled_dot_product_attention"), (torch.nn, "MultiheadAttention")):
                out, keys, values = cached_attention_step(q[:, :, t : t + 1], k[:, :, t : t + 1], v[:, :, t : t + 1], keys, values)
            case = f"{dtype}/{(B, H, T, Dh)}/step {t}"
            report(f"cached_attention/hidden/out/{case}", out, atol=atol)
            report(f"cached_attention/hidden/keys/{case}", keys, atol=0, rtol=0)
            report(f"cached_attention/hidden/values/{case}", values, atol=0, rtol=0)
x = 1e3 * torch.randn(1, 2, 5, 8, generator=generator)
out, _, _ = cached_attention_step(x[:, :, 4:], x[:, :, 4:], x[:, :, 4:], x[:, :, :4], x[:, :, :4])
report("cached_attention/hidden/large_activations", out, atol=1e-2, rtol=1e-4)
### END HIDDEN TESTS
