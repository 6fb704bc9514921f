"""Dense prediction for one label domain: resize, pad, forward, undo the padding, back to the
original size; optional multi-scale and flip test-time augmentation (TTA).

Flip TTA is left/right correct: the logits of the flipped image are flipped back AND their
channels permuted by the domain's flip permutation (left-arm <-> right-arm ...), then averaged.
Used by evaluation, the ``Parser`` API and ``humanparse parse`` alike.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PAPER_TTA_SCALES = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 HxWx3 RGB -> normalised float32 [3,H,W]: one float copy of the image (4 bytes per value),
    normalised in place; the input array is never written to (a read-only one is copied first)."""
    arr = image if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.flags.writeable else \
        np.array(image, dtype=np.uint8, copy=True)
    t = torch.from_numpy(arr).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return t.sub_(mean).div_(std)


def _scaled_size(h: int, w: int, long_side: int | None, scale: float) -> tuple[int, int]:
    base = 1.0 if long_side is None else long_side / max(h, w)
    f = base * scale
    return max(1, int(round(h * f))), max(1, int(round(w * f)))


def flip_logits_back(logits: torch.Tensor, flip_permutation: Sequence[int] | None) -> torch.Tensor:
    """Logits predicted on a mirrored image -> logits for the original image.

    Channel ``c`` of the result is channel ``perm[c]`` of the mirrored prediction: what the network
    called "right-arm" in the mirror image is the left arm of the original.
    """
    logits = logits.flip(-1)
    if flip_permutation is not None:
        # a writable copy: torch warns on read-only arrays (the label space's permutation is one)
        index = torch.from_numpy(np.array(flip_permutation, dtype=np.int64)).to(logits.device)
        logits = logits.index_select(1, index)
    return logits


def _forward_logits(model, batch: torch.Tensor, domain: str) -> torch.Tensor:
    out = model(batch, domains=[domain])
    return out["logits"][domain]


@torch.inference_mode()
def predict_probabilities(
    model: torch.nn.Module,
    images: Sequence[np.ndarray],
    domain: str,
    *,
    long_side: int | None = None,
    scales: Sequence[float] = (1.0,),
    flip: bool = False,
    flip_permutation: Sequence[int] | None = None,
    device: torch.device | str = "cpu",
    size_divisor: int = 32,
    batch_size: int | None = None,
) -> list[torch.Tensor]:
    """Class probabilities [C, H, W] (float32, CPU) at each input image's own size.

    Images are padded (bottom/right) to a multiple of ``size_divisor``; images of the same padded size
    share a batch (at most ``batch_size`` images, None = no limit), so a list of mixed sizes runs in as
    few forward passes as the sizes allow, and a prediction never depends on the other images of the call.
    One view: the softmax of its up-sampled logits. With several scales and/or flip: the mean of every view's
    softmax probabilities (each taken at the view's own resolution), up-sampled (``probability_groups``).
    """
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1 (or None), got {batch_size}")
    if flip and flip_permutation is None:
        raise ValueError("flip TTA needs the domain's flip_permutation (left/right channel swap)")
    sizes, views = _view_logits(model, images, domain, long_side=long_side, scales=scales, flip=flip,
                                flip_permutation=flip_permutation, device=device, size_divisor=size_divisor,
                                batch_size=batch_size)
    out = []
    for crops, (h, w) in zip(views, sizes):
        if len(crops) == 1:
            out.append(F.interpolate(crops[0], size=(h, w), mode="bilinear", align_corners=False).softmax(1)[0].cpu())
            continue
        total = None
        for weight, probs in probability_groups(crops):
            up = F.interpolate(probs, size=(h, w), mode="bilinear", align_corners=False)[0].cpu() * weight
            total = up if total is None else total + up
        out.append(total / len(crops))
    return out


def probability_groups(crops: Sequence[torch.Tensor]) -> list[tuple[int, torch.Tensor]]:
    """Views of one size (an image and its mirror, at one scale) averaged where they are: the softmax of each
    view at its own resolution, summed per size; returns (number of views, mean probabilities [1, C, h', w']).
    Bilinear up-sampling is linear, so up-sampling each group's mean and averaging with the group sizes as
    weights equals averaging the up-sampled probabilities of every view, at one up-sampling per size instead
    of one up-sampling and one full-size softmax per view (flip averaging of the starter on an 825x550 photo:
    1.9x the time of one view instead of 3.8x, docs/benchmarks.md)."""
    groups: dict[tuple[int, ...], list[torch.Tensor]] = {}
    for crop in crops:
        groups.setdefault(tuple(crop.shape), []).append(crop.float().softmax(1))
    return [(len(members), sum(members[1:], members[0]) / len(members)) for members in groups.values()]


