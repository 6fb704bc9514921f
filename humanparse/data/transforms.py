"""Joint image / label-map transforms on numpy arrays (cv2 for image resizing and colour).

A sample is a dict: ``image`` uint8 HxWx3 RGB, ``label`` HxW class ids or None, ``human_ids`` HxW
person ids or None, ``meta`` dict. Every transform is ``t(sample, rng) -> sample`` and takes ALL its
randomness from the ``np.random.Generator`` it is given, so the same generator state gives the same
output (the dataset derives one generator per (seed, epoch, index)). ``Normalize`` ends a pipeline:
it turns the arrays into torch tensors (image float32 [3,H,W], label int64 [H,W]).

Label maps are resized with nearest neighbour, padded with ``ignore_index`` (person maps with 0), and
horizontally flipped through the label space's ``flip_permutation`` so that left and right classes
swap; the ignore value is kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np
import torch

from humanparse.errors import ConfigError, check_keys

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "Compose",
    "RandomScale",
    "RandomCrop",
    "RandomHorizontalFlip",
    "PhotometricJitter",
    "Normalize",
    "ResizeLongSide",
    "PadToMultiple",
    "train_transforms",
    "eval_transforms",
    "build_train_transforms",
    "build_eval_transforms",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
MEAN_PIXEL = tuple(int(round(m * 255)) for m in IMAGENET_MEAN)  # fill for padded image pixels

Sample = dict[str, Any]


def _resize_nearest(arr: np.ndarray, height: int, width: int) -> np.ndarray:
    """Nearest-neighbour resize of a 2-D map of any dtype (pixel-centre aligned)."""
    h, w = arr.shape
    rows = np.minimum(((np.arange(height) + 0.5) * (h / height)).astype(np.int64), h - 1)
    cols = np.minimum(((np.arange(width) + 0.5) * (w / width)).astype(np.int64), w - 1)
    return arr[rows[:, None], cols[None, :]]


def _resize(sample: Sample, height: int, width: int) -> Sample:
    out = dict(sample)
    if (height, width) != sample["image"].shape[:2]:
        out["image"] = cv2.resize(sample["image"], (width, height), interpolation=cv2.INTER_LINEAR)
        for key in ("label", "human_ids"):
            if sample.get(key) is not None:
                out[key] = _resize_nearest(sample[key], height, width)
    return out


def _pad(sample: Sample, pad_h: int, pad_w: int, image_fill: Sequence[int], ignore_index: int) -> Sample:
    """Pad at the bottom and right."""
    if pad_h == 0 and pad_w == 0:
        return sample
    out = dict(sample)
    out["image"] = cv2.copyMakeBorder(
        sample["image"], 0, pad_h, 0, pad_w, cv2.BORDER_CONSTANT, value=tuple(int(v) for v in image_fill)
    )
    for key, fill in (("label", ignore_index), ("human_ids", 0)):
        if sample.get(key) is not None:
            out[key] = np.pad(sample[key], ((0, pad_h), (0, pad_w)), constant_values=fill)
    return out


def _pair(size: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(size, int):
        size = (size, size)
    if len(size) != 2 or any(not isinstance(s, int) or s <= 0 for s in size):
        raise ConfigError(f"{name} must be a positive int or [height, width], got {size!r}")
    return int(size[0]), int(size[1])


class Compose:
    """Apply transforms in order, passing the same generator to each."""

    def __init__(self, transforms: Sequence):
        self.transforms = list(transforms)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        for t in self.transforms:
            sample = t(sample, rng)
        return sample

    def __repr__(self) -> str:
        return "Compose([" + ", ".join(repr(t) for t in self.transforms) + "])"


class RandomScale:
    """Resize by a factor drawn uniformly from [min_scale, max_scale] (image bilinear, maps nearest)."""

    def __init__(self, min_scale: float = 0.5, max_scale: float = 2.0):
        if not 0 < min_scale <= max_scale:
            raise ConfigError(f"scale range must satisfy 0 < min <= max, got [{min_scale}, {max_scale}]")
        self.min_scale, self.max_scale = float(min_scale), float(max_scale)

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        s = rng.uniform(self.min_scale, self.max_scale)
        h, w = sample["image"].shape[:2]
        return _resize(sample, max(1, int(round(h * s))), max(1, int(round(w * s))))

    def __repr__(self) -> str:
        return f"RandomScale({self.min_scale}, {self.max_scale})"


class RandomCrop:
    """Crop ``size`` (h, w) at a random place; smaller samples are first padded at the bottom/right
    (image with ``image_fill``, default the ImageNet mean pixel; label with ``ignore_index``).

    ``foreground_prob``: with this probability the crop is placed so that it holds a labelled foreground
    pixel (label not 0 and not ignore) drawn at random, so that crops of large images show the person
    rather than only background or padding. Samples without such pixels fall back to a uniform crop.
    """

    def __init__(self, size: int | Sequence[int], ignore_index: int = 255, image_fill: Sequence[int] = MEAN_PIXEL,
                 foreground_prob: float = 0.0):
        self.size = _pair(size, "crop size")
        self.ignore_index = int(ignore_index)
        self.image_fill = tuple(int(v) for v in image_fill)
        if not 0.0 <= foreground_prob <= 1.0:
            raise ConfigError(f"foreground_prob must be in [0, 1], got {foreground_prob}")
        self.foreground_prob = float(foreground_prob)

    def _origin(self, sample: Sample, rng: np.random.Generator, h: int, w: int) -> tuple[int, int]:
        ch, cw = self.size
        label = sample.get("label")
        if self.foreground_prob > 0 and label is not None and rng.random() < self.foreground_prob:
            ys, xs = np.nonzero((label != 0) & (label != self.ignore_index))
            if ys.size:
                k = int(rng.integers(0, ys.size))
                py, px = int(ys[k]), int(xs[k])
                y0 = int(rng.integers(max(0, py - ch + 1), min(py, h - ch) + 1))
                x0 = int(rng.integers(max(0, px - cw + 1), min(px, w - cw) + 1))
                return y0, x0
        return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        ch, cw = self.size
        h, w = sample["image"].shape[:2]
        sample = _pad(sample, max(ch - h, 0), max(cw - w, 0), self.image_fill, self.ignore_index)
        h, w = sample["image"].shape[:2]
        y0, x0 = self._origin(sample, rng, h, w)
        out = dict(sample)
        for key in ("image", "label", "human_ids"):
            if sample.get(key) is not None:
                out[key] = np.ascontiguousarray(sample[key][y0 : y0 + ch, x0 : x0 + cw])
        return out

    def __repr__(self) -> str:
        return f"RandomCrop({self.size}, ignore_index={self.ignore_index}, foreground_prob={self.foreground_prob})"


class RandomHorizontalFlip:
    """Mirror with probability ``p``; label ids go through ``flip_permutation`` (left <-> right classes).

    ``flip_permutation[c]`` is the class that ``c`` becomes; it must be an involution (flipping twice is
    the identity). ``ignore_index`` stays itself.
    """

    def __init__(self, flip_permutation: Sequence[int] | np.ndarray, p: float = 0.5, ignore_index: int = 255):
        perm = np.asarray(flip_permutation, dtype=np.int64)
        n = perm.size
        if perm.ndim != 1 or sorted(perm.tolist()) != list(range(n)):
            raise ConfigError(f"flip_permutation must be a permutation of 0..{n - 1}, got {perm.tolist()}")
        if not np.array_equal(perm[perm], np.arange(n)):
            raise ConfigError(f"flip_permutation must be an involution (perm[perm[c]] == c), got {perm.tolist()}")
        if not 0.0 <= p <= 1.0:
            raise ConfigError(f"flip probability must be in [0, 1], got {p}")
        if n > ignore_index >= 0:
            raise ConfigError(f"ignore_index {ignore_index} collides with class ids 0..{n - 1}")
        self.p = float(p)
        self.ignore_index = int(ignore_index)
        self.perm = perm
        self.lut = np.arange(max(256, n, ignore_index + 1), dtype=np.int64)
        self.lut[:n] = perm

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        if rng.random() >= self.p:
            return sample
        out = dict(sample)
        out["image"] = np.ascontiguousarray(sample["image"][:, ::-1])
        if sample.get("label") is not None:
            label = sample["label"]
            out["label"] = self.lut[label[:, ::-1]].astype(label.dtype)
        if sample.get("human_ids") is not None:
            out["human_ids"] = np.ascontiguousarray(sample["human_ids"][:, ::-1])
        return out

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class PhotometricJitter:
    """Random brightness, contrast, saturation (factors in [1-x, 1+x]) and hue (shift in [-hue, hue]
    of the colour circle, hue <= 0.5), applied in that order. Four numbers are drawn every call."""

    def __init__(self, brightness: float = 0.0, contrast: float = 0.0, saturation: float = 0.0, hue: float = 0.0):
        for name, v, top in (("brightness", brightness, None), ("contrast", contrast, None),
                             ("saturation", saturation, None), ("hue", hue, 0.5)):
            if v < 0 or (top is not None and v > top):
                raise ConfigError(f"jitter {name} must be in [0, {top if top is not None else 'inf'}], got {v}")
        self.brightness, self.contrast, self.saturation, self.hue = map(float, (brightness, contrast, saturation, hue))

    def __call__(self, sample: Sample, rng: np.random.Generator) -> Sample:
        b, c, s = (rng.uniform(max(0.0, 1 - x), 1 + x) for x in (self.brightness, self.contrast, self.saturation))
        hue = rng.uniform(-self.hue, self.hue)
        img = sample["image"].astype(np.float32)
        if self.brightness:
            img *= b
        if self.contrast or self.saturation:
            weights = np.array([0.299, 0.587, 0.114], dtype=np.float32)
            if self.contrast:
                mean = float((np.clip(img, 0, 255) @ weights).mean())
                img = (img - mean) * c + mean
            if self.saturation:
                gray = (np.clip(img, 0, 255) @ weights)[:, :, None]
                img = (img - gray) * s + gray
        out = dict(sample)
        img = np.clip(img + 0.5, 0, 255).astype(np.uint8)
        shift = int(round(hue * 256)) % 256
        if shift:
            hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV_FULL)
            hsv[:, :, 0] = hsv[:, :, 0] + np.uint8(shift)  # uint8 arithmetic wraps around the circle
            img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB_FULL)
        out["image"] = img
        return out

    def __repr__(self) -> str:
        return f"PhotometricJitter({self.brightness}, {self.contrast}, {self.saturation}, {self.hue})"


class Normalize:
    """uint8 HxWx3 -> float32 tensor [3,H,W], (x/255 - mean) / std; maps -> int64 tensors."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        if len(mean) != 3 or len(std) != 3 or any(v <= 0 for v in std):
            raise ConfigError(f"mean and std need 3 values (std > 0), got mean={mean!r} std={std!r}")
        self.mean = np.asarray(mean, dtype=np.float32) * 255.0
        self.inv_std = 1.0 / (np.asarray(std, dtype=np.float32) * 255.0)

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        out = dict(sample)
        img = (sample["image"].astype(np.float32) - self.mean) * self.inv_std
        out["image"] = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        for key in ("label", "human_ids"):
            if sample.get(key) is not None:
                out[key] = torch.from_numpy(np.ascontiguousarray(sample[key]).astype(np.int64))
        return out

    def __repr__(self) -> str:
        return "Normalize()"


