"""Evaluate a trained UniParser with its experiment config, optionally writing CIHP-layout folders.

    python -m humanparse.uniparser.evaluate configs/uniparser_tiny_cpu.yaml \
        runs/uniparser_tiny_cpu/model.safetensors --write runs/uniparser_tiny_cpu/eval

prints the recipe's metrics (``composed/...`` on the held-out composed scenes, ``real/...`` on
``data.real_val``) as JSON. With ``--write DIR`` it also writes ``DIR/composed/{pred,gt}`` and
``DIR/real/{pred,gt}`` in the CIHP score layout, so that the same numbers can be re-computed with
``humanparse score --task instance --pred DIR/composed/pred --gt DIR/composed/gt --num-classes 20``
(``--num-classes 2`` for ``real`` in ``persons`` mode). ``--oracle-centres`` adds a diagnostic:
the held-out scenes decoded with ground-truth centres (see :func:`oracle_centre_metrics`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def write_split(out: Path, stems, gts, preds) -> None:
    """``gts``: (parts, person_ids) pairs; ``preds``: result dicts of the predictor."""
    from .predictor import write_cihp_predictions, write_id_png

    write_cihp_predictions(preds, stems, out / "pred")
    for stem, (parts, persons) in zip(stems, gts):
        write_id_png(out / "gt" / "Category_ids" / f"{stem}.png", parts)
        write_id_png(out / "gt" / "Human_ids" / f"{stem}.png", persons)


def oracle_centre_metrics(recipe, model) -> dict:
    """Diagnostic: the held-out composed scenes decoded with the GROUND-TRUTH barycentre cells as
    centres (score 0.9 each) instead of the Center Locator's peaks. Separates centre finding from
    mask and part quality. ``oracle/...`` = parts (C classes), ``oracle_persons/...`` = person masks."""
    import torch

    from ..metrics.instance import evaluate_instances
    from .inference import decode_image, prepare_images
    from .losses import build_targets

    scenes = recipe.held_out_scenes()
    grid, C = model.S, recipe.label_space.num_classes
    parts_t, persons_t = [], []
    device = next(model.parameters()).device
    for i in range(len(scenes)):
        s = scenes.composer.compose(scenes.scene_index(i))
        batch, valid, orig = prepare_images([s.image])
        with torch.inference_mode():
            out = model(batch.to(device))
        t = build_targets(torch.from_numpy(s.person_ids.astype(np.int64)), torch.from_numpy(s.parts.astype(np.int64)),
                          C, grid=grid)
        heat = torch.zeros(grid * grid, device=device)
        heat[t.bary_cells.to(device)] = 0.9
        r = decode_image(heat.view(grid, grid), out["ins_feats"][0].float(), out["cate_sim"][0].float(),
                         valid_size=valid[0], out_size=orig[0], peak_kernel=1)
        scores = {q["id"]: q["score"] for q in r["persons"]}
        parts_t.append((s.parts, s.person_ids, r["parts"], r["person_ids"], scores))
        gt_fg = np.where(s.parts == 255, 255, (s.parts > 0).astype(np.uint8)).astype(np.uint8)
        persons_t.append((gt_fg, s.person_ids, (r["person_ids"] > 0).astype(np.uint8), r["person_ids"], scores))
    out = {}
    for prefix, tuples, classes in (("oracle", parts_t, C), ("oracle_persons", persons_t, 2)):
        res = evaluate_instances(tuples, classes)
        out.update({f"{prefix}/{k}": res[k] for k in ("APp50", "APpvol", "PCP50")})
    return out


def main(argv=None) -> int:
    from ..config import load_config
    from .predictor import MultiPersonParser
    from .recipe import UniParserRecipe

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("config")
    p.add_argument("checkpoint")
    p.add_argument("overrides", nargs="*", help="key=value config overrides")
    p.add_argument("--write", help="also write CIHP-layout prediction / ground-truth folders here")
    p.add_argument("--device", default="cpu")
    p.add_argument("--oracle-centres", action="store_true",
                   help="also decode the held-out scenes with ground-truth centres (diagnostic)")
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    recipe = UniParserRecipe(cfg, root=".")
    model = MultiPersonParser.from_checkpoint(args.checkpoint, device=args.device).model
    results = recipe.evaluate(model)
    if args.oracle_centres:
        results.update(oracle_centre_metrics(recipe, model))
    if args.write:
        out = Path(args.write)
        th = recipe._thresholds()
        scenes = recipe.held_out_scenes()
        data = [scenes.composer.compose(scenes.scene_index(i)) for i in range(len(scenes))]
        preds = recipe._predict_all(model, [s.image for s in data], None)
        write_split(out / "composed", [f"scene_{i:04d}" for i in range(len(data))],
                    [(s.parts, s.person_ids) for s in data], preds)
        if cfg.get("data", {}).get("real_val"):
            mode = recipe.eval_cfg.get("real_mode", "persons")
            real = recipe._real("real_val", train=False, mapped=(mode == "parts"))
            loaded = [real.load(i) for i in range(len(real))]
            preds = recipe._predict_all(model, [im for im, _, _ in loaded], recipe.eval_cfg.get("long_side"))
            if mode == "persons":
                gts = [((persons > 0).astype(np.uint8), persons) for _, _, persons in loaded]
                preds = [dict(r, parts=(r["person_ids"] > 0).astype(np.uint8)) for r in preds]
            else:
                gts = [(parts, persons) for _, parts, persons in loaded]
            write_split(out / "real", [r.stem for r in real.records], gts, preds)
        results["thresholds"] = th
    print(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
