"""Multi-scale deformable attention as one weighted gather: ``F.embedding_bag`` (the ``embedding_bag`` impl).

The same function as ``ms_deform_attn`` (bilinear, ``align_corners=False``, zeros outside), written as

    out[b, q, head] = sum over levels l, points p, corners c of
                      attention[l, p] * bilinear_weight[l, p, c] * value[b, index[l, p, c], head]

so each (query, head) is one "bag" of ``levels * points * 4`` rows of the value table, summed with
per-row weights. ``embedding_bag`` never writes the [B*heads, head_dim, Q, levels*points] samples that
the ``grid_sample`` version stacks and then multiplies and sums, and its output is already laid out
[B, Q, heads * head_dim]. Gradients reach the values, the attention weights and (through the bilinear
weights) the sampling locations. Sizes are Python ints: this impl is not for export (export traces ``pytorch``).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["ms_deform_attn_bag"]


def ms_deform_attn_bag(
    value: Tensor,
    spatial_shapes: Sequence[tuple[int, int]],
    sampling_locations: Tensor,
    attention_weights: Tensor,
) -> Tensor:
    """Same arguments and result as ``ms_deform_attn``: value [B, S, nH, Dh], locations
    [B, Q, nH, L, P, 2] (x, y) in [0, 1], weights [B, Q, nH, L, P] -> [B, Q, nH * Dh]."""
    batch, tokens, n_heads, head_dim = value.shape
    _, queries, _, n_levels, n_points, _ = sampling_locations.shape
    device, dtype = value.device, sampling_locations.dtype
    level = (1, 1, 1, n_levels, 1)  # broadcasts a per-level constant over [B, Q, nH, L, P]
    heights = torch.tensor([h for h, _ in spatial_shapes], device=device, dtype=dtype).view(level)
    widths = torch.tensor([w for _, w in spatial_shapes], device=device, dtype=dtype).view(level)
    starts = torch.tensor([0] + [h * w for h, w in spatial_shapes][:-1], device=device).cumsum(0)
    starts = starts.to(dtype).view(level)
    # pixel coordinates, pixel centres at +0.5 (align_corners=False); the two columns x0, x0 + 1 and
    # rows y0, y0 + 1 around each sample, their bilinear weights (0 outside the map) and clamped positions.
    # Everything stays floating point (exact for integers below 2^24) until the final row index.
    px = sampling_locations[..., 0] * widths - 0.5
    py = sampling_locations[..., 1] * heights - 0.5
    x0, y0 = px.floor(), py.floor()
    fx, fy = px - x0, py - y0
    wx = ((1 - fx) * ((x0 >= 0) & (x0 < widths)), fx * ((x0 >= -1) & (x0 < widths - 1)))
    wy = ((1 - fy) * ((y0 >= 0) & (y0 < heights)) * attention_weights,
          fy * ((y0 >= -1) & (y0 < heights - 1)) * attention_weights)
    cols = (x0.clamp(min=0).minimum(widths - 1), (x0 + 1).clamp(min=0).minimum(widths - 1))
    rows = (starts + y0.clamp(min=0).minimum(heights - 1) * widths,
            starts + (y0 + 1).clamp(min=0).minimum(heights - 1) * widths)
    token = torch.stack([rows[j] + cols[i] for j in (0, 1) for i in (0, 1)], -1)  # [B, Q, nH, L, P, 4]
    weight = torch.stack([wy[j] * wx[i] for j in (0, 1) for i in (0, 1)], -1)
    # row of the value table [B * S * nH, Dh] (value's own memory order)
    base = (torch.arange(batch, device=device).view(batch, 1, 1, 1, 1, 1) * tokens * n_heads
            + torch.arange(n_heads, device=device).view(1, 1, n_heads, 1, 1, 1))
    index = token.long() * n_heads + base
    per_bag = n_levels * n_points * 4
    out = F.embedding_bag(index.reshape(-1, per_bag), value.reshape(-1, head_dim), mode="sum",
                          per_sample_weights=weight.reshape(-1, per_bag).to(value.dtype))
    return out.view(batch, queries, n_heads * head_dim)
