"""course/bert.py: BERT's masking, the masked-LM loss, and the encoder-only model built from chapter 7's GPT."""

from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from course.bert import (IGNORE_INDEX, FamilyConfig, MaskedLanguageModel, gpt_next_accuracy, mask_tokens,
                         masked_lm_loss, mlm_blank_accuracy, new_model, train_family)
from course.gpt import GPT, GPTConfig


def shares(tokens, inputs, targets, mask_id):
    selected = targets != IGNORE_INDEX
    chosen = selected.sum().item()
    masked = (selected & (inputs == mask_id)).sum().item() / chosen
    kept = (selected & (inputs == tokens)).sum().item() / chosen
    return selected.float().mean().item(), masked, kept


def test_masking_selects_15_percent_and_splits_them_80_10_10():
    tokens = torch.randint(3, 60, (400, 500), generator=torch.Generator().manual_seed(0))
    inputs, targets = mask_tokens(tokens, 2, 60, torch.Generator().manual_seed(1))
    selected, masked, kept = shares(tokens, inputs, targets, 2)
    assert abs(selected - 0.15) < 0.004
    assert abs(masked - 0.8) < 0.01
    assert abs(kept - (0.1 + 0.1 / 60)) < 0.01  # a random token equal to the original counts as kept
    assert abs(1 - masked - kept - 0.1 * (1 - 1 / 60)) < 0.01


def test_masking_keeps_its_invariants():
    tokens = torch.randint(3, 30, (50, 64), generator=torch.Generator().manual_seed(2))
    tokens[:, :3] = 0  # a special token
    original = tokens.clone()
    inputs, targets = mask_tokens(tokens, 1, 30, torch.Generator().manual_seed(3), select_prob=0.5, special_ids=(0,))
    selected = targets != IGNORE_INDEX
    assert torch.equal(tokens, original), "tokens modified in place"
    assert not selected[:, :3].any(), "a special token was selected"
    assert torch.equal(targets[selected], tokens[selected])
    assert torch.equal(inputs[~selected], tokens[~selected])
    assert abs(selected[:, 3:].float().mean().item() - 0.5) < 0.03
    again = mask_tokens(tokens, 1, 30, torch.Generator().manual_seed(3), select_prob=0.5, special_ids=(0,))
    assert torch.equal(again[0], inputs) and torch.equal(again[1], targets)
    other = mask_tokens(tokens, 1, 30, torch.Generator().manual_seed(4), select_prob=0.5, special_ids=(0,))
    assert not torch.equal(other[1], targets)  # the control: another seed, another masking


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_masked_lm_loss_equals_cross_entropy_with_ignore_index(dtype):
    generator = torch.Generator().manual_seed(5)
    logits = 3 * torch.randn(4, 20, 66, generator=generator, dtype=dtype)
    targets = torch.randint(66, (4, 20), generator=generator)
    targets[torch.rand(4, 20, generator=generator) > 0.2] = IGNORE_INDEX
    targets[0, 0] = 7
    want = F.cross_entropy(logits.reshape(-1, 66), targets.reshape(-1))
    got = masked_lm_loss(logits, targets)
    assert got.dtype == dtype
    torch.testing.assert_close(got, want)
    everywhere = F.cross_entropy(logits.reshape(-1, 66), targets.clamp(min=0).reshape(-1))
    assert not torch.allclose(got, everywhere)  # the control: scoring every position gives another loss


def test_the_mlm_starts_from_the_gpts_weights_and_attends_both_ways():
    config = GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=16)
    torch.manual_seed(0)
    gpt = GPT(config).eval()
    torch.manual_seed(0)
    mlm = MaskedLanguageModel(config).eval()
    gpt_state, mlm_state = gpt.state_dict(), mlm.state_dict()
    assert gpt_state.keys() == mlm_state.keys()
    assert all(torch.equal(gpt_state[name], mlm_state[name]) for name in gpt_state)
    x = torch.randint(20, (3, 16))
    changed = x.clone()
    changed[:, -1] = (x[:, -1] + 1) % 20  # the last token only
    with torch.no_grad():
        gpt_gap = (gpt(x)[0][:, :-1] - gpt(changed)[0][:, :-1]).abs().max().item()
        mlm_gap = (mlm(x)[0][:, :-1] - mlm(changed)[0][:, :-1]).abs().max().item()
    assert gpt_gap == 0.0, "a causal model's earlier outputs moved when a later token changed"
    assert mlm_gap > 1e-4, "the encoder's earlier outputs did not see a later token"


def test_the_mlm_sdpa_and_manual_attention_agree():
    config = GPTConfig(vocab_size=20, block_size=16, n_layer=2, n_head=2, n_embd=16)
    mlm = MaskedLanguageModel(config).eval()
    manual = MaskedLanguageModel(replace(config, attention="manual")).eval()
    manual.load_state_dict(mlm.state_dict())
    x = torch.randint(20, (2, 16))
    with torch.no_grad():
        torch.testing.assert_close(manual(x)[0], mlm(x)[0], atol=1e-5, rtol=1e-4)


def test_a_short_training_depends_only_on_the_seed_and_lowers_both_losses():
    # runs of 40 equal tokens: either family can tell a token from its neighbours, with any attention pattern
    ids = torch.randint(20, (150,), generator=torch.Generator().manual_seed(6)).repeat_interleave(40)
    config = FamilyConfig(n_layer=1, n_head=2, n_embd=16, block_size=16, batch_size=32, steps=60, warmup_steps=5)
    torch.set_num_threads(1)
    for family in ("gpt", "mlm"):
        model, history = train_family(family, ids, 20, config, seed=0)
        again, history_again = train_family(family, ids, 20, config, seed=0)
        assert history["loss"] == history_again["loss"], family
        assert sum(history["loss"][-10:]) < sum(history["loss"][:10]) - 5, family  # 0.5 nat lower on average
    assert isinstance(new_model("mlm", config, 21, 0), MaskedLanguageModel)


def test_the_accuracy_helpers_score_a_model_that_copies_the_answer():
    windows = torch.randint(5, (10, 8))

    class Oracle(torch.nn.Module):  # logits that put the right character first, wherever it is asked
        def forward(self, idx):
            return F.one_hot(windows[:, : idx.shape[1]], 6).float() * 10, None

    assert mlm_blank_accuracy(Oracle(), windows, 3, mask_id=5) == 1.0

    class Shifted(torch.nn.Module):  # predicts token t + 1 at position t
        def forward(self, idx):
            return F.one_hot(windows[:, 1 : idx.shape[1] + 1], 6).float() * 10, None

    assert gpt_next_accuracy(Shifted(), windows).min().item() == 1.0
