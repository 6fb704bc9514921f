"""Label maps for HTTP answers: P-mode PNG bytes, run-length codes, class tables."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

__all__ = ["label_png_bytes", "rle_encode", "rle_decode", "class_table"]


def label_png_bytes(label: np.ndarray, palette: np.ndarray) -> bytes:
    """A P-mode PNG (index = class id, the domain's palette), as ``write_label_png`` writes it to disk."""
    img = Image.fromarray(np.asarray(label, dtype=np.uint8), mode="P")
    flat = np.zeros((256, 3), dtype=np.uint8)
    flat[: len(palette)] = np.asarray(palette, dtype=np.uint8)
    img.putpalette(flat.ravel().tolist())
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def rle_encode(label: np.ndarray) -> list[int]:
    """Row-major runs ``[value, length, value, length, ...]`` of a class-id map."""
    flat = np.asarray(label).ravel()
    if flat.size == 0:
        return []
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    lengths = np.diff(np.r_[starts, flat.size])
    return np.stack([flat[starts].astype(np.int64), lengths]).T.ravel().tolist()


def rle_decode(runs: list[int], height: int, width: int) -> np.ndarray:
    """The inverse of :func:`rle_encode` (uint8 [height, width])."""
    values, lengths = np.asarray(runs[0::2], dtype=np.uint8), np.asarray(runs[1::2], dtype=np.int64)
    if int(lengths.sum()) != height * width:
        raise ValueError(f"the runs cover {int(lengths.sum())} pixels, not {height}x{width}")
    return np.repeat(values, lengths).reshape(height, width)


def class_table(names, palette) -> list[dict]:
    return [{"id": i, "name": n, "color": [int(c) for c in palette[i]]} for i, n in enumerate(names)]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
