"""Fusion of the main-task feature with the others: HNL (Eq. 1-3), self-attention, concatenation.

``HeterogeneousNonLocal`` (shapes for a batch of B, C channels, an H x W grid, L = H*W)::

    F   = concat(F_m, F_aux...)               [B, n*C, H, W]          (Eq. 1; F_m first)
    F_h = W_1 F                               [B, C, H, W]            W_1 = 1x1 conv + BN + ReLU
    F_1 = theta(F_h) -> [B, L, C']            query, from the hybrid feature
    F_2 = phi(F_m)   -> [B, C', L']           key,   from the main feature
    F_3 = g(F_m)     -> [B, L', C']           value, from the main feature
    S   = softmax_j(F_1 F_2)                  [B, L, L']              (Eq. 2; no 1/sqrt(C') scaling)
    F_r = W_2 (S F_3) + F_m                   [B, C, H, W]            (Eq. 3; W_2 = 1x1 conv, zero-initialised)

theta/phi/g are 1x1 convs with bias, inner width C' (default C/2, as in the non-local block).
With ``sub_sample=False`` (default) L' = L, the paper's HW x HW relation map. ``sub_sample=True``
max-pools key and value 2x2 (L' = L/4), as the CorrPM code does, to fit 96x96 grids in memory.
W_2 starts at exactly zero (weight and bias), so an untrained block returns F_m unchanged.

``hybrid=False`` makes the query come from F_m itself: the standard (homogeneous) non-local block,
Table 7's "SA" row. ``ConcatFusion`` is the "Concat" rows: 1x1 conv + BN + ReLU over the concatenation.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .encoders import ConvBNAct

__all__ = ["ConcatFusion", "HeterogeneousNonLocal"]


class HeterogeneousNonLocal(nn.Module):
    """``forward(main [B,C,H,W], features: list of [B,C,H,W] with main first) -> F_r [B,C,H,W]``."""

    def __init__(self, channels: int, num_inputs: int, *, inner_channels: int | None = None,
                 sub_sample: bool = False, hybrid: bool = True):
        super().__init__()
        inner = int(inner_channels or max(1, channels // 2))
        self.num_inputs = int(num_inputs)
        self.w1 = ConvBNAct(self.num_inputs * channels, channels, 1) if hybrid else None
        self.theta = nn.Conv2d(channels, inner, 1)
        self.phi = nn.Conv2d(channels, inner, 1)
        self.g = nn.Conv2d(channels, inner, 1)
        self.sub_sample = bool(sub_sample)
        self.w2 = nn.Conv2d(inner, channels, 1)
        nn.init.zeros_(self.w2.weight)
        nn.init.zeros_(self.w2.bias)

    def relation(self, main: Tensor, features: Sequence[Tensor]) -> Tensor:
        """S [B, L, L'] (rows: hybrid-feature positions; columns: main-feature positions)."""
        if self.w1 is not None:
            if len(features) != self.num_inputs:
                raise ValueError(f"HNL was built for {self.num_inputs} input features, got {len(features)}")
            hybrid = self.w1(torch.cat(list(features), 1))
        else:
            hybrid = main
        query = self.theta(hybrid).flatten(2).transpose(1, 2)  # [B, L, C']
        key = self._pool(self.phi(main)).flatten(2)  # [B, C', L']
        return torch.softmax(query @ key, dim=-1)

    def forward(self, main: Tensor, features: Sequence[Tensor]) -> Tensor:
        b, _, h, w = main.shape
        s = self.relation(main, features)
        value = self._pool(self.g(main)).flatten(2).transpose(1, 2)  # [B, L', C']
        y = (s @ value).transpose(1, 2).reshape(b, -1, h, w)
        return self.w2(y) + main

    def _pool(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, 2) if self.sub_sample else x


class ConcatFusion(nn.Module):
    """F_r = ReLU(BN(conv1x1(concat(F_m, F_aux...)))) (Table 7 "Concat")."""

    def __init__(self, channels: int, num_inputs: int):
        super().__init__()
        self.num_inputs = int(num_inputs)
        self.fuse = ConvBNAct(self.num_inputs * channels, channels, 1)

    def forward(self, main: Tensor, features: Sequence[Tensor]) -> Tensor:
        if len(features) != self.num_inputs:
            raise ValueError(f"concat fusion was built for {self.num_inputs} input features, got {len(features)}")
        return self.fuse(torch.cat(list(features), 1))
