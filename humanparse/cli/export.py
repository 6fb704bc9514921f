"""``humanparse export CHECKPOINT --format onnx|torchscript --domain NAME [--out FILE]``."""

from __future__ import annotations

import sys
from pathlib import Path


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export one domain head to ONNX or TorchScript (dynamic batch and size)")
    p.add_argument("checkpoint", help="model.safetensors or last.pt")
    p.add_argument("--format", default="onnx", choices=["onnx", "torchscript"])
    p.add_argument("--domain", help="which head to export (needed when the model has several)")
    p.add_argument("--out", help="output file (default: next to the checkpoint, <domain>.onnx / .pt)")
    p.add_argument("--opset", type=int, default=17)
    p.set_defaults(run=run)


def run(args) -> int:
    from ..export import export_model

    suffix = ".onnx" if args.format == "onnx" else ".torchscript.pt"
    out = args.out or str(Path(args.checkpoint).with_name(f"{args.domain or 'model'}{suffix}"))
    path = export_model(args.checkpoint, out, fmt=args.format, domain=args.domain, opset=args.opset)
    print(f"wrote {path}", file=sys.stderr)
    return 0
