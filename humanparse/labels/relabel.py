"""Constrained relabelling: ground truth of one label space + a model of another -> labels of the other.

A table (``humanparse/labels/relabel/<source>_to_<target>.yaml``, format there) lists, for every source
class, the target classes a pixel of that class may take. Where it lists one, the ground truth decides;
where it lists several (CCP's "skin" is face, arms or legs in LIP; CCP's shoes have no left/right), the
target-space model's scores decide, restricted to those candidates. Used to bring CCP's 717 labelled
training persons into LIP's space for multi-person training (``humanparse pseudo-label parts``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml

from ..errors import ConfigError
from .label_space import LabelSpace
from .registry import get_label_space

_TABLE_DIR = Path(__file__).with_name("relabel")


class RelabelTable:
    """``candidates``: bool [C_source, C_target]; row ``s`` marks the target classes source class ``s`` may take."""

    def __init__(self, source: LabelSpace, target: LabelSpace, candidates: np.ndarray,
                 image_right: tuple[str, ...] = (), whole_regions: tuple[str, ...] = ()):
        """``image_right``: target classes of left/right pairs (``target.flip_pairs``) that lie on the image's
        right for a person facing the camera (LIP's "left-arm" is the person's left). When given, the model
        chooses only the part (its two side scores summed) and the side comes from where the part lies
        relative to the person's centre line: a CPU-trained model's left/right is its weakest call."""
        # ``whole_regions``: source classes (garments) whose every connected region takes one target class,
        # the candidates' scores summed over the region: one jacket is a coat or an upper-clothes, not a mix.
        candidates = np.asarray(candidates, dtype=bool)
        if candidates.shape != (source.num_classes, target.num_classes):
            raise ConfigError(f"relabel table {source.name} -> {target.name}: candidates must be "
                              f"{source.num_classes} x {target.num_classes}, got {candidates.shape}")
        empty = [source.names[s] for s in np.flatnonzero(~candidates.any(1))]
        if empty:
            raise ConfigError(f"relabel table {source.name} -> {target.name}: no candidate for {', '.join(empty)}")
        self.source, self.target, self.candidates = source, target, candidates
        # source classes with exactly one candidate: the ground truth alone decides them
        self.decided = candidates.sum(1) == 1
        pairs = {a: b for a, b in target.flip_pairs} | {b: a for a, b in target.flip_pairs}
        for name in image_right:
            if name not in pairs:
                raise ConfigError(f"relabel table {source.name} -> {target.name}: image_right: {name!r} is not "
                                  f"one side of a {target.name} left/right pair")
        unknown = [n for n in whole_regions if n not in source.names]
        if unknown:
            raise ConfigError(f"relabel table {source.name} -> {target.name}: whole_regions: not {source.name} "
                              f"classes: {', '.join(unknown)}")
        self.whole_regions = tuple(source.names.index(n) for n in whole_regions)
        # (image-right class id, image-left class id) per pair
        self.side_pairs = tuple((target.names.index(n), target.names.index(pairs[n])) for n in image_right)

    @classmethod
    def from_yaml(cls, path: str | Path) -> "RelabelTable":
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: cannot read the relabel table ({exc})") from None
        if not isinstance(data, dict) or not {"source", "target", "candidates"} <= set(data):
            raise ConfigError(f"{path}: a relabel table needs the keys source, target and candidates")
        source, target = get_label_space(data["source"]), get_label_space(data["target"])
        rows = data["candidates"] or {}
        missing = [n for n in source.names if n not in rows]
        unknown = [n for n in rows if n not in source.names]
        if missing or unknown:
            raise ConfigError(f"{path}: every {source.name} class needs one entry"
                              + (f"; missing: {', '.join(missing)}" if missing else "")
                              + (f"; not {source.name} classes: {', '.join(unknown)}" if unknown else ""))
        matrix = np.zeros((source.num_classes, target.num_classes), dtype=bool)
        for name, allowed in rows.items():
            for t in allowed or []:
                if t not in target.names:
                    raise ConfigError(f"{path}: {name}: {t!r} is not a {target.name} class")
                matrix[source.names.index(name), target.names.index(t)] = True
        return cls(source, target, matrix, image_right=tuple(data.get("image_right") or ()),
                   whole_regions=tuple(data.get("whole_regions") or ()))

    @classmethod
    def builtin(cls, source: str, target: str) -> "RelabelTable":
        path = _TABLE_DIR / f"{source}_to_{target}.yaml"
        if not path.is_file():
            have = sorted(p.stem for p in _TABLE_DIR.glob("*_to_*.yaml"))
            raise ConfigError(f"no relabel table {source} -> {target} (built in: {', '.join(have) or 'none'})")
        return cls.from_yaml(path)

    def relabel(self, source_label: np.ndarray, target_scores: np.ndarray | None) -> np.ndarray:
        """Source ids (HxW; the source's ignore value passes through) + target-class scores [C_target, H, W]
        (probabilities or logits; None when every class present is decided) -> target ids (uint8 HxW):
        per pixel, the highest-scoring target class among its source class's candidates."""
        src = np.asarray(source_label)
        ignore = src == self.source.ignore_index
        bad = ~ignore & (src >= self.source.num_classes)
        if bad.any():
            raise ValueError(f"source label has ids outside {self.source.name}'s 0..{self.source.num_classes - 1}: "
                             f"{sorted(np.unique(src[bad]).tolist())[:5]}")
        safe = np.where(ignore, 0, src).astype(np.int64)
        out = np.full(src.shape, self.target.ignore_index, dtype=np.uint8)
        first = self.candidates.argmax(1)  # the only candidate of a decided class
        decided_px = self.decided[safe] & ~ignore
        out[decided_px] = first[safe[decided_px]]
        open_px = ~self.decided[safe] & ~ignore
        if open_px.any():
            if target_scores is None:
                raise ValueError("this label needs a model's target scores: it holds classes with several candidates")
            scores = np.asarray(target_scores, dtype=np.float32)
            if scores.shape != (self.target.num_classes, *src.shape):
                raise ValueError(f"target scores must be {self.target.num_classes} x {src.shape}, got {scores.shape}")
            px_scores = scores[:, open_px].T                       # [N, C_target]
            allowed = self.candidates[safe[open_px]]               # [N, C_target]
            for right, left in self.side_pairs:                    # choose the part, not the side
                both = px_scores[:, right] + px_scores[:, left]
                px_scores[:, right] = px_scores[:, left] = both
            out[open_px] = np.where(allowed, px_scores, -np.inf).argmax(1).astype(np.uint8)
            for cls in self.whole_regions:
                self._vote_regions(out, scores, safe == cls, self.candidates[cls])
            if self.side_pairs:
                self._assign_sides(out, open_px)
        return out

    @staticmethod
    def _vote_regions(out: np.ndarray, scores: np.ndarray, mask: np.ndarray, allowed: np.ndarray) -> None:
        """Each connected region of ``mask`` takes the allowed class with the highest summed score."""
        if not mask.any():
            return
        import cv2

        count, comp = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        choices = np.flatnonzero(allowed)
        # summed candidate scores of every region at once: [count, len(choices)]
        totals = np.stack([np.bincount(comp.ravel(), weights=scores[c].ravel(), minlength=count) for c in choices], 1)
        best = choices[totals.argmax(1)]
        out[mask] = best[comp[mask]]

    def _assign_sides(self, out: np.ndarray, open_px: np.ndarray) -> None:
        """Give each model-chosen paired part its side: a connected region that lies (80 % or more of its pixels)
        on one side of the person's centre line gets that side; a region across it (legs touching) is split
        at the line. The centre line is the median column of the person's unpaired foreground pixels."""
        import cv2

        paired = {c for pair in self.side_pairs for c in pair}
        fg = (out != 0) & (out != self.target.ignore_index)
        core = fg & ~np.isin(out, list(paired))
        cols = np.nonzero(core if core.any() else fg)[1]
        if cols.size == 0:
            return
        centre = float(np.median(cols))
        right_of_centre = np.arange(out.shape[1]) > centre  # per column
        for right, left in self.side_pairs:
            part = open_px & ((out == right) | (out == left))
            if not part.any():
                continue
            count, comp = cv2.connectedComponents(part.astype(np.uint8), connectivity=8)
            rows, cols = np.nonzero(part)
            ids, px_right = comp[rows, cols], right_of_centre[cols]
            share = np.bincount(ids, weights=px_right, minlength=count) / np.maximum(np.bincount(ids, minlength=count), 1)
            # whole region to one side when 80 % of it lies there, else each pixel by its own column
            side_right = np.where(share[ids] >= 0.8, True, np.where(share[ids] <= 0.2, False, px_right))
            out[rows, cols] = np.where(side_right, right, left)
