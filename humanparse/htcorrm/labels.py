"""Targets for HTCorrM's auxiliary tasks, derived from what a dataset has.

Edges (no dataset ships edge labels; the paper derives them from parsing labels)::

    edge = edges_from_labels(label, connectivity, ignore_index)    # metrics.edge: both sides of a border
    edge = dilate(edge, 3x3 square, ``dilation`` times)             # default once: a ~4 px band
    edge[label == ignore_index] = ignore_index                      # padding is neither edge nor not

CorrPM marks one side of each 8-connected border and dilates it with a 3x3 square (a 3-4 px band);
``edges_from_labels`` marks both sides (2 px), so one 3x3 dilation gives a 4 px band: the
*training* target. ``thin=True`` (with ``dilation=0``) thins the 2 px band to one pixel: the
*evaluation* ground truth, as BSDS's boundaries are (``write_edge_maps``, ``htcorrm.evaluate``).
Part/background borders are edges, borders against ignore pixels are not.

Pose (16 MPII/LIP joints; ``metrics.pose`` holds the joint order and the encoder/decoder)::

    heatmaps [J, H/stride, W/stride] = encode_heatmaps(keypoints, ..., stride, sigma=2)
    weight   [J] = 1 for a visible joint (v > 0) whose centre lies on the heatmap grid, else 0

Keypoints are ``[J, 3]`` arrays of (x, y, v) in input pixels, pixel centres at integer coordinates
(the convention of ``cv2.warpAffine`` and of a left-right mirror ``x -> W - 1 - x``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from ..metrics.edge import edges_from_labels
from ..metrics.pose import FLIP_INDEX, JOINT_NAMES, decode_heatmaps, encode_heatmaps

__all__ = [
    "NUM_JOINTS",
    "decode_pose",
    "edge_target",
    "flip_keypoints",
    "pose_targets",
    "transform_keypoints",
    "write_edge_maps",
]

NUM_JOINTS = len(JOINT_NAMES)


def edge_target(label: np.ndarray, *, connectivity: int = 8, dilation: int = 1, ignore_index: int = 255,
                thin: bool = False) -> np.ndarray:
    """uint8 [H, W]: 1 = edge, 0 = not, ``ignore_index`` where the parsing label is ignored.

    ``thin=True`` gives one-pixel edges (evaluation ground truth) and needs ``dilation=0``."""
    label = np.asarray(label)
    if dilation < 0:
        raise ValueError(f"edge dilation must be >= 0, got {dilation}")
    if thin and dilation:
        raise ValueError("thin edges cannot be dilated: use thin=True with dilation=0")
    edge = edges_from_labels(label, connectivity=connectivity, ignore_index=ignore_index, thin=thin)
    if dilation:
        edge = cv2.dilate(edge, np.ones((3, 3), np.uint8), iterations=int(dilation))
    edge = edge.astype(np.uint8)
    edge[label == ignore_index] = ignore_index
    return edge


def write_edge_maps(labels_dir: str | Path, out_dir: str | Path, *, connectivity: int = 4, dilation: int = 0,
                    ignore_index: int = 255) -> int:
    """Write the edge map (PNG, 0/1, ignore pixels 0) of every label PNG in ``labels_dir``; returns the count.

    The backend of ``humanparse pseudo-label edge``. By default (``dilation=0``) the two-pixel band
    of ``edges_from_labels`` is thinned to one pixel: the thin ground truth that ``score --task edge``
    (ODS/OIS) expects. With ``dilation > 0`` the band is dilated instead (a training-style target).
    Each PNG is written to a temporary name and renamed, so a reader never sees half a file.
    """
    from PIL import Image

    from ..errors import DataError
    from ..metrics.io import read_label_png

    labels_dir, out_dir = Path(labels_dir), Path(out_dir)
    files = sorted(labels_dir.glob("*.png")) if labels_dir.is_dir() else []
    if not files:
        raise DataError(labels_dir, "no label PNGs found (expected a folder of <stem>.png class-id maps)")
    out_dir.mkdir(parents=True, exist_ok=True)
    for f in files:
        edge = edge_target(read_label_png(f), connectivity=connectivity, dilation=dilation, ignore_index=ignore_index,
                           thin=dilation == 0)
        edge[edge == ignore_index] = 0
        tmp = out_dir / f".{f.stem}.tmp.png"
        Image.fromarray(edge.astype(np.uint8)).save(tmp)
        tmp.replace(out_dir / f.name)
    return len(files)


def pose_targets(keypoints: np.ndarray, image_size: tuple[int, int], *, stride: int = 4,
                 sigma: float = 2.0) -> tuple[np.ndarray, np.ndarray]:
    """(heatmaps float32 [J, ceil(H/stride), ceil(W/stride)], weight float32 [J]) for one image.

    A joint whose centre falls outside the heatmap grid gets weight 0 (its map is still encoded, and
    is nearly empty); invisible joints (v <= 0) get an all-zero map and weight 0.
    """
    kp = np.asarray(keypoints, np.float64)
    h, w = -(-int(image_size[0]) // stride), -(-int(image_size[1]) // stride)
    heatmaps = encode_heatmaps(kp, (h, w), stride, sigma)
    cx, cy = kp[:, 0] / stride, kp[:, 1] / stride
    with np.errstate(invalid="ignore"):
        inside = (cx >= -0.5) & (cx <= w - 0.5) & (cy >= -0.5) & (cy <= h - 0.5)
    weight = ((kp[:, 2] > 0) & inside & np.isfinite(cx) & np.isfinite(cy)).astype(np.float32)
    heatmaps[weight == 0] = 0.0
    return heatmaps, weight


def decode_pose(heatmaps: np.ndarray, *, stride: int = 4) -> np.ndarray:
    """Heatmaps [..., J, h, w] -> keypoints [..., J, 3] = (x, y, peak value) in input pixels."""
    return decode_heatmaps(heatmaps, stride)


def flip_keypoints(keypoints: np.ndarray, width: int) -> np.ndarray:
    """Mirror keypoints of an image ``width`` pixels wide: x -> W - 1 - x, and swap left/right joints."""
    kp = np.asarray(keypoints, np.float64).copy()
    kp[:, 0] = (width - 1) - kp[:, 0]
    return kp[list(FLIP_INDEX)]


def transform_keypoints(keypoints: np.ndarray, matrix: np.ndarray, out_size: tuple[int, int] | None = None,
                        *, flipped: bool = False) -> np.ndarray:
    """Apply a 2x3 affine ``matrix`` (the one given to ``cv2.warpAffine``) to (x, y) and keep ``v``.

    ``flipped=True`` says the matrix mirrors the image, so left and right joints swap indices. With
    ``out_size`` (h, w), joints that land outside the output image become invisible (v = 0).
    """
    kp = np.asarray(keypoints, np.float64).copy()
    xy = kp[:, :2] @ np.asarray(matrix, np.float64)[:, :2].T + np.asarray(matrix, np.float64)[:, 2]
    kp[:, :2] = xy
    if out_size is not None:
        h, w = out_size
        with np.errstate(invalid="ignore"):
            outside = ~((xy[:, 0] >= 0) & (xy[:, 0] <= w - 1) & (xy[:, 1] >= 0) & (xy[:, 1] <= h - 1))
        kp[outside, 2] = 0.0
    return kp[list(FLIP_INDEX)] if flipped else kp