class ResizeLongSide:
    """Resize so the longer side equals ``size`` (aspect kept); records ``meta['resized_size']``."""

    def __init__(self, size: int):
        if not isinstance(size, int) or size <= 0:
            raise ConfigError(f"long side must be a positive int, got {size!r}")
        self.size = size

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        h, w = sample["image"].shape[:2]
        scale = self.size / max(h, w)
        nh, nw = max(1, int(round(h * scale))), max(1, int(round(w * scale)))
        out = _resize(sample, nh, nw)
        out["meta"] = {**sample.get("meta", {}), "resized_size": (nh, nw)}
        return out

    def __repr__(self) -> str:
        return f"ResizeLongSide({self.size})"


class PadToMultiple:
    """Pad bottom/right so H and W are multiples of ``divisor`` (the network needs 32).

    Records ``meta['valid_size']`` (size before padding) and ``meta['pad']`` (bottom, right)."""

    def __init__(self, divisor: int = 32, ignore_index: int = 255, image_fill: Sequence[int] = MEAN_PIXEL):
        if not isinstance(divisor, int) or divisor <= 0:
            raise ConfigError(f"size divisor must be a positive int, got {divisor!r}")
        self.divisor, self.ignore_index = divisor, int(ignore_index)
        self.image_fill = tuple(int(v) for v in image_fill)

    def __call__(self, sample: Sample, rng: np.random.Generator | None = None) -> Sample:
        h, w = sample["image"].shape[:2]
        ph, pw = (-h) % self.divisor, (-w) % self.divisor
        out = _pad(sample, ph, pw, self.image_fill, self.ignore_index)
        out["meta"] = {**sample.get("meta", {}), "valid_size": (h, w), "pad": (ph, pw)}
        return out

    def __repr__(self) -> str:
        return f"PadToMultiple({self.divisor})"


