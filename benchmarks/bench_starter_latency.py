"""Parse latency of the bundled starter model (or any model folder / checkpoint) on this CPU, batch 1.

Two numbers, each the median of --runs calls after 2 warm-up calls, on the default inference path
(``humanparse.export.fast_path``, printed once):

  network:     the network's forward alone at the stored inference size for a portrait photo
               (long side = the checkpoint's ``long_side``, short side 2/3 of it, rounded to 32)
  end to end:  ``Parser(photo, domain)`` on a uint8 photo of --photo-size (resize, forward, up-sampling
               of the logits to the photo's size, arg-max), with the model's stored flip setting (the
               starter: flip averaging, two forward passes) and, for comparison, the other setting

    python benchmarks/bench_starter_latency.py --threads 2 --out benchmarks/results/starter_latency.json
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def _median_seconds(fn, runs: int) -> float:
    for _ in range(2):
        fn()
    times = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=None, help="model folder, Hub id or checkpoint (default: the bundled starter)")
    ap.add_argument("--domain", default="lip")
    ap.add_argument("--photo-size", type=int, nargs=2, default=[825, 550], metavar=("H", "W"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    import humanparse
    from humanparse.export.fast_path import cpu_features

    parser = humanparse.Parser.from_pretrained(args.model)
    long_side = int(parser.long_side)
    short = max(32, round(long_side * 2 / 3 / 32) * 32)
    photo = (np.random.default_rng(0).random((*args.photo_size, 3)) * 255).astype(np.uint8)

    x = torch.randn(1, 3, long_side, short)
    model = parser.model

    from humanparse.export.fast_path import autocast_context

    path = parser.inference_path
    if path.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)

    def network():
        with torch.inference_mode(), autocast_context(path, parser.device):
            model(x, domains=[args.domain])

    result = {
        "date": time.strftime("%Y-%m-%d"), "cpu": cpu_features(), "threads": args.threads, "torch": torch.__version__,
        "model": args.model or "starter", "domain": args.domain, "inference_path": path.describe(),
        "network_input": [long_side, short], "network_s": round(_median_seconds(network, args.runs), 4),
        "photo": list(args.photo_size),
        "flip": parser.flip,
        "end_to_end_s": round(_median_seconds(lambda: parser(photo, args.domain), args.runs), 4),
        "runs": args.runs,
    }
    # the stored default (the starter: flip averaging, two forward passes) and the other setting, same run
    default_flip = parser.flip
    parser.flip = not default_flip
    result[f"end_to_end_s_flip_{'off' if default_flip else 'on'}"] = round(
        _median_seconds(lambda: parser(photo, args.domain), args.runs), 4)
    parser.flip = default_flip
    print(json.dumps(result, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
