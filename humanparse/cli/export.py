"""``humanparse export CHECKPOINT --format onnx|torchscript --domain NAME [--out FILE]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

EPILOG = """\
The file takes ImageNet-normalised RGB images [B, 3, H, W] (any batch; H and W any multiples of 32) and
returns the domain's logits at 1/4 resolution. Both formats are traced once and stay valid at other batch
sizes and image sizes; by default the written file is run at the export size and at a second size and
compared with the PyTorch model. TorchScript files are traced on, and run on, the CPU.

examples:
  humanparse export runs/demo/model.safetensors --domain lip
  humanparse parse runs/demo/lip.onnx photos/ --backend onnx --out parsed/
  humanparse export runs/demo/model.safetensors --domain lip --format torchscript --out lip.pt
"""


def add_parser(sub) -> None:
    p = sub.add_parser("export", help="export one domain head to ONNX or TorchScript (dynamic batch and size)",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint", help="model.safetensors or last.pt")
    p.add_argument("--format", default="onnx", choices=["onnx", "torchscript"])
    p.add_argument("--domain", help="which head to export (needed when the model has several)")
    p.add_argument("--out", help="output file (default: next to the checkpoint, <domain>.onnx / .torchscript.pt)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (16 or newer: GridSample)")
    p.add_argument("--sample-size", type=int, nargs=2, default=(256, 192), metavar=("H", "W"),
                   help="the traced input size, multiples of 32 (the file works at other sizes too)")
    p.add_argument("--no-check", dest="check", action="store_false",
                   help="skip running the written file against the PyTorch model at two sizes")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..export import export_model

    suffix = ".onnx" if args.format == "onnx" else ".torchscript.pt"
    out = args.out or str(Path(args.checkpoint).with_name(f"{args.domain or 'model'}{suffix}"))
    from ..engine.run_dir import ensure_writable_dir

    if Path(out).is_dir():
        from ..errors import DataError

        raise DataError(out, "--out is a folder; give a file name (e.g. lip.onnx)")
    ensure_writable_dir(Path(out).parent, "the folder of --out")  # before the export, not after it
    path = export_model(args.checkpoint, out, fmt=args.format, domain=args.domain, opset=args.opset,
                        sample_size=tuple(args.sample_size), check=args.check)
    print(f"wrote {path}" + (" (checked at two sizes against the PyTorch model)" if args.check else ""), file=sys.stderr)
    return 0
