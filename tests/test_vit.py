"""The Vision Transformer's pieces: patches, the patch embedding as a convolution, shapes, the data."""

import pytest
import torch
import torch.nn.functional as F

from course.vit import PatchEmbedding, VisionTransformer, accuracy, load_digits, patchify, train_vit


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
    history = train_vit(model, train, epochs=6, test=test)
    assert history["loss"][-1] < history["loss"][0]
    assert accuracy(model, test) > 0.4  # ten classes: chance is 0.1
