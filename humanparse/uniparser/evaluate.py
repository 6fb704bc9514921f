"""Evaluate a trained UniParser with its experiment config, optionally writing CIHP-layout folders.

    python -m humanparse.uniparser.evaluate configs/uniparser_tiny_cpu.yaml \
        runs/uniparser_tiny_cpu/model.safetensors --write runs/uniparser_tiny_cpu/eval

prints the recipe's metrics (``composed/...`` on the held-out composed scenes, ``real/...`` on
``data.real_val``) as JSON. With ``--write DIR`` it also writes ``DIR/composed/{pred,gt}`` and
``DIR/real/{pred,gt}`` in the CIHP score layout, so that the same numbers can be re-computed with
``humanparse score --task instance --pred DIR/composed/pred --gt DIR/composed/gt --num-classes 20``
(``--num-classes 2`` for ``real`` in ``persons`` mode).
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
    args = p.parse_args(argv)
    cfg = load_config(args.config, args.overrides)
    recipe = UniParserRecipe(cfg, root=".")
    model = MultiPersonParser.from_checkpoint(args.checkpoint, device=args.device).model
    results = recipe.evaluate(model)
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
