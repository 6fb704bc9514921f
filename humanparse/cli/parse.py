"""``humanparse parse [CHECKPOINT] INPUT... --out DIR [--domain NAME] [--tta] [--overlay] [--probs]``.

Without a checkpoint the starter model shipped in the package parses (``--model`` names another one: a model
folder, a checkpoint file or a Hugging Face Hub repo id).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

MODEL_SUFFIXES = (".safetensors", ".pt", ".pth", ".onnx")


def split_model_argument(args) -> None:
    """``parse CHECKPOINT INPUT...`` (the first positional is a model) or ``parse INPUT...`` (the starter model).

    Sets ``args.checkpoint`` (a path, or None for ``--model`` / the starter) and leaves the images in ``args.inputs``.
    """
    first = Path(args.inputs[0])
    is_model = first.suffix.lower() in MODEL_SUFFIXES or (first.is_dir() and (first / "model.safetensors").is_file())
    if args.model is None and is_model and len(args.inputs) > 1:
        args.checkpoint = args.inputs.pop(0)
    else:
        args.checkpoint = None


def add_parser(sub) -> None:
    p = sub.add_parser("parse", help="parse your own images (files, folders, globs) into palette PNGs")
    p.add_argument("inputs", nargs="+", metavar="[CHECKPOINT] INPUT",
                   help="optionally a model first (model.safetensors, last.pt, a model folder, or .onnx with "
                        "--backend onnx; default: the bundled starter model), then image files, folders or globs")
    p.add_argument("--model", default=None,
                   help="model to parse with: 'starter' (default), a model folder or checkpoint, or a Hub repo id")
    p.add_argument("--out", required=True, help="output folder")
    p.add_argument("--domain", help="which head (label domain) to use; needed when the model has several")
    p.add_argument("--task", default="semantic", choices=["semantic", "multi"], help="multi = multi-person (UniParser)")
    p.add_argument("--tta", action="store_true", help="multi-scale + left/right-correct flip test-time augmentation")
    p.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="average with the mirror image (left/right swapped back); default: as the checkpoint says "
                        "(the starter: on)")
    p.add_argument("--overlay", action="store_true", help="also write <stem>_overlay.jpg")
    p.add_argument("--probs", action="store_true", help="also write <stem>_probs.npy (float16 [C,H,W])")
    p.add_argument("--device", default="auto", help="cpu, cuda (default: cuda when available)")
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--long-side", type=int, default=None,
                   help="resize the long side to this before the network (default: the size stored in the checkpoint, "
                        "else 512; 0 = native)")
    p.add_argument("--backend", default="auto", choices=["auto", "torch", "onnx", "measure"],
                   help="auto (default): the fastest correct path for the device, printed once; torch; onnx: ONNX Runtime "
                        "(an .onnx file, or a checkpoint exported once next to itself); measure: time torch against "
                        "ONNX Runtime once on this machine, cache the result, use the faster")
    p.add_argument("--precision", default="auto", choices=["auto", "fp32", "bf16"],
                   help="auto (default): bf16 autocast + channels-last where the CPU has AVX512-BF16/AMX (or on a GPU), else fp32")
    p.add_argument("--map-to", default=None, metavar="LAYOUT",
                   help="write labels in a try-on layout (viton_hd, viton_hd_13, or a layout YAML; docs/label_domains.md)")
    video = p.add_argument_group("video inputs (.mp4, .avi, .mov, .mkv, .webm ...)")
    video.add_argument("--smooth", type=float, default=0.0,
                       help="temporal smoothing: EMA weight of the past frames' probabilities, 0..1 (0 = off); "
                            "restarts at scene cuts")
    video.add_argument("--scene-cut", type=float, default=0.5,
                       help="scene-cut threshold (HSV-histogram Bhattacharyya distance between frames)")
    video.add_argument("--video-labels", default="video", choices=["video", "png"],
                       help="labels as a lossless FFV1 .mkv colour video, or a folder of P-mode PNGs per frame")
    p.set_defaults(run=run)


def run(args) -> int:
    from ..engine.run_dir import ensure_writable_dir

    ensure_writable_dir(args.out, "--out")  # an unwritable or wrong --out fails now, not after the inference
    split_model_argument(args)
    if args.checkpoint is None and args.model is not None and (args.task == "multi" or args.backend == "onnx"):
        args.checkpoint = args.model
    if args.checkpoint is None and (args.task == "multi" or args.backend == "onnx"):
        from ..errors import ConfigError

        what = "multi-person parsing (--task multi)" if args.task == "multi" else "--backend onnx"
        raise ConfigError(f"{what} needs a model: give its checkpoint first (parse CHECKPOINT INPUT... --out DIR); "
                          "the bundled starter model is a single-person parser")
    long_side = "auto" if args.long_side is None else (args.long_side or None)
    if args.map_to is not None and (args.task == "multi" or args.backend == "onnx"):
        from ..errors import ConfigError

        raise ConfigError("--map-to works with semantic parsing on the torch backend (not --task multi / --backend onnx)")
    from .parse_video import run_videos, split_videos

    videos = split_videos(args)
    if videos:
        code = run_videos(args, videos, long_side)
        if not args.inputs:
            return code
    if args.task == "multi":
        from ..uniparser.predictor import parse_files_multi

        report = parse_files_multi(args.checkpoint, args.inputs, args.out, device=args.device,
                                   batch_size=args.batch_size, long_side=long_side, overlay=args.overlay)
    elif args.backend == "onnx" and str(args.checkpoint).lower().endswith(".onnx"):
        from ..export.onnx_parser import OnnxParser

        parser = OnnxParser(args.checkpoint, long_side=512 if long_side == "auto" else long_side,
                            batch_size=args.batch_size)
        report = parser.parse_files(args.inputs, args.out, domain=args.domain, tta=args.tta,
                                    overlay=args.overlay, probs=args.probs)
    else:
        from ..api import Parser

        parser = Parser.from_pretrained(args.checkpoint or args.model, device=args.device, long_side=long_side,
                                        batch_size=args.batch_size, precision=args.precision, backend=args.backend,
                                        domain=args.domain, flip="auto" if args.flip is None else args.flip)
        report = parser.parse_files(args.inputs, args.out, domain=args.domain, tta=args.tta,
                                    overlay=args.overlay, probs=args.probs, map_to=args.map_to)
    print(f"wrote {len(report.written)} files to {args.out}", file=sys.stderr)
    if report.failed:
        print(f"{len(report.failed)} input(s) failed:", file=sys.stderr)
        for path, why in report.failed.items():
            print(f"  {path}: {why}", file=sys.stderr)
        return 1
    return 0