@torch.inference_mode()
def _view_logits(model, images, domain, *, long_side, scales, flip, flip_permutation, device, size_divisor,
                 batch_size) -> tuple[list[tuple[int, int]], list[list[torch.Tensor]]]:
    """Per image, the logits [1, C, h', w'] of every view (scale x flip) at the view's own resized size,
    flipped back. Nothing is allocated at the images' full size except one image's float copy at a time."""
    device = torch.device(device)
    sizes = [im.shape[:2] for im in images]
    views: list[list[torch.Tensor]] = [[] for _ in images]
    by_scale: list[list[torch.Tensor]] = [[] for _ in scales]
    for im, (h, w) in zip(images, sizes):  # one full-size float copy at a time, resized to every scale
        t = to_tensor(im)
        for si, scale in enumerate(scales):
            th, tw = _scaled_size(h, w, long_side, scale)
            by_scale[si].append(t if (th, tw) == (h, w) else
                               F.interpolate(t[None], size=(th, tw), mode="bilinear", align_corners=False)[0])
        del t
    for si in range(len(scales)):
        resized, by_scale[si] = by_scale[si], []
        # Batch only images of the same padded size: an image's prediction must not depend on
        # which other images share its batch (padding is context for the attention layers).
        groups: dict[tuple[int, int], list[int]] = {}
        for i, t in enumerate(resized):
            key = (-(-t.shape[1] // size_divisor) * size_divisor, -(-t.shape[2] // size_divisor) * size_divisor)
            groups.setdefault(key, []).append(i)
        step = batch_size or len(resized)
        chunks = [(key, members[k:k + step]) for key, members in groups.items() for k in range(0, len(members), step)]
        for (ph, pw), members in chunks:
            batch = torch.zeros(len(members), 3, ph, pw)
            for j, i in enumerate(members):
                t = resized[i]
                batch[j, :, : t.shape[1], : t.shape[2]] = t
            batch = batch.to(device)
            passes = [(batch, False)] + ([(batch.flip(-1), True)] if flip else [])
            for inp, flipped in passes:
                logits = _forward_logits(model, inp, domain).float()
                logits = F.interpolate(logits, size=(ph, pw), mode="bilinear", align_corners=False)
                if flipped:
                    logits = flip_logits_back(logits, flip_permutation)
                for j, i in enumerate(members):
                    t = resized[i]
                    # flip_logits_back restored the orientation, so the image sits top-left again
                    views[i].append(_own_copy(logits[j : j + 1, :, : t.shape[1], : t.shape[2]]))
    return sizes, views


def _own_copy(view: torch.Tensor) -> torch.Tensor:
    """A copy that frees the batch's logits and that ``F.interpolate`` treats as it treats ``view``: a dense
    view (either memory format) keeps its layout, a strided one becomes standard-contiguous, as
    ``F.interpolate`` would make it (so results are bit-identical to interpolating the view)."""
    if view.is_contiguous() or view.is_contiguous(memory_format=torch.channels_last):
        return view.clone()
    return view.contiguous()


def upsample_rows(crop: torch.Tensor, size: tuple[int, int], rows: tuple[int, int]) -> torch.Tensor:
    """Rows ``rows[0]:rows[1]`` of ``F.interpolate(crop, size, mode="bilinear", align_corners=False)[0]``
    ([C, rows, W]) without computing the others: the height pass by hand (PyTorch's source-index rule),
    the width pass by ``F.interpolate``. Equal to the full interpolation up to float rounding."""
    (h, w), (r0, r1) = size, rows
    if (r0, r1) == (0, h):
        return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)[0]
    src_h = crop.shape[2]
    scale = torch.tensor(float(src_h), dtype=torch.float32) / h  # in float32, as PyTorch's kernel computes it
    ys = ((torch.arange(r0, r1, dtype=torch.float32) + 0.5) * scale - 0.5).clamp_(min=0)
    y0 = ys.floor().long().clamp_(max=src_h - 1)
    y1 = (y0 + 1).clamp_(max=src_h - 1)
    l1 = (ys - y0).to(crop.dtype).to(crop.device).view(1, -1, 1)
    y0, y1 = y0.to(crop.device), y1.to(crop.device)
    band = crop[0][:, y0] * (1 - l1) + crop[0][:, y1] * l1  # [C, rows, w']
    return F.interpolate(band[None], size=(r1 - r0, w), mode="bilinear", align_corners=False)[0]


def labels_from_views(crops: Sequence[torch.Tensor], size: tuple[int, int], band_bytes: int = 1 << 26) -> np.ndarray:
    """Arg-max of the view-averaged probabilities at ``size`` (as ``predict_probabilities`` averages them),
    computed in bands of rows so that no
    full-size [C, H, W] array exists (a band holds about ``band_bytes`` of float32 probabilities).
    One view: the arg-max of its logits (softmax is monotonic, so the same labels without the exp).
    Channels-last crops make the up-sampled band channels-last, where the arg-max over classes reads
    contiguous memory (2-4x faster than over the outer dimension)."""
    h, w = size
    c = crops[0].shape[1]
    # one view: its logits; several: the mean probabilities of each size (an image and its mirror share one)
    groups = [(1, crops[0])] if len(crops) == 1 else probability_groups(crops)
    groups = [(n, g.contiguous(memory_format=torch.channels_last)) for n, g in groups]
    step = max(1, band_bytes // (4 * c * w))
    out = np.empty((h, w), dtype=np.uint8)
    for r0 in range(0, h, step):
        r1 = min(h, r0 + step)
        score = None
        for weight, scores in groups:
            up = upsample_rows(scores, size, (r0, r1))
            if len(groups) > 1:  # a single group decides alone, unweighted
                up = up * weight
            score = up if score is None else score + up
        out[r0:r1] = score.argmax(0).to(torch.uint8).cpu().numpy()
    return out


def predict_labels(model, images, domain, *, band_bytes: int = 1 << 26, **kwargs) -> list[np.ndarray]:
    """Arg-max class ids (uint8 HxW) at each image's own size: the arg-max of ``predict_probabilities``,
    computed in bands of rows, so the memory does not grow with C x H x W (see docs/benchmarks.md)."""
    kwargs.setdefault("long_side", None)
    kwargs.setdefault("scales", (1.0,))
    kwargs.setdefault("flip", False)
    kwargs.setdefault("flip_permutation", None)
    kwargs.setdefault("device", "cpu")
    kwargs.setdefault("size_divisor", 32)
    kwargs.setdefault("batch_size", None)
    if kwargs["flip"] and kwargs["flip_permutation"] is None:
        raise ValueError("flip TTA needs the domain's flip_permutation (left/right channel swap)")
    sizes, views = _view_logits(model, images, domain, **kwargs)
    return [labels_from_views(crops, size, band_bytes) for crops, size in zip(views, sizes)]