_JITTER_KEYS = ("brightness", "contrast", "saturation", "hue")


def train_transforms(
    *,
    flip_permutation: np.ndarray,
    ignore_index: int = 255,
    crop_size: int | Sequence[int] = 512,
    scale_range: Sequence[float] | None = (0.5, 2.0),
    flip_prob: float = 0.5,
    jitter: Mapping[str, float] | None = None,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
    base_size: int | None = None,
    foreground_prob: float = 0.0,
) -> Compose:
    """Base size -> scale -> crop (pad with ignore) -> L/R-aware flip -> optional colour jitter -> normalise.

    ``base_size`` (long side, as ``eval.long_side`` / the inference size) first brings every image to the
    scale the network sees at test time, so that ``scale_range`` is relative to that scale rather than to
    the stored resolution (SCHP / Mask2Former style). ``foreground_prob``: see ``RandomCrop``.
    """
    steps: list = [ResizeLongSide(int(base_size))] if base_size else []
    if scale_range is not None:
        if len(scale_range) != 2:
            raise ConfigError(f"scale_range must be [min, max], got {scale_range!r}")
        steps.append(RandomScale(*scale_range))
    fill = tuple(int(round(m * 255)) for m in mean)
    steps.append(RandomCrop(crop_size, ignore_index=ignore_index, image_fill=fill, foreground_prob=foreground_prob))
    if flip_prob > 0:
        steps.append(RandomHorizontalFlip(flip_permutation, p=flip_prob, ignore_index=ignore_index))
    if jitter:
        check_keys("jitter key", jitter, _JITTER_KEYS)
        steps.append(PhotometricJitter(**jitter))
    steps.append(Normalize(mean, std))
    return Compose(steps)


