"""Evaluation of semantic parsing, detectron2-style: ``reset`` / ``process`` / ``evaluate``.

Predictions are scored at the original image resolution with the one confusion-matrix metric
(``humanparse.metrics.semantic``), the same code the ``score`` command uses.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from ..metrics.semantic import ConfusionMatrix
from .inference import PAPER_TTA_SCALES, predict_labels


class SemanticEvaluator:
    """Accumulates one domain's confusion matrix; ``evaluate`` returns the metric dict."""

    def __init__(self, label_space):
        self.label_space = label_space
        self.matrix = ConfusionMatrix(label_space.num_classes, ignore_index=label_space.ignore_index)

    def reset(self) -> None:
        self.matrix.reset()

    def process(self, predictions: Sequence[np.ndarray], labels: Sequence[np.ndarray]) -> None:
        for pred, gt in zip(predictions, labels):
            if pred.shape != gt.shape:
                raise ValueError(f"prediction {pred.shape} and label {gt.shape} differ in size")
            self.matrix.update(pred, gt)

    def evaluate(self) -> dict:
        result = self.matrix.compute()
        result["class_names"] = list(self.label_space.names)
        return result


def evaluate_domain(model: torch.nn.Module, samples, domain: str, label_space, *, long_side: int | None = None,
                    tta: bool = False, scales: Sequence[float] | None = None, batch_size: int = 4,
                    device="cpu", flip: bool = False) -> dict:
    """Score ``model``'s ``domain`` head on ``samples``: an iterable of (image uint8 HxWx3, label HxW).
    ``tta``: the paper's scales and flip; ``flip``: flip averaging alone."""
    evaluator = SemanticEvaluator(label_space)
    if tta:
        scales = tuple(scales or PAPER_TTA_SCALES)
    else:
        scales = tuple(scales or (1.0,))
    images, labels = [], []

    def flush():
        if not images:
            return
        preds = predict_labels(model, images, domain, long_side=long_side, scales=scales, flip=tta or flip,
                               flip_permutation=label_space.flip_permutation, device=device)
        evaluator.process(preds, labels)
        images.clear()
        labels.clear()

    for image, label in samples:
        images.append(image)
        labels.append(label)
        if len(images) >= batch_size:
            flush()
    flush()
    return evaluator.evaluate()
