"""MSA: Multi-scale Semantic Aggregation (SST paper, Sec. 3.2.1, Eq. 2-4). Training only.

For one label domain, the decoder features H_1..H_3 (strides 16, 8, 4) are pooled inside each
category's mask: an average (Eq. 2) and a max (Eq. 3), concatenated and projected by W_s (2D -> D,
shared across the scales of the domain, Eq. 4). The masks are the label map resized to each scale by
pixel-centre-aligned nearest neighbour (the convention of ``data/transforms.py``): each cell of H_l takes
the label at its centre, not its top-left pixel; ignore pixels belong to no category. A category absent from an image gets a zero
vector and a presence flag of 0.

Pooling is a scatter over pixels (``scatter_add`` / ``scatter_reduce("amax")``) into one bin per
category plus one bin for ignore pixels, so memory stays O(B * D * h * w), never B * Z * D * h * w.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ScaleSemantics", "resize_labels", "check_labels", "category_pooling", "MultiScaleSemanticAggregation"]


class ScaleSemantics(NamedTuple):
    """Category features of one scale: ``features`` [B, Z, D] (S_l) and ``presence`` [B, Z] (0/1 float)."""

    features: Tensor
    presence: Tensor


def resize_labels(labels: Tensor, size: Sequence[int]) -> Tensor:
    """Pixel-centre-aligned nearest-neighbour resize of an int label map [B, H, W] to ``size`` (h, w).

    Source index floor((i + 0.5) * H / h) (PyTorch's ``nearest-exact``, the same rule as
    ``data.transforms``): cell i of a stride-s map takes the label at input pixel s*i + s/2, its centre.
    (Plain ``nearest``, floor(i * H / h), takes the top-left pixel: masks shifted (s-1)/2 px up-left of
    the features.) Ignore values pass through unchanged.
    """
    size = (int(size[0]), int(size[1]))
    if tuple(labels.shape[-2:]) == size:
        return labels
    resized = F.interpolate(labels[:, None].float(), size=size, mode="nearest-exact")
    return resized[:, 0].to(labels.dtype)


def check_labels(labels: Tensor, num_classes: int, ignore_index: int) -> None:
    """ValueError if a label is neither in [0, Z) nor ``ignore_index`` (one host sync)."""
    ignored = labels == ignore_index
    bad = ~ignored & ((labels < 0) | (labels >= num_classes))
    if bool(bad.any()):
        values = sorted(set(labels[bad].unique().tolist()))[:5]
        raise ValueError(
            f"label values {values} are outside [0, {num_classes}) and not the ignore index {ignore_index}; "
            f"check the label space of this domain"
        )


def category_pooling(
    features: Tensor, labels: Tensor, num_classes: int, *, ignore_index: int = 255, validate: bool = True
) -> tuple[Tensor, Tensor, Tensor]:
    """Category-aware average and max pooling (Eq. 2, Eq. 3).

    Args:
        features: [B, D, h, w] feature map.
        labels: int [B, h, w] label map at the same resolution (``ignore_index`` = no category).
        num_classes: Z.

    Returns:
        ``(average [B, Z, D], maximum [B, Z, D], count [B, Z])`` in float32. The average divides by
        max(count, 1); the maximum is taken over the category's pixels only. Both are 0 where
        count is 0.

    Raises:
        ValueError: if the sizes differ, or (with ``validate``) a label is neither in [0, Z) nor
        ``ignore_index``.
    """
    if features.dim() != 4 or labels.dim() != 3 or features.shape[0] != labels.shape[0] \
            or features.shape[-2:] != labels.shape[-2:]:
        raise ValueError(
            f"category_pooling expects features [B, D, h, w] and labels [B, h, w] of the same size; "
            f"got {tuple(features.shape)} and {tuple(labels.shape)}"
        )
    batch, dim = features.shape[:2]
    labels = labels.long()
    if validate:
        check_labels(labels, num_classes, ignore_index)
    ignored = labels == ignore_index
    # Bin Z collects the ignore pixels and is dropped afterwards.
    bins = labels.masked_fill(ignored, num_classes).flatten(1)  # [B, h*w]
    flat = features.float().flatten(2)  # [B, D, h*w]
    index = bins[:, None, :].expand(batch, dim, bins.shape[1])

    sums = flat.new_zeros(batch, dim, num_classes + 1).scatter_add(2, index, flat)
    maxima = flat.new_zeros(batch, dim, num_classes + 1).scatter_reduce(
        2, index, flat, reduce="amax", include_self=False
    )
    count = torch.zeros(batch, num_classes + 1, device=features.device, dtype=torch.float32)
    count.scatter_add_(1, bins, torch.ones_like(bins, dtype=torch.float32))

    count = count[:, :num_classes]
    average = sums[:, :, :num_classes].transpose(1, 2) / count.clamp(min=1.0)[:, :, None]
    maximum = maxima[:, :, :num_classes].transpose(1, 2) * (count > 0).float()[:, :, None]
    return average, maximum, count


class MultiScaleSemanticAggregation(nn.Module):
    """Category features S_l of one label domain at every decoder scale (Eq. 4).

    Args:
        feature_dim: D, the width of H_1..H_3.
        num_classes: Z of the domain.
        ignore_index: label value that belongs to no category.
    """

    def __init__(self, feature_dim: int, num_classes: int, *, ignore_index: int = 255):
        super().__init__()
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.ignore_index = ignore_index
        # W_s in R^{2D x D}: a bias-free projection, so an absent category maps to exactly 0.
        self.proj = nn.Linear(2 * feature_dim, feature_dim, bias=False)

    def forward(self, features: Sequence[Tensor], labels: Tensor) -> list[ScaleSemantics]:
        """``features``: [H_1, H_2, H_3], each [B, D, h_l, w_l]; ``labels``: int [B, H, W] at any
        resolution (resized to each scale by nearest neighbour). Returns one ScaleSemantics per scale."""
        check_labels(labels, self.num_classes, self.ignore_index)  # once, not per scale
        scales = []
        for feature in features:
            mask = resize_labels(labels, feature.shape[-2:])
            average, maximum, count = category_pooling(
                feature, mask, self.num_classes, ignore_index=self.ignore_index, validate=False
            )
            presence = (count > 0).float()
            pooled = torch.cat([average, maximum], dim=-1).to(self.proj.weight.dtype)
            semantics = self.proj(pooled) * presence[:, :, None].to(pooled.dtype)
            scales.append(ScaleSemantics(semantics, presence))
        return scales
