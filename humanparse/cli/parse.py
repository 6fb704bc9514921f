"""``humanparse parse CHECKPOINT INPUT... --out DIR [--domain NAME] [--tta] [--overlay] [--probs]``."""

from __future__ import annotations

import sys


def add_parser(sub) -> None:
    p = sub.add_parser("parse", help="parse your own images (files, folders, globs) into palette PNGs")
    p.add_argument("checkpoint", help="model.safetensors (or .onnx with --backend onnx, or last.pt)")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files, folders or glob patterns")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--domain", help="which head (label domain) to use; needed when the model has several")
    p.add_argument("--task", default="semantic", choices=["semantic", "multi"], help="multi = multi-person (UniParser)")
    p.add_argument("--tta", action="store_true", help="multi-scale + left/right-correct flip test-time augmentation")
    p.add_argument("--overlay", action="store_true", help="also write <stem>_overlay.jpg")
    p.add_argument("--probs", action="store_true", help="also write <stem>_probs.npy (float16 [C,H,W])")
    p.add_argument("--device", default="auto", help="cpu, cuda (default: cuda when available)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--long-side", type=int, default=512, help="resize the long side to this before the network (0 = native)")
    p.add_argument("--backend", default="torch", choices=["torch", "onnx"], help="onnx runs an exported model with ONNX Runtime")
    p.set_defaults(run=run)


def run(args) -> int:
    long_side = args.long_side or None
    if args.task == "multi":
        from ..uniparser.predictor import parse_files_multi

        report = parse_files_multi(args.checkpoint, args.inputs, args.out, device=args.device,
                                   batch_size=args.batch_size, long_side=long_side)
    elif args.backend == "onnx":
        from ..export.onnx_parser import OnnxParser

        parser = OnnxParser(args.checkpoint, long_side=long_side, batch_size=args.batch_size)
        report = parser.parse_files(args.inputs, args.out, domain=args.domain, tta=args.tta,
                                    overlay=args.overlay, probs=args.probs)
    else:
        from ..api import Parser

        parser = Parser.from_checkpoint(args.checkpoint, device=args.device, long_side=long_side,
                                        batch_size=args.batch_size)
        report = parser.parse_files(args.inputs, args.out, domain=args.domain, tta=args.tta,
                                    overlay=args.overlay, probs=args.probs)
    print(f"wrote {len(report.written)} files to {args.out}", file=sys.stderr)
    if report.failed:
        print(f"{len(report.failed)} input(s) failed:", file=sys.stderr)
        for path, why in report.failed.items():
            print(f"  {path}: {why}", file=sys.stderr)
        return 1
    return 0
