"""How high can part-level AP^p_50 go with the part recognition this project can train? (docs/uniparser.md)

Scores the held-out composed scenes of a UniParser config with the BEST part parser the project has, the
starter model's LIP head (semantic, 28 % LIP mIoU), and the GROUND-TRUTH person masks, so that person finding
and mask quality are perfect and only part recognition is left:

- ``scene``: the whole scene parsed at the starter's inference size, the labels cut by each true person mask;
- ``crop``: each true person's box parsed alone (a top-down parser's view), the labels cut by its mask.

It also gives the per-person mean part IoU (the quantity AP^p thresholds at 0.5) of the starter on LIP's own
held-out photos, one person each. Every person gets score 0.9, so AP^p_50 is the share of persons above 0.5.

    python scripts/uniparser_part_ceiling.py configs/uniparser_lite2_cpu.yaml --out docs/experiments/uniparser_part_ceiling.json
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from humanparse.config import load_config
from humanparse.engine.inference import predict_labels
from humanparse.engine.loading import inference_long_side, load_model
from humanparse.engine.recipes import build_recipe
from humanparse.engine.semantic_recipe import labelled_samples, read_split
from humanparse.metrics.instance import evaluate_instances, person_part_iou

STARTER = "humanparse/weights/starter/model.safetensors"


def parse(model, image, space, long_side):
    return predict_labels(model, [np.ascontiguousarray(image)], "lip", long_side=long_side, flip=True,
                          flip_permutation=space.flip_permutation)[0]


def scene_ceiling(recipe, model, space, long_side, mode: str) -> tuple[dict, list[float]]:
    scenes = recipe.held_out_scenes()
    tuples, per_person = [], []
    for i in range(len(scenes)):
        s = scenes.composer.compose(scenes.scene_index(i))
        ids = [int(k) for k in np.unique(s.person_ids) if k > 0]
        pred = np.zeros(s.parts.shape, np.uint8)
        if mode == "scene":
            labels = parse(model, s.image, space, long_side)
            for k in ids:
                pred[s.person_ids == k] = labels[s.person_ids == k]
        else:
            for k in ids:
                ys, xs = np.nonzero(s.person_ids == k)
                y0, x0 = max(int(ys.min()) - 4, 0), max(int(xs.min()) - 4, 0)
                y1, x1 = int(ys.max()) + 5, int(xs.max()) + 5
                labels = parse(model, s.image[y0:y1, x0:x1], space, long_side)
                mask = s.person_ids[y0:y1, x0:x1] == k
                pred[y0:y1, x0:x1][mask] = labels[mask]
        ious = person_part_iou(s.parts, s.person_ids, np.array(ids), pred, s.person_ids, np.array(ids), space.num_classes)
        per_person += [float(np.nanmean(ious[j, j])) for j in range(len(ids))]
        tuples.append((s.parts, s.person_ids, pred, s.person_ids.copy(), {k: 0.9 for k in ids}))
    result = evaluate_instances(tuples, space.num_classes)
    return {k: float(result[k]) for k in ("APp50", "APpvol", "PCP50")}, per_person


def photo_ious(model, space, long_side) -> list[float]:
    """Per-person mean part IoU on LIP's held-out photos (one person per photo: the person = labelled
    foreground, the predicted person = predicted foreground)."""
    out = []
    records = read_split({"reader": "folder", "root": "shared://lip", "split": "val"}, "lip", Path("."))
    for image, label in labelled_samples(records, space):
        labels = parse(model, image, space, long_side)
        gt_ids = ((label > 0) & (label != space.ignore_index)).astype(np.int32)
        ious = person_part_iou(label, gt_ids, np.array([1]), labels, (labels > 0).astype(np.int32), np.array([1]),
                               space.num_classes)
        out.append(float(np.nanmean(ious[0, 0])))
    return out


def summary(values: list[float]) -> dict:
    v = np.asarray(values)
    return {"persons": int(v.size), "median": round(float(np.median(v)), 3), "max": round(float(v.max()), 3),
            "share_above_0.5": round(float((v > 0.5).mean()), 3)}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config", help="a UniParser config (its held-out composed scenes are scored)")
    p.add_argument("--checkpoint", default=STARTER, help="semantic checkpoint with a 'lip' head")
    p.add_argument("--out", help="write the numbers here as JSON")
    args = p.parse_args()
    torch.manual_seed(0)
    model, spaces, meta = load_model(args.checkpoint, device="cpu")
    space, long_side = spaces["lip"], inference_long_side(meta)
    recipe = build_recipe(load_config(args.config), root=".")
    result = {"config": args.config, "checkpoint": args.checkpoint, "long_side": long_side, "flip": True}
    for mode in ("scene", "crop"):
        metrics, per_person = scene_ceiling(recipe, model, space, long_side, mode)
        result[f"scenes_gt_persons_{mode}"] = {**{k: round(v, 3) for k, v in metrics.items()},
                                               "per_person_mean_part_iou": summary(per_person)}
        print(mode, result[f"scenes_gt_persons_{mode}"], flush=True)
    result["lip_heldout_photos"] = {"per_person_mean_part_iou": summary(photo_ious(model, space, long_side))}
    print("LIP photos", result["lip_heldout_photos"], flush=True)
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
