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
- ``aux_neg``: L1 of absent categories' similarity maps to 0 (Eq. 5; mean |cosine|).
- ``par``: Dice of the index-fused map (person n, part k) with n's mask of part k, over the
  (person, part) pairs present in the ground truth, each paired explicitly.
- ``metric``: Eq. 6, sum |A - I| over the category-kernel and the per-image person-kernel cosine
  matrices, divided by (N_cate + N_persons). Person kernels are read at the barycentre cells.

Targets are computed at the feature stride (4) from the full-resolution person-id and part maps.
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
    "ImageTargets", "build_targets", "center_cells", "dice_loss", "focal_center_loss",
    "metric_loss", "UniParserLoss",
]


def dice_loss(pred: Tensor, target: Tensor, eps: float = 1e-3) -> Tensor:
    """Per-map Dice loss. ``pred``, ``target`` [N, h, w] -> [N]. Negative predictions count as 0."""
    p = pred.clamp(min=0).flatten(1)
    g = target.flatten(1).to(p.dtype)
    return 1.0 - (2.0 * (p * g).sum(1) + eps) / ((p * p).sum(1) + (g * g).sum(1) + eps)


def center_cells(
    mask: Tensor, grid: int, *, sigma: float = 0.2, radius: int | None = 1
) -> tuple[Tensor, int]:
    """Positive cells of one person for the S x S heatmap.

    ``mask`` [H, W] bool (the grid spans the whole H x W tensor). Returns (flat indices of the
    positive cells, flat index of the barycentre cell). Coordinates are pixel centres (i + 0.5).
    """
    H, W = mask.shape
    ys, xs = torch.nonzero(mask, as_tuple=True)
    cy, cx = ys.float().mean() + 0.5, xs.float().mean() + 0.5
    box_h = float(ys.max() - ys.min() + 1)
    box_w = float(xs.max() - xs.min() + 1)
    row = min(int(cy * grid / H), grid - 1)
    col = min(int(cx * grid / W), grid - 1)
    half_h, half_w = 0.5 * sigma * box_h, 0.5 * sigma * box_w
    top = int(torch.floor((cy - half_h) * grid / H))
    bottom = int(torch.floor((cy + half_h) * grid / H))
    left = int(torch.floor((cx - half_w) * grid / W))
    right = int(torch.floor((cx + half_w) * grid / W))
    if radius is not None:
        top, bottom = max(top, row - radius), min(bottom, row + radius)
        left, right = max(left, col - radius), min(right, col + radius)
    top, left = max(top, 0), max(left, 0)
    bottom, right = min(bottom, grid - 1), min(right, grid - 1)
    rr = torch.arange(top, bottom + 1)
    cc = torch.arange(left, right + 1)
    cells = (rr[:, None] * grid + cc[None, :]).flatten()
    return cells, row * grid + col


def _downsample(masks: Tensor, stride: int) -> Tensor:
    """[N, H, W] bool -> [N, H/s, W/s] float {0, 1}: a cell is on when >= half of it is on;
    a mask that would vanish keeps every cell it touches (tiny parts survive)."""
    if masks.shape[0] == 0:
        return masks.new_zeros((0, masks.shape[1] // stride, masks.shape[2] // stride), dtype=torch.float32)
    frac = F.avg_pool2d(masks.float().unsqueeze(1), stride).squeeze(1)
    out = frac >= 0.5
    empty = ~out.flatten(1).any(1)
    if bool(empty.any()):
        out[empty] = frac[empty] > 0
    return out.float()


@dataclass
class ImageTargets:
    """Targets of one image at stride 4 (P persons, M kernels, Q (person, part) pairs)."""

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


def build_targets(
    person: Tensor, part: Tensor, num_classes: int, *, grid: int = 40, sigma: float = 0.2,
    radius: int | None = 1, stride: int = 4, ignore_index: int = 255,
) -> ImageTargets:
    """Targets for one image from its person-id map and part map ([H, W] integer tensors).

    A person is the set of pixels with its id AND a foreground part label (1..C-1).
    """
    person, part = person.cpu(), part.cpu().long()
    H, W = part.shape
    fg = (part > 0) & (part < num_classes)
    ids = [int(i) for i in torch.unique(person[fg]) if int(i) > 0]
    full_masks = torch.stack([(person == i) & fg for i in ids]) if ids else torch.zeros((0, H, W), dtype=torch.bool)
    heat = torch.zeros(grid * grid)
    kernel_cells, kernel_person, bary = [], [], []
    for p, mask in enumerate(full_masks):
        cells, centre = center_cells(mask, grid, sigma=sigma, radius=radius)
        heat[cells] = 1.0
        kernel_cells.append(cells)
        kernel_person.append(torch.full_like(cells, p))
        bary.append(centre)
    classes = torch.arange(1, num_classes).view(-1, 1, 1)
    cate_full = part.unsqueeze(0) == classes                        # [K, H, W]
    present = cate_full.flatten(1).any(1)
    # (person, part) pairs present in the ground truth, paired explicitly: key = p * C + part
    key = torch.full((H, W), -1, dtype=torch.long)
    for p, mask in enumerate(full_masks):
        key[mask] = p * num_classes + part[mask]
    keys = torch.unique(key[key >= 0])
    pair_person = torch.div(keys, num_classes, rounding_mode="floor")
    pair_cate = keys - pair_person * num_classes - 1
    pair_full = key.unsqueeze(0) == keys.view(-1, 1, 1)              # [Q, H, W]
    valid_full = (part != ignore_index).float()
    valid = (F.avg_pool2d(valid_full[None, None], stride)[0, 0] >= 0.5).float()
    empty = torch.zeros(0, dtype=torch.long)
    return ImageTargets(
        heat=heat.view(grid, grid),
        kernel_cells=torch.cat(kernel_cells) if kernel_cells else empty,
        kernel_person=torch.cat(kernel_person) if kernel_person else empty,
        bary_cells=torch.tensor(bary, dtype=torch.long),
        ins_masks=_downsample(full_masks, stride),
        cate_masks=_downsample(cate_full, stride),
        present=present,
        pair_person=pair_person,
        pair_cate=pair_cate,
        pair_masks=_downsample(pair_full, stride),
        valid=valid,
    )


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
        center_weight: float = 1.0, aux_weight: float = 3.0, aux_neg_weight: float = 3.0,
        par_weight: float = 3.0, metric_weight: float = 1.0, focal_alpha: float = 0.25,
        focal_gamma: float = 2.0, ignore_index: int = 255,
    ):
        super().__init__()
        self.num_classes, self.grid, self.sigma, self.radius = num_classes, grid, sigma, center_radius
        self.weights = {"center": center_weight, "aux_ins": aux_weight, "aux_cate": aux_weight,
                        "aux_neg": aux_neg_weight, "par": par_weight, "metric": metric_weight}
        self.focal_alpha, self.focal_gamma, self.ignore_index = focal_alpha, focal_gamma, ignore_index

    def targets(self, person: Tensor, part: Tensor) -> list[ImageTargets]:
        return [build_targets(person[b], part[b], self.num_classes, grid=self.grid, sigma=self.sigma,
                              radius=self.radius, ignore_index=self.ignore_index) for b in range(len(part))]

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
