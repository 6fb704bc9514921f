"""Images/s of the real training loop (data loading, forward, backward, optimiser), old settings against new,
in one process on one machine. The rows add one change at a time to the starter recipe's loop:

  old loop:        NCHW, whole backbone trained, data decoded/augmented in the main process
  + channels-last: train.channels_last (default auto = on)
  + frozen stem:   model.backbone.frozen_stride 4 (stem and stride-4 stage frozen, as detectron2's freeze_at):
                   the starter recipe's loop
  + data workers:  train.num_workers 1 (decoding and augmentation in a worker process)
  + bf16 autocast: train.amp bf16 (train.amp auto keeps fp32 on CPUs: this row is why)

Rows that the CPU cannot run fast are still timed (bf16 is emulated, and slow, without AVX512-BF16/AMX).
--extra-backbone NAME adds the new loop with another backbone (e.g. tf_efficientnet_lite2) for comparison.

    python benchmarks/bench_train_loop.py --config configs/starter/universal_lite2.yaml --steps 12

Timing: the trainer's own clock between the end of step --warmup and the last step (metrics.jsonl), so model
building and the first steps are not counted.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
from pathlib import Path

import torch

from humanparse.config import load_config
from humanparse.engine.trainer import train

_FP32 = {"train.amp": "off"}
VARIANTS = [
    ("old loop", {**_FP32, "train.channels_last": False, "model.backbone.frozen_stride": None, "train.num_workers": 0}),
    ("+ channels-last", {**_FP32, "train.channels_last": True, "model.backbone.frozen_stride": None,
                         "train.num_workers": 0}),
    ("+ frozen stem (stride 4)", {**_FP32, "train.channels_last": True, "model.backbone.frozen_stride": 4,
                                  "train.num_workers": 0}),
    ("+ 1 data worker", {**_FP32, "train.channels_last": True, "model.backbone.frozen_stride": 4,
                         "train.num_workers": 1}),
    ("+ bf16 autocast", {"train.amp": "bf16", "train.channels_last": True,
                                            "model.backbone.frozen_stride": 4, "train.num_workers": 1}),
]


def _set(cfg: dict, dotted: str, value) -> None:
    keys = dotted.split(".")
    node = cfg
    for k in keys[:-1]:
        node = node.setdefault(k, {})
    node[keys[-1]] = value


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default="configs/starter/universal_lite2.yaml")
    ap.add_argument("--steps", type=int, default=12)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--only-new", action="store_true", help="time the starter loop (+ frozen stem) only")
    ap.add_argument("--extra-backbone", action="append", default=[], help="also time the new loop with this backbone")
    args = ap.parse_args()
    variants = [VARIANTS[2]] if args.only_new else list(VARIANTS)
    for name in args.extra_backbone:
        variants.append((f"starter loop, backbone {name}", {**VARIANTS[2][1], "model.backbone.name": name}))
    torch.set_num_threads(args.threads)
    base = load_config(args.config)
    batch = int(base["train"]["batch_size"])
    from humanparse.export.fast_path import cpu_features

    cpu = cpu_features()
    print(f"# {time.strftime('%Y-%m-%d')}, CPU {cpu['model']} ({cpu['capability']}, "
          f"AVX512-BF16: {cpu['avx512_bf16']}, AMX: {cpu['amx']}), "
          f"{args.threads} threads, torch {torch.__version__}, config {args.config}, batch {batch}, "
          f"crop {base['data']['transforms'].get('crop_size')}, steps {args.warmup + 1}-{args.steps}")
    print("| loop | s / step | images / s | vs old |")
    print("|---|---|---|---|")
    first = None
    for name, changes in variants:
        cfg = copy.deepcopy(base)
        for k, v in changes.items():
            _set(cfg, k, v)
        _set(cfg, "train.steps", args.steps)
        _set(cfg, "train.log_every", 1)
        _set(cfg, "train.eval_every", 0)
        _set(cfg, "train.checkpoint_every", 0)
        _set(cfg, "train.tensorboard", False)
        _set(cfg, "train.eval_max_images", 1)  # the final evaluation is not what is timed
        with tempfile.TemporaryDirectory() as tmp:
            train(cfg, output_dir=tmp, stop_after=args.steps, progress=False)
            rows = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
        times = {r["step"]: r["time"] for r in rows if "time" in r and "loss" in r}
        per_step = (times[args.steps] - times[args.warmup]) / (args.steps - args.warmup)
        first = first or per_step
        print(f"| {name} | {per_step:.2f} | {batch / per_step:.2f} | {first / per_step:.2f}x |", flush=True)


if __name__ == "__main__":
    main()
