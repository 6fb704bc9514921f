"""Semantic parsing metrics: one confusion matrix over the whole split.

Convention (``/work/shared/notes/metrics.md``; PASCAL-Person-Part, ATR, CIHP, LIP, CCP):

- One C x C matrix ``hist[gt, pred]`` accumulated with ``np.bincount`` over every image of the
  split; pixels whose ground truth is ``ignore_index`` (255) are left out. Predictions are compared
  at the original image resolution.
- ``IoU_c = TP_c / (TP_c + FP_c + FN_c)``. A class that never occurs in the ground truth nor in the
  prediction over the whole split has 0/0 = NaN.
- Default (``nan_as_zero=False``, mmsegmentation / Graphonomy): NaN classes are left out of mIoU and
  reported as ``None`` in ``per_class_iou``; mean accuracy is the mean of ``TP_c / (TP_c + FN_c)``
  over the classes present in the ground truth.
- ``nan_as_zero=True`` (SCHP ``utils/miou.py``): NaN IoUs count as 0 and mIoU is the mean over all C
  classes; mean accuracy is likewise the mean over all C classes with absent classes counting 0.
- Pixel accuracy = trace / total (ignored pixels excluded).
- All values are fractions in [0, 1] (not percentages); ``None`` when undefined (nothing counted).
  The result carries ``"convention"`` so a table can say which rule it used.

``score_semantic_dirs`` is the backend of ``humanparse score --task semantic``.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import DataError
from .io import check_same_size, pair_by_stem, read_label_png

__all__ = ["ConfusionMatrix", "score_semantic_dirs"]


def _to_float(x: float) -> float | None:
    x = float(x)
    return None if math.isnan(x) else x


class ConfusionMatrix:
    """Accumulates ``hist[gt, pred]`` (int64, C x C) over a split.

    >>> cm = ConfusionMatrix(20)
    >>> cm.update(pred, gt)        # int arrays of one shape; gt may hold ignore_index
    >>> cm.compute()["mIoU"]
    """

    def __init__(self, num_classes: int, ignore_index: int | None = 255):
        if int(num_classes) < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.ignore_index = ignore_index
        self.hist = np.zeros((self.num_classes, self.num_classes), dtype=np.int64)

    def reset(self) -> None:
        self.hist[:] = 0

    def update(self, pred: np.ndarray, gt: np.ndarray) -> None:
        """Add one image (or a batch: any shape, as long as both match).

        Raises ValueError when shapes differ, when ground truth holds values outside
        ``[0, C)`` other than ``ignore_index``, or when the prediction holds values outside ``[0, C)``.
        The message names the bad values.
        """
        pred = np.asarray(pred)
        gt = np.asarray(gt)
        if pred.shape != gt.shape:
            raise ValueError(f"prediction shape {pred.shape} != ground-truth shape {gt.shape}")
        for name, a in (("prediction", pred), ("ground truth", gt)):
            if not (np.issubdtype(a.dtype, np.integer) or a.dtype == bool):
                raise ValueError(f"{name} must be an integer array, got dtype {a.dtype}")
        gt = gt.reshape(-1).astype(np.int64, copy=False)
        pred = pred.reshape(-1).astype(np.int64, copy=False)
        keep = gt != self.ignore_index if self.ignore_index is not None else np.ones(gt.shape, bool)
        gt_k, pred_k = gt[keep], pred[keep]
        c = self.num_classes
        bad_gt = (gt_k < 0) | (gt_k >= c)
        if bad_gt.any():
            vals = np.unique(gt_k[bad_gt])[:10].tolist()
            raise ValueError(
                f"ground truth holds values {vals} outside [0, {c}) that are not the ignore index "
                f"{self.ignore_index}; check num_classes or the label files"
            )
        bad_pred = (pred < 0) | (pred >= c)
        if bad_pred.any():
            vals = np.unique(pred[bad_pred])[:10].tolist()
            raise ValueError(f"prediction holds values {vals} outside [0, {c}); check num_classes")
        self.hist += np.bincount(gt_k * c + pred_k, minlength=c * c).reshape(c, c)

    def merge(self, other: "ConfusionMatrix") -> "ConfusionMatrix":
        """Add another matrix's counts into this one (e.g. from another worker); returns self."""
        if other.num_classes != self.num_classes or other.ignore_index != self.ignore_index:
            raise ValueError(
                f"cannot merge a {other.num_classes}-class matrix (ignore {other.ignore_index}) into a "
                f"{self.num_classes}-class one (ignore {self.ignore_index})"
            )
        self.hist += other.hist
        return self

    def compute(self, nan_as_zero: bool = False) -> dict:
        """``{"mIoU", "mean_acc", "pixel_acc", "per_class_iou", "per_class_acc", "convention",
        "num_pixels"}``, plain Python floats / None / lists (JSON-able); see the module docstring."""
        hist = self.hist.astype(np.float64)
        tp = np.diag(hist)
        gt_count = hist.sum(1)
        pred_count = hist.sum(0)
        total = hist.sum()
        with np.errstate(divide="ignore", invalid="ignore"):
            iou = tp / (gt_count + pred_count - tp)
            acc = tp / gt_count
        if nan_as_zero:
            iou = np.nan_to_num(iou, nan=0.0)
            acc = np.nan_to_num(acc, nan=0.0)
            miou = iou.mean() if total > 0 else math.nan
            mean_acc = acc.mean() if total > 0 else math.nan
        else:
            miou = np.nanmean(iou) if np.isfinite(iou).any() else math.nan
            mean_acc = np.nanmean(acc) if np.isfinite(acc).any() else math.nan
        return {
            "mIoU": _to_float(miou),
            "mean_acc": _to_float(mean_acc),
            "pixel_acc": _to_float(tp.sum() / total) if total > 0 else None,
            "per_class_iou": [_to_float(v) for v in iou],
            "per_class_acc": [_to_float(v) for v in acc],
            "convention": "nan_as_zero (SCHP)" if nan_as_zero else "nan_excluded (mmseg/Graphonomy)",
            "num_pixels": int(total),
        }


