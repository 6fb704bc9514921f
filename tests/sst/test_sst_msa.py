"""MSA (Eq. 2-4) on hand-made maps with known answers."""

import pytest
import torch

from humanparse.sst.msa import MultiScaleSemanticAggregation, category_pooling, resize_labels

# 4x4 map, D = 2. Channel 0 = 1..16 row-major, channel 1 = -(1..16).
FEATURES = torch.stack([torch.arange(1.0, 17.0).view(4, 4), -torch.arange(1.0, 17.0).view(4, 4)])[None]
# class 0: top row; class 1: the 2x2 block at rows 2-3, cols 0-1; class 2 absent; class 3: (1, 0);
# everything else ignore (255).
LABELS = torch.tensor([
    [0, 0, 0, 0],
    [3, 255, 255, 255],
    [1, 1, 255, 255],
    [1, 1, 255, 255],
])[None]


def test_average_max_presence_on_hand_made_map():
    avg, mx, count = category_pooling(FEATURES, LABELS, 4)
    # class 0: values 1..4 -> mean 2.5 / max 4; channel 1: -2.5 / max -1 (max over the region only)
    assert torch.allclose(avg[0, 0], torch.tensor([2.5, -2.5]))
    assert torch.allclose(mx[0, 0], torch.tensor([4.0, -1.0]))
    # class 1: values 9, 10, 13, 14
    assert torch.allclose(avg[0, 1], torch.tensor([11.5, -11.5]))
    assert torch.allclose(mx[0, 1], torch.tensor([14.0, -9.0]))
    # class 3: one pixel, value 5
    assert torch.allclose(avg[0, 3], torch.tensor([5.0, -5.0]))
    assert torch.allclose(mx[0, 3], torch.tensor([5.0, -5.0]))
    # class 2 absent: zeros; ignore pixels (up to 16) never enter a category
    assert torch.equal(avg[0, 2], torch.zeros(2)) and torch.equal(mx[0, 2], torch.zeros(2))
    assert count[0].tolist() == [4.0, 4.0, 0.0, 1.0]


def test_msa_projection_and_absent_class():
    msa = MultiScaleSemanticAggregation(2, 4)
    with torch.no_grad():
        # S = concat(avg, max) W_s: keep avg channel 0 and max channel 1
        msa.proj.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]))
    (scale,) = msa([FEATURES], LABELS)
    assert scale.features.shape == (1, 4, 2) and scale.presence.shape == (1, 4)
    assert scale.presence[0].tolist() == [1.0, 1.0, 0.0, 1.0]
    assert torch.allclose(scale.features[0, 0], torch.tensor([2.5, -1.0]))
    assert torch.allclose(scale.features[0, 1], torch.tensor([11.5, -9.0]))
    assert torch.equal(scale.features[0, 2], torch.zeros(2))


def test_one_projection_shared_across_scales_and_nearest_masks():
    msa = MultiScaleSemanticAggregation(2, 4)
    big = torch.nn.functional.interpolate(FEATURES, scale_factor=2, mode="nearest")
    labels = LABELS.repeat_interleave(2, 1).repeat_interleave(2, 2)  # 8x8 label map
    scales = msa([FEATURES, big], labels)  # masks resized to 4x4 (nearest) and kept at 8x8
    assert len(scales) == 2 and sum(p.numel() for p in msa.parameters()) == 2 * 4
    assert torch.allclose(scales[0].features, scales[1].features, atol=1e-6)


def test_resize_labels_takes_the_cell_centre_and_keeps_ignore():
    # cell i of a stride-2 map covers input pixels 2i, 2i+1 (centre 2i+0.5): the centre-aligned rule
    # takes floor((i + 0.5) * 2) = 2i+1, never the top-left pixel 2i (that shifted masks up-left)
    labels = torch.arange(64).view(1, 8, 8)
    labels[0, 1, 1] = 255
    small = resize_labels(labels, (4, 4))
    assert torch.equal(small, labels[:, 1::2, 1::2])
    assert small[0, 0, 0] == 255
    # stride 16 (H_1): the cell takes input pixel 8, its centre, not pixel 0
    big = torch.zeros(1, 16, 16, dtype=torch.long)
    big[0, 8, 8] = 3
    assert resize_labels(big, (1, 1)).item() == 3


def test_resize_labels_matches_the_data_transforms_convention():
    import numpy as np

    from humanparse.data.transforms import _resize_nearest

    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 20, (1, 37, 23), generator=g)
    for size in ((10, 6), (5, 3), (74, 46), (37, 23)):
        expected = _resize_nearest(labels[0].numpy(), *size)
        assert np.array_equal(resize_labels(labels, size)[0].numpy(), expected), size


def test_max_gradient_reaches_only_the_argmax_pixel():
    features = FEATURES.clone().requires_grad_(True)
    _, mx, _ = category_pooling(features, LABELS, 4)
    mx[0, 1, 0].backward()  # max of class 1, channel 0 = pixel (3, 1)
    expected = torch.zeros_like(FEATURES)
    expected[0, 0, 3, 1] = 1.0
    assert torch.equal(features.grad, expected)


def test_bad_label_value_raises():
    with pytest.raises(ValueError, match="outside"):
        category_pooling(FEATURES, torch.full((1, 4, 4), 7), 4)
