"""Tiny on-disk fixtures for the data tests: 16x16 images and label maps written into tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image


class Writer:
    """Writes small images and index maps; every pixel value is known to the test."""

    def __init__(self, seed: int = 0):
        self.rng = np.random.default_rng(seed)

    def image(self, path: Path, h: int = 16, w: int = 16, fmt: str | None = None) -> np.ndarray:
        arr = self.rng.integers(0, 256, size=(h, w, 3), dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        # PNG keeps pixels exact; ".jpg" names still hold PNG bytes unless fmt says JPEG (Pillow reads by content).
        Image.fromarray(arr).save(path, format=fmt or "PNG")
        return arr

    def label(self, path: Path, arr: np.ndarray | None = None, *, h: int = 16, w: int = 16, num_classes: int = 20) -> np.ndarray:
        if arr is None:
            arr = self.rng.integers(0, num_classes, size=(h, w), dtype=np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.asarray(arr, dtype=np.uint8)).save(path, format="PNG")
        return np.asarray(arr, dtype=np.uint8)

    def pair(self, image: Path, label: Path, *, num_classes: int = 20, h: int = 16, w: int = 16):
        return self.image(image, h, w), self.label(label, h=h, w=w, num_classes=num_classes)


@pytest.fixture
def writer() -> Writer:
    return Writer()


@pytest.fixture
def folder_dataset(tmp_path, writer):
    """A generic images/ + labels/ folder with n pairs (LIP classes)."""

    def make(name: str = "set", n: int = 2, *, num_classes: int = 20, h: int = 16, w: int = 16) -> Path:
        root = tmp_path / name
        for i in range(n):
            writer.pair(root / "images" / f"s{i:03d}.png", root / "labels" / f"s{i:03d}.png", num_classes=num_classes, h=h, w=w)
        return root

    return make
