"""``humanparse eval CHECKPOINT --data [DOMAIN=]ROOT ... [--tta] [--json]``."""

from __future__ import annotations

import argparse
import json

from ..errors import ConfigError


def add_parser(sub) -> None:
    p = sub.add_parser("eval", help="evaluate a checkpoint: mIoU, mean/pixel accuracy, per-class IoU per domain")
    p.add_argument("checkpoint", help="model.safetensors or last.pt")
    p.add_argument("--data", action="append", default=[], metavar="[DOMAIN=]ROOT",
                   help="labelled data of a domain (repeatable); ROOT may be samples://NAME or shared://NAME")
    p.add_argument("--config", help="evaluate on the 'val' splits of this experiment config instead")
    p.add_argument("--reader", default="folder", help="dataset layout reader for --data (default: folder)")
    p.add_argument("--split", default="all", help="split for --data (default: all)")
    p.add_argument("--tta", action="store_true", help="the paper's scales (0.5..1.75) + flip with left/right channel swap")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="average with the mirror image (left/right swapped back); default: as the checkpoint says")
    p.add_argument("--long-side", type=int, default=None,
                   help="resize the long side before the network (default: the size stored in the checkpoint, "
                        "else native; 0 = native)")
    p.add_argument("--max-images", type=int, default=None)
    p.add_argument("--device", default="auto")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(run=run)


def run(args) -> int:
    from pathlib import Path

    from ..engine.evaluator import evaluate_domain
    from ..engine.loading import inference_flip, load_model
    from ..engine.semantic_recipe import labelled_samples, read_split
    from ..engine.loading import resolve_device

    if args.max_images is not None and args.max_images < 1:
        raise ConfigError(f"--max-images must be at least 1, got {args.max_images}")
    device = resolve_device(args.device)
    model, label_spaces, meta = load_model(args.checkpoint, device=device)
    stored = ((meta.get("extra") or {}).get("inference") or {}).get("long_side")
    long_side = (args.long_side or None) if args.long_side is not None else stored
    flip = inference_flip(meta) if args.flip is None else args.flip
    jobs: list[tuple[str, dict]] = []
    if args.config:
        from ..config import load_config

        cfg = load_config(args.config)
        for domain, dcfg in (cfg.get("domains") or {}).items():
            if dcfg and "val" in dcfg:
                jobs.append((domain, dcfg["val"]))
    for item in args.data:
        domain, _, root = item.rpartition("=")
        if not domain:
            if len(label_spaces) != 1:
                raise ConfigError(f"--data {item}: the model has several heads ({', '.join(label_spaces)}); write DOMAIN=ROOT")
            domain = next(iter(label_spaces))
        jobs.append((domain, {"reader": args.reader, "root": root, "split": args.split}))
    if not jobs:
        raise ConfigError("nothing to evaluate: give --data [DOMAIN=]ROOT or --config CONFIG")
    results = {}
    for domain, split_cfg in jobs:
        if domain not in label_spaces:
            raise ConfigError(f"the checkpoint has no head {domain!r} (heads: {', '.join(label_spaces)})")
        ls = label_spaces[domain]
        records = read_split(split_cfg, domain, Path("."))[: args.max_images or None]

        r = evaluate_domain(model, labelled_samples(records, ls), domain, ls, long_side=long_side, tta=args.tta, device=device,
                            flip=flip)
        r["num_images"] = len(records)
        r["flip"] = bool(flip or args.tta)
        results[domain] = r
    if args.json:
        print(json.dumps(results))
    else:
        for domain, r in results.items():
            print(f"{domain}: mIoU {100 * r['mIoU']:.2f}  mean acc {100 * r['mean_acc']:.2f}  "
                  f"pixel acc {100 * r['pixel_acc']:.2f}  ({r['num_images']} images{', TTA' if args.tta else ', flip' if flip else ''})")
    return 0
