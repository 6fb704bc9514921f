"""Multi-scale deformable-attention transformer encoder over the stride-8/16/32 backbone maps.

As Mask2Former's pixel-decoder encoder (Deformable DETR encoder): 1x1 projection + GroupNorm per level,
sine position code + learned level embedding, ``num_layers`` post-norm layers of deformable self-attention
and FFN over the tokens of all levels together, split back into maps.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import Tensor, nn

from humanparse.errors import ConfigError
from humanparse.models.encoders.ms_deform_attn import DEFAULT_IMPL, MSDeformAttn

__all__ = ["DeformableEncoder", "DeformableEncoderLayer", "sine_position_encoding"]


def group_norm(dim: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups, or the largest divisor of 32 that divides ``dim``."""
    return nn.GroupNorm(math.gcd(32, dim), dim)


def sine_position_encoding(h: int, w: int, dim: int, *, device=None, temperature: float = 10000.0) -> Tensor:
    """DETR's normalised 2-D sine code, [h*w, dim]: first half encodes y, second half x."""
    if dim % 4 != 0:
        raise ConfigError(f"sine position encoding needs dim divisible by 4, got {dim}")
    quarter = dim // 4
    scale = 2 * math.pi
    y = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h * scale
    x = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w * scale
    freq = temperature ** (torch.arange(quarter, dtype=torch.float32, device=device) / quarter)

    def encode(t: Tensor) -> Tensor:  # [n] -> [n, dim // 2], sin/cos interleaved
        angles = t[:, None] / freq
        return torch.stack([angles.sin(), angles.cos()], -1).flatten(1)

    pos_y = encode(y)[:, None, :].expand(h, w, 2 * quarter)
    pos_x = encode(x)[None, :, :].expand(h, w, 2 * quarter)
    return torch.cat([pos_y, pos_x], -1).reshape(h * w, dim)


def reference_points(spatial_shapes: Sequence[tuple[int, int]], *, device=None) -> Tensor:
    """Pixel centres of every level, normalised to [0, 1], (x, y): [sum(h*w), 2]."""
    points = []
    for h, w in spatial_shapes:
        y = (torch.arange(h, dtype=torch.float32, device=device) + 0.5) / h
        x = (torch.arange(w, dtype=torch.float32, device=device) + 0.5) / w
        points.append(torch.stack(torch.meshgrid(x, y, indexing="xy"), -1).reshape(h * w, 2))
    return torch.cat(points, 0)


class DeformableEncoderLayer(nn.Module):
    """Post-norm: x = LN(x + attn(x + pos)); x = LN(x + FFN(x))."""

    def __init__(self, dim: int, *, num_levels: int, num_heads: int, num_points: int, ffn_dim: int, dropout: float,
                 attn_impl: str = DEFAULT_IMPL):
        super().__init__()
        self.self_attn = MSDeformAttn(dim, n_levels=num_levels, n_heads=num_heads, n_points=num_points, impl=attn_impl)
        self.norm1 = nn.LayerNorm(dim)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_dim), nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(ffn_dim, dim)
        )
        self.norm2 = nn.LayerNorm(dim)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, pos: Tensor, ref: Tensor, spatial_shapes: Sequence[tuple[int, int]]) -> Tensor:
        x = self.norm1(x + self.dropout(self.self_attn(x + pos, ref, x, spatial_shapes)))
        return self.norm2(x + self.dropout(self.ffn(x)))


class DeformableEncoder(nn.Module):
    """``forward([C8, C16, C32]) -> [E8, E16, E32]``: the stride-8/16/32 maps refined, each at width ``dim``.

    ``in_channels`` are the backbone widths of those three maps (any number of levels works; the order of
    the inputs is the order of the outputs). ``attn_impl`` chooses the deformable-attention op
    (``gather``, the default, ``pytorch``, ``compiled`` or ``embedding_bag``, see ``ms_deform_attn``); it changes
    speed, not the weights.
    """

    def __init__(
        self,
        in_channels: Sequence[int],
        *,
        dim: int = 256,
        num_layers: int = 6,
        num_heads: int = 8,
        num_points: int = 4,
        ffn_dim: int = 1024,
        dropout: float = 0.0,
        attn_impl: str = DEFAULT_IMPL,
    ):
        super().__init__()
        if dim % num_heads != 0 or dim % 4 != 0:
            raise ConfigError(f"encoder dim {dim} must be divisible by num_heads ({num_heads}) and by 4")
        self.in_channels = [int(c) for c in in_channels]
        self.out_dim = dim
        levels = len(self.in_channels)
        self.input_proj = nn.ModuleList(
            nn.Sequential(nn.Conv2d(c, dim, kernel_size=1), group_norm(dim)) for c in self.in_channels
        )
        self.level_embed = nn.Parameter(torch.empty(levels, dim))
        self.layers = nn.ModuleList(
            DeformableEncoderLayer(
                dim, num_levels=levels, num_heads=num_heads, num_points=num_points, ffn_dim=ffn_dim, dropout=dropout,
                attn_impl=attn_impl,
            )
            for _ in range(num_layers)
        )
        nn.init.normal_(self.level_embed)
        for proj in self.input_proj:
            nn.init.xavier_uniform_(proj[0].weight, gain=1)
            nn.init.zeros_(proj[0].bias)

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        if len(features) != len(self.input_proj):
            raise ValueError(f"DeformableEncoder expects {len(self.input_proj)} maps, got {len(features)}")
        # ints in eager mode, traced sizes while exporting: never int() them, or a trace keeps one size
        shapes = [(f.shape[-2], f.shape[-1]) for f in features]
        device = features[0].device
        tokens, pos = [], []
        for level, (feature, (h, w)) in enumerate(zip(features, shapes)):
            tokens.append(self.input_proj[level](feature).flatten(2).transpose(1, 2))  # [B, h*w, dim]
            pos.append(sine_position_encoding(h, w, self.out_dim, device=device) + self.level_embed[level])
        x = torch.cat(tokens, 1)
        pos_all = torch.cat(pos, 0).unsqueeze(0).to(x.dtype)
        ref = reference_points(shapes, device=device)[None, :, None, :].expand(x.shape[0], -1, len(shapes), 2)
        for layer in self.layers:
            x = layer(x, pos_all, ref, shapes)
        maps = x.split([h * w for h, w in shapes], dim=1)
        return [m.transpose(1, 2).reshape(m.shape[0], self.out_dim, h, w) for m, (h, w) in zip(maps, shapes)]
