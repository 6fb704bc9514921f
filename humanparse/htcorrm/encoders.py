"""HTCorrM's three feature encoders (Sec. 3.2): parsing (ASPP + low-level), pose (two deconvs), edge.

Each encoder maps backbone feature maps to a task feature of ``channels`` (C) channels on the grid
of the lowest backbone level G_1 (stride 4), and has a 1x1 head for its own (auxiliary) output:

- ``ParsingEncoder``: ASPP on the deepest level (five branches: image pooling, 1x1, three 3x3
  atrous convs with rates 12/24/36), projected to C, upsampled to G_1 and concatenated with the
  raw G_1 feature; a 1x1 conv + BN + ReLU then gives F_p (the CorrPM code's step after the concat,
  which the paper folds into "concat = F_p"). Head: Q class logits (the coarse parsing map).
- ``PoseEncoder``: two ConvTranspose2d (kernel 4, stride 2, padding 1) each with BN + ReLU, on the
  backbone level at stride 16, so F_k lands on the stride-4 grid of F_p. Head: J heatmaps.
- ``EdgeEncoder``: a 1x1 conv + BN + ReLU on each of three levels, bilinear upsampling to the
  first one, concatenation, then a 3x3 and a 1x1 conv (each with BN + ReLU) give F_b (the paper's
  text; the CorrPM code has a single 1x1). Head: 2 edge logits (non-edge, edge).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["ASPP", "ConvBNAct", "EdgeEncoder", "ParsingEncoder", "PoseEncoder"]


class ConvBNAct(nn.Sequential):
    """conv (no bias) -> BatchNorm -> ReLU."""

    def __init__(self, in_ch: int, out_ch: int, kernel: int = 1, *, dilation: int = 1):
        padding = dilation * (kernel - 1) // 2
        super().__init__(
            nn.Conv2d(in_ch, out_ch, kernel, padding=padding, dilation=dilation, bias=False),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )


class _ImagePool(nn.Module):
    """Global average pool -> 1x1 conv + BN + ReLU -> bilinear upsample to the input size.

    Like every BN on a 1x1 map, this branch needs a batch of at least 2 in training mode.
    """

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.conv = ConvBNAct(in_ch, out_ch, 1)

    def forward(self, x: Tensor) -> Tensor:
        return F.interpolate(self.conv(self.pool(x)), size=x.shape[-2:], mode="bilinear", align_corners=False)


class ASPP(nn.Module):
    """Atrous spatial pyramid pooling: [image pool, 1x1, 3x3 @ r for r in rates] -> concat -> 1x1 -> dropout."""

    def __init__(self, in_ch: int, branch_ch: int, out_ch: int, *, rates: Sequence[int] = (12, 24, 36),
                 dropout: float = 0.1):
        super().__init__()
        self.branches = nn.ModuleList(
            [_ImagePool(in_ch, branch_ch), ConvBNAct(in_ch, branch_ch, 1)]
            + [ConvBNAct(in_ch, branch_ch, 3, dilation=int(r)) for r in rates]
        )
        self.project = ConvBNAct(branch_ch * len(self.branches), out_ch, 1)
        self.dropout = nn.Dropout2d(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.project(torch.cat([b(x) for b in self.branches], 1)))


class ParsingEncoder(nn.Module):
    """F_p = act(BN(conv1x1(concat(up(ASPP(deep)), low)))); ``head(F_p)`` = coarse parsing logits."""

    def __init__(self, deep_ch: int, low_ch: int, channels: int, num_classes: int, *, aspp_channels: int = 256,
                 rates: Sequence[int] = (12, 24, 36), dropout: float = 0.1):
        super().__init__()
        self.aspp = ASPP(deep_ch, aspp_channels, channels, rates=rates, dropout=dropout)
        self.fuse = ConvBNAct(channels + low_ch, channels, 1)
        self.head = nn.Conv2d(channels, num_classes, 1)

    def forward(self, deep: Tensor, low: Tensor) -> Tensor:
        context = F.interpolate(self.aspp(deep), size=low.shape[-2:], mode="bilinear", align_corners=False)
        return self.fuse(torch.cat([context, low], 1))


class PoseEncoder(nn.Module):
    """Two stride-2 4x4 transposed convs (SimpleBaseline): F_k at 4x the input's resolution."""

    def __init__(self, in_ch: int, channels: int, num_joints: int, *, mid_channels: int = 256):
        super().__init__()
        layers = []
        for cin, cout in ((in_ch, mid_channels), (mid_channels, channels)):
            layers += [nn.ConvTranspose2d(cin, cout, 4, stride=2, padding=1, bias=False),
                       nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]
        self.deconv = nn.Sequential(*layers)
        self.head = nn.Conv2d(channels, num_joints, 1)
        for m in self.modules():  # SimpleBaseline / CorrPM init: N(0, 0.001), zero bias
            if isinstance(m, (nn.ConvTranspose2d, nn.Conv2d)):
                nn.init.normal_(m.weight, std=0.001)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor) -> Tensor:
        return self.deconv(x)


class EdgeEncoder(nn.Module):
    """1x1 per level -> upsample to the first level -> concat -> 3x3 -> 1x1 = F_b; head: 2 logits."""

    def __init__(self, in_chs: Sequence[int], channels: int, *, mid_channels: int = 256):
        super().__init__()
        self.lateral = nn.ModuleList([ConvBNAct(c, mid_channels, 1) for c in in_chs])
        self.fuse = nn.Sequential(ConvBNAct(mid_channels * len(in_chs), channels, 3), ConvBNAct(channels, channels, 1))
        self.head = nn.Conv2d(channels, 2, 1)

    def forward(self, feats: Sequence[Tensor]) -> Tensor:
        size = feats[0].shape[-2:]
        maps = [lat(f) for lat, f in zip(self.lateral, feats)]
        maps = [m if m.shape[-2:] == size else F.interpolate(m, size=size, mode="bilinear", align_corners=False)
                for m in maps]
        return self.fuse(torch.cat(maps, 1))
