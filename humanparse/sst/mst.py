"""MST: Multi-scale Semantic Transfer between two label domains (SST paper, Sec. 3.2.3, Eq. 8-9).
Training only.

Semantic mapping (SM) layers map category representations of domain 1 (Z_1 categories) into the
category space of domain 2 (Z_2) and back:

    X^{(1->2)} = (softmax(Q^(2) K^(1)T / sqrt(D)) * M) V^(1)

with Q from X^(2), K and V from X^(1) through learned projections. SM_0 works on the dataset-level
embeddings X_0 with the static prior M_static [Z_2, Z_1] (label-name similarity, Eq. 8). SM_l
(l = 1..3) works on the image-level X_l of one image of each domain with the dynamic prior
M_dyn = (S_l^(2) W_l^(2)) (S_l^(1) W_l^(1))^T [Z_2, Z_1] (Eq. 9). Each direction has its own SM
projections; the 2->1 direction uses the transposed priors (M_static^T, M_dyn^T), so W_l^(1) and
W_l^(2) are shared by both directions. Source categories absent from the image are masked from the
keys before the softmax.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .mse import masked_attention

__all__ = ["SemanticMapping", "Mapped", "MultiScaleSemanticTransfer"]


class SemanticMapping(nn.Module):
    """One SM layer for one direction: (softmax(q(X_dst) k(X_src)^T / sqrt(D)) * prior) v(X_src)."""

    def __init__(self, dim: int):
        super().__init__()
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)

    def forward(
        self,
        source: Tensor,
        target: Tensor,
        prior: Tensor,
        *,
        source_presence: Tensor | None = None,
        return_attention: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """source: [..., Z_src, D]; target: [..., Z_dst, D]; prior: [..., Z_dst, Z_src].
        Returns the mapped representation [..., Z_dst, D] (and the attention if asked)."""
        attention = masked_attention(
            self.query(target), self.key(source), key_presence=source_presence, prior=prior
        )
        value = self.value(source)
        mapped = torch.matmul(attention.to(value.dtype), value)
        return (mapped, attention) if return_attention else mapped


class Mapped(NamedTuple):
    """``one_to_two``: X^{(1->2)} [..., Z_2, D]; ``two_to_one``: X^{(2->1)} [..., Z_1, D]."""

    one_to_two: Tensor
    two_to_one: Tensor


class MultiScaleSemanticTransfer(nn.Module):
    """SM_0 (static) and SM_1..SM_L (dynamic) for one pair of label domains (1, 2).

    Args:
        feature_dim: D.
        num_classes_1, num_classes_2: Z_1, Z_2.
        static_prior: M_static [Z_2, Z_1] in [0, 1] (rows: domain 2, columns: domain 1), or None
            when the dataset-level mapping is not used.
        num_scales: number of dynamic SM layers (0 when the image-level mapping is not used).
    """

    def __init__(
        self,
        feature_dim: int,
        num_classes_1: int,
        num_classes_2: int,
        *,
        static_prior: Tensor | np.ndarray | None = None,
        num_scales: int = 3,
    ):
        super().__init__()
        self.num_classes = (num_classes_1, num_classes_2)
        self.num_scales = num_scales
        if static_prior is not None:
            prior = torch.tensor(np.array(static_prior, dtype=np.float32))  # a copy
            if tuple(prior.shape) != (num_classes_2, num_classes_1):
                raise ValueError(
                    f"static prior must be [Z_2, Z_1] = [{num_classes_2}, {num_classes_1}], got {tuple(prior.shape)}"
                )
            self.register_buffer("static_prior", prior, persistent=False)
            self.static_one_to_two = SemanticMapping(feature_dim)
            self.static_two_to_one = SemanticMapping(feature_dim)
        else:
            self.static_prior = None
        self.dynamic_one_to_two = nn.ModuleList(SemanticMapping(feature_dim) for _ in range(num_scales))
        self.dynamic_two_to_one = nn.ModuleList(SemanticMapping(feature_dim) for _ in range(num_scales))
        # W_l^(1), W_l^(2) of Eq. 9 (bias-free: an absent category's zero S row stays zero).
        self.prior_proj_1 = nn.ModuleList(nn.Linear(feature_dim, feature_dim, bias=False) for _ in range(num_scales))
        self.prior_proj_2 = nn.ModuleList(nn.Linear(feature_dim, feature_dim, bias=False) for _ in range(num_scales))

    def dataset_level(self, x0_1: Tensor, x0_2: Tensor) -> Mapped:
        """SM_0 (Eq. 8) on the dataset-level embeddings X_0^(1) [Z_1, D] and X_0^(2) [Z_2, D]."""
        if self.static_prior is None:
            raise RuntimeError("this MST was built without a static prior (dataset-level SCR is off)")
        one_to_two = self.static_one_to_two(x0_1, x0_2, self.static_prior)
        two_to_one = self.static_two_to_one(x0_2, x0_1, self.static_prior.transpose(0, 1))
        return Mapped(one_to_two, two_to_one)

    def dynamic_prior(self, scale: int, semantics_1: Tensor, semantics_2: Tensor) -> Tensor:
        """M_dyn of SM_scale (scale = 1..L, Eq. 9): S^(1) [P, Z_1, D], S^(2) [P, Z_2, D] -> [P, Z_2, Z_1].

        Float32 also under autocast (the projections and the product run with autocast disabled): the
        matrix is unnormalised, so bf16 would round its large entries to 3 significant digits."""
        with torch.autocast(device_type=semantics_1.device.type, enabled=False):
            w_1, w_2 = self.prior_proj_1[scale - 1].weight, self.prior_proj_2[scale - 1].weight
            projected_1 = F.linear(semantics_1.float(), w_1.float())
            projected_2 = F.linear(semantics_2.float(), w_2.float())
            return torch.matmul(projected_2, projected_1.transpose(-1, -2))

    def image_level(
        self,
        scale: int,
        x_1: Tensor,
        x_2: Tensor,
        semantics_1: Tensor,
        semantics_2: Tensor,
        presence_1: Tensor,
        presence_2: Tensor,
    ) -> Mapped:
        """SM_scale (scale = 1..L) on P image pairs: X_l^(1) [P, Z_1, D], X_l^(2) [P, Z_2, D], their
        S_l and presence flags ([P, Z_1], [P, Z_2])."""
        if not 1 <= scale <= self.num_scales:
            raise ValueError(f"scale must be in 1..{self.num_scales}, got {scale}")
        prior = self.dynamic_prior(scale, semantics_1, semantics_2)
        one_to_two = self.dynamic_one_to_two[scale - 1](x_1, x_2, prior, source_presence=presence_1)
        two_to_one = self.dynamic_two_to_one[scale - 1](
            x_2, x_1, prior.transpose(-1, -2), source_presence=presence_2
        )
        return Mapped(one_to_two, two_to_one)
