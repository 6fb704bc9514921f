"""Inference latency of a UniParser checkpoint (a measurement, not a test).

    python -m humanparse.uniparser.benchmark runs/uniparser_tiny_cpu/model.safetensors \
        --images samples://pascal_person_part --long-side 128 --repeats 3

Per image, batch 1, end to end (uint8 RGB array in -> person-id map, part map, per-person RLE out),
after warm-up runs. Prints one JSON line: device, threads, resolution, median / mean ms per image,
mean persons per image.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time


def main(argv=None) -> int:
    import torch

    from ..data.io import read_image
    from ..data.readers import read_dataset
    from ..engine.semantic_recipe import resolve_root
    from .predictor import MultiPersonParser

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--images", default="samples://pascal_person_part", help="a folder in the shared layout")
    p.add_argument("--long-side", type=int, default=128, help="0 = native size")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--device", default="cpu")
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    root = resolve_root(args.images, __import__("pathlib").Path("."))
    images = [read_image(r.image) for r in read_dataset("shared", root, "all")]
    parser = MultiPersonParser.from_checkpoint(args.checkpoint, device=args.device,
                                               long_side=args.long_side or None, batch_size=1)
    for im in images[: args.warmup]:
        parser([im])
    times, persons = [], []
    for _ in range(args.repeats):
        for im in images:
            t0 = time.perf_counter()
            [res] = parser([im])
            times.append(time.perf_counter() - t0)
            persons.append(len(res["persons"]))
    print(json.dumps({
        "device": args.device, "threads": torch.get_num_threads(), "long_side": args.long_side or "native",
        "images": len(images), "runs": len(times), "median_ms": round(1000 * statistics.median(times), 1),
        "mean_ms": round(1000 * statistics.mean(times), 1), "persons_per_image": round(statistics.mean(persons), 2),
        "input_sizes": sorted({tuple(im.shape[:2]) for im in images}),
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
