"""Synthetic clips made from the sample photos: a slow pan across one photo, and a cut to another."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from humanparse.data.io import read_image
from humanparse.data.sample_data import sample_data_root

from _tiny_checkpoint import make_tiny_checkpoint


def sample_photo(k: int) -> np.ndarray:
    return read_image(sorted((sample_data_root() / "lip" / "images").iterdir())[k])


def pan_frames(photo: np.ndarray, n: int, size=(96, 64), step: int = 1, noise: float = 3.0, seed: int = 0):
    """``n`` crops of ``size`` (h, w) sliding right by ``step`` px per frame, with camera noise."""
    import cv2

    h, w = size
    scale = max(h / photo.shape[0], (w + step * n) / photo.shape[1]) * 1.05
    big = cv2.resize(photo, (int(photo.shape[1] * scale) + 1, int(photo.shape[0] * scale) + 1), interpolation=cv2.INTER_AREA)
    rng = np.random.default_rng(seed)
    frames = []
    for t in range(n):
        crop = big[:h, t * step: t * step + w].astype(np.float32)
        frames.append(np.clip(crop + rng.normal(0, noise, crop.shape), 0, 255).astype(np.uint8))
    return frames


def write_clip(path, frames, fps: float = 12.0):
    from humanparse.video.io import VideoWriter

    with VideoWriter(path, fps, (frames[0].shape[1], frames[0].shape[0])) as out:
        for f in frames:
            out.write(f)
    return path


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_tiny_checkpoint(tmp_path_factory.mktemp("video_ckpt") / "model.safetensors", long_side=64)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
