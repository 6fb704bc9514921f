"""SCR: Semantic Consistency Regularisation (SST paper, Eq. 10-11). Training only.

Each term is 1 - cosine(original, mapped) per category, averaged over categories, and summed over
the two directions. Dataset level (Eq. 10): X_0 against the mapped X_0, over all categories. Image
level (Eq. 11): X_l against the mapped X_l, summed over the scales l = 1..L, averaged over the
categories, then averaged over the image pairs of the batch. The values lie in [0, 2] per direction
and scale.

Which categories Eq. 11 averages over (``categories``):
  ``"all"``      the paper as written, (1 / Z) sum_{z=1..Z}: every category of the domain, present in the
                 image or not (an absent category's X_l is still defined: X_0 plus the attention update),
                 the default;
  ``"present"``  only the categories present in the image (sum / max(count, 1); an image with no present
                 category contributes 0): this project's reading before it followed the paper; kept as
                 an option (method key ``scr_img_categories``).
"""

from __future__ import annotations

from typing import Sequence

import torch.nn.functional as F
from torch import Tensor

__all__ = ["SCR_IMG_CATEGORIES", "consistency", "scr_dataset", "scr_image"]

SCR_IMG_CATEGORIES = ("all", "present")


def consistency(original: Tensor, mapped: Tensor, presence: Tensor | None = None) -> Tensor:
    """Mean over categories of 1 - cos(original_z, mapped_z).

    original, mapped: [..., Z, D]. presence: [..., Z] 0/1 or None (all categories).
    Returns [...] (a scalar for [Z, D] inputs). With presence, the mean is over present categories
    (sum / max(count, 1)).
    """
    distance = 1.0 - F.cosine_similarity(original.float(), mapped.float(), dim=-1, eps=1e-8)
    if presence is None:
        return distance.mean(dim=-1)
    weight = presence.float()
    return (distance * weight).sum(dim=-1) / weight.sum(dim=-1).clamp(min=1.0)


def scr_dataset(x0_1: Tensor, x0_2: Tensor, x0_1_to_2: Tensor, x0_2_to_1: Tensor) -> Tensor:
    """Eq. 10: consistency(X_0^(1), X_0^(2->1)) + consistency(X_0^(2), X_0^(1->2))."""
    return consistency(x0_1, x0_2_to_1) + consistency(x0_2, x0_1_to_2)


def scr_image(
    x_1: Sequence[Tensor],
    x_2: Sequence[Tensor],
    x_1_to_2: Sequence[Tensor],
    x_2_to_1: Sequence[Tensor],
    presence_1: Sequence[Tensor],
    presence_2: Sequence[Tensor],
    *,
    categories: str = "all",
) -> Tensor:
    """Eq. 11 over P image pairs. Each argument holds one tensor per scale l = 1..L:
    x_1[l] [P, Z_1, D], x_2[l] [P, Z_2, D], the mapped ones, presence_1[l] [P, Z_1], presence_2[l] [P, Z_2].
    ``categories``: ``"all"`` (1/Z over every category, the paper) or ``"present"`` (see the module doc).
    Returns the mean over pairs of the sum over scales and directions."""
    if categories not in SCR_IMG_CATEGORIES:
        raise ValueError(f"categories must be one of {SCR_IMG_CATEGORIES}, got {categories!r}")
    every = categories == "all"
    total = None
    for a, b, a_from_b, b_from_a, p_a, p_b in zip(x_1, x_2, x_2_to_1, x_1_to_2, presence_1, presence_2):
        term = consistency(a, a_from_b, None if every else p_a) + consistency(b, b_from_a, None if every else p_b)
        total = term if total is None else total + term
    if total is None:
        raise ValueError("scr_image needs at least one scale")
    return total.mean()
