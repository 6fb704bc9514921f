"""Multi-scale deformable attention (Deformable DETR), pure PyTorch.

``ms_deform_attn`` is the op: bilinear sampling with ``F.grid_sample`` (``align_corners=False``, zero
padding) at learned locations of every level, weighted and summed. ``MSDeformAttn`` owns the parameters.
Per-level spatial sizes are Python ints in eager mode (0-dim tensors while ``torch.jit.trace`` / the
TorchScript-based ONNX exporter records the graph); the code only does arithmetic on them, never
``int()`` or a Python branch, so a traced graph stays valid at every input size.

Precision: the offset and attention-weight projections, sampling locations, the bilinear sampling and
the attention-weight softmax always run in float32, with autocast disabled around them (a bf16 location
is off by up to half a pixel on a 128-wide map); the value and output projections follow autocast, and
the result is returned in the value's dtype.

Implementations of the op (``MSDeformAttn(impl=...)``, config key ``model.encoder.attn_impl``), chosen
explicitly, never by catching an error:
  ``gather``    the default: one fused gather over a zero-padded value table (``ms_deform_attn_gather``,
                int32 indices and bilinear weights of the four corners of every level in one bag); measured
                2.1x faster than ``embedding_bag`` on a CPU (one call at the resnet50 512x512 sizes,
                docs/benchmarks.md); gradients as the others;
  ``pytorch``   the function below, eager (runs everywhere; the reference; what export traces);
  ``compiled``  the same function through ``torch.compile`` (Inductor fuses the sampling, weighting and
                sum, so the [B*heads, head_dim, Q, levels*points] samples are not written to memory); for
                GPUs: on a CPU it needs a C++ compiler and measured 4x slower than ``pytorch``;
  ``embedding_bag`` the op as one weighted gather (``ms_deform_attn_bag``): no stacked samples; measured
                2x faster than ``pytorch`` on a CPU (the default before ``gather``).
Configs and checkpoints that name any of them keep loading; ``humanparse.engine.fast_path`` picks per device.
Export always traces the ``pytorch`` version.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from humanparse.errors import ConfigError, unknown_key_message
from humanparse.models.encoders.ms_deform_attn_bag import ms_deform_attn_bag
from humanparse.models.encoders.ms_deform_attn_gather import ms_deform_attn_gather

__all__ = ["DEFAULT_IMPL", "IMPLS", "MSDeformAttn", "compiled_ms_deform_attn", "ms_deform_attn", "set_attn_impl"]

IMPLS = ("gather", "pytorch", "compiled", "embedding_bag")
DEFAULT_IMPL = "gather"


def ms_deform_attn(
    value: Tensor,
    spatial_shapes: Sequence[tuple[int, int]],
    sampling_locations: Tensor,
    attention_weights: Tensor,
) -> Tensor:
    """Sample and mix values from several feature levels.

    Args:
        value: [B, S, n_heads, head_dim], the levels flattened row-major and concatenated,
            S = sum(h * w for h, w in spatial_shapes).
        spatial_shapes: [(h, w)] per level, Python ints (traced sizes while exporting).
        sampling_locations: [B, Q, n_heads, n_levels, n_points, 2], (x, y) in [0, 1] of each level
            (0 = left/top edge, 1 = right/bottom edge); outside samples read zeros.
        attention_weights: [B, Q, n_heads, n_levels, n_points].
    Returns:
        [B, Q, n_heads * head_dim].
    """
    batch, _, n_heads, head_dim = value.shape
    _, queries, _, n_levels, n_points, _ = sampling_locations.shape
    values = value.split([h * w for h, w in spatial_shapes], dim=1)
    grids = 2 * sampling_locations - 1  # grid_sample wants [-1, 1]
    sampled = []
    for level, (h, w) in enumerate(spatial_shapes):
        # [B, h*w, nH, Dh] -> [B*nH, Dh, h, w]
        v = values[level].flatten(2).transpose(1, 2).reshape(batch * n_heads, head_dim, h, w)
        # [B, Q, nH, P, 2] -> [B*nH, Q, P, 2]
        g = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        sampled.append(F.grid_sample(v, g, mode="bilinear", padding_mode="zeros", align_corners=False))
    stacked = torch.stack(sampled, dim=-2).flatten(-2)  # [B*nH, Dh, Q, L*P]
    weights = attention_weights.transpose(1, 2).reshape(batch * n_heads, 1, queries, n_levels * n_points)
    out = (stacked * weights).sum(-1)  # [B*nH, Dh, Q]
    return out.view(batch, n_heads * head_dim, queries).transpose(1, 2)


@functools.cache
def compiled_ms_deform_attn():
    """``ms_deform_attn`` compiled by ``torch.compile`` (built once, on first use; one graph, no breaks).

    Sizes are specialised at first and made dynamic by Dynamo when a second input size shows up.
    """
    return torch.compile(ms_deform_attn, fullgraph=True)


def check_impl(impl: str) -> str:
    if impl not in IMPLS:
        raise ConfigError(unknown_key_message("deformable-attention impl", str(impl), IMPLS))
    return impl


def set_attn_impl(module: nn.Module, impl: str) -> None:
    """Switch every ``MSDeformAttn`` inside ``module`` to ``impl`` (exporters force ``pytorch``)."""
    check_impl(impl)
    for m in module.modules():
        if isinstance(m, MSDeformAttn):
            m.impl = impl


class MSDeformAttn(nn.Module):
    """Deformable attention over ``n_levels`` maps: each query looks at ``n_points`` per level and head.

    ``forward(query [B, Q, C], reference_points [B, Q, n_levels, 2] in [0, 1] (x, y),
    value [B, S, C], spatial_shapes [(h, w)] * n_levels) -> [B, Q, C]``.
    Offsets are in units of each level's pixels, so one offset means the same distance on every level.
    ``impl`` chooses how the op runs (``IMPLS``; same results within floating-point tolerance).
    """

    def __init__(self, dim: int = 256, *, n_levels: int = 3, n_heads: int = 8, n_points: int = 4,
                 impl: str = DEFAULT_IMPL):
        super().__init__()
        if dim % n_heads != 0:
            raise ConfigError(f"MSDeformAttn dim {dim} must be divisible by n_heads {n_heads}")
        self.dim, self.n_levels, self.n_heads, self.n_points = dim, n_levels, n_heads, n_points
        self.impl = check_impl(impl)
        self.sampling_offsets = nn.Linear(dim, n_heads * n_levels * n_points * 2)
        self.attention_weights = nn.Linear(dim, n_heads * n_levels * n_points)
        self.value_proj = nn.Linear(dim, dim)
        self.output_proj = nn.Linear(dim, dim)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Deformable DETR's start: head h samples along direction 2*pi*h/n_heads, point p at distance p+1."""
        nn.init.zeros_(self.sampling_offsets.weight)
        angles = torch.arange(self.n_heads, dtype=torch.float32) * (2.0 * math.pi / self.n_heads)
        grid = torch.stack([angles.cos(), angles.sin()], -1)
        grid = grid / grid.abs().max(-1, keepdim=True).values  # onto the unit square's border
        grid = grid.view(self.n_heads, 1, 1, 2).repeat(1, self.n_levels, self.n_points, 1)
        grid = grid * torch.arange(1, self.n_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        with torch.no_grad():
            self.sampling_offsets.bias.copy_(grid.flatten())
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        for proj in (self.value_proj, self.output_proj):
            nn.init.xavier_uniform_(proj.weight)
            nn.init.zeros_(proj.bias)

    def forward(
        self,
        query: Tensor,
        reference_points: Tensor,
        value: Tensor,
        spatial_shapes: Sequence[tuple[int, int]],
    ) -> Tensor:
        if len(spatial_shapes) != self.n_levels:
            raise ValueError(f"MSDeformAttn built for {self.n_levels} levels, got {len(spatial_shapes)}")
        batch, queries, _ = query.shape
        nh, nl, npt = self.n_heads, self.n_levels, self.n_points
        v = self.value_proj(value).view(batch, value.shape[1], nh, self.dim // nh)
        with torch.autocast(device_type=query.device.type, enabled=False):  # fp32 even under autocast
            q32 = query.float()
            offsets = F.linear(q32, self.sampling_offsets.weight.float(), self.sampling_offsets.bias.float())
            weights = F.linear(q32, self.attention_weights.weight.float(), self.attention_weights.bias.float())
        offsets = offsets.view(batch, queries, nh, nl, npt, 2)
        weights = weights.view(batch, queries, nh, nl * npt).softmax(-1).view(batch, queries, nh, nl, npt)
        # offsets are in pixels of each level: x / w, y / h. Dividing by the sizes themselves (no tensor
        # built from them) keeps a traced size symbolic, so an export works at every input size.
        scaled = torch.stack(
            [torch.stack([offsets[:, :, :, lvl, :, 0] / w, offsets[:, :, :, lvl, :, 1] / h], -1)
             for lvl, (h, w) in enumerate(spatial_shapes)], 3)
        locations = reference_points.float()[:, :, None, :, None, :] + scaled
        exporting = torch.jit.is_tracing() or torch.jit.is_scripting() or torch.onnx.is_in_onnx_export()
        needs_grad = torch.is_grad_enabled() and (v.requires_grad or locations.requires_grad)
        if (exporting or needs_grad) and self.impl in ("gather", "embedding_bag"):
            # exports: their index arithmetic is done on Python ints of one input size, which a traced graph
            # would bake in; training: embedding_bag's backward accumulates in a thread-dependent order, which
            # breaks bit-exact resume. grid_sample gives the same values (tested in float64) in both cases.
            op = ms_deform_attn
        elif self.impl == "compiled":
            op = compiled_ms_deform_attn()
        elif self.impl == "embedding_bag":
            op = ms_deform_attn_bag
        elif self.impl == "gather":
            op = ms_deform_attn_gather
        else:
            op = ms_deform_attn
        out = op(v.float(), spatial_shapes, locations, weights).to(v.dtype)
        return self.output_proj(out)
