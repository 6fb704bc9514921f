"""MSE: Multi-scale Semantic Enhancement (SST paper, Sec. 3.2.2, Eq. 5-7). Training only.

A learnable category embedding X_0 [Z, D] per label domain is refined by three semantic propagation
(SP) layers, one per scale; layer l cross-attends from X_{l-1} (queries) to the image's category
features S_l (keys, values):

    X_l = (softmax(Q K^T / sqrt(D)) * M_intra) V + X_{l-1}                    (Eq. 6)

The element-wise product with the binary adjacency M_intra comes AFTER the softmax and the weights
are not renormalised. Categories absent from the image are removed from the keys before the
softmax (their weight is exactly 0). ``use_intra_prior=False`` gives Eq. 5 (no product).
The auxiliary logits are A_aux = F X_3^T (Eq. 7).
"""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from .msa import ScaleSemantics

__all__ = ["masked_attention", "SemanticPropagation", "MSEOutput", "MultiScaleSemanticEnhancement", "auxiliary_logits"]


def masked_attention(
    query: Tensor, key: Tensor, *, key_presence: Tensor | None = None, prior: Tensor | None = None
) -> Tensor:
    """softmax(Q K^T / sqrt(D)) over the present keys, then multiplied element-wise by ``prior``.

    Args:
        query: [..., Zq, D]; key: [..., Zk, D].
        key_presence: [..., Zk] 0/1; absent keys get weight exactly 0 (masked before the softmax).
            A row whose keys are all absent is all zeros.
        prior: [..., Zq, Zk] (broadcast), applied after the softmax, without renormalisation.

    Returns:
        attention weights [..., Zq, Zk] in float32, also under autocast: the logits and the softmax run
        with autocast disabled (``.float()`` alone does not help there: autocast would cast the matmul's
        float32 inputs back to bf16/fp16).
    """
    with torch.autocast(device_type=query.device.type, enabled=False):
        scores = torch.matmul(query.float(), key.float().transpose(-1, -2)) / math.sqrt(query.shape[-1])
        if key_presence is not None:
            present = key_presence[..., None, :].bool()
            scores = scores.masked_fill(~present, torch.finfo(scores.dtype).min)
            attention = torch.softmax(scores, dim=-1) * present.float()
        else:
            attention = torch.softmax(scores, dim=-1)
        if prior is not None:
            attention = attention * prior.float()
    return attention


class SemanticPropagation(nn.Module):
    """One SP layer: X_l = (softmax(f_Q(X_{l-1}) f_K(S_l)^T / sqrt(D)) [* M_intra]) f_V(S_l) + X_{l-1}."""

    def __init__(self, dim: int):
        super().__init__()
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(dim, dim)
        self.value = nn.Linear(dim, dim)

    def forward(
        self, x: Tensor, semantics: Tensor, presence: Tensor, adjacency: Tensor | None = None
    ) -> tuple[Tensor, Tensor]:
        """x: [B, Z, D] or [Z, D]; semantics: [B, Z, D]; presence: [B, Z]; adjacency: [Z, Z] or None.
        Returns (X_l [B, Z, D], attention [B, Z, Z])."""
        if x.dim() == 2:
            x = x.expand(semantics.shape[0], *x.shape)
        attention = masked_attention(
            self.query(x), self.key(semantics), key_presence=presence, prior=adjacency
        )
        value = self.value(semantics)
        return torch.matmul(attention.to(value.dtype), value) + x, attention


class MSEOutput(NamedTuple):
    """``representations``: [X_0 [Z, D], X_1 [B, Z, D], ..., X_L]; ``attention``: L tensors [B, Z, Z]
    (empty unless asked for)."""

    representations: list[Tensor]
    attention: list[Tensor]


class MultiScaleSemanticEnhancement(nn.Module):
    """X_0 and the SP layers of one label domain.

    Args:
        feature_dim: D.
        num_classes: Z.
        adjacency: M_intra [Z, Z] (0/1, diagonal 1), or None for no prior.
        use_intra_prior: False drops the M_intra product (Eq. 5; Table 6 row "L_aux (None)").
        num_layers: number of SP layers (3 in the paper; 0 keeps only X_0, for dataset-level SCR).
        init_std: standard deviation of the random normal initialisation of X_0.
    """

    def __init__(
        self,
        feature_dim: int,
        num_classes: int,
        *,
        adjacency: Tensor | np.ndarray | None = None,
        use_intra_prior: bool = True,
        num_layers: int = 3,
        init_std: float = 0.02,
    ):
        super().__init__()
        self.feature_dim = feature_dim
        self.num_classes = num_classes
        self.use_intra_prior = use_intra_prior
        self.embedding = nn.Parameter(torch.randn(num_classes, feature_dim) * init_std)  # X_0
        self.layers = nn.ModuleList(SemanticPropagation(feature_dim) for _ in range(num_layers))
        if adjacency is None:
            matrix = torch.ones(num_classes, num_classes)
        else:
            matrix = torch.tensor(np.array(adjacency, dtype=np.float32))  # a copy (label-space arrays are read-only)
            if tuple(matrix.shape) != (num_classes, num_classes):
                raise ValueError(f"adjacency must be [{num_classes}, {num_classes}], got {tuple(matrix.shape)}")
        # Derived from the label space, so not saved in checkpoints.
        self.register_buffer("adjacency", matrix, persistent=False)

    def forward(self, scales: Sequence[ScaleSemantics], *, return_attention: bool = False) -> MSEOutput:
        """``scales``: the MSA output (one ScaleSemantics per SP layer, coarsest first)."""
        if len(scales) != len(self.layers):
            raise ValueError(f"MSE has {len(self.layers)} SP layers but got {len(scales)} scales")
        prior = self.adjacency if self.use_intra_prior else None
        x = self.embedding
        representations, attentions = [x], []
        for layer, scale in zip(self.layers, scales):
            x, attention = layer(x, scale.features, scale.presence, prior)
            representations.append(x)
            if return_attention:
                attentions.append(attention)
        return MSEOutput(representations, attentions)


def auxiliary_logits(features: Tensor, representation: Tensor) -> Tensor:
    """A_aux = F X_L^T (Eq. 7): features [B, D, h, w], representation [B, Z, D] -> [B, Z, h, w]."""
    return torch.einsum("bdhw,bzd->bzhw", features, representation.to(features.dtype))
