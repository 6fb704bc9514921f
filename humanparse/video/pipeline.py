"""The video loops behind ``humanparse parse CLIP.mp4``: semantic (with optional temporal smoothing) and
multi-person (with stable person ids).

Outputs in ``out_dir`` for ``clip.mp4``:
- semantic: ``clip_labels.mkv`` (the colour label map, lossless FFV1: each colour is one class of the
  palette) or, with ``labels="png"``, ``clip_labels/000000.png ...`` (P-mode class ids); ``clip_overlay.mp4``.
- multi: ``clip_parts.mkv`` + ``clip_persons.mkv`` (or the ``clip_parts/``, ``clip_persons/`` PNG folders),
  ``clip_persons.json`` (per frame: persons with their stable id, score and RLE mask), ``clip_overlay.mp4``.
All videos keep the input's frame rate and size.
"""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError
from .io import VideoReader, VideoWriter
from .temporal import ProbabilityEMA, SceneCutDetector

__all__ = ["VideoReport", "parse_video", "parse_video_multi", "LABEL_FORMATS"]

LABEL_FORMATS = ("video", "png")


@dataclass
class VideoReport:
    written: list[Path] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0
    scene_cuts: list[int] = field(default_factory=list)
    flicker: float | None = None  # mean fraction of pixels whose label changes between frames (within shots)

    @property
    def fps(self) -> float:
        return self.frames / self.seconds if self.seconds > 0 else 0.0


class _LabelSink:
    """Label maps of one video: a lossless colour video, or a folder of P-mode PNGs."""

    def __init__(self, out_dir: Path, name: str, fmt: str, fps: float, size: tuple[int, int], palette: np.ndarray):
        if fmt not in LABEL_FORMATS:
            raise ConfigError(f"unknown label format {fmt!r} (valid: {', '.join(LABEL_FORMATS)})")
        self.fmt, self.palette = fmt, np.asarray(palette, dtype=np.uint8)
        if fmt == "video":
            self.path = out_dir / f"{name}.mkv"
            self.writer = VideoWriter(self.path, fps, size)
        else:
            self.path = out_dir / name
            self.path.mkdir(parents=True, exist_ok=True)
            self.writer = None
        self.index = 0

    def write(self, label: np.ndarray) -> None:
        if self.writer is not None:
            self.writer.write(self.palette[label])
        else:
            from ..data.io import write_label_png

            write_label_png(self.path / f"{self.index:06d}.png", label, self.palette)
        self.index += 1

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()

    def abort(self) -> None:
        if self.writer is not None:
            self.writer.abort()


def _progress(total: int, enabled: bool, desc: str):
    from tqdm import tqdm

    return tqdm(total=total or None, unit="frame", desc=desc, disable=not enabled, file=sys.stderr)


def _batches(reader: VideoReader, size: int):
    batch: list[np.ndarray] = []
    for frame in reader:
        batch.append(frame)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def parse_video(parser, path: str | Path, out_dir: str | Path, *, domain: str | None = None, smooth: float = 0.0,
                scene_cut: float = 0.5, labels: str = "video", overlay: bool = True, map_to: str | None = None,
                progress: bool = False) -> VideoReport:
    """Semantic parsing of every frame with ``parser`` (a ``humanparse.Parser``).

    ``smooth``: EMA weight of the past (0 = off); the average restarts at each scene cut (``scene_cut``:
    the histogram-distance threshold, see ``SceneCutDetector``). ``map_to``: a try-on layout.
    """
    from ..api import overlay_image

    path, out_dir = Path(path), Path(out_dir)
    domain = parser._domain(domain)
    space = parser.label_spaces[domain]
    table, palette = None, space.palette
    if map_to is not None:
        from ..labels.layout import get_layout

        layout = get_layout(map_to)
        table, palette = layout.table_from(space), layout.label_space.palette
    ema, cuts = ProbabilityEMA(smooth), SceneCutDetector(scene_cut)
    report, changes, previous = VideoReport(), [], None
    with VideoReader(path) as reader:
        sink = _LabelSink(out_dir, f"{path.stem}_labels", labels, reader.fps, reader.size, palette)
        over = VideoWriter(out_dir / f"{path.stem}_overlay.mp4", reader.fps, reader.size) if overlay else None
        bar = _progress(reader.frame_count, progress, path.name)
        start = time.perf_counter()
        try:
            for frames in _batches(reader, parser.batch_size):
                for frame, probs in zip(frames, parser.predict_proba(frames, domain)):
                    if cuts.update(frame):
                        ema.reset()
                        report.scene_cuts.append(report.frames)
                        previous = None
                    label = ema.update(probs).argmax(0).to(torch.uint8).numpy()
                    if table is not None:
                        label = table[label]
                    if previous is not None:
                        changes.append(float(np.mean(label != previous)))
                    previous = label
                    sink.write(label)
                    if over is not None:
                        over.write(overlay_image(frame, label, palette))
                    report.frames += 1
                    bar.update(1)
        except BaseException:
            sink.abort()
            if over is not None:
                over.abort()
            raise
        finally:
            bar.close()
        sink.close()
        report.written.append(sink.path)
        if over is not None:
            over.close()
            report.written.append(over.path)
        report.seconds = time.perf_counter() - start
    report.flicker = float(np.mean(changes)) if changes else None
    return report


