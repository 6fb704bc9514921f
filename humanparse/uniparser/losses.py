"""UniParser losses (paper Eq. 4-6) and their targets.

L_total = w_c * L_c + w_aux * L_aux + w_par * L_par + w_metric * L_metric, with the paper's weights
1 / 3 / 3 / 1 (appendix 6.2). Every term is returned separately, already weighted:

- ``center``: sigmoid focal loss (alpha 0.25, gamma 2) on the S x S Center Locator logits, summed
  and divided by (number of positive cells + 1). Positives: the cells covered by a box of
  (sigma * box height, sigma * box width) centred on each person's barycentre (sigma = 0.2), also
  limited to +-``center_radius`` cells around the barycentre cell (the official code uses 1;
  ``None`` keeps the paper's box alone).
- ``aux_ins``: Dice of every instance-kernel similarity map with its person's mask (mean over kernels).
- ``aux_cate``: Dice of every present category's similarity map with the category mask.
  (``aux_ins`` and ``aux_cate`` have separate weights, both lambda_aux = 3 by default, so that the
  rows of the paper's Table 4(b) can be configured.)
- ``aux_neg``: L1 of absent categories' similarity maps to 0 (Eq. 5; mean |cosine|).
- ``par``: Dice of the index-fused map (person n, part k) with n's mask of part k, over the
  (person, part) pairs present in the ground truth, each paired explicitly.
- ``metric``: Eq. 6, sum |A - I| over the category-kernel and the per-image person-kernel cosine
  matrices, divided by (N_cate + N_persons). Person kernels are read at the barycentre cells.

Targets are computed at the feature stride (4) from one full-resolution part map per person
(:func:`build_targets_from_maps`; persons may overlap, as in MHPv2) or from a person-id map and a
part map (:func:`build_targets`, CIHP and composed scenes). They are built on the device of the
label maps (the model's device in training), vectorised over persons, pairs and categories: no
Python loop per person and no [C, H, W] one-hot at full resolution
(``benchmarks/bench_uniparser_targets.py`` measures it).
Dice: negative inputs count as 0; 1 - (2 sum pg + eps) / (sum p^2 + sum g^2 + eps).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor
from torchvision.ops import sigmoid_focal_loss

from .model import index_fusion, sample_kernels

__all__ = [
    "ImageTargets", "build_targets", "build_targets_from_maps", "person_maps_from_ids", "centre_region",
    "center_cells", "dice_loss", "focal_center_loss", "metric_loss", "UniParserLoss",
]


def dice_loss(pred: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """Per-map Dice loss. ``pred``, ``target`` [N, h, w] -> [N]. Negative predictions count as 0."""
    p = pred.clamp(min=0).flatten(1)
    g = target.flatten(1).to(p.dtype)
    return 1.0 - (2.0 * (p * g).sum(1) + eps) / ((p * p).sum(1) + (g * g).sum(1) + eps)


def _person_geometry(p_idx: Tensor, y: Tensor, x: Tensor, num_persons: int):
    """Barycentres (pixel centres, float64) and box sizes of persons given as pixel lists."""
    P = num_persons
    area = torch.bincount(p_idx, minlength=P).double()
    cy = torch.bincount(p_idx, weights=y.double(), minlength=P) / area + 0.5
    cx = torch.bincount(p_idx, weights=x.double(), minlength=P) / area + 0.5
    big = torch.iinfo(torch.long).max

    def extent(v: Tensor) -> Tensor:
        lo = torch.full((P,), big, dtype=torch.long, device=v.device).scatter_reduce(0, p_idx, v, "amin")
        hi = torch.full((P,), -1, dtype=torch.long, device=v.device).scatter_reduce(0, p_idx, v, "amax")
        return (hi - lo + 1).double()

    return cy, cx, extent(y), extent(x)


def _region(cy, cx, box_h, box_w, H, W, grid, sigma, radius, device) -> tuple[Tensor, Tensor]:
    row = torch.clamp(torch.floor(cy * grid / H), max=grid - 1).long()
    col = torch.clamp(torch.floor(cx * grid / W), max=grid - 1).long()
    half_h, half_w = 0.5 * sigma * box_h, 0.5 * sigma * box_w
    top = torch.floor((cy - half_h) * grid / H).long()
    bottom = torch.floor((cy + half_h) * grid / H).long()
    left = torch.floor((cx - half_w) * grid / W).long()
    right = torch.floor((cx + half_w) * grid / W).long()
    if radius is not None:
        top, bottom = torch.maximum(top, row - radius), torch.minimum(bottom, row + radius)
        left, right = torch.maximum(left, col - radius), torch.minimum(right, col + radius)
    g = torch.arange(grid, device=device)
    in_rows = (g >= top[:, None].clamp(min=0)) & (g <= bottom[:, None].clamp(max=grid - 1))   # [P, S]
    in_cols = (g >= left[:, None].clamp(min=0)) & (g <= right[:, None].clamp(max=grid - 1))
    return in_rows[:, :, None] & in_cols[:, None, :], row * grid + col


def centre_region(
    masks: Tensor, grid: int, *, sigma: float = 0.2, radius: int | None = 1
) -> tuple[Tensor, Tensor]:
    """Positive cells of every person for the S x S heatmap, all persons at once.

    ``masks`` [P, H, W] bool, each non-empty (the grid spans the whole H x W tensor). Returns
    (``cells`` [P, S, S] bool: the positive region of each person, ``centre`` [P] flat index of each
    barycentre cell). Barycentres use pixel centres (i + 0.5). The region is the box of
    (sigma * box height, sigma * box width) around the barycentre, limited to +-``radius`` cells
    around the barycentre cell (``None``: no limit) and to the grid.
    """
    P, H, W = masks.shape
    p_idx, y, x = torch.nonzero(masks, as_tuple=True)
    return _region(*_person_geometry(p_idx, y, x, P), H, W, grid, sigma, radius, masks.device)


def center_cells(
    mask: Tensor, grid: int, *, sigma: float = 0.2, radius: int | None = 1
) -> tuple[Tensor, int]:
    """Positive cells of one person: (flat indices of the positive cells, flat index of the
    barycentre cell). ``mask`` [H, W] bool; see :func:`centre_region`."""
    cells, centre = centre_region(mask[None], grid, sigma=sigma, radius=radius)
    return torch.nonzero(cells[0].flatten(), as_tuple=True)[0], int(centre[0])


def _cell_fractions(counts: Tensor, stride: int) -> Tensor:
    """Per-cell pixel counts [N, h*w] -> on/off cells: a cell is on when >= half of it is on; a map
    that would vanish keeps every cell it touches (tiny parts survive)."""
    frac = counts / float(stride * stride)
    out = frac >= 0.5
    empty = ~out.any(1)
    out = torch.where(empty[:, None], frac > 0, out)
    return out.float()


@dataclass
class ImageTargets:
    """Targets of one image at stride 4 (P persons, M kernels, Q (person, part) pairs), on the device
    of the label maps they were built from."""

    heat: Tensor            # [S, S] 0/1
    kernel_cells: Tensor    # [M] flat S x S cells, one kernel each
    kernel_person: Tensor   # [M] person index (0..P-1) of each kernel
    bary_cells: Tensor      # [P] barycentre cell of each person
    ins_masks: Tensor       # [P, h, w]
    cate_masks: Tensor      # [K, h, w] (K = num_classes - 1; category k is label k + 1)
    present: Tensor         # [K] bool
    pair_person: Tensor     # [Q]
    pair_cate: Tensor       # [Q] category index 0..K-1
    pair_masks: Tensor      # [Q, h, w]
    valid: Tensor           # [h, w] float: 0 where the label is ignore (255) or padding


def _targets_from_pixels(
    p_idx: Tensor, y: Tensor, x: Tensor, label: Tensor, num_persons: int, shape: tuple[int, int],
    valid: Tensor, num_classes: int, *, grid: int, sigma: float, radius: int | None, stride: int,
) -> ImageTargets:
    """The targets from the list of foreground (person, pixel) entries: person index ``p_idx`` in
    0..P-1 (every person has at least one entry), pixel (``y``, ``x``) and its part ``label`` in 1..C-1.
    A pixel may appear for several persons (overlap). O(entries): no loop, no [C, H, W] map."""
    dev = valid.device
    H, W = shape
    h, w = H // stride, W // stride
    P, K, C, n_cells = num_persons, num_classes - 1, num_classes, (H // stride) * (W // stride)
    cells, bary = _region(*_person_geometry(p_idx, y, x, P), H, W, grid, sigma, radius, dev)
    kernel_person, kernel_cells = torch.nonzero(cells.flatten(1), as_tuple=True)
    cell = (y // stride) * w + x // stride
    ins_counts = torch.bincount(p_idx * n_cells + cell, minlength=P * n_cells).view(P, n_cells)
    # (person, part) pairs present in the ground truth, paired explicitly: key = p * C + part (ascending)
    key = p_idx * C + label
    key_counts = torch.bincount(key, minlength=P * C)
    keys = torch.nonzero(key_counts, as_tuple=True)[0]
    pair_of = (torch.cumsum(key_counts > 0, 0) - 1)[key]
    pair_counts = torch.bincount(pair_of * n_cells + cell, minlength=len(keys) * n_cells).view(len(keys), n_cells)
    pair_person = torch.div(keys, C, rounding_mode="floor")
    pair_cate = keys - pair_person * C - 1
    # category masks: the union over persons; a pixel where persons overlap counts once per category
    pixel = y * W + x
    shared = torch.bincount(pixel, minlength=H * W)[pixel] > 1
    cate_code = (label - 1) * n_cells + cell
    if bool(shared.any()):
        dup = torch.unique((label[shared] - 1) * (H * W) + pixel[shared])
        dup_cell = (dup % (H * W) // W // stride) * w + (dup % (H * W) % W) // stride
        cate_code = torch.cat([cate_code[~shared], torch.div(dup, H * W, rounding_mode="floor") * n_cells + dup_cell])
    cate_counts = torch.bincount(cate_code, minlength=K * n_cells).view(K, n_cells)
    present = cate_counts.sum(1) > 0
    cate_masks = torch.zeros((K, n_cells), device=dev)
    if bool(present.any()):
        cate_masks[present] = _cell_fractions(cate_counts[present].float(), stride)
    valid_ds = F.avg_pool2d(valid.float()[None, None], stride)[0, 0] >= 0.5
    return ImageTargets(
        heat=cells.any(0).float() if P else torch.zeros((grid, grid), device=dev),
        kernel_cells=kernel_cells,
        kernel_person=kernel_person,
        bary_cells=bary,
        ins_masks=_cell_fractions(ins_counts.float(), stride).view(P, h, w),
        cate_masks=cate_masks.view(K, h, w),
        present=present,
        pair_person=pair_person,
        pair_cate=pair_cate,
        pair_masks=_cell_fractions(pair_counts.float(), stride).view(len(keys), h, w),
        valid=valid_ds.float(),
    )


def person_maps_from_ids(person: Tensor, part: Tensor, num_classes: int) -> Tensor:
    """A person-id map and a part map ([H, W]) -> one part map per person [P, H, W] (ids ascending;
    0 off the person). A person is the set of pixels with its id AND a foreground part (1..C-1);
    ids with no such pixel give no map."""
    part = part.long()
    fg = (part > 0) & (part < num_classes)
    ids = torch.unique(person[fg])
    ids = ids[ids > 0]
    own = person.unsqueeze(0) == ids.view(-1, 1, 1)
    return torch.where(own & fg, part, torch.zeros_like(part))


def build_targets_from_maps(
    maps: Tensor, valid: Tensor, num_classes: int, *, grid: int = 40, sigma: float = 0.2,
    radius: int | None = 1, stride: int = 4,
) -> ImageTargets:
    """Targets for one image from one part map per person, on the maps' device.

    ``maps`` [P, H, W] integer: person p's part ids on its pixels, 0 elsewhere; values outside
    1..C-1 (e.g. 255) are not part of the person. Persons may overlap (MHPv2): each keeps its own
    mask, pairs and kernels; a category's mask is the union over persons. ``valid`` [H, W] bool:
    pixels that count in the losses (False at ignore labels and padding). H and W are multiples of
    ``stride``. Persons with no foreground pixel are dropped.
    """
    fg = (maps > 0) & (maps < num_classes)
    keep = fg.flatten(1).any(1)
    fg = fg[keep]
    p_idx, y, x = torch.nonzero(fg, as_tuple=True)
    label = maps[keep][p_idx, y, x].long()
    return _targets_from_pixels(p_idx, y, x, label, int(fg.shape[0]), tuple(maps.shape[-2:]), valid, num_classes,
                                grid=grid, sigma=sigma, radius=radius, stride=stride)


def build_targets(
    person: Tensor, part: Tensor, num_classes: int, *, grid: int = 40, sigma: float = 0.2,
    radius: int | None = 1, stride: int = 4, ignore_index: int = 255,
) -> ImageTargets:
    """Targets for one image from its person-id map and part map ([H, W] integer tensors), on their
    device, without building per-person maps. A person is the set of pixels with its id AND a
    foreground part label (1..C-1); persons are numbered by ascending id."""
    part = part.long()
    y, x = torch.nonzero((part > 0) & (part < num_classes) & (person > 0), as_tuple=True)
    ids = person[y, x].long()
    present = torch.bincount(ids) > 0
    p_idx = (torch.cumsum(present, 0) - 1)[ids]
    return _targets_from_pixels(p_idx, y, x, part[y, x], int(present.sum()), tuple(part.shape), part != ignore_index,
                                num_classes, grid=grid, sigma=sigma, radius=radius, stride=stride)


def focal_center_loss(logits: Tensor, heat: Tensor, *, alpha: float = 0.25, gamma: float = 2.0) -> Tensor:
    """Sigmoid focal loss summed over all cells, divided by (positives + 1). [B,1,S,S] vs [B,S,S]."""
    target = heat.to(logits.dtype).view_as(logits)
    loss = sigmoid_focal_loss(logits, target, alpha=alpha, gamma=gamma, reduction="sum")
    return loss / (target.sum() + 1.0)


def metric_loss(cate_kernels: Tensor, person_kernels: list[Tensor]) -> Tensor:
    """Eq. 6: (sum |A_cate - I| + sum over images of sum |A_ins - I|) / (N_cate + N_persons).

    ``cate_kernels`` [K, D] and each ``person_kernels[b]`` [P_b, D] are unit vectors.
    """
    a_cate = cate_kernels @ cate_kernels.t()
    total = (a_cate - torch.eye(len(a_cate), device=a_cate.device, dtype=a_cate.dtype)).abs().sum()
    count = len(cate_kernels)
    for k in person_kernels:
        if len(k) == 0:
            continue
        a_ins = k @ k.t()
        total = total + (a_ins - torch.eye(len(k), device=k.device, dtype=k.dtype)).abs().sum()
        count += len(k)
    return total / count


def _mean_or_zero(values: list[Tensor], anchor: Tensor) -> Tensor:
    values = [v for v in values if v.numel()]
    if not values:
        return anchor.sum() * 0.0  # keeps the graph connected when a batch has no such map
    return torch.cat(values).mean()


class UniParserLoss(torch.nn.Module):
    """Computes the weighted loss terms from the network outputs and the batch's label maps."""

    def __init__(
        self, *, num_classes: int, grid: int = 40, sigma: float = 0.2, center_radius: int | None = 1,
        center_weight: float = 1.0, aux_weight: float = 3.0, aux_ins_weight: float | None = None,
        aux_cate_weight: float | None = None, aux_neg_weight: float = 3.0,
        par_weight: float = 3.0, metric_weight: float = 1.0, focal_alpha: float = 0.25,
        focal_gamma: float = 2.0, ignore_index: int = 255,
    ):
        super().__init__()
        self.num_classes, self.grid, self.sigma, self.radius = num_classes, grid, sigma, center_radius
        ins_w = aux_weight if aux_ins_weight is None else aux_ins_weight
        cate_w = aux_weight if aux_cate_weight is None else aux_cate_weight
        self.weights = {"center": center_weight, "aux_ins": ins_w, "aux_cate": cate_w,
                        "aux_neg": aux_neg_weight, "par": par_weight, "metric": metric_weight}
        self.focal_alpha, self.focal_gamma, self.ignore_index = focal_alpha, focal_gamma, ignore_index

    def targets(self, person: Tensor, part: Tensor, person_parts: list[Tensor | None] | None = None) -> list[ImageTargets]:
        """Targets of a batch, on the device of ``part``. ``person_parts[b]`` (one part map per person,
        [P, H, W]) replaces image b's id map where given (overlapping persons, MHPv2)."""
        out = []
        for b in range(len(part)):
            maps = person_parts[b] if person_parts is not None else None
            if maps is None:
                maps = person_maps_from_ids(person[b], part[b], self.num_classes)
            out.append(build_targets_from_maps(maps.to(part.device), part[b] != self.ignore_index, self.num_classes,
                                               grid=self.grid, sigma=self.sigma, radius=self.radius))
        return out

    def forward(self, outputs: dict[str, Tensor], targets: list[ImageTargets]) -> dict[str, Tensor]:
        ins_feats = outputs["ins_feats"].float()
        cate_sim = outputs["cate_sim"].float()
        dev = ins_feats.device
        heat = torch.stack([t.heat for t in targets]).to(dev)
        terms = {"center": focal_center_loss(outputs["center_logits"].float(), heat,
                                             alpha=self.focal_alpha, gamma=self.focal_gamma)}
        d_ins, d_cate, l_neg, d_par, person_kernels = [], [], [], [], []
        for b, t in enumerate(targets):
            valid = t.valid.to(dev)
            kernels = sample_kernels(ins_feats[b], t.kernel_cells.to(dev), self.grid)
            sim = torch.einsum("md,dhw->mhw", kernels, ins_feats[b]) * valid
            kp = t.kernel_person.to(dev)
            d_ins.append(dice_loss(sim, t.ins_masks.to(dev)[kp]))
            present = t.present.to(dev)
            cs = cate_sim[b] * valid
            d_cate.append(dice_loss(cs[present], t.cate_masks.to(dev)[present]))
            absent = cs[~present]
            if len(absent):
                l_neg.append(absent.abs().flatten(1).sum(1) / valid.sum().clamp(min=1.0))
            n_persons = len(t.bary_cells)
            if n_persons:
                # one instance map per person: element-wise max over its kernels' maps
                flat = sim.flatten(1)
                ins_map = flat.new_full((n_persons, flat.shape[1]), -1.0).scatter_reduce(
                    0, kp[:, None].expand_as(flat), flat, reduce="amax", include_self=False
                ).view(n_persons, *sim.shape[1:])
                pp, pc = t.pair_person.to(dev), t.pair_cate.to(dev)
                fused = index_fusion(ins_map, cs)[pp, pc]
                d_par.append(dice_loss(fused, t.pair_masks.to(dev)))
            person_kernels.append(sample_kernels(ins_feats[b], t.bary_cells.to(dev), self.grid))
        anchor = ins_feats
        terms["aux_ins"] = _mean_or_zero(d_ins, anchor)
        terms["aux_cate"] = _mean_or_zero(d_cate, anchor)
        terms["aux_neg"] = _mean_or_zero(l_neg, anchor)
        terms["par"] = _mean_or_zero(d_par, anchor)
        terms["metric"] = metric_loss(outputs["cate_kernels"].float(), person_kernels)
        return {name: self.weights[name] * value for name, value in terms.items()}
