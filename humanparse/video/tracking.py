"""Person ids that stay the same from frame to frame: match this frame's persons to the last frame's by
mask IoU (Hungarian assignment); a person with no match above ``iou_threshold`` gets a new id, and an
id is never reused for someone else."""

from __future__ import annotations

import numpy as np
from scipy.optimize import linear_sum_assignment

__all__ = ["PersonTracker", "mask_iou_matrix"]


def mask_iou_matrix(a: np.ndarray, ids_a: list[int], b: np.ndarray, ids_b: list[int]) -> np.ndarray:
    """IoU [len(ids_a), len(ids_b)] between the masks ``a == i`` and ``b == j`` of two id maps."""
    if not ids_a or not ids_b:
        return np.zeros((len(ids_a), len(ids_b)))
    ma = np.stack([(a == i).ravel() for i in ids_a]).astype(np.float32)
    mb = np.stack([(b == j).ravel() for j in ids_b]).astype(np.float32)
    inter = ma @ mb.T
    union = ma.sum(1)[:, None] + mb.sum(1)[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1), 0.0)


class PersonTracker:
    """``update(person_ids, persons) -> (stable_ids_map, persons with stable "id")``."""

    def __init__(self, iou_threshold: float = 0.3):
        self.iou_threshold = iou_threshold
        self._previous: np.ndarray | None = None
        self._previous_ids: list[int] = []
        self.next_id = 1

    def reset(self) -> None:
        """Forget the last frame (after a scene cut): everyone gets a new id."""
        self._previous, self._previous_ids = None, []

    def update(self, person_ids: np.ndarray, persons: list[dict]) -> tuple[np.ndarray, list[dict]]:
        frame_ids = [int(p["id"]) for p in persons]
        mapping: dict[int, int] = {}
        if self._previous is not None and frame_ids and self._previous_ids:
            iou = mask_iou_matrix(person_ids, frame_ids, self._previous, self._previous_ids)
            rows, cols = linear_sum_assignment(-iou)
            for r, c in zip(rows, cols):
                if iou[r, c] >= self.iou_threshold:
                    mapping[frame_ids[r]] = self._previous_ids[c]
        for fid in frame_ids:
            if fid not in mapping:
                mapping[fid] = self.next_id
                self.next_id += 1
        lut = np.zeros(max([0, *frame_ids, int(person_ids.max(initial=0))]) + 1, dtype=np.int64)
        for fid, sid in mapping.items():
            lut[fid] = sid
        stable = lut[person_ids]
        out = [dict(p, id=mapping[int(p["id"])]) for p in persons]
        self._previous, self._previous_ids = stable, [mapping[f] for f in frame_ids]
        return stable, out
