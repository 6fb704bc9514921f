"""``humanparse train CONFIG [key=value ...] [--resume | --overwrite]`` (also under torchrun for several processes)."""

from __future__ import annotations

import json


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train from a YAML experiment config",
                       epilog="examples:\n  humanparse train configs/sst_demo.yaml train.steps=200\n"
                              "  torchrun --nproc_per_node 2 -m humanparse train configs/x.yaml",
                       formatter_class=__import__("argparse").RawDescriptionHelpFormatter)
    p.add_argument("config", help="experiment YAML (see configs/)")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. train.steps=100 method.use_aux=false")
    p.add_argument("--output-dir", help="where checkpoints and logs go (default: output_dir in the config)")
    p.add_argument("--resume", action="store_true", help="continue from OUTPUT_DIR/last.pt")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an earlier run in OUTPUT_DIR (its checkpoints and logs are deleted first); "
                        "without it, a folder holding a run is refused")
    p.add_argument("--device", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..config import load_config
    from ..engine.trainer import train

    cfg = load_config(args.config, args.overrides)
    result = train(cfg, output_dir=args.output_dir, resume=args.resume, overwrite=args.overwrite, device=args.device)
    ev = {k: v for k, v in result["eval"].items() if isinstance(v, (int, float))}
    print(json.dumps({"output_dir": result["output_dir"], "final_loss": result["losses"][-1] if result["losses"] else None,
                      "eval": ev}))
    return 0
