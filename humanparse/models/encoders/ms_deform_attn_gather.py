"""Multi-scale deformable attention as one fused gather over a zero-padded value table (the ``gather`` impl).

The same function as ``ms_deform_attn`` (bilinear, ``align_corners=False``, zeros outside), computed as

    out[b, q, head] = sum over levels l, points p, corners c of
                      attention[l, p] * bilinear_weight[l, p, c] * table[index[l, p, c]]

with one ``F.embedding_bag`` call: each (query, head) is one bag of ``levels * points * 4`` rows.
What makes it faster on a CPU than ``embedding_bag`` (measured in docs/benchmarks.md):

- every level of the value table gets a one-pixel zero border, so a corner outside its map is clamped
  onto the border and reads a zero: no validity masks, no masked weights;
- the sample positions are clamped to the border band ``[-1, w]`` before ``floor``, so every corner index
  is valid; integer indices (int32) are built with a few fused ``addcmul`` calls;
- per-level constants are materialised at the full trailing ``[levels, points, 2]`` shape, so every
  elementwise op runs over contiguous inner loops instead of broadcasting a size-2 dimension;
- the four corners of all levels are one bag: one gather-and-sum, no [B*heads, head_dim, Q, L*P]
  samples written to memory, output already laid out [B, Q, heads * head_dim].

Gradients reach the values, the attention weights and (through the bilinear weights) the sampling
locations (zero outside the maps, as ``grid_sample``'s). Sizes are Python ints: not for export
(export traces ``pytorch``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ms_deform_attn_gather", "padded_value_table"]


def padded_value_table(value: Tensor, spatial_shapes: Sequence[tuple[int, int]]) -> tuple[Tensor, list[int]]:
    """[B, S, nH, Dh] -> ([B, S_pad, nH, Dh] with a zero border around every level, each level's start row)."""
    batch, _, n_heads, head_dim = value.shape
    padded = sum((h + 2) * (w + 2) for h, w in spatial_shapes)
    table = value.new_zeros(batch, padded, n_heads, head_dim)
    starts, start = [], 0
    for (h, w), v in zip(spatial_shapes, value.split([h * w for h, w in spatial_shapes], 1)):
        size = (h + 2) * (w + 2)
        table[:, start:start + size].view(batch, h + 2, w + 2, n_heads, head_dim)[:, 1:-1, 1:-1] = \
            v.view(batch, h, w, n_heads, head_dim)
        starts.append(start)
        start += size
    return table, starts


def ms_deform_attn_gather(
    value: Tensor,
    spatial_shapes: Sequence[tuple[int, int]],
    sampling_locations: Tensor,
    attention_weights: Tensor,
) -> Tensor:
    """Same arguments and result as ``ms_deform_attn``: value [B, S, nH, Dh], locations
    [B, Q, nH, L, P, 2] (x, y) in [0, 1], weights [B, Q, nH, L, P] -> [B, Q, nH * Dh]."""
    batch, _, n_heads, head_dim = value.shape
    _, queries, _, n_levels, n_points, _ = sampling_locations.shape
    device, dtype = value.device, sampling_locations.dtype
    table, starts = padded_value_table(value, spatial_shapes)
    rows = table.shape[0] * table.shape[1] * n_heads
    itype = torch.int32 if rows < 2**31 else torch.int64
    # pixel coordinates (pixel centres at +0.5), clamped into the zero band [-1, size]: a clamped sample
    # has its weight on border pixels, which are zeros, exactly as grid_sample's zero padding
    size = torch.tensor([[w, h] for h, w in spatial_shapes], device=device, dtype=dtype)
    size = size.view(n_levels, 1, 2).expand(n_levels, n_points, 2).contiguous()
    pixel = torch.addcmul(torch.tensor(-0.5, device=device, dtype=dtype), sampling_locations, size)
    pixel = torch.clamp(pixel, min=torch.tensor(-1.0, device=device, dtype=dtype), max=size)
    low = pixel.floor()
    frac = pixel - low
    low = low.to(itype)
    high = (low + 1).minimum(size.to(itype))  # a sample at exactly `size` has both corners on the border
    # row of the table viewed as [B * S_pad * nH, Dh]: ((b * S_pad + start + (y + 1) * (w + 2) + x + 1) * nH + head
    pitch = torch.tensor([(w + 2) * n_heads for _, w in spatial_shapes], device=device, dtype=itype)
    pitch = pitch.view(n_levels, 1).expand(n_levels, n_points).contiguous()
    level = torch.tensor([(s + w + 3) * n_heads for s, (_, w) in zip(starts, spatial_shapes)], device=device, dtype=itype)
    base = (level.view(1, n_levels, 1) + torch.arange(n_heads, device=device, dtype=itype).view(n_heads, 1, 1))
    base = (base.expand(n_heads, n_levels, n_points)
            + (torch.arange(batch, device=device, dtype=itype) * (table.shape[1] * n_heads)).view(batch, 1, 1, 1))
    base = base.view(batch, 1, n_heads, n_levels, n_points)
    row0 = torch.addcmul(base, low[..., 1], pitch)
    row1 = torch.addcmul(base, high[..., 1], pitch)
    col0, col1 = low[..., 0] * n_heads, high[..., 0] * n_heads
    index = torch.stack([row0 + col0, row0 + col1, row1 + col0, row1 + col1], -1)  # [B, Q, nH, L, P, 4]
    fx, fy = frac[..., 0], frac[..., 1]
    bottom = fy * attention_weights
    top = attention_weights - bottom
    top_right, bottom_right = top * fx, bottom * fx
    weight = torch.stack([top - top_right, top_right, bottom - bottom_right, bottom_right], -1)
    per_bag = n_levels * n_points * 4
    out = F.embedding_bag(index.view(-1, per_bag), table.view(-1, head_dim), mode="sum",
                          per_sample_weights=weight.reshape(-1, per_bag).to(value.dtype))
    return out.view(batch, queries, n_heads * head_dim)
