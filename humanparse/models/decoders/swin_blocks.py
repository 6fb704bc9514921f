"""Swin transformer blocks: (shifted) window self-attention with relative position bias, then an MLP.

Maps of any size work: a block pads to a multiple of the window internally and masks the padded keys.

Export: sizes are Python ints in eager mode and 0-dim tensors while ``torch.jit.trace`` (or the
TorchScript-based ONNX exporter) records the graph. The size arithmetic (padding, shift, mask) is
written without ``int()`` or Python branches on sizes, and a traced block always builds the mask and
rolls by gathering, so one traced graph is correct at every map size (padded or not, one window or many).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from humanparse.errors import ConfigError

__all__ = ["SwinBlock", "SwinStage"]

_MASKED = -100.0  # additive logit for forbidden keys (finite: a padded query with no allowed key stays finite)


def _relative_position_index(window: int) -> Tensor:
    """[window^2, window^2] index into the (2*window-1)^2 bias table."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window - 1)  # [N, N, 2], >= 0
    return rel[..., 0] * (2 * window - 1) + rel[..., 1]


def _windows(x: Tensor, window: int) -> Tensor:
    """[B, H, W, C] -> [B * nW, window^2, C] (H, W multiples of window)."""
    b, h, w, c = x.shape
    x = x.view(b, h // window, window, w // window, window, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window * window, c)


def _unwindows(x: Tensor, window: int, b: int, h: int, w: int) -> Tensor:
    x = x.view(b, h // window, w // window, window, window, -1)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(b, h, w, -1)


def _is_traced(size) -> bool:
    """A size read from a tensor is a 0-dim tensor only while a tracer records the graph."""
    return isinstance(size, Tensor)


def _roll(x: Tensor, shift, h, w, *, back: bool = False) -> Tensor:
    """``x.roll((-shift, -shift), dims=(1, 2))`` on [B, h, w, C] (``back``: by ``+shift``), 0 <= shift <= min(h, w).

    With a traced shift (a tensor) the roll is a gather with computed indices, which a trace records
    symbolically; ``torch.roll`` would keep the export-time shift.
    """
    if not _is_traced(shift):
        return x.roll(shifts=(shift, shift) if back else (-shift, -shift), dims=(1, 2)) if shift else x
    # forward: out[i] = x[(i + shift) mod n]; back: out[i] = x[(i + n - shift) mod n]
    # (non-negative operands only: exported integer division truncates)
    rows = torch.arange(h, device=x.device) + ((h - shift) if back else shift)
    cols = torch.arange(w, device=x.device) + ((w - shift) if back else shift)
    return x.index_select(1, rows % h).index_select(2, cols % w)


def _attention_mask(h: int, w: int, valid_h: int, valid_w: int, window: int, shift: int, device) -> Tensor | None:
    """[nW, N, N] additive mask on the (rolled, padded) h x w map: keys from another shift region, or
    padding, are forbidden. Built from comparisons only (no in-place slice writes), which exports cleanly.

    ``None`` when nothing is masked; never while tracing (sizes are tensors), where the mask is always
    built so that the graph also holds for sizes that need one.
    """
    if not _is_traced(h) and not _is_traced(shift) and shift == 0 and valid_h == h and valid_w == w:
        return None
    rows = torch.arange(h, device=device)
    cols = torch.arange(w, device=device)
    # shift regions, in the rolled frame: [0, n - window), [n - window, n - shift), [n - shift, n);
    # with no shift, one region (a factor 0/1, or a traced bool: never a branch on a traced value)
    active = shift > 0 if _is_traced(shift) else int(shift > 0)
    row_region = ((rows >= h - window).long() + (rows >= h - shift).long()) * active
    col_region = ((cols >= w - window).long() + (cols >= w - shift).long()) * active
    regions = row_region[:, None] * 3 + col_region[None, :]
    # padding is bottom/right of the unrolled map: its rolled position is (i + shift) mod n
    padding = (((rows + shift) % h)[:, None] >= valid_h) | (((cols + shift) % w)[None, :] >= valid_w)
    regions = regions.masked_fill(padding, -1)
    keys = _windows(regions[None, :, :, None], window).squeeze(-1)  # [nW, N]
    mask = (keys[:, None, :] != keys[:, :, None]) | (keys[:, None, :] < 0)
    return mask.float() * _MASKED


class WindowAttention(nn.Module):
    def __init__(self, dim: int, num_heads: int, window: int):
        super().__init__()
        self.num_heads, self.window = num_heads, window
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)
        self.bias_table = nn.Parameter(torch.zeros((2 * window - 1) ** 2, num_heads))
        nn.init.trunc_normal_(self.bias_table, std=0.02)
        self.register_buffer("bias_index", _relative_position_index(window), persistent=False)

    def forward(self, x: Tensor, mask: Tensor | None) -> Tensor:
        """x [B*nW, N, C]; mask [nW, N, N] or None."""
        bw, n, c = x.shape
        q, k, v = self.qkv(x).view(bw, n, 3, self.num_heads, c // self.num_heads).permute(2, 0, 3, 1, 4).unbind(0)
        bias = self.bias_table[self.bias_index].permute(2, 0, 1)  # [nH, N, N]
        if mask is None:
            attn_mask = bias.unsqueeze(0)
        else:
            nw = mask.shape[0]
            attn_mask = (bias.unsqueeze(0) + mask.unsqueeze(1)).repeat(bw // nw, 1, 1, 1)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask.to(q.dtype))
        return self.proj(out.transpose(1, 2).reshape(bw, n, c))


class SwinBlock(nn.Module):
    """x + WMSA(LN(x)), then x + MLP(LN(x)), on [B, H, W, C]; ``shift`` rolls by window // 2 first."""

    def __init__(self, dim: int, num_heads: int, *, window: int = 8, shift: bool = False, mlp_ratio: float = 4.0):
        super().__init__()
        if dim % num_heads != 0:
            raise ConfigError(f"Swin block dim {dim} must be divisible by num_heads {num_heads}")
        self.window, self.shift = window, window // 2 if shift else 0
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: Tensor) -> Tensor:
        b, h, w, _ = x.shape
        ws = self.window
        # positive operands only: a traced size is exported with C-style (truncating) division
        hp, wp = (h + ws - 1) // ws * ws, (w + ws - 1) // ws * ws
        # one window: nothing to shift across. `|` and `*` keep this an int (eager) or a traced value
        shift = self.shift * ((hp > ws) | (wp > ws)) if self.shift else 0
        y = F.pad(self.norm1(x), (0, 0, 0, wp - w, 0, hp - h))
        y = _roll(y, shift, hp, wp)
        mask = _attention_mask(hp, wp, h, w, ws, shift, x.device)
        y = _unwindows(self.attn(_windows(y, ws), mask), ws, b, hp, wp)
        y = _roll(y, shift, hp, wp, back=True)
        x = x + y[:, :h, :w, :]
        return x + self.mlp(self.norm2(x))


class SwinStage(nn.Module):
    """``depth`` Swin blocks, shifted windows on every second one; NCHW in and out."""

    def __init__(self, dim: int, depth: int, num_heads: int, *, window: int = 8, mlp_ratio: float = 4.0):
        super().__init__()
        self.blocks = nn.ModuleList(
            SwinBlock(dim, num_heads, window=window, shift=i % 2 == 1, mlp_ratio=mlp_ratio) for i in range(depth)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x.permute(0, 2, 3, 1)
        for block in self.blocks:
            x = block(x)
        return x.permute(0, 3, 1, 2)
