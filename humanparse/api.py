"""The one-call parser for users' own images: ``Parser.from_checkpoint(path)(image, domain=...)``."""

from __future__ import annotations

import glob
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch

from .errors import ConfigError, DataError, HumanparseError, unknown_key_message

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


@dataclass
class ParseReport:
    """What ``Parser.parse_files`` wrote and which inputs failed (path -> reason)."""

    written: list[Path] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return not self.failed


def expand_inputs(inputs: Iterable[str | Path]) -> list[Path]:
    """Files, folders (their images, sorted) and glob patterns -> image paths, in order, no duplicates."""
    out: list[Path] = []
    for item in inputs:
        item = str(item)
        if any(ch in item for ch in "*?["):
            matches = sorted(glob.glob(item, recursive=True))
            if not matches:
                raise DataError(item, "the pattern matches no file")
            out += [Path(m) for m in matches if Path(m).is_file()]
        elif os.path.isdir(item):
            found = sorted(p for p in Path(item).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
            if not found:
                raise DataError(item, f"the folder holds no image ({', '.join(IMAGE_EXTENSIONS)})")
            out += found
        elif os.path.exists(item):
            out.append(Path(item))
        else:
            raise DataError(item, "no such file or folder")
    return list(dict.fromkeys(out))


def _output_stems(paths: Sequence[Path]) -> list[str]:
    """File stems, made unique with the parent folder name where two inputs share a stem."""
    counts: dict[str, int] = {}
    for p in paths:
        counts[p.stem] = counts.get(p.stem, 0) + 1
    return [p.stem if counts[p.stem] == 1 else f"{p.parent.name}_{p.stem}" for p in paths]


def iter_image_batches(inputs: Iterable[str | Path], batch_size: int, report: ParseReport):
    """Expand ``inputs`` and yield ``(paths, stems, images)`` batches of readable images.

    An unreadable image is recorded in ``report.failed`` (and printed) by name, and the rest go on.
    """
    from .data.io import read_image

    paths = expand_inputs(inputs)
    stems = _output_stems(paths)
    for start in range(0, len(paths), batch_size):
        ok_paths, ok_stems, images = [], [], []
        for path, stem in zip(paths[start:start + batch_size], stems[start:start + batch_size]):
            try:
                images.append(read_image(path))
            except HumanparseError as exc:
                report.failed[str(path)] = str(exc)
                print(f"skipped {path}: {exc}", file=sys.stderr)
                continue
            ok_paths.append(path)
            ok_stems.append(stem)
        if images:
            yield ok_paths, ok_stems, images


def overlay_image(image: np.ndarray, label: np.ndarray, palette: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """Colour overlay: background (class 0) left as it is, other classes blended with their colour."""
    colours = palette[label].astype(np.float32)
    blend = image.astype(np.float32) * (1 - alpha) + colours * alpha
    mask = (label > 0)[..., None]
    return np.where(mask, blend, image).clip(0, 255).astype(np.uint8)


def _save_npy(path: str, array: np.ndarray) -> None:
    with open(path, "wb") as fh:
        np.save(fh, array)


class Parser:
    """Semantic human parser over one or more label domains (one head each).

    >>> parser = Parser.from_checkpoint("runs/demo/sst/model.safetensors")
    >>> labels = parser.predict([rgb_uint8_array], domain="lip")   # list of HxW uint8 class-id maps
    """

    def __init__(self, model: torch.nn.Module, label_spaces: dict, *, device: str | torch.device = "cpu",
                 long_side: int | None = 512, batch_size: int = 4):
        self.model = model.eval()
        self.label_spaces = label_spaces
        self.device = torch.device(device)
        self.long_side = long_side
        self.batch_size = batch_size
        self.model.to(self.device)

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "cpu", **kwargs) -> "Parser":
        from .engine.loading import load_model
        from .engine.loading import resolve_device

        dev = resolve_device(str(device))
        model, label_spaces, meta = load_model(path, device=dev)
        if meta.get("recipe", "semantic") != "semantic":
            raise ConfigError(f"{path} is a {meta.get('recipe')!r} model; use the matching parser "
                              "(for multi-person parsing: humanparse parse --task multi)")
        return cls(model, label_spaces, device=dev, **kwargs)

    @property
    def domains(self) -> list[str]:
        return list(self.label_spaces)

    def _domain(self, domain: str | None) -> str:
        if domain is None:
            if len(self.label_spaces) == 1:
                return next(iter(self.label_spaces))
            raise ConfigError(f"this model has several heads; choose one with --domain (Python: domain=), one of {', '.join(self.domains)}")
        if domain not in self.label_spaces:
            raise ConfigError(unknown_key_message("domain", domain, self.label_spaces))
        return domain

    def predict_proba(self, images: Sequence[np.ndarray], domain: str | None = None, *, tta: bool = False) -> list[torch.Tensor]:
        """Class probabilities [C, H, W] per image (float32), at each image's own size."""
        from .engine.inference import PAPER_TTA_SCALES, predict_probabilities

        domain = self._domain(domain)
        ls = self.label_spaces[domain]
        out: list[torch.Tensor] = []
        for i in range(0, len(images), self.batch_size):
            out += predict_probabilities(self.model, images[i:i + self.batch_size], domain, long_side=self.long_side,
                                         scales=PAPER_TTA_SCALES if tta else (1.0,), flip=tta,
                                         flip_permutation=ls.flip_permutation, device=self.device)
        return out

    def predict(self, images: Sequence[np.ndarray], domain: str | None = None, *, tta: bool = False) -> list[np.ndarray]:
        """Class-id maps (uint8 HxW) per image."""
        return [p.argmax(0).to(torch.uint8).numpy() for p in self.predict_proba(images, domain, tta=tta)]

    def __call__(self, image, domain: str | None = None, *, tta: bool = False) -> np.ndarray:
        """One image (RGB uint8 array or a path) -> its class-id map."""
        from .data.io import read_image

        if isinstance(image, (str, Path)):
            image = read_image(image)
        return self.predict([image], domain, tta=tta)[0]

    def parse_files(self, inputs: Iterable[str | Path], out_dir: str | Path, *, domain: str | None = None,
                    tta: bool = False, overlay: bool = False, probs: bool = False, progress: bool = False) -> ParseReport:
        """Parse files/folders/globs in batches; write ``<stem>.png`` (P-mode palette PNG of class ids, input size),
        optionally ``<stem>_overlay.jpg`` and ``<stem>_probs.npy`` (float16 [C,H,W]). Unreadable images are
        reported by name and skipped; the rest go on."""
        from PIL import Image

        from .data.io import write_label_png
        from .engine.checkpoint import atomic_write

        domain = self._domain(domain)
        ls = self.label_spaces[domain]
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        report = ParseReport()
        done = 0
        for chunk, names, images in iter_image_batches(inputs, self.batch_size, report):
            probabilities = self.predict_proba(images, domain, tta=tta)
            for path, stem, image, p in zip(chunk, names, images, probabilities):
                label = p.argmax(0).to(torch.uint8).numpy()
                target = out_dir / f"{stem}.png"
                write_label_png(target, label, ls.palette)
                report.written.append(target)
                if overlay:
                    target = out_dir / f"{stem}_overlay.jpg"
                    picture = Image.fromarray(overlay_image(image, label, ls.palette))
                    atomic_write(target, lambda tmp, pic=picture: pic.save(tmp, format="JPEG", quality=92))
                    report.written.append(target)
                if probs:
                    target = out_dir / f"{stem}_probs.npy"
                    arr = p.numpy().astype(np.float16)
                    atomic_write(target, lambda tmp, a=arr: _save_npy(tmp, a))
                    report.written.append(target)
            done += len(images)
            if progress:
                print(f"parsed {done} images", file=sys.stderr)
        return report
