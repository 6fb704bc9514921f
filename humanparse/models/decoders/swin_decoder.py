"""The paper's decoder: "three successive transformers with up-sampling".

Stage i runs ``depths[i]`` Swin blocks at width ``dim``, up-samples x2 (bilinear) and adds a 1x1
projection of the next finer lateral map:

    X   = proj(E32)                                    1/32
    H_1 = up(stage1(X))   + lateral(E16)               1/16
    H_2 = up(stage2(H_1)) + lateral(E8)                1/8
    H_3 = up(stage3(H_2)) + lateral(C4)                1/4   (C4: the backbone's stride-4 map)
    F   = pointwise(GELU(GN(depthwise3x3(H_3))))       1/4

H_1, H_2, H_3 and F all have width ``dim`` (D). The transformer blocks run at 1/32, 1/16 and 1/8 only;
the 1/4 level gets a lateral merge and a light depthwise-separable projection, which keeps the compute
low (see docs/model.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch.nn.functional as F
from torch import Tensor, nn

from humanparse.errors import ConfigError
from humanparse.models.decoders.swin_blocks import SwinStage
from humanparse.models.encoders.deformable_encoder import group_norm

__all__ = ["SwinUpDecoder"]


def _lateral(in_channels: int, dim: int) -> nn.Module:
    return nn.Sequential(nn.Conv2d(in_channels, dim, kernel_size=1, bias=False), group_norm(dim))


class SwinUpDecoder(nn.Module):
    """``forward([E8, E16, E32], C4) -> {"H1", "H2", "H3", "F"}``, all at width ``dim``.

    Args:
        encoder_dim: width of the encoder maps E8/E16/E32.
        lateral_channels: widths of the lateral maps at strides (4, 8, 16): the backbone's stride-4 map
            and the encoder's stride-8 and stride-16 maps.
        dim: D, the width of H_1..H_3 and F.
        depths: Swin blocks in the stages at 1/32, 1/16 and 1/8.
        num_heads: attention heads in every block (dim must be divisible by it).
        window_size: attention window (maps are padded to a multiple internally).
        mlp_ratio: MLP hidden width / dim.
    """

    def __init__(
        self,
        *,
        encoder_dim: int,
        lateral_channels: Sequence[int],
        dim: int = 192,
        depths: Sequence[int] = (2, 2, 2),
        num_heads: int = 6,
        window_size: int = 8,
        mlp_ratio: float = 4.0,
    ):
        super().__init__()
        if len(lateral_channels) != 3 or len(depths) != 3:
            raise ConfigError(
                f"swin decoder needs 3 lateral_channels (strides 4, 8, 16) and 3 depths; "
                f"got {list(lateral_channels)} and {list(depths)}"
            )
        if dim % num_heads != 0:
            raise ConfigError(f"decoder dim {dim} must be divisible by num_heads {num_heads}")
        self.out_dim = dim
        self.input_proj = nn.Identity() if encoder_dim == dim else _lateral(encoder_dim, dim)
        self.stages = nn.ModuleList(
            SwinStage(dim, depth, num_heads, window=window_size, mlp_ratio=mlp_ratio) for depth in depths
        )
        # laterals in the order they are merged: stride 16, 8, 4
        self.laterals = nn.ModuleList(_lateral(c, dim) for c in reversed(list(lateral_channels)))
        self.out_proj = nn.Sequential(
            nn.Conv2d(dim, dim, kernel_size=3, padding=1, groups=dim, bias=False),
            group_norm(dim),
            nn.GELU(),
            nn.Conv2d(dim, dim, kernel_size=1),
        )

    def forward(self, encoder_maps: Sequence[Tensor], stride4: Tensor) -> dict[str, Tensor]:
        e8, e16, e32 = encoder_maps
        x = self.input_proj(e32)
        outputs = {}
        for name, stage, lateral, skip in zip(("H1", "H2", "H3"), self.stages, self.laterals, (e16, e8, stride4)):
            x = F.interpolate(stage(x), size=skip.shape[-2:], mode="bilinear", align_corners=False)
            x = x + lateral(skip)
            outputs[name] = x
        outputs["F"] = self.out_proj(x)
        return outputs
