"""Shared helpers for the UniParser tests: tiny models and hand-made scenes (no disk, no network)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from humanparse.uniparser.compose import PersonCutout

TINY_MODEL = {"backbone": {"name": "test_resnet"}, "num_classes": 6, "fpn_dim": 16, "feat_dim": 16,
              "S": 8, "gn_groups": 4}


@pytest.fixture
def tiny_model():
    from humanparse.uniparser.model import build_uniparser

    torch.manual_seed(0)
    return build_uniparser(TINY_MODEL)


def make_cutouts(num: int = 4, num_classes: int = 6, seed: int = 0) -> list[PersonCutout]:
    """Person-shaped cut-outs (an ellipse) with horizontal bands of random part labels 1..C-1."""
    rng = np.random.default_rng(seed)
    cuts = []
    for k in range(num):
        h, w = int(rng.integers(30, 60)), int(rng.integers(12, 30))
        yy, xx = np.mgrid[:h, :w]
        inside = ((yy - h / 2) / (h / 2)) ** 2 + ((xx - w / 2) / (w / 2)) ** 2 <= 1.0
        bands = rng.integers(1, num_classes, size=6)
        parts = bands[np.minimum(yy * 6 // h, 5)]
        # a left/right split in the middle band, so that flips matter
        parts[(yy * 6 // h == 2) & (xx < w // 2)] = 1
        parts[(yy * 6 // h == 2) & (xx >= w // 2)] = 2
        parts = np.where(inside, parts, 0).astype(np.uint8)
        image = rng.integers(0, 255, size=(h, w, 3), dtype=np.uint8)
        cuts.append(PersonCutout(image=image, parts=parts, source=f"synthetic/{k}"))
    return cuts


FLIP_6 = np.array([0, 2, 1, 3, 4, 5])  # classes 1 and 2 are a left/right pair


@pytest.fixture
def tiny_cfg() -> dict:
    return {**TINY_MODEL, "backbone": dict(TINY_MODEL["backbone"])}


@pytest.fixture
def synthetic_cutouts():
    return make_cutouts


@pytest.fixture
def flip6():
    return FLIP_6.copy()
