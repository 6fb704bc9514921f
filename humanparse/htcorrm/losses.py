"""HTCorrM's training objective (Eq. 4): L = L_m + alpha L_p + beta L_k + gamma L_b.

L_m is the loss of the main output O_m; L_p, L_k, L_b are the losses of the parsing, pose and edge
encoders' own heads (those that exist). "The loss of one task keeps the same when it is specified as
the main task or auxiliary":

- parsing: cross-entropy, logits upsampled bilinearly to the label size, ``ignore_index`` skipped,
  no class weights (CorrPM ``utils/criterion.py``).
- edge: cross-entropy with the class balance of CorrPM / CE2P: per batch, the edge class is weighted
  N_neg / N and the non-edge class N_pos / N, which equals 0.5 x (mean loss over edge pixels + mean
  loss over non-edge pixels). ``edge_balance=False`` gives plain CE. A batch with no edge pixel (or
  no non-edge pixel) falls back to the mean over its valid pixels (the weights would be 0/0).
- pose: mean squared error between predicted and target Gaussian heatmaps (sigma 2 at heatmap
  resolution), averaged over the valid joints' maps: sum_j w_j ||P_j - T_j||^2 / (sum_j w_j x h x w).
  ``pose_mask_missing=False`` averages over every joint map instead (CorrPM: a missing joint then
  trains towards an all-zero map).

When ``fusion`` is ``none`` the main output *is* the main encoder's output, so its loss is counted
once (as L_m). Weights per main task default to the paper's: parsing main alpha=1, beta=50, gamma=2;
pose main alpha=0.001, beta=1, gamma=0.0025; edge main alpha=0.08, beta=200, gamma=1.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from ..errors import ConfigError, check_keys

__all__ = ["PAPER_LOSS_WEIGHTS", "HTCorrMLoss", "edge_loss", "parsing_loss", "pose_loss"]

PAPER_LOSS_WEIGHTS = {
    "parsing": {"parsing": 1.0, "pose": 50.0, "edge": 2.0},
    "pose": {"parsing": 0.001, "pose": 1.0, "edge": 0.0025},
    "edge": {"parsing": 0.08, "pose": 200.0, "edge": 1.0},
}


def _upsample(logits: Tensor, size) -> Tensor:
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def parsing_loss(logits: Tensor, label: Tensor, *, ignore_index: int = 255) -> Tensor:
    """CE of [B, Q, h, w] logits against [B, H, W] labels (upsampled to H, W). 0 if nothing is valid."""
    pred = _upsample(logits, label.shape[-2:]).float()
    if not bool((label != ignore_index).any()):
        return pred.sum() * 0.0
    return F.cross_entropy(pred, label, ignore_index=ignore_index)


def edge_loss(logits: Tensor, edge: Tensor, *, balance: bool = True, ignore_index: int = 255) -> Tensor:
    """CE of [B, 2, h, w] edge logits against [B, H, W] targets in {0, 1, ignore_index}."""
    pred = _upsample(logits, edge.shape[-2:]).float()
    valid = edge != ignore_index
    if not bool(valid.any()):
        return pred.sum() * 0.0
    per_pixel = F.cross_entropy(pred, edge.masked_fill(~valid, 0), reduction="none")
    pos, neg = valid & (edge == 1), valid & (edge == 0)
    if not balance or not bool(pos.any()) or not bool(neg.any()):
        return per_pixel[valid].mean()
    return 0.5 * (per_pixel[pos].mean() + per_pixel[neg].mean())


def pose_loss(pred: Tensor, target: Tensor, weight: Tensor | None = None, *, mask_missing: bool = True) -> Tensor:
    """MSE of [B, J, h, w] heatmaps; ``weight`` [B, J] (1 = visible joint) masks the rest."""
    pred = pred.float()
    if tuple(pred.shape) != tuple(target.shape):
        raise ValueError(f"pose heatmaps {tuple(pred.shape)} and targets {tuple(target.shape)} differ in shape")
    sq = (pred - target).pow(2).mean(dim=(-2, -1))  # [B, J]
    if weight is None or not mask_missing:
        return sq.mean()
    w = weight.to(sq.dtype)
    if float(w.sum()) == 0.0:
        return pred.sum() * 0.0
    return (sq * w).sum() / w.sum()


class HTCorrMLoss:
    """Named loss terms of Eq. 4 from the network's output dict and a batch.

    ``terms(out, batch) -> {"main/<task>": L_m, "<task>": weight x L_task, ...}``; the total is their sum.
    The batch needs ``label`` (parsing), ``edge`` and ``pose_heatmap`` + ``pose_weight`` for the tasks
    the network has.
    """

    def __init__(self, *, main_task: str, tasks: list[str], fused: bool, weights: dict | None = None,
                 edge_balance: bool = True, pose_mask_missing: bool = True, ignore_index: int = 255):
        defaults = dict(PAPER_LOSS_WEIGHTS[main_task])
        weights = dict(weights or {})
        check_keys("key in method.loss_weights", weights, defaults)
        for k, v in weights.items():
            if isinstance(v, bool) or not isinstance(v, (int, float)) or v < 0:
                raise ConfigError(f"method.loss_weights.{k} must be a number >= 0, got {v!r}")
        self.weights = {**defaults, **{k: float(v) for k, v in weights.items()}}
        self.main_task, self.tasks, self.fused = main_task, list(tasks), bool(fused)
        self.edge_balance, self.pose_mask_missing, self.ignore_index = edge_balance, pose_mask_missing, ignore_index

    def task_loss(self, task: str, output: Tensor, batch: dict) -> Tensor:
        if task == "parsing":
            return parsing_loss(output, batch["label"], ignore_index=self.ignore_index)
        if task == "edge":
            return edge_loss(output, batch["edge"], balance=self.edge_balance, ignore_index=self.ignore_index)
        return pose_loss(output, batch["pose_heatmap"], batch.get("pose_weight"), mask_missing=self.pose_mask_missing)

    def __call__(self, out: dict, batch: dict) -> dict[str, Tensor]:
        terms = {f"main/{self.main_task}": self.task_loss(self.main_task, out["main"], batch)}
        for task in self.tasks:
            if task == self.main_task and not self.fused:
                continue  # O_m is this encoder's output: already counted as L_m
            terms[task] = self.weights[task] * self.task_loss(task, out["encoders"][task], batch)
        return terms
