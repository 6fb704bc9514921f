"""Base size (training at the inference scale) and person-biased crops."""

import numpy as np

from humanparse.data.transforms import RandomCrop, train_transforms


def _sample(h, w, box=None):
    image = np.full((h, w, 3), 128, np.uint8)
    label = np.zeros((h, w), np.uint8)
    if box is not None:
        y0, y1, x0, x1 = box
        label[y0:y1, x0:x1] = 3
        image[y0:y1, x0:x1] = 200
    return {"image": image, "label": label, "human_ids": None, "meta": {}}


def test_base_size_brings_the_long_side_to_the_inference_size():
    """A 600x400 image with base_size 300 and no random scale is 300x200 inside a 320x320 crop."""
    t = train_transforms(flip_permutation=np.arange(5), crop_size=320, scale_range=(1.0, 1.0), flip_prob=0.0,
                         base_size=300)
    out = t(_sample(600, 400), np.random.default_rng(0))
    valid = (out["label"] != 255).numpy()
    rows, cols = np.nonzero(valid)
    assert (rows.max() + 1, cols.max() + 1) == (300, 200)


def test_scale_range_is_relative_to_the_base_size():
    """The same person at two stored resolutions (3x apart) gives crops at the same scale."""
    t = train_transforms(flip_permutation=np.arange(5), crop_size=256, scale_range=(1.0, 1.0), flip_prob=0.0,
                         base_size=200)
    small = t(_sample(100, 60, box=(20, 80, 10, 50)), np.random.default_rng(0))
    large = t(_sample(300, 180, box=(60, 240, 30, 150)), np.random.default_rng(0))
    assert abs(int((small["label"] == 3).sum()) - int((large["label"] == 3).sum())) <= 0.02 * int((large["label"] == 3).sum())


def test_foreground_crop_always_holds_the_person():
    sample = _sample(400, 400, box=(350, 380, 350, 380))  # a small person in a corner of a large image
    biased = RandomCrop(96, foreground_prob=1.0)
    uniform = RandomCrop(96, foreground_prob=0.0)
    hits_biased = [int((biased(sample, np.random.default_rng(s))["label"] == 3).any()) for s in range(60)]
    hits_uniform = [int((uniform(sample, np.random.default_rng(s))["label"] == 3).any()) for s in range(60)]
    assert all(hits_biased)
    assert sum(hits_uniform) < 20  # without the bias most crops miss it (the corner is ~1/10 of the positions)


def test_foreground_crop_without_foreground_falls_back_to_uniform():
    sample = _sample(200, 200)
    out = RandomCrop(64, foreground_prob=1.0)(sample, np.random.default_rng(0))
    assert out["image"].shape[:2] == (64, 64)
