"""The captioning model of chapter 9: the caption data, shapes, masking, and the decoder's cross-attention."""

import pytest
import torch

import course

from course.captioning import (FIRST_WORD, VOCAB_SIZE, WORDS, CaptionSplit, ImageCaptioner, attention_on_halves,
                               caption_text, caption_tokens, compose_pairs, exact_match, train_captioner)
from course.transformer import BOS, EOS
from course.vit import ImageSplit, load_digits


@pytest.fixture(scope="module")
def digits():
    return load_digits()


def test_pairs_put_the_two_digits_side_by_side_with_their_labels(digits):
    train, _ = digits
    pairs = compose_pairs(train, 50, torch.Generator().manual_seed(0))
    assert pairs.images.shape == (50, 1, 8, 16) and pairs.digits.shape == (50, 2)
    for image, (left, right) in zip(pairs.images, pairs.digits):
        # each half is one training image of the labelled digit
        left_match = (train.images == image[:, :, :8]).flatten(1).all(1)
        right_match = (train.images == image[:, :, 8:]).flatten(1).all(1)
        assert left_match.any() and right_match.any()
        assert (train.labels[left_match] == left).all() and (train.labels[right_match] == right).all()


def test_pairs_are_seeded_and_the_two_digits_independent(digits):
    train, _ = digits
    first = compose_pairs(train, 20, torch.Generator().manual_seed(3))
    again = compose_pairs(train, 20, torch.Generator().manual_seed(3))
    other = compose_pairs(train, 20, torch.Generator().manual_seed(4))
    assert torch.equal(first.images, again.images) and torch.equal(first.digits, again.digits)
    assert not torch.equal(first.digits, other.digits)
    many = compose_pairs(train, 20_000, torch.Generator().manual_seed(0)).digits
    counts = torch.bincount(10 * many[:, 0] + many[:, 1], minlength=100).float() / len(many)
    assert counts.min() > 0.005 and counts.max() < 0.016  # every caption about 1 in 100: the left says nothing of the right


def test_captions_name_the_left_digit_then_the_right_one():
    tokens = caption_tokens(torch.tensor([[3, 7], [0, 9]]))
    assert tokens.tolist() == [[BOS, FIRST_WORD + 3, FIRST_WORD + 7, EOS], [BOS, FIRST_WORD + 0, FIRST_WORD + 9, EOS]]
    assert caption_text(tokens[0]) == "three seven" and caption_text(tokens[1]) == "zero nine"
    assert caption_text(torch.tensor([BOS, FIRST_WORD + 1, EOS, FIRST_WORD + 2])) == "one"  # stops at EOS
    assert VOCAB_SIZE == FIRST_WORD + len(WORDS) == 13


def test_captioner_shapes_and_cross_attention_sums_to_one_over_patches():
    torch.manual_seed(0)
    model = ImageCaptioner(decoder_layers=2).eval()
    images = torch.rand(5, 1, 8, 16)
    logits = model(images, caption_tokens(torch.randint(10, (5, 2)))[:, :-1])
    assert logits.shape == (5, 3, VOCAB_SIZE)
    for layer in model.decoder:
        weights = layer.cross_attention_weights  # (B, H, T, N)
        assert weights.shape == (5, 4, 3, 32)
        torch.testing.assert_close(weights.sum(-1), torch.ones(5, 4, 3))
    maps = model.cross_attention()
    assert maps.shape == (5, 3, 4, 8)  # per word, over the 4 x 8 grid of patches
    torch.testing.assert_close(maps.sum(dim=(-2, -1)), torch.ones(5, 3))


def test_decoder_is_causal_a_later_word_never_changes_an_earlier_prediction():
    torch.manual_seed(0)
    model = ImageCaptioner().eval()
    images = torch.rand(4, 1, 8, 16)
    words = caption_tokens(torch.randint(10, (4, 2)))[:, :-1]  # (4, 3)
    changed = words.clone()
    changed[:, 2] = FIRST_WORD + (changed[:, 2] - FIRST_WORD + 1) % 10
    with torch.no_grad():
        torch.testing.assert_close(model(images, words)[:, :2], model(images, changed)[:, :2])
        assert not torch.allclose(model(images, words)[:, 2], model(images, changed)[:, 2])


def test_the_caption_depends_on_the_image_through_cross_attention_only_when_the_model_sees_it():
    torch.manual_seed(0)
    seeing, blind = ImageCaptioner().eval(), ImageCaptioner(see_image=False).eval()
    words = caption_tokens(torch.randint(10, (2, 2)))[:, :-1]
    a, b = torch.rand(2, 1, 8, 16), torch.rand(2, 1, 8, 16)
    with torch.no_grad():
        assert not torch.allclose(seeing(a, words), seeing(b, words))
        torch.testing.assert_close(blind(a, words), blind(b, words))
        assert blind.encode(a).abs().max() == 0


def test_greedy_caption_keeps_the_attention_of_the_caption_it_wrote():
    torch.manual_seed(0)
    model = ImageCaptioner().eval()
    images = torch.rand(3, 1, 8, 16)
    words = model.greedy_caption(images)
    assert words.shape == (3, 4) and (words[:, 0] == BOS).all()
    kept = model.cross_attention()
    model(images, words[:, :-1])  # teacher-forced on its own words: the same queries
    torch.testing.assert_close(kept, model.cross_attention())


def test_attention_on_halves_reads_left_then_right():
    class Fixed(ImageCaptioner):
        """Cross-attention all on column 1 for word 1, all on column 6 for word 2."""

        def cross_attention(self):
            maps = torch.zeros(self.n, 3, 4, 8)
            maps[:, 0, :, 1] = 0.25
            maps[:, 1, :, 6] = 0.25
            maps[:, 2] = 1 / 32
            return maps

    model = Fixed()
    split = CaptionSplit(torch.rand(6, 1, 8, 16), torch.randint(10, (6, 2)))
    model.n = 6
    assert attention_on_halves(model, split) == pytest.approx({"left_first": 1.0, "right_second": 1.0})


def test_training_is_fixed_by_seed_and_learns(digits):
    train, test = digits
    small = ImageSplit(train.images[:200], train.labels[:200])
    runs = []
    for _ in range(2):
        course.training_setup()  # one thread: two threads of a busy machine made these 60 small steps take minutes
        model = ImageCaptioner(d_model=16, d_ff=32)
        runs.append(train_captioner(model, small, steps=30, batch_size=16, seed=5))
    assert runs[0] == runs[1]
    assert sum(runs[0][-5:]) < sum(runs[0][:5])
    heldout = compose_pairs(test, 40, torch.Generator().manual_seed(1))
    assert 0 <= exact_match(model, heldout) <= 1
