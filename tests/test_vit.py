"""The Vision Transformer's pieces: patches, the patch embedding as a convolution, shapes, the data."""

import copy

import pytest
import torch
import torch.nn.functional as F

from course.vit import (PatchEmbedding, SmallCNN, VisionTransformer, accuracy, load_digits, logistic_regression_accuracy,
                        patchify, subsample, train_classifier, train_together, train_vit)


def test_patchify_order_is_row_major_patches_of_channel_row_column():
    images = torch.arange(2 * 3 * 4 * 6, dtype=torch.float32).reshape(2, 3, 4, 6)
    patches = patchify(images, 2)
    assert patches.shape == (2, 6, 12)
    # patch 4 is row 1, column 1 of the 2 x 3 grid: pixels 2..3 x 2..3 of every channel
    torch.testing.assert_close(patches[1, 4], images[1, :, 2:4, 2:4].flatten())
    with pytest.raises(ValueError):
        patchify(images, 4)


def test_patch_embedding_is_a_strided_convolution():
    torch.manual_seed(0)
    embed = PatchEmbedding(patch_size=4, in_channels=3, d_model=10)
    images = torch.randn(2, 3, 8, 12)
    expected = embed.as_conv2d()(images).flatten(2).transpose(1, 2)  # (B, D, 2, 3) -> (B, 6, D)
    torch.testing.assert_close(embed(images), expected)
    conv = F.conv2d(images, embed.proj.weight.view(10, 3, 4, 4), embed.proj.bias, stride=4)
    torch.testing.assert_close(embed(images), conv.flatten(2).transpose(1, 2))


def test_vit_shapes_and_class_attention():
    model = VisionTransformer(image_size=8, patch_size=2, num_heads=4).eval()
    logits = model(torch.rand(5, 1, 8, 8))
    assert logits.shape == (5, 10)
    attention = model.class_attention()
    assert attention.shape == (5, 4, 4, 4)
    assert (attention.sum(dim=(-2, -1)) <= 1 + 1e-6).all()  # the rest went to the class token itself


def test_vit_is_permutation_sensitive_through_its_positions():
    torch.manual_seed(0)
    model = VisionTransformer().eval()
    images = torch.rand(2, 1, 8, 8)
    flipped = images.flip(-1)
    assert not torch.allclose(model(images), model(flipped))


def test_digits_split_is_fixed_stratified_and_disjoint():
    train, test = load_digits()
    assert train.images.shape[1:] == (1, 8, 8) and len(train.labels) + len(test.labels) == 1797
    assert 0 <= train.images.min() and train.images.max() <= 1
    again_train, _ = load_digits()
    assert torch.equal(train.labels, again_train.labels)
    for digit in range(10):
        share = (test.labels == digit).sum() / ((train.labels == digit).sum() + (test.labels == digit).sum())
        assert abs(share - 0.25) < 0.01


def test_a_few_epochs_learn_something():
    torch.manual_seed(0)
    train, test = load_digits()
    model = VisionTransformer(d_model=32, num_layers=1, d_ff=64)
    history = train_vit(model, train, epochs=6)
    assert len(history["loss"]) == 6 and history["loss"][-1] < history["loss"][0]
    assert accuracy(model, test) > 0.4  # ten classes: chance is 0.1


def test_subsample_is_stratified_seeded_and_a_subset():
    train, _ = load_digits()
    small = subsample(train, 0.1, seed=3)
    assert torch.equal(small.labels, subsample(train, 0.1, seed=3).labels)
    assert not torch.equal(small.images, subsample(train, 0.1, seed=4).images)
    assert abs(len(small.labels) - 0.1 * len(train.labels)) <= 10
    for digit in range(10):
        assert abs((small.labels == digit).float().mean() - (train.labels == digit).float().mean()) < 0.02
    flat = train.images.flatten(1)
    assert all((flat == image).all(1).any() for image in small.images.flatten(1))
    assert subsample(train, 1.0, seed=0) is train


def test_train_together_gives_each_model_its_own_updates():
    """Three models trained at once (vmap) end where three separate runs of train_classifier end."""
    torch.manual_seed(0)
    train, _ = load_digits()
    splits = [subsample(train, 0.1, seed=0), subsample(train, 0.3, seed=1), train]
    together = [SmallCNN(channels=(4, 8)) for _ in range(3)]
    alone = [copy.deepcopy(model) for model in together]
    losses = train_together(together, splits, steps=15, seeds=[0, 1, 2])
    for model, copy_, split, seed, loss in zip(together, alone, splits, range(3), losses):
        expected = train_classifier(copy_, split, steps=15, seed=seed)
        torch.testing.assert_close(loss, torch.tensor(expected), rtol=1e-4, atol=1e-5)
        for a, b in zip(model.parameters(), copy_.parameters()):
            torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-4)


def test_small_cnn_shapes_and_size():
    model = SmallCNN()
    assert model(torch.rand(3, 1, 8, 8)).shape == (3, 10)
    assert sum(p.numel() for p in model.parameters()) == 6090


def test_logistic_regression_baseline_is_far_above_chance():
    train, test = load_digits()
    assert logistic_regression_accuracy(subsample(train, 0.25, seed=0), test) > 0.8
