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
    """uint8 HxWx3 RGB -> normalised float32 [3,H,W]."""
    t = torch.from_numpy(np.array(image, dtype=np.uint8, copy=True)).permute(2, 0, 1).float().div_(255.0)
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (t - mean) / std


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
        index = torch.as_tensor(np.asarray(flip_permutation), device=logits.device, dtype=torch.long)
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
) -> list[torch.Tensor]:
    """Class probabilities [C, H, W] (float32, CPU) at each input image's own size.

    Images are padded (bottom/right) to a multiple of ``size_divisor``; images of the same padded size
    share a batch, so a prediction never depends on the other images of the call.
    With several scales and/or flip, the softmax probabilities of all views are averaged.
    """
    if flip and flip_permutation is None:
        raise ValueError("flip TTA needs the domain's flip_permutation (left/right channel swap)")
    device = torch.device(device)
    sizes = [im.shape[:2] for im in images]
    sums: list[torch.Tensor | None] = [None] * len(images)
    views = 0
    tensors = [to_tensor(im) for im in images]  # once, not once per scale
    for scale in scales:
        resized = []
        for t, (h, w) in zip(tensors, sizes):
            th, tw = _scaled_size(h, w, long_side, scale)
            if (th, tw) != (h, w):
                t = F.interpolate(t[None], size=(th, tw), mode="bilinear", align_corners=False)[0]
            resized.append(t)
        # Batch only images of the same padded size: an image's prediction must not depend on
        # which other images share its batch (padding is context for the attention layers).
        groups: dict[tuple[int, int], list[int]] = {}
        for i, t in enumerate(resized):
            key = (-(-t.shape[1] // size_divisor) * size_divisor, -(-t.shape[2] // size_divisor) * size_divisor)
            groups.setdefault(key, []).append(i)
        for (ph, pw), members in groups.items():
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
                    t, (h, w) = resized[i], sizes[i]
                    # flip_logits_back restored the orientation, so the image sits top-left again
                    crop = logits[j : j + 1, :, : t.shape[1], : t.shape[2]]
                    crop = F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False)
                    probs = crop.softmax(1)[0].cpu()
                    sums[i] = probs if sums[i] is None else sums[i] + probs
        views += 2 if flip else 1
    return [s / views for s in sums]


def predict_labels(model, images, domain, **kwargs) -> list[np.ndarray]:
    """Arg-max class ids (uint8 HxW) at each image's own size."""
    return [p.argmax(0).to(torch.uint8).numpy() for p in predict_probabilities(model, images, domain, **kwargs)]