def eval_transforms(
    *,
    ignore_index: int = 255,
    long_side: int | None = None,
    size_divisor: int = 32,
    mean: Sequence[float] = IMAGENET_MEAN,
    std: Sequence[float] = IMAGENET_STD,
) -> Compose:
    """Optional resize of the long side -> pad to a multiple of ``size_divisor`` -> normalise."""
    fill = tuple(int(round(m * 255)) for m in mean)
    steps: list = [ResizeLongSide(long_side)] if long_side is not None else []
    steps += [PadToMultiple(size_divisor, ignore_index=ignore_index, image_fill=fill), Normalize(mean, std)]
    return Compose(steps)


_TRAIN_KEYS = ("crop_size", "scale_range", "flip_prob", "jitter", "mean", "std", "base_size", "foreground_prob")
_EVAL_KEYS = ("long_side", "size_divisor", "mean", "std")


def build_train_transforms(cfg: Mapping[str, Any] | None, label_space) -> Compose:
    """Training pipeline from a config dict (keys: base_size, crop_size, scale_range, foreground_prob, flip_prob,
    jitter, mean, std).

    The flip permutation and ignore value come from ``label_space``. Unknown keys raise ConfigError.
    """
    cfg = dict(cfg or {})
    check_keys("train transform key", cfg, _TRAIN_KEYS)
    return train_transforms(flip_permutation=label_space.flip_permutation, ignore_index=label_space.ignore_index, **cfg)


def build_eval_transforms(cfg: Mapping[str, Any] | None, *, ignore_index: int = 255) -> Compose:
    """Evaluation pipeline from a config dict (keys: long_side, size_divisor, mean, std)."""
    cfg = dict(cfg or {})
    check_keys("eval transform key", cfg, _EVAL_KEYS)
    return eval_transforms(ignore_index=ignore_index, **cfg)
