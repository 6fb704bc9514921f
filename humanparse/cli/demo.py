"""``humanparse demo``: the starter model on held-out photos; ``--compare``: the SST training demo
(see humanparse/demo.py)."""

from __future__ import annotations


def add_parser(sub) -> None:
    p = sub.add_parser("demo", help="the bundled starter model on held-out photos (every head, held-out mIoU); "
                                    "--compare trains SST and the Multi-datasets baseline on the sample data")
    p.add_argument("--out", default="runs/demo")
    p.add_argument("--device", default="cpu")
    p.add_argument("--model", default=None, help="another pretrained model (folder, checkpoint or Hub repo id)")
    p.add_argument("--compare", action="store_true",
                   help="train universal SST and the Multi-datasets baseline with the same budget, compare, draw")
    p.add_argument("--config", default="configs/sst_demo.yaml", help="config of --compare")
    p.add_argument("overrides", nargs="*", help="with --compare: key=value overrides applied to both runs")
    p.set_defaults(run=run)


def run(args) -> int:
    from pathlib import Path

    from ..demo import run_demo, run_showcase
    from ..errors import DataError

    if not args.compare:
        run_showcase(args.out, model=args.model, device=args.device)
        return 0
    if not Path(args.config).is_file():
        raise DataError(args.config, "demo config not found; run from the repository root or pass --config")
    run_demo(args.config, Path(args.out) / "compare", overrides=args.overrides, device=args.device)
    return 0