def parse_video_multi(parser, path: str | Path, out_dir: str | Path, *, labels: str = "video", overlay: bool = True,
                      scene_cut: float = 0.5, iou_threshold: float = 0.3, progress: bool = False) -> VideoReport:
    """Multi-person parsing of every frame with ``parser`` (a ``MultiPersonParser``); person ids are kept
    from frame to frame by mask IoU and restart after a scene cut."""
    from ..api import overlay_image
    from ..engine.checkpoint import atomic_write
    from ..labels import voc_colormap
    from .tracking import PersonTracker

    path, out_dir = Path(path), Path(out_dir)
    if parser.palette is None:
        raise ConfigError(f"{path}: the multi-person model has no label space, so its parts have no colours")
    person_palette = voc_colormap(256)
    tracker, cuts = PersonTracker(iou_threshold), SceneCutDetector(scene_cut)
    report, frames_json = VideoReport(), []
    with VideoReader(path) as reader:
        parts = _LabelSink(out_dir, f"{path.stem}_parts", labels, reader.fps, reader.size, parser.palette)
        persons = _LabelSink(out_dir, f"{path.stem}_persons", labels, reader.fps, reader.size, person_palette)
        over = VideoWriter(out_dir / f"{path.stem}_overlay.mp4", reader.fps, reader.size) if overlay else None
        bar = _progress(reader.frame_count, progress, path.name)
        start = time.perf_counter()
        try:
            for frames in _batches(reader, parser.batch_size):
                for frame, result in zip(frames, parser(frames)):
                    if cuts.update(frame):
                        tracker.reset()
                        report.scene_cuts.append(report.frames)
                    ids, people = tracker.update(result["person_ids"], result["persons"])
                    ids = np.where(ids > 0, (ids - 1) % 255 + 1, 0)  # 255 person colours; the JSON keeps the ids
                    parts.write(result["parts"])
                    persons.write(ids.astype(np.uint8))
                    if over is not None:
                        over.write(overlay_image(frame, ids.astype(np.uint8), person_palette))
                    frames_json.append({"frame": report.frames, "persons": people})
                    report.frames += 1
                    bar.update(1)
        except BaseException:
            for sink in (parts, persons):
                sink.abort()
            if over is not None:
                over.abort()
            raise
        finally:
            bar.close()
        for sink in (parts, persons):
            sink.close()
            report.written.append(sink.path)
        if over is not None:
            over.close()
            report.written.append(over.path)
        report.seconds = time.perf_counter() - start
    target = out_dir / f"{path.stem}_persons.json"
    payload = {"video": path.name, "fps": reader.fps, "width": reader.size[0], "height": reader.size[1],
               "scene_cuts": report.scene_cuts, "frames": frames_json}

    def write(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(payload, fh)

    atomic_write(target, write)
    report.written.append(target)
    return report
