"""HTCorrM samples: image + parsing label + derived edge target + pose heatmaps from a keypoint file.

Geometry is one affine warp per sample (as CorrPM does): the whole image is fitted into the
``crop_size`` output with its aspect ratio kept, then, in training, scaled by s ~ U(scale_range),
rotated by r ~ U(-rotation, rotation) (with probability ``rotation_prob``) and mirrored with
probability ``flip_prob``. The same matrix moves the image (bilinear, ImageNet-mean fill), the label
(nearest, ``ignore_index`` fill) and the keypoints. A mirror swaps left/right classes through the
label space's ``flip_permutation`` and left/right joints through ``metrics.pose.FLIP_INDEX``. Edge
targets are derived from the warped label and heatmaps from the warped keypoints, so they always
agree with the image the network sees.

Item::

    {"image": float32 [3,H,W], "label": int64 [H,W], "edge": int64 [H,W] (0/1/ignore),
     "pose_heatmap": float32 [16, H/stride, W/stride], "pose_weight": float32 [16],
     "keypoints": float32 [P, 16, 3] (x, y, v in output pixels), "domain": str, "meta": dict}

Keypoints come from a JSON file in the format of ``humanparse.metrics.pose`` (``{"<stem>":
{"keypoints": [[x, y, v] x 16]}}``, or ``{"persons": [...]}`` for several people), keyed by the
image's file stem. Every record needs an entry (an image where no person was found has all
``v = 0``); a missing one raises ``DataError``. With several persons the heatmap of a joint is the
maximum of their Gaussians (bottom-up targets) and its weight is 1 if any person has it; the
collated ``keypoints`` are padded to the batch's largest P with invisible rows.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from ..data.dataset import ParsingDataset, item_rng
from ..data.transforms import IMAGENET_MEAN, Normalize
from ..errors import ConfigError, DataError
from ..metrics.pose import pose_persons
from .labels import NUM_JOINTS, edge_target, pose_targets, transform_keypoints

__all__ = ["HTCorrMDataset", "affine_matrix", "collate_htcorrm", "load_keypoints", "load_pose_table"]

_MEAN_PIXEL = tuple(round(m * 255) for m in IMAGENET_MEAN)


def _read_table(path: Path) -> dict:
    if not path.is_file():
        raise DataError(path, "keypoint file not found (convert a release's annotations with `humanparse keypoints "
                        "convert`, or make pseudo-labels with `humanparse pseudo-label pose`)")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataError(path, 'expected an object {"<image stem>": {"keypoints": [[x, y, v], ...]}}')
    return data


def load_pose_table(path: str | Path) -> tuple[dict[str, list[dict]], bool]:
    """``({stem: [person]}, is_pseudo)`` from a keypoint JSON file (``metrics.pose.pose_persons``).

    ``is_pseudo`` is True when the file was written by ``humanparse pseudo-label pose`` (its entries
    carry ``detected`` / ``scores``): such a file may train a model but never score one."""
    path = Path(path)
    data = _read_table(path)
    table = {stem: pose_persons(path, stem, entry, need_v=True) for stem, entry in data.items()}
    pseudo = any(isinstance(e, dict) and ("detected" in e or "scores" in e) for e in data.values())
    return table, pseudo


def load_keypoints(path: str | Path) -> dict[str, np.ndarray]:
    """``{stem: float64 [P, 16, 3]}`` (P persons, >= 1) from a keypoint JSON file (``metrics.pose`` format)."""
    table, _ = load_pose_table(path)
    return {stem: np.stack([p["keypoints"] for p in persons]) if persons else np.zeros((1, NUM_JOINTS, 3))
            for stem, persons in table.items()}


def affine_matrix(in_size: tuple[int, int], out_size: tuple[int, int], *, scale: float = 1.0,
                  rotation_deg: float = 0.0, flip: bool = False) -> np.ndarray:
    """2x3 matrix: fit the input (h, w) into the output (H, W) keeping the aspect ratio, centred,
    times ``scale``, rotated by ``rotation_deg`` about the centre, mirrored first if ``flip``.
    Pixel centres sit at integer coordinates, so ``flip`` alone maps x to w - 1 - x."""
    h, w = in_size
    oh, ow = out_size
    s = scale * min(ow / w, oh / h)
    a = math.radians(rotation_deg)
    rot = np.array([[math.cos(a), -math.sin(a)], [math.sin(a), math.cos(a)]]) * s
    lin = rot @ np.diag([-1.0 if flip else 1.0, 1.0])
    centre_in = np.array([(w - 1) / 2.0, (h - 1) / 2.0])
    centre_out = np.array([(ow - 1) / 2.0, (oh - 1) / 2.0])
    return np.concatenate([lin, (centre_out - lin @ centre_in)[:, None]], 1)


class HTCorrMDataset(Dataset):
    """Records of one label domain + keypoints -> HTCorrM training items (see the module docstring)."""

    def __init__(self, records: Sequence, label_space, keypoints: dict[str, np.ndarray] | None, *,
                 crop_size: int | Sequence[int] = 384, train: bool = True,
                 scale_range: Sequence[float] = (0.75, 1.25), rotation: float = 60.0, rotation_prob: float = 1.0,
                 flip_prob: float = 0.5, edge_connectivity: int = 8, edge_dilation: int = 1,
                 heatmap_stride: int = 4, sigma: float = 2.0, seed: int = 0, keypoint_file: str | None = None):
        self.reader = ParsingDataset(records, label_space, lambda sample, rng: sample, seed=seed)
        self.records = list(records)
        self.label_space = label_space
        self.keypoints = keypoints
        size = (crop_size, crop_size) if isinstance(crop_size, int) else tuple(int(v) for v in crop_size)
        if len(size) != 2 or min(size) <= 0 or size[0] % 32 or size[1] % 32:
            raise ConfigError(f"data.crop_size must be a positive multiple of 32 (or [h, w] of such), got {crop_size!r}")
        if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
            raise ConfigError(f"data.scale_range must be [min, max] with 0 < min <= max, got {scale_range!r}")
        for name, p in (("flip_prob", flip_prob), ("rotation_prob", rotation_prob)):
            if not 0.0 <= p <= 1.0:
                raise ConfigError(f"data.{name} must be in [0, 1], got {p}")
        self.size, self.train = size, bool(train)
        self.scale_range, self.rotation, self.rotation_prob = tuple(scale_range), float(rotation), float(rotation_prob)
        self.flip_prob = float(flip_prob)
        self.edge_connectivity, self.edge_dilation = int(edge_connectivity), int(edge_dilation)
        self.stride, self.sigma = int(heatmap_stride), float(sigma)
        self.seed, self.epoch = int(seed), 0
        perm = np.asarray(label_space.flip_permutation, np.int64)
        self.lut = np.arange(256, dtype=np.uint8)
        self.lut[: perm.size] = perm
        self.normalize = Normalize()
        if keypoints is not None:
            missing = [r.stem for r in self.records if r.stem not in keypoints]
            if missing:
                raise DataError(keypoint_file or "<keypoints>", f"{len(missing)} image(s) have no keypoint entry, "
                                f"e.g. {missing[:3]}; pseudo-label them or drop them from the split")

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _draw(self, rng: np.random.Generator) -> tuple[float, float, bool]:
        if not self.train:
            return 1.0, 0.0, False
        scale = float(rng.uniform(*self.scale_range))
        rotate = rng.random() < self.rotation_prob
        angle = float(rng.uniform(-self.rotation, self.rotation)) if rotate else 0.0
        flip = bool(rng.random() < self.flip_prob)
        return scale, angle, flip

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.reader.load(index)
        rec = self.records[index]
        ls = self.label_space
        image, label = sample["image"], sample["label"]
        if label is None:
            label = np.full(image.shape[:2], ls.ignore_index, np.uint8)
        scale, angle, flip = self._draw(item_rng(self.seed, self.epoch, index))
        m = affine_matrix(image.shape[:2], self.size, scale=scale, rotation_deg=angle, flip=flip)
        oh, ow = self.size
        image = cv2.warpAffine(image, m, (ow, oh), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT,
                               borderValue=_MEAN_PIXEL)
        label = cv2.warpAffine(label.astype(np.uint8), m, (ow, oh), flags=cv2.INTER_NEAREST,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=int(ls.ignore_index))
        if flip:
            label = self.lut[label]
        edge = edge_target(label, connectivity=self.edge_connectivity, dilation=self.edge_dilation,
                           ignore_index=ls.ignore_index)
        raw_kp = self.keypoints[rec.stem] if self.keypoints is not None else np.zeros((1, NUM_JOINTS, 3))
        raw_kp = np.asarray(raw_kp, np.float64).reshape(-1, NUM_JOINTS, 3)
        kp = np.stack([transform_keypoints(p, m, (oh, ow), flipped=flip) for p in raw_kp])
        targets = [pose_targets(p, (oh, ow), stride=self.stride, sigma=self.sigma) for p in kp]
        heatmaps = np.max([t[0] for t in targets], axis=0)  # several persons: one map per joint (max)
        weight = np.max([t[1] for t in targets], axis=0)
        norm = self.normalize({"image": image, "label": label})
        meta = {**sample["meta"], "affine": m.tolist(), "flipped": flip}
        return {
            "image": norm["image"], "label": norm["label"], "edge": torch.from_numpy(edge.astype(np.int64)),
            "pose_heatmap": torch.from_numpy(heatmaps), "pose_weight": torch.from_numpy(weight),
            "keypoints": torch.from_numpy(kp.astype(np.float32)), "domain": rec.domain, "meta": meta,
        }


def collate_htcorrm(items: Sequence[dict]) -> dict[str, Any]:
    """Stack the tensors of HTCorrM items (all of one size); ``domain`` and ``meta`` become lists."""
    if not items:
        raise ValueError("collate_htcorrm got an empty list of items")
    batch: dict[str, Any] = {k: torch.stack([it[k] for it in items])
                             for k in ("image", "label", "edge", "pose_heatmap", "pose_weight")}
    most = max(it["keypoints"].shape[0] for it in items)  # pad persons with invisible (v = 0) rows
    batch["keypoints"] = torch.stack([torch.cat([it["keypoints"], it["keypoints"].new_zeros(
        most - it["keypoints"].shape[0], NUM_JOINTS, 3)]) for it in items])
    batch["domain"] = [it["domain"] for it in items]
    batch["meta"] = [it["meta"] for it in items]
    return batch
