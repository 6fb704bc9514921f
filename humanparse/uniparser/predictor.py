"""Multi-person parsing for users: a trained UniParser on RGB images, and the files it writes.

>>> parser = MultiPersonParser.from_checkpoint("runs/uniparser_tiny_cpu/model.safetensors", long_side=128)
>>> [result] = parser([rgb_uint8])          # {"person_ids", "parts", "persons": [{id, score, rle}]}
>>> parser.write(result, "out/", "photo")   # out/photo_persons.png, out/photo_parts.png, out/photo.json

``long_side="auto"`` (the default of ``from_checkpoint``) runs the model at the size stored in its checkpoint
(``eval.long_side`` of the run that trained it; 512 if none): a model trained on 192 px scenes sees people at
the scale it learnt.

What the wrapper adds to :func:`humanparse.uniparser.inference.predict`: loading the checkpoint,
the device, batching, an optional resize (``long_side``) and the label space's palette. Results
are at each input image's own size. ``write_cihp_predictions`` writes the layout that
``humanparse score --task instance`` reads (``Category_ids/``, ``Human_ids/``, ``scores.json``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from ..data.io import write_label_png
from ..engine.checkpoint import atomic_write
from ..errors import CheckpointError
from .inference import predict

__all__ = ["MultiPersonParser", "multi_overlay", "write_cihp_predictions", "write_id_png", "parse_files_multi"]


def _person_palette() -> np.ndarray:
    from ..labels import voc_colormap

    return voc_colormap(256)


def write_id_png(path: str | Path, ids: np.ndarray) -> None:
    """An id map as a single-channel PNG (mode L up to 255, 16-bit above), written atomically."""
    ids = np.asarray(ids)
    if ids.size and (ids.min() < 0 or ids.max() > 65535):
        raise ValueError(f"ids must be in 0..65535, got {ids.min()}..{ids.max()}")
    img = Image.fromarray(ids.astype(np.uint8)) if ids.max(initial=0) <= 255 else Image.fromarray(ids.astype(np.uint16))
    atomic_write(path, lambda tmp: img.save(tmp, format="PNG"))


def _write_json(path: Path, payload) -> None:
    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=1)

    atomic_write(path, write)


class MultiPersonParser:
    """A UniParser model ready for inference (eval mode, on ``device``)."""

    def __init__(self, model: torch.nn.Module, label_space=None, *, device: str | torch.device = "cpu",
                 long_side: int | None = None, batch_size: int = 4, theta_ctr: float = 0.1,
                 theta_mask: float = 0.5, peak_kernel: int = 3, max_persons: int = 100):
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.label_space = label_space
        self.long_side = long_side
        self.batch_size = int(batch_size)
        self.thresholds = {"theta_ctr": theta_ctr, "theta_mask": theta_mask, "peak_kernel": peak_kernel,
                           "max_persons": max_persons}

    @classmethod
    def from_checkpoint(cls, path: str | Path, *, device: str | torch.device = "cpu", long_side: int | str | None = "auto",
                        **kwargs) -> "MultiPersonParser":
        """From ``model.safetensors`` (inference) or ``last.pt`` (training) of a ``uniparser`` run.
        ``long_side``: "auto" = the checkpoint's stored inference size, None = each image's own size."""
        from ..engine.checkpoint import load_training_checkpoint, read_inference_checkpoint
        from ..labels import LabelSpace
        from .model import build_uniparser_from_config

        path = Path(path)
        if path.suffix == ".safetensors":
            meta, state = read_inference_checkpoint(path)
        else:
            ckpt = load_training_checkpoint(path)
            stored = ((ckpt.get("config") or {}).get("eval") or {}).get("long_side")
            meta = {"recipe": ckpt.get("recipe"), "model_config": ckpt["model_config"],
                    "label_spaces": ckpt.get("label_spaces", {}),
                    "extra": {"inference": {"long_side": int(stored)} if stored else {}}}
            state = ckpt["model"]
        if meta.get("recipe") != "uniparser":
            raise CheckpointError(f"{path} is a {meta.get('recipe')!r} model, not a UniParser (multi-person) one; "
                                  "use humanparse.api.Parser for semantic models")
        model = build_uniparser_from_config(meta["model_config"])
        missing, unexpected = model.load_state_dict(state, strict=False)
        if missing or unexpected:
            raise CheckpointError(f"{path}: weights do not match the architecture in its config "
                                  f"(missing: {sorted(missing)[:8]}, unexpected: {sorted(unexpected)[:8]})")
        spaces = [LabelSpace.from_dict(d, source=f"{path}:{name}") for name, d in meta.get("label_spaces", {}).items()]
        if long_side == "auto":
            from ..engine.loading import inference_long_side

            long_side = inference_long_side(meta)
        return cls(model, spaces[0] if spaces else None, device=device, long_side=long_side, **kwargs)

    @classmethod
    def from_model(cls, model: torch.nn.Module, label_space=None, **kwargs) -> "MultiPersonParser":
        return cls(model, label_space, **kwargs)

    @property
    def palette(self) -> np.ndarray | None:
        return None if self.label_space is None else np.asarray(self.label_space.palette)

    def __call__(self, images: Sequence[np.ndarray]) -> list[dict]:
        """RGB uint8 [H, W, 3] arrays -> one ``{"person_ids", "parts", "persons"}`` dict per image."""
        results: list[dict] = []
        for k in range(0, len(images), self.batch_size):
            results += predict(self.model, images[k:k + self.batch_size], device=self.device,
                               long_side=self.long_side, **self.thresholds)
        return results

    def write(self, result: dict, out_dir: str | Path, stem: str, palette: np.ndarray | None = None,
              image: np.ndarray | None = None) -> dict[str, Path]:
        """``<stem>_persons.png`` (P-mode, index = person id), ``<stem>_parts.png`` (P-mode, index =
        part id, the label space's palette) and ``<stem>.json`` (size + per-person id, score, RLE); with
        ``image`` (the RGB input) also ``<stem>_overlay.jpg``: parts in their colours, each person outlined."""
        out = Path(out_dir)
        palette = self.palette if palette is None else palette
        if palette is None:
            raise ValueError("no palette: pass palette= or build the parser with a label space")
        paths = {"persons": out / f"{stem}_persons.png", "parts": out / f"{stem}_parts.png", "json": out / f"{stem}.json"}
        person_ids = result["person_ids"]
        if person_ids.max(initial=0) > 255:
            write_id_png(paths["persons"], person_ids)
        else:
            write_label_png(paths["persons"], person_ids, _person_palette())
        write_label_png(paths["parts"], result["parts"], palette)
        h, w = result["parts"].shape
        _write_json(paths["json"], {"stem": stem, "height": int(h), "width": int(w), "persons": result["persons"]})
        if image is not None:
            paths["overlay"] = out / f"{stem}_overlay.jpg"
            picture = Image.fromarray(multi_overlay(image, result["parts"], person_ids, palette))
            atomic_write(paths["overlay"], lambda tmp: picture.save(tmp, format="JPEG", quality=90))
        return paths


def multi_overlay(image: np.ndarray, parts: np.ndarray, person_ids: np.ndarray, palette: np.ndarray,
                  alpha: float = 0.5, outline: int = 2) -> np.ndarray:
    """The photo with parts blended in their palette colours and each person's outline drawn in its own
    colour (the person palette), ``outline`` px wide: where two persons touch, both outlines show."""
    from ..api import overlay_image

    out = overlay_image(np.asarray(image)[..., :3], parts, palette, alpha)
    ids = np.asarray(person_ids).astype(np.int64)
    edge = np.zeros(ids.shape, dtype=bool)
    for axis in (0, 1):  # a pixel whose neighbour has another id is on an outline
        diff = np.diff(ids, axis=axis) != 0
        pad = [(0, 0), (0, 0)]
        pad[axis] = (1, 0)
        edge |= np.pad(diff, pad) | np.pad(diff, [(b, a) for a, b in pad])
    edge &= ids > 0
    if outline > 1:
        import cv2

        grown = cv2.dilate(edge.astype(np.uint8), np.ones((outline, outline), np.uint8)) > 0
        owner = cv2.dilate(ids.astype(np.float32), np.ones((outline, outline), np.uint8)).astype(np.int64)
        ids, edge = np.where(edge, ids, owner), grown
    out[edge] = _person_palette()[ids[edge] % 256]
    return out


def write_cihp_predictions(results: Sequence[dict], stems: Sequence[str], out_dir: str | Path) -> Path:
    """Predictions in the CIHP score layout: ``Category_ids/<stem>.png`` (parts),
    ``Human_ids/<stem>.png`` (person ids) and ``scores.json`` ({stem: {id: score}})."""
    if len(results) != len(stems):
        raise ValueError(f"{len(results)} results but {len(stems)} stems")
    out = Path(out_dir)
    scores: dict[str, dict[str, float]] = {}
    for result, stem in zip(results, stems):
        write_id_png(out / "Category_ids" / f"{stem}.png", result["parts"])
        write_id_png(out / "Human_ids" / f"{stem}.png", result["person_ids"])
        scores[stem] = {str(p["id"]): float(p["score"]) for p in result["persons"]}
    _write_json(out / "scores.json", scores)
    return out


def parse_files_multi(checkpoint: str | Path, inputs, out_dir: str | Path, *, device: str = "cpu",
                      batch_size: int = 4, long_side: int | str | None = "auto", overlay: bool = False, **thresholds):
    """``humanparse parse --task multi``: files / folders / globs -> ``<stem>_persons.png``,
    ``<stem>_parts.png`` and ``<stem>.json`` per image (and ``<stem>_overlay.jpg`` with ``overlay``).
    Unreadable images are reported and skipped."""
    from ..api import ParseReport, iter_image_batches
    from ..engine.loading import resolve_device

    parser = MultiPersonParser.from_checkpoint(checkpoint, device=resolve_device(device),
                                               long_side=long_side, batch_size=batch_size, **thresholds)
    report = ParseReport()
    for _, names, images in iter_image_batches(inputs, parser.batch_size, report):
        for result, stem, image in zip(parser(images), names, images):
            report.written += list(parser.write(result, out_dir, stem, image=image if overlay else None).values())
    return report
