"""The plain supervised method: cross-entropy per label domain (the paper's "Multi-datasets" baseline,
and single-dataset training when there is one domain)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .methods import TrainingMethod, register_method


def upsample_logits(logits: Tensor, size: tuple[int, int]) -> Tensor:
    """Bilinear up-sampling of 1/4-resolution logits to the label size (as for the loss and prediction)."""
    if tuple(logits.shape[-2:]) == tuple(size):
        return logits
    return F.interpolate(logits, size=size, mode="bilinear", align_corners=False)


def lovasz_softmax(logits: Tensor, target: Tensor, *, ignore_index: int = 255) -> Tensor:
    """Lovasz-Softmax loss (Berman et al. 2018; SCHP trains with it beside cross-entropy): a convex surrogate
    of 1 - IoU, averaged over the classes present in ``target``, so that a rare class weighs as much as
    background. Computed in fp32 by segmentation_models_pytorch's implementation."""
    from segmentation_models_pytorch.losses import LovaszLoss

    return LovaszLoss("multiclass", per_image=False, ignore_index=ignore_index)(logits.float(), target)


def per_domain_cross_entropy(
    logits: dict[str, Tensor], labels: Tensor, domains: list[str], *, ignore_index: int = 255,
    lovasz_weight: float = 0.0,
) -> dict[str, Tensor]:
    """Cross-entropy of each domain's head on the samples of that domain (Eq. 1), plus ``lovasz_weight``
    times the Lovasz-Softmax loss when it is not 0.

    Only domain-specific layers split the batch: ``logits[d]`` holds every sample, and the loss of
    domain ``d`` uses the samples tagged ``d``. A domain whose samples have no valid pixel gives 0.
    """
    losses: dict[str, Tensor] = {}
    for domain in dict.fromkeys(domains):  # unique, in batch order
        index = torch.tensor([i for i, d in enumerate(domains) if d == domain], device=labels.device)
        target = labels.index_select(0, index)
        pred = upsample_logits(logits[domain].index_select(0, index), target.shape[-2:])
        if bool((target != ignore_index).any()):
            losses[domain] = F.cross_entropy(pred.float(), target, ignore_index=ignore_index)
            if lovasz_weight:  # at the logits' resolution: at full resolution its per-class sorts cost as much as a step
                small = logits[domain].index_select(0, index)
                small_target = F.interpolate(target[:, None].float(), size=small.shape[-2:], mode="nearest-exact")
                loss = lovasz_softmax(small, small_target[:, 0].long(), ignore_index=ignore_index)
                losses[domain] = losses[domain] + lovasz_weight * loss
        else:
            losses[domain] = pred.sum() * 0.0
    return losses


@register_method("supervised")
class SupervisedMethod(TrainingMethod):
    """alpha * sum over domains of L_seg (alpha = 1 by default); L_seg = cross-entropy + lovasz_weight x
    Lovasz-Softmax (lovasz_weight = 0 by default: cross-entropy alone, as the paper)."""

    def __init__(self, *, seg_weight: float = 1.0, lovasz_weight: float = 0.0, ignore_index: int = 255):
        super().__init__()
        self.seg_weight = seg_weight
        self.lovasz_weight = float(lovasz_weight)
        self.ignore_index = ignore_index

    @classmethod
    def from_config(cls, cfg: dict, *, model: nn.Module, label_spaces: dict) -> "SupervisedMethod":
        from ..errors import check_keys

        check_keys("supervised method key", cfg, ["seg_weight", "lovasz_weight", "ignore_index"])
        return cls(**cfg)

    def training_step(self, model: nn.Module, batch: dict) -> dict[str, Tensor]:
        domains = list(batch["domain"])
        outputs = model(batch["image"], domains=sorted(set(domains)))
        losses = per_domain_cross_entropy(outputs["logits"], batch["label"], domains, ignore_index=self.ignore_index,
                                          lovasz_weight=self.lovasz_weight)
        return {f"seg/{d}": self.seg_weight * loss for d, loss in losses.items()}
