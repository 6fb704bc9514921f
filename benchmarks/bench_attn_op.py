"""The deformable-attention op's implementations on this CPU (not a test): one call at the SST resnet50 512x512
level sizes (64x64, 32x32, 16x16 = 5,376 queries; 8 heads of 32; 3 levels x 4 points), forward and forward +
backward, median over runs of wall time and of the calling thread's CPU time (the latter is less disturbed by
other processes). Every impl's output is checked against ``pytorch`` (grid_sample) first.

    python benchmarks/bench_attn_op.py --threads 2 --runs 7
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from humanparse.models.encoders.ms_deform_attn import ms_deform_attn
from humanparse.models.encoders.ms_deform_attn_bag import ms_deform_attn_bag
from humanparse.models.encoders.ms_deform_attn_gather import ms_deform_attn_gather

IMPLS = {"pytorch": ms_deform_attn, "embedding_bag": ms_deform_attn_bag, "gather": ms_deform_attn_gather}


def inputs(size: int, batch: int, requires_grad: bool = False):
    g = torch.Generator().manual_seed(0)
    shapes = [(size // 8, size // 8), (size // 16, size // 16), (size // 32, size // 32)]
    tokens = sum(h * w for h, w in shapes)
    value = torch.randn(batch, tokens, 8, 32, generator=g)
    locations = torch.rand(batch, tokens, 8, 3, 4, 2, generator=g) * 1.1 - 0.05  # some outside the maps
    weights = torch.rand(batch, tokens, 8, 3, 4, generator=g).softmax(-1)
    return [t.requires_grad_(requires_grad) for t in (value, locations, weights)], shapes


def measure(fn, runs: int) -> dict:
    fn()
    wall, cpu = [], []
    for _ in range(runs):
        w0, c0 = time.perf_counter(), time.thread_time()
        fn()
        cpu.append(time.thread_time() - c0)
        wall.append(time.perf_counter() - w0)
    return {"wall_ms": 1000 * statistics.median(wall), "thread_cpu_ms": 1000 * statistics.median(cpu)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--batch", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    (value, locations, weights), shapes = inputs(args.size, args.batch)
    reference = ms_deform_attn(value, shapes, locations, weights)
    result = {"threads": args.threads, "size": args.size, "batch": args.batch, "forward": {}, "forward_backward": {}}
    for name, op in IMPLS.items():
        err = float((op(value, shapes, locations, weights) - reference).abs().max())
        with torch.inference_mode():
            result["forward"][name] = {**measure(lambda: op(value, shapes, locations, weights), args.runs),
                                       "max_abs_diff_vs_pytorch": err}
        (v, loc, w), _ = inputs(args.size, args.batch, requires_grad=True)
        result["forward_backward"][name] = measure(lambda: op(v, shapes, loc, w).square().sum().backward(), args.runs)
        print(name, json.dumps({k: result[k][name] for k in ("forward", "forward_backward")}), flush=True)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
