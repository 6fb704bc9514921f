"""Temporal smoothing of per-frame class probabilities, reset at scene cuts, and a flicker measure.

``ProbabilityEMA``: s_t = alpha * s_{t-1} + (1 - alpha) * p_t, and s_t = p_t on the first frame and on the
first frame after a scene cut (so a new shot never inherits the labels of the last one).
``SceneCutDetector``: a cut is a jump in the colour distribution between two consecutive frames
(the Bhattacharyya distance of their HSV histograms above ``threshold``); a camera pan or a person
moving changes the histogram little, a change of shot changes it a lot.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch

__all__ = ["SceneCutDetector", "ProbabilityEMA", "label_flicker"]


class SceneCutDetector:
    """``update(frame) -> bool``: True when ``frame`` starts a new shot (never for the first frame)."""

    def __init__(self, threshold: float = 0.5, bins: tuple[int, int, int] = (16, 8, 8)):
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"scene-cut threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self.bins = bins
        self._previous: np.ndarray | None = None
        self.last_distance = 0.0

    def histogram(self, frame: np.ndarray) -> np.ndarray:
        small = cv2.resize(frame, (64, 64), interpolation=cv2.INTER_AREA)
        hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
        hist = cv2.calcHist([hsv], [0, 1, 2], None, list(self.bins), [0, 180, 0, 256, 0, 256])
        return cv2.normalize(hist, hist).flatten()

    def update(self, frame: np.ndarray) -> bool:
        hist = self.histogram(frame)
        previous, self._previous = self._previous, hist
        if previous is None:
            return False
        self.last_distance = float(cv2.compareHist(previous, hist, cv2.HISTCMP_BHATTACHARYYA))
        return self.last_distance > self.threshold


class ProbabilityEMA:
    """Exponential moving average of [C, H, W] probabilities; ``alpha`` = weight of the past (0 = off)."""

    def __init__(self, alpha: float):
        if not 0.0 <= alpha < 1.0:
            raise ValueError(f"smoothing alpha must be in [0, 1), got {alpha}")
        self.alpha = alpha
        self.state: torch.Tensor | None = None

    def reset(self) -> None:
        self.state = None

    def update(self, probs: torch.Tensor) -> torch.Tensor:
        if self.state is None or self.state.shape != probs.shape or self.alpha == 0.0:
            self.state = probs.clone()
        else:
            self.state = self.state.mul_(self.alpha).add_(probs, alpha=1.0 - self.alpha)
        return self.state


def label_flicker(labels: Sequence[np.ndarray]) -> float:
    """The mean, over consecutive frame pairs, of the fraction of pixels whose label changes."""
    if len(labels) < 2:
        raise ValueError("flicker needs at least two frames")
    changes = [float(np.mean(np.asarray(a) != np.asarray(b))) for a, b in zip(labels[:-1], labels[1:])]
    return float(np.mean(changes))
