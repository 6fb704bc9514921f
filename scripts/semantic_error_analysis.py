"""Where a parsing model loses IoU on one head's held-out split (docs/models.md, "Why CCP stays under 20").

Prints, per class present in the split, its IoU, ground-truth and predicted pixel counts, and the three classes its
pixels are most often called; with ``--taus``, the mIoU after logit adjustment by the training split's class priors
(label ``argmax(log p - tau * log prior)``; tau 0 = the model's own labels).

    python scripts/semantic_error_analysis.py humanparse/weights/starter/model.safetensors \
        --config configs/starter/universal_lite2.yaml --domain ccp --taus 0,0.25,0.5,1
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from humanparse.config import load_config
from humanparse.data.io import load_label
from humanparse.engine.inference import predict_probabilities
from humanparse.engine.loading import inference_flip, inference_long_side, load_model
from humanparse.engine.semantic_recipe import labelled_samples, read_split
from humanparse.metrics.semantic import ConfusionMatrix


def class_prior(records, space) -> np.ndarray:
    counts = np.zeros(space.num_classes)
    for rec in records:
        label, _ = load_label(rec, space.num_classes, space.ignore_index)
        counts += np.bincount(label[label != space.ignore_index].ravel(), minlength=space.num_classes)[: space.num_classes]
    return (counts + 1) / (counts + 1).sum()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--config", required=True, help="experiment config whose domains give the train / val splits")
    p.add_argument("--domain", required=True)
    p.add_argument("--taus", default="0", help="comma-separated logit-adjustment strengths (0 = none)")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--json", help="also write the numbers here")
    args = p.parse_args()
    model, spaces, meta = load_model(args.checkpoint, device="cpu")
    space, cfg = spaces[args.domain], load_config(args.config)
    splits = cfg["domains"][args.domain]
    taus = [float(t) for t in args.taus.split(",")]
    log_prior = torch.from_numpy(np.log(class_prior(read_split(splits["train"], args.domain, Path(".")), space)))
    log_prior = log_prior.float()[:, None, None]
    matrices = {t: ConfusionMatrix(space.num_classes, space.ignore_index) for t in taus}
    samples = labelled_samples(read_split(splits["val"], args.domain, Path(".")), space)
    for i, (image, label) in enumerate(samples):
        if args.max_images is not None and i >= args.max_images:
            break
        probs = predict_probabilities(model, [image], args.domain, long_side=inference_long_side(meta),
                                      flip=inference_flip(meta), flip_permutation=space.flip_permutation)[0]
        log_probs = probs.clamp_min(1e-8).log()
        for tau, matrix in matrices.items():
            matrix.update((log_probs - tau * log_prior).argmax(0).numpy(), label)
    hist = matrices[taus[0]].hist
    gt, pred, tp = hist.sum(1), hist.sum(0), np.diag(hist)
    rows = []
    for c in np.argsort(-gt):
        if gt[c] + pred[c] == 0:
            continue
        called = [(space.names[k], round(float(hist[c, k] / max(gt[c], 1)), 2)) for k in np.argsort(-hist[c])[:3]]
        rows.append({"class": space.names[c], "iou": round(float(tp[c] / (gt[c] + pred[c] - tp[c])), 3),
                     "gt_pixels": int(gt[c]), "pred_pixels": int(pred[c]), "called": called})
        print(f"{space.names[c]:14s} IoU {rows[-1]['iou']:.3f}  gt {gt[c]:>10d}  pred {pred[c]:>10d}  called:",
              ", ".join(f"{n} {f:.2f}" for n, f in called))
    adjusted = {str(t): round(100 * m.compute()["mIoU"], 2) for t, m in matrices.items()}
    print("mIoU % by logit-adjustment tau:", adjusted)
    if args.json:
        Path(args.json).write_text(json.dumps({"classes": rows, "miou_by_tau": adjusted}, indent=1) + "\n")


if __name__ == "__main__":
    main()
