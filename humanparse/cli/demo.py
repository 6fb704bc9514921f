"""``humanparse demo``: the SST demo on the embedded sample data (see humanparse/demo.py)."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="train universal SST and the Multi-datasets baseline on the sample data; compare; draw")
    p.add_argument("--config", default="configs/sst_demo.yaml")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--device", default="cpu")
    p.add_argument("overrides", nargs="*", help="key=value overrides applied to both runs (e.g. train.steps=50)")
    p.set_defaults(run=run)


def run(args) -> int:
    from pathlib import Path

    from ..demo import run_demo
    from ..errors import DataError

    if not Path(args.config).is_file():
        raise DataError(args.config, "demo config not found; run from the repository root or pass --config")
    run_demo(args.config, args.out, overrides=args.overrides, device=args.device)
    return 0
