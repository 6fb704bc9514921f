"""Transforms: L/R-aware flip, crop padding, scale range, seeded jitter, eval padding, builders."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from humanparse.data.transforms import (
    MEAN_PIXEL,
    Compose,
    Normalize,
    PadToMultiple,
    PhotometricJitter,
    RandomCrop,
    RandomHorizontalFlip,
    RandomScale,
    ResizeLongSide,
    build_eval_transforms,
    build_train_transforms,
)
from humanparse.errors import ConfigError
from humanparse.labels import get_label_space


def _sample(h=12, w=10, num_classes=20, seed=0, humans=False):
    rng = np.random.default_rng(seed)
    s = {
        "image": rng.integers(0, 256, (h, w, 3), dtype=np.uint8),
        "label": rng.integers(0, num_classes, (h, w), dtype=np.uint8),
        "human_ids": rng.integers(0, 3, (h, w)).astype(np.int64) if humans else None,
        "meta": {},
    }
    s["label"][0, 0] = 255
    return s


def _rng(seed=0):
    return np.random.default_rng(seed)


def test_flip_twice_is_identity():
    lip = get_label_space("lip")
    flip = RandomHorizontalFlip(lip.flip_permutation, p=1.0)
    s = _sample(humans=True)
    once = flip(s, _rng())
    twice = flip(once, _rng())
    assert not np.array_equal(once["image"], s["image"])
    for key in ("image", "label", "human_ids"):
        assert np.array_equal(twice[key], s[key])


def test_flip_swaps_exactly_the_declared_pairs():
    lip = get_label_space("lip")
    n = lip.num_classes
    label = np.tile(np.append(np.arange(n), 255).astype(np.uint8), (2, 1))  # one column per class + ignore
    s = {"image": np.zeros((2, n + 1, 3), np.uint8), "label": label, "human_ids": None, "meta": {}}
    out = RandomHorizontalFlip(lip.flip_permutation, p=1.0)(s, _rng())["label"]
    mirrored = out[:, ::-1]  # the column that came from column c
    idx = {name: i for i, name in enumerate(lip.names)}
    swapped = {}
    for c in range(n):
        swapped[c] = int(mirrored[0, c])
    assert int(mirrored[0, n]) == 255  # ignore stays ignore
    pairs = {(idx[a], idx[b]) for a, b in lip.flip_pairs}
    assert pairs  # lip has left/right classes
    expected = {c: c for c in range(n)}
    for a, b in pairs:
        expected[a], expected[b] = b, a
    assert swapped == expected
    names = {lip.names[c]: lip.names[v] for c, v in swapped.items() if c != v}
    assert names.get("left-arm") == "right-arm" and names.get("right-shoe") == "left-shoe"


def test_flip_probability_and_bad_permutation():
    flip = RandomHorizontalFlip(np.arange(20), p=0.0)
    s = _sample()
    assert flip(s, _rng()) is s
    with pytest.raises(ConfigError, match="involution"):
        RandomHorizontalFlip([1, 2, 0])
    with pytest.raises(ConfigError, match="permutation"):
        RandomHorizontalFlip([0, 0, 1])


def test_crop_pads_with_ignore_and_fill():
    s = _sample(h=4, w=5, humans=True)
    out = RandomCrop(8, ignore_index=255)(s, _rng())
    assert out["image"].shape == (8, 8, 3) and out["label"].shape == (8, 8) and out["human_ids"].shape == (8, 8)
    # padding is at the bottom/right, so the original sits at the top-left
    assert np.array_equal(out["label"][:4, :5], s["label"])
    assert (out["label"][4:, :] == 255).all() and (out["label"][:, 5:] == 255).all()
    assert (out["image"][4:, :] == np.array(MEAN_PIXEL, np.uint8)).all()
    assert (out["human_ids"][4:, :] == 0).all()


def test_crop_takes_a_window_of_the_input():
    s = _sample(h=20, w=20)
    out = RandomCrop((6, 9))(s, _rng(3))
    assert out["image"].shape == (6, 9, 3)
    hits = [
        (y, x)
        for y in range(20 - 6 + 1)
        for x in range(20 - 9 + 1)
        if np.array_equal(s["image"][y : y + 6, x : x + 9], out["image"])
        and np.array_equal(s["label"][y : y + 6, x : x + 9], out["label"])
    ]
    assert len(hits) == 1  # image and label cut at the same place


def test_scale_range_respected():
    s = _sample(h=40, w=30)
    t = RandomScale(0.5, 2.0)
    rng = _rng(1)
    heights = []
    for _ in range(200):
        out = t(s, rng)
        h, w = out["label"].shape
        assert out["image"].shape[:2] == (h, w)
        assert 20 <= h <= 80 and 15 <= w <= 60
        assert set(np.unique(out["label"])) <= set(np.unique(s["label"]))  # nearest: no new ids
        heights.append(h)
    assert min(heights) < 26 and max(heights) > 74  # the whole range is used
    with pytest.raises(ConfigError):
        RandomScale(2.0, 0.5)


def test_jitter_is_seeded():
    s = _sample(h=16, w=16)
    j = PhotometricJitter(0.4, 0.4, 0.4, 0.1)
    a, b, c = j(s, _rng(5)), j(s, _rng(5)), j(s, _rng(6))
    assert np.array_equal(a["image"], b["image"]) and not np.array_equal(a["image"], c["image"])
    assert a["image"].dtype == np.uint8 and a["label"] is s["label"]
    assert np.array_equal(PhotometricJitter()(s, _rng(5))["image"], s["image"])  # all zero: identity


def test_normalize_to_tensors():
    s = _sample()
    s["image"][:] = np.array(MEAN_PIXEL, np.uint8)
    out = Normalize()(s)
    assert out["image"].dtype == torch.float32 and out["image"].shape == (3, 12, 10)
    assert out["image"].abs().max() < 0.01
    assert out["label"].dtype == torch.int64 and out["label"][0, 0] == 255


def test_eval_resize_and_pad():
    s = _sample(h=50, w=40)
    out = ResizeLongSide(64)(s)
    assert out["image"].shape[:2] == (64, 51) and out["meta"]["resized_size"] == (64, 51)
    out = PadToMultiple(32)(out)
    assert out["image"].shape[:2] == (64, 64) and out["meta"]["pad"] == (0, 13)
    assert (out["label"][:, 51:] == 255).all() and out["meta"]["valid_size"] == (64, 51)


def test_pipeline_same_seed_same_output():
    lip = get_label_space("lip")
    t = build_train_transforms({"crop_size": [8, 8], "jitter": {"brightness": 0.3, "hue": 0.05}}, lip)
    s = _sample(h=16, w=16)
    a, b = t(s, _rng(11)), t(s, _rng(11))
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    outs = {t(s, _rng(k))["image"].sum().item() for k in range(5)}
    assert len(outs) > 1
    assert a["image"].shape == (3, 8, 8)


def test_builders_reject_unknown_keys():
    lip = get_label_space("lip")
    with pytest.raises(ConfigError, match="did you mean 'crop_size'"):
        build_train_transforms({"crop_sise": 8}, lip)
    with pytest.raises(ConfigError, match="saturation"):
        build_train_transforms({"jitter": {"saturaton": 0.2}}, lip)
    with pytest.raises(ConfigError, match="long_side"):
        build_eval_transforms({"longside": 512})
    t = build_eval_transforms({"long_side": 64})
    assert isinstance(t, Compose) and isinstance(t.transforms[0], ResizeLongSide)
