"""Reading label PNGs and pairing prediction / ground-truth folders for the metrics.

Every problem with a file is a :class:`~humanparse.errors.DataError` whose message starts with the
path and says what to do next. Nothing is fixed up silently: a 3-channel PNG, a missing file or two
maps of different sizes stop the evaluation.

- :func:`read_label_png` reads one single-channel label map (mode ``L``, ``P`` (palette indices),
  ``1``, ``I;16`` or ``I``) into a 2-D integer array.
- :func:`list_pngs` maps file stems to paths in one folder.
- :func:`pair_by_stem` pairs two folders by stem and reports every stem missing on either side.
- :func:`check_same_size` raises one DataError listing every pair whose sizes differ
  (read from the PNG headers, before any pixel is decoded).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import DataError

__all__ = ["read_label_png", "list_pngs", "pair_by_stem", "check_same_size", "png_size", "read_json", "format_list"]

_SINGLE_CHANNEL_MODES = {"L", "P", "1", "I;16", "I;16B", "I;16L", "I"}


def format_list(items: list[str], limit: int = 10) -> str:
    """'a, b, c' or 'a, b, ... and 12 more' (so messages stay one line)."""
    items = list(items)
    head = ", ".join(items[:limit])
    if len(items) > limit:
        head += f", ... and {len(items) - limit} more"
    return head


def read_label_png(path: str | Path) -> np.ndarray:
    """Read a single-channel PNG as a 2-D integer array (uint8, uint16 or int32).

    Palette (``P``) images give their palette *indices*, which is how parsing labels are stored.
    RGB/RGBA files are refused: convert them to one channel first (for MHP-v2 ground truth, keep
    channel 0).
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        with Image.open(path) as img:
            mode = img.mode
            if mode not in _SINGLE_CHANNEL_MODES:
                raise DataError(
                    path,
                    f"PNG mode {mode!r} has several channels; label maps must be single-channel "
                    "(mode L, P, I;16 or I). Save the class ids as a one-channel PNG.",
                )
            array = np.array(img)
    except OSError as exc:  # PIL raises OSError subclasses for unreadable/corrupt files
        raise DataError(path, f"cannot read image ({exc})") from exc
    if array.ndim != 2:
        raise DataError(path, f"expected a 2-D label map, got shape {array.shape}")
    if array.dtype == bool:
        array = array.astype(np.uint8)
    return array


def list_pngs(folder: str | Path) -> dict[str, Path]:
    """``{stem: path}`` for every ``*.png`` directly inside ``folder`` (DataError if not a folder)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DataError(folder, "folder not found (expected a folder of PNG files)")
    return {p.stem: p for p in sorted(folder.glob("*.png")) if p.is_file()}


def pair_by_stem(pred_dir: str | Path, gt_dir: str | Path) -> list[tuple[str, Path, Path]]:
    """Pair ``pred_dir/<stem>.png`` with ``gt_dir/<stem>.png``; sorted by stem.

    Raises DataError naming the stems missing on either side (up to 10, then a count), or when
    the ground-truth folder holds no PNG at all.
    """
    preds, gts = list_pngs(pred_dir), list_pngs(gt_dir)
    if not gts:
        raise DataError(gt_dir, "no .png files in the ground-truth folder")
    missing_pred = sorted(set(gts) - set(preds))
    extra_pred = sorted(set(preds) - set(gts))
    if missing_pred:
        raise DataError(
            pred_dir,
            f"{len(missing_pred)} ground-truth image(s) have no prediction: "
            f"{format_list([s + '.png' for s in missing_pred])} (every file in {gt_dir} needs one)",
        )
    if extra_pred:
        raise DataError(
            pred_dir,
            f"{len(extra_pred)} prediction(s) have no ground truth in {gt_dir}: "
            f"{format_list([s + '.png' for s in extra_pred])} (remove them or add their labels)",
        )
    return [(stem, preds[stem], gts[stem]) for stem in sorted(gts)]


def png_size(path: str | Path) -> tuple[int, int]:
    """(height, width) of an image, read from its header only."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            width, height = img.size
    except OSError as exc:
        raise DataError(path, f"cannot read image ({exc})") from exc
    return height, width


def check_same_size(pairs: list[tuple[Path, Path]]) -> None:
    """Raise one DataError listing every (file, ground truth) pair whose sizes differ."""
    bad = []
    for pred, gt in pairs:
        ps, gs = png_size(pred), png_size(gt)
        if ps != gs:
            bad.append((pred, f"{pred.name} {ps[0]}x{ps[1]} vs {gt.name} {gs[0]}x{gs[1]}"))
    if bad:
        raise DataError(
            bad[0][0].parent,
            f"{len(bad)} file(s) differ in size from their ground truth (file vs ground truth, "
            f"h x w): {format_list([b for _, b in bad])}. Predictions must be at the original image size.",
        )


def read_json(path: str | Path) -> Any:
    """Load a JSON file; DataError for a missing or malformed file."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "file not found")
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except json.JSONDecodeError as exc:
        raise DataError(path, f"not valid JSON ({exc})") from exc
