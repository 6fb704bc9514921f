"""Frozen BatchNorm for the backbone (detectron2's default for detection/segmentation fine-tuning).

``freeze_batch_norm(module)`` replaces every ``BatchNorm2d`` inside ``module`` by torchvision's
``FrozenBatchNorm2d``: the ImageNet statistics and affine parameters become fixed buffers, so batches
of 4 images per GPU never re-estimate them and no gradient or weight decay reaches them. Under
torchrun, ``SyncBatchNorm`` conversion leaves frozen layers alone (it converts ``_BatchNorm`` only).
Config: ``model.backbone.norm: frozen`` (default ``batch``: trained BatchNorm, SyncBN under torchrun).
"""

from __future__ import annotations

import torch
from torch import nn
from torchvision.ops import FrozenBatchNorm2d

__all__ = ["BACKBONE_NORMS", "freeze_batch_norm"]

BACKBONE_NORMS = ("batch", "frozen")


def freeze_batch_norm(module: nn.Module) -> nn.Module:
    """``module`` with every BatchNorm2d replaced (in place for children; returns the new module when
    ``module`` itself is one). Running statistics, weight and bias are copied exactly."""
    if isinstance(module, nn.BatchNorm2d):
        frozen = FrozenBatchNorm2d(module.num_features, eps=module.eps)
        with torch.no_grad():
            if module.affine:
                frozen.weight.copy_(module.weight)
                frozen.bias.copy_(module.bias)
            if module.track_running_stats:
                frozen.running_mean.copy_(module.running_mean)
                frozen.running_var.copy_(module.running_var)
        return frozen
    for name, child in module.named_children():
        replaced = freeze_batch_norm(child)
        if replaced is not child:
            setattr(module, name, replaced)
    return module