def score_semantic_dirs(
    pred_dir: str | Path,
    gt_dir: str | Path,
    num_classes: int,
    ignore_index: int = 255,
    nan_as_zero: bool = False,
) -> dict:
    """Score a folder of predicted label PNGs against a folder of ground-truth label PNGs.

    Files are paired by stem (``<stem>.png`` on both sides). Raises DataError for: a folder that
    is missing or empty, stems missing on either side (listed), prediction/ground-truth size
    mismatches (all listed, read from headers before any scoring), ground-truth values outside
    ``[0, num_classes)`` other than ``ignore_index``, and prediction values outside
    ``[0, num_classes)``. Returns ``ConfusionMatrix.compute()`` plus ``num_images``.
    """
    pairs = pair_by_stem(pred_dir, gt_dir)
    check_same_size([(p, g) for _, p, g in pairs])
    cm = ConfusionMatrix(num_classes, ignore_index)
    for _, pred_path, gt_path in pairs:
        pred = read_label_png(pred_path)
        gt = read_label_png(gt_path)
        gt_vals = np.unique(gt)
        bad_gt = [int(v) for v in gt_vals if not (0 <= v < num_classes) and v != ignore_index]
        if bad_gt:
            raise DataError(
                gt_path,
                f"ground-truth values {bad_gt[:10]} are outside [0, {num_classes}) and are not the "
                f"ignore index {ignore_index}; check --num-classes or the label files",
            )
        pred_vals = np.unique(pred)
        bad_pred = [int(v) for v in pred_vals if not (0 <= v < num_classes)]
        if bad_pred:
            raise DataError(
                pred_path,
                f"predicted values {bad_pred[:10]} are outside [0, {num_classes}); predictions must be "
                "class ids of the evaluated label space",
            )
        cm.update(pred, gt)
    result = cm.compute(nan_as_zero=nan_as_zero)
    result["num_images"] = len(pairs)
    return result
