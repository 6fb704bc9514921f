"""UniParser inference: network outputs -> persons, without any box or mask suppression step.

1. Centres: the Center Locator heatmap (sigmoid) keeps the cells that are local maxima of a
   ``peak_kernel`` x ``peak_kernel`` max-pool window and exceed ``theta_ctr`` (0.1), at most
   ``max_persons`` of them (highest first). One tensor comparison, no loop.
2. Each centre's instance kernel is read from the normalised IFSB map at the centre of its cell
   (as in training) and correlated with the map: one cosine map per person.
3. Index fusion with a binary instance mask: a pixel belongs to person n when its instance
   cosine > ``theta_mask`` (0.5) and its best category cosine > ``theta_mask``; its part is that
   best category. (With a binary instance mask, the argmax over the fused maps of person n is the
   argmax of the category maps, so the [N, K, H, W] fused tensor is never built.)
4. Score of a person = heatmap peak x mean instance cosine over its mask ("maskness").
5. One person-id map per image: where persons overlap, the higher score wins. Persons left with
   no pixel are dropped; ids are 1..N in descending score order.

Output per image: ``{"person_ids": int32 [H, W] (0 = none), "parts": uint8 [H, W],
"persons": [{"id", "score", "rle"}]}`` at the original image size; ``rle`` is a COCO RLE
(``{"size": [H, W], "counts": str}``) of the person's pixels in ``person_ids``.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from pycocotools import mask as mask_utils
from torch import Tensor

from ..engine.inference import to_tensor
from .model import sample_kernels

__all__ = ["find_centres", "decode_image", "decode", "prepare_images", "predict", "encode_rle"]


def find_centres(heat: Tensor, *, theta_ctr: float = 0.1, peak_kernel: int = 3,
                 max_persons: int = 100) -> tuple[Tensor, Tensor]:
    """Peaks of one heatmap [S, S] (probabilities) -> (flat cell indices [N], scores [N]), best first."""
    pooled = F.max_pool2d(heat[None, None], peak_kernel, stride=1, padding=peak_kernel // 2)[0, 0]
    keep = (heat == pooled) & (heat > theta_ctr)
    flat = heat.flatten()
    cells = torch.nonzero(keep.flatten(), as_tuple=True)[0]
    scores = flat[cells]
    order = torch.argsort(scores, descending=True)[:max_persons]
    return cells[order], scores[order]


def encode_rle(mask: np.ndarray) -> dict:
    """COCO RLE of a 2-D boolean mask, JSON-ready (counts as str)."""
    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    return {"size": [int(s) for s in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _to_output_size(maps: Tensor, valid: tuple[int, int], out: tuple[int, int]) -> Tensor:
    """[N, h, w] stride-4 maps -> [N, H_out, W_out]: x4 up-sampling, crop of the padding, resize."""
    if maps.shape[0] == 0:
        return maps.new_zeros((0, *out))
    up = F.interpolate(maps[None], scale_factor=4, mode="bilinear", align_corners=False)[0]
    up = up[:, : valid[0], : valid[1]]
    if tuple(up.shape[-2:]) != tuple(out):
        up = F.interpolate(up[None], size=out, mode="bilinear", align_corners=False)[0]
    return up


def decode_image(
    heat: Tensor, ins_feats: Tensor, cate_sim: Tensor, *, valid_size: tuple[int, int],
    out_size: tuple[int, int], theta_ctr: float = 0.1, theta_mask: float = 0.5,
    peak_kernel: int = 3, max_persons: int = 100,
) -> dict:
    """One image. ``heat`` [S, S] probabilities, ``ins_feats`` [D, h, w] normalised, ``cate_sim``
    [K, h, w] cosines; ``valid_size`` = the un-padded size in the network input, ``out_size`` = the
    original image size (both (height, width))."""
    grid = heat.shape[-1]
    cells, peaks = find_centres(heat, theta_ctr=theta_ctr, peak_kernel=peak_kernel, max_persons=max_persons)
    kernels = sample_kernels(ins_feats, cells, grid)
    ins_sim = _to_output_size(torch.einsum("nd,dhw->nhw", kernels, ins_feats), valid_size, out_size)
    cate = _to_output_size(cate_sim, valid_size, out_size)
    best, label = cate.max(0)
    parts_all = torch.where(best > theta_mask, label + 1, torch.zeros_like(label))
    masks = (ins_sim > theta_mask) & (parts_all > 0)                 # [N, H, W]
    area = masks.flatten(1).sum(1)
    maskness = (ins_sim * masks).flatten(1).sum(1) / area.clamp(min=1)
    scores = peaks * maskness
    # exclusive ownership: the highest-scoring person covering a pixel wins
    order = torch.argsort(scores, descending=True)
    rank_weight = torch.empty_like(scores)
    rank_weight[order] = torch.arange(len(scores), 0, -1, dtype=scores.dtype, device=scores.device)
    weighted = masks.to(scores.dtype) * rank_weight.view(-1, 1, 1)
    if len(scores):
        top, owner = weighted.max(0)
        owned = top > 0
    else:
        owner = torch.zeros(out_size, dtype=torch.long, device=heat.device)
        owned = torch.zeros(out_size, dtype=torch.bool, device=heat.device)
    kept_area = torch.bincount(owner[owned], minlength=len(scores))
    survivors = [int(n) for n in order if int(kept_area[n]) > 0]
    new_id = torch.zeros(len(scores) + 1, dtype=torch.long, device=heat.device)
    for rank, n in enumerate(survivors, start=1):
        new_id[n] = rank
    person_ids = torch.where(owned, new_id[owner], torch.zeros_like(owner))
    parts = torch.where(person_ids > 0, parts_all, torch.zeros_like(parts_all))
    person_np = person_ids.cpu().numpy().astype(np.int32)
    persons = [
        {"id": rank, "score": float(scores[n]), "rle": encode_rle(person_np == rank)}
        for rank, n in enumerate(survivors, start=1)
    ]
    return {"person_ids": person_np, "parts": parts.cpu().numpy().astype(np.uint8), "persons": persons}


def decode(outputs: dict[str, Tensor], *, valid_sizes: Sequence[tuple[int, int]],
           out_sizes: Sequence[tuple[int, int]], **thresholds) -> list[dict]:
    """A batch of network outputs -> one result dict per image (see :func:`decode_image`)."""
    heat = outputs["center_logits"].float().sigmoid()[:, 0]
    return [
        decode_image(heat[b], outputs["ins_feats"][b].float(), outputs["cate_sim"][b].float(),
                     valid_size=tuple(valid_sizes[b]), out_size=tuple(out_sizes[b]), **thresholds)
        for b in range(heat.shape[0])
    ]


def prepare_images(images: Sequence[np.ndarray], *, long_side: int | None = None,
                   size_divisor: int = 32) -> tuple[Tensor, list[tuple[int, int]], list[tuple[int, int]]]:
    """RGB uint8 arrays -> (normalised batch padded to ``size_divisor``, valid sizes, original sizes).

    With ``long_side`` each image is resized (keeping its aspect) so that its longer side has that length.
    """
    tensors, valid, orig = [], [], []
    for im in images:
        if im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            raise ValueError(f"expected an RGB uint8 array of shape [H, W, 3], got {im.dtype} {im.shape}")
        h, w = im.shape[:2]
        t = to_tensor(im)
        if long_side is not None and max(h, w) != long_side:
            f = long_side / max(h, w)
            size = (max(1, round(h * f)), max(1, round(w * f)))
            t = F.interpolate(t[None], size=size, mode="bilinear", align_corners=False)[0]
        tensors.append(t)
        valid.append(tuple(t.shape[-2:]))
        orig.append((h, w))
    H = -(-max(v[0] for v in valid) // size_divisor) * size_divisor
    W = -(-max(v[1] for v in valid) // size_divisor) * size_divisor
    batch = torch.zeros((len(tensors), 3, H, W))
    for i, t in enumerate(tensors):
        batch[i, :, : t.shape[1], : t.shape[2]] = t
    return batch, valid, orig


@torch.inference_mode()
def predict(model: torch.nn.Module, images: Sequence[np.ndarray], *, device: str | torch.device = "cpu",
            long_side: int | None = None, **thresholds) -> list[dict]:
    """Run ``model`` (a :class:`~humanparse.uniparser.model.UniParser`) on RGB uint8 images."""
    batch, valid, orig = prepare_images(images, long_side=long_side)
    outputs = model(batch.to(device))
    return decode(outputs, valid_sizes=valid, out_sizes=orig, **thresholds)
