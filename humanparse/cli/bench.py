"""``humanparse bench [CONFIG ...] [--device D] [--precision fp32|bf16] [--batch B] [--size S] ...``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DEFAULT_CONFIGS = ["configs/sst_r50.yaml", "configs/sst_r101.yaml", "configs/uniparser_r50.yaml",
                   "configs/htcorrm_r101.yaml"]

EPILOG = """\
Random weights, random images: nothing is read but the configs. Inference runs one head in eval mode;
a training step is forward (every head) + a loss over every output + backward + AdamW (the training
method's own loss terms are not included). FLOPs count multiply-adds as 2, training as 3x the forward.
On a GPU the achieved fraction of the device's dense peak is reported (H100/H200/A100 table); on a
CPU the latency relative to a timm resnet50 forward at the same batch, size and precision.

examples:
  humanparse bench --device cpu --size 512 --batch 1 --mode inference
  humanparse bench configs/sst_r50.yaml --device cuda --precision bf16 --batch 8 --channels-last --compile
  humanparse bench configs/sst_r50.yaml --device cuda --attn-impl compiled --json --out bench.json
"""


def add_parser(sub) -> None:
    p = sub.add_parser("bench", help="measure inference latency, images/s, training images/s and FLOPs",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("configs", nargs="*", metavar="CONFIG",
                   help=f"experiment YAMLs whose model to measure (default: {' '.join(DEFAULT_CONFIGS)})")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 (default: cuda when available)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "bf16"], help="bf16 = autocast")
    p.add_argument("--batch", type=int, default=1, help="images per forward / training step")
    p.add_argument("--size", type=int, default=512, help="square input size (a multiple of 32)")
    p.add_argument("--channels-last", action="store_true", help="NHWC memory format for the model and images")
    p.add_argument("--compile", action="store_true", help="torch.compile the model (the first calls compile)")
    p.add_argument("--attn-impl", choices=["pytorch", "compiled", "embedding_bag"],
                   help="deformable-attention op (default: the config's model.encoder.attn_impl)")
    p.add_argument("--mode", default="both", choices=["inference", "train", "both"])
    p.add_argument("--warmup", type=int, default=2, help="untimed calls first (more with --compile)")
    p.add_argument("--repeat", type=int, default=5, help="timed calls; the median is reported")
    p.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of a table")
    p.add_argument("--out", help="also write the JSON report to this file")
    p.set_defaults(run=run)


def run(args) -> int:
    import torch

    from ..engine.bench import benchmark_model, build_from_config, environment, timm_reference_latency
    from ..engine.loading import resolve_device
    from ..errors import ConfigError

    if args.size <= 0 or args.size % 32:
        raise ConfigError(f"--size {args.size} must be a positive multiple of 32")
    if args.batch < 1 or args.repeat < 1 or args.warmup < 0:
        raise ConfigError("--batch and --repeat must be at least 1, --warmup at least 0")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    modes = ("inference", "train") if args.mode == "both" else (args.mode,)
    options = dict(device=device, precision=args.precision, batch=args.batch, size=args.size,
                   channels_last=args.channels_last, compile=args.compile, warmup=args.warmup, repeat=args.repeat)
    report = {"env": environment(device), "options": {**options, "device": str(device), "attn_impl": args.attn_impl,
                                                      "modes": list(modes)}, "models": {}}
    reference = None
    if device.type == "cpu" and "inference" in modes:
        reference = timm_reference_latency("resnet50", size=args.size, batch=args.batch, repeat=args.repeat,
                                           device=str(device), precision=args.precision,
                                           channels_last=args.channels_last)
        report["timm_resnet50_forward"] = reference
    for config in args.configs or DEFAULT_CONFIGS:
        name = Path(config).stem
        try:
            model, _ = build_from_config(config)
        except ImportError as exc:  # a recipe whose optional module does not import here: say so, go on
            report["models"][name] = {"skipped": f"{type(exc).__name__}: {exc}"}
            print(f"{name}: not measured ({type(exc).__name__}: {exc})", file=sys.stderr)
            continue
        report["models"][name] = benchmark_model(model, attn_impl=args.attn_impl, modes=modes, reference=reference,
                                                 **options)
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()
    text = json.dumps(report, indent=2)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)
    print(text if args.json else format_table(report))
    return 0


def format_table(report: dict) -> str:
    env, opts = report["env"], report["options"]
    lines = [f"{env['device']} ({opts['device']}), torch {env['torch']}, {env['threads']} threads, {opts['precision']}, "
             f"batch {opts['batch']}, {opts['size']}x{opts['size']}"
             + (", channels_last" if opts["channels_last"] else "") + (", compiled" if opts["compile"] else "")]
    if "timm_resnet50_forward" in report:
        lines.append(f"timm resnet50 forward: {report['timm_resnet50_forward']['median_s'] * 1000:.1f} ms")
    header = f"{'model':<16}{'params M':>9}{'GFLOPs':>8}{'infer ms':>10}{'img/s':>8}{'vs r50':>8}{'train img/s':>12}{'peak %':>8}"
    lines.append(header)
    for name, e in report["models"].items():
        if "skipped" in e:
            lines.append(f"{name:<16}  not measured: {e['skipped']}")
            continue
        inf, tr = e.get("inference", {}), e.get("train", {})
        frac = (inf or tr).get("fraction_of_peak")
        peak = f"{100 * next(iter(frac.values())):.1f}" if frac else "-"
        lines.append(f"{name:<16}{e['params_M']:>9.1f}{e['GFLOPs_per_image']:>8.1f}"
                     f"{inf.get('latency_s', float('nan')) * 1000:>10.1f}{inf.get('images_per_s', float('nan')):>8.2f}"
                     f"{inf.get('ratio_to_timm_resnet50', float('nan')):>8.2f}{tr.get('images_per_s', float('nan')):>12.2f}"
                     f"{peak:>8}")
    return "\n".join(lines)
