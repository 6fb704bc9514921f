"""UniParser target building per image, before vs after (not a test).

"before" is the implementation of commit 9d18fd4 (kept below, verbatim in substance, as
``legacy_build_targets``): a Python loop per person, [C-1, H, W] and [Q, H, W] full-resolution masks
materialised on the CPU inside the training step. "after" is
``humanparse.uniparser.losses.build_targets`` on the chosen device (the model's, in training).
Both run in the same process on the same scene, alternating, so that the ratio is measured under
the same machine load::

    python benchmarks/bench_uniparser_targets.py --size 800 1216 --persons 6 --classes 59 --repeat 5
    python benchmarks/bench_uniparser_targets.py --device cuda    # after on the GPU, before on the CPU

Reports wall seconds and the process's CPU seconds per image (the latter barely moves when other
processes load the machine). The scene: ``persons`` upright ellipses, each cut into horizontal part bands with
labels drawn from 1..C-1, plus a few ignore (255) pixels. Prints one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from humanparse.uniparser.losses import build_targets


# -- the implementation before (commit 9d18fd4), for the comparison only ------------------------
def _legacy_center_cells(mask, grid, *, sigma=0.2, radius=1):
    H, W = mask.shape
    ys, xs = torch.nonzero(mask, as_tuple=True)
    cy, cx = ys.float().mean() + 0.5, xs.float().mean() + 0.5
    box_h, box_w = float(ys.max() - ys.min() + 1), float(xs.max() - xs.min() + 1)
    row, col = min(int(cy * grid / H), grid - 1), min(int(cx * grid / W), grid - 1)
    half_h, half_w = 0.5 * sigma * box_h, 0.5 * sigma * box_w
    top, bottom = int(torch.floor((cy - half_h) * grid / H)), int(torch.floor((cy + half_h) * grid / H))
    left, right = int(torch.floor((cx - half_w) * grid / W)), int(torch.floor((cx + half_w) * grid / W))
    if radius is not None:
        top, bottom = max(top, row - radius), min(bottom, row + radius)
        left, right = max(left, col - radius), min(right, col + radius)
    top, left, bottom, right = max(top, 0), max(left, 0), min(bottom, grid - 1), min(right, grid - 1)
    rr, cc = torch.arange(top, bottom + 1), torch.arange(left, right + 1)
    return (rr[:, None] * grid + cc[None, :]).flatten(), row * grid + col


def _legacy_downsample(masks, stride):
    if masks.shape[0] == 0:
        return masks.new_zeros((0, masks.shape[1] // stride, masks.shape[2] // stride), dtype=torch.float32)
    frac = F.avg_pool2d(masks.float().unsqueeze(1), stride).squeeze(1)
    out = frac >= 0.5
    empty = ~out.flatten(1).any(1)
    if bool(empty.any()):
        out[empty] = frac[empty] > 0
    return out.float()


def legacy_build_targets(person, part, num_classes, *, grid=40, sigma=0.2, radius=1, stride=4, ignore_index=255):
    person, part = person.cpu(), part.cpu().long()
    H, W = part.shape
    fg = (part > 0) & (part < num_classes)
    ids = [int(i) for i in torch.unique(person[fg]) if int(i) > 0]
    full_masks = torch.stack([(person == i) & fg for i in ids]) if ids else torch.zeros((0, H, W), dtype=torch.bool)
    heat = torch.zeros(grid * grid)
    kernel_cells, kernel_person, bary = [], [], []
    for p, mask in enumerate(full_masks):
        cells, centre = _legacy_center_cells(mask, grid, sigma=sigma, radius=radius)
        heat[cells] = 1.0
        kernel_cells.append(cells)
        kernel_person.append(torch.full_like(cells, p))
        bary.append(centre)
    classes = torch.arange(1, num_classes).view(-1, 1, 1)
    cate_full = part.unsqueeze(0) == classes
    present = cate_full.flatten(1).any(1)
    key = torch.full((H, W), -1, dtype=torch.long)
    for p, mask in enumerate(full_masks):
        key[mask] = p * num_classes + part[mask]
    keys = torch.unique(key[key >= 0])
    pair_person = torch.div(keys, num_classes, rounding_mode="floor")
    pair_full = key.unsqueeze(0) == keys.view(-1, 1, 1)
    valid_full = (part != ignore_index).float()
    valid = (F.avg_pool2d(valid_full[None, None], stride)[0, 0] >= 0.5).float()
    return (heat.view(grid, grid), torch.cat(kernel_cells), torch.cat(kernel_person), torch.tensor(bary),
            _legacy_downsample(full_masks, stride), _legacy_downsample(cate_full, stride), present,
            pair_person, keys - pair_person * num_classes - 1, _legacy_downsample(pair_full, stride), valid)


# -- the scene and the timing ----------------------------------------------------------------------
def make_scene(h: int, w: int, persons: int, classes: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    person = np.zeros((h, w), np.int64)
    part = np.zeros((h, w), np.int64)
    yy, xx = np.mgrid[:h, :w]
    for k in range(1, persons + 1):
        ph, pw = rng.uniform(0.5, 0.95) * h, rng.uniform(0.12, 0.25) * w
        cy, cx = rng.uniform(ph / 2, h - ph / 2), (k - 0.5) / persons * w
        inside = ((yy - cy) / (ph / 2)) ** 2 + ((xx - cx) / (pw / 2)) ** 2 <= 1
        bands = rng.integers(1, classes, size=8)
        band = np.clip(((yy - (cy - ph / 2)) / ph * 8).astype(int), 0, 7)
        person[inside], part[inside] = k, bands[band[inside]]
    part[rng.random((h, w)) < 0.001] = 255
    return torch.from_numpy(person), torch.from_numpy(part)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--size", type=int, nargs=2, default=[800, 1216], metavar=("H", "W"))
    p.add_argument("--persons", type=int, default=6)
    p.add_argument("--classes", type=int, default=59)
    p.add_argument("--grid", type=int, default=40)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--device", default="cpu", help="device of the 'after' implementation")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: a shared machine)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    person, part = make_scene(*args.size, args.persons, args.classes)
    dev_person, dev_part = person.to(args.device), part.to(args.device)
    kw = {"grid": args.grid}
    before, after, before_cpu, after_cpu = [], [], [], []
    build_targets(dev_person, dev_part, args.classes, **kw)  # warm-up (allocator, kernels)
    for _ in range(args.repeat):
        t0, c0 = time.perf_counter(), time.process_time()
        legacy_build_targets(person, part, args.classes, **kw)
        before.append(time.perf_counter() - t0)
        before_cpu.append(time.process_time() - c0)
        _sync(args.device)
        t0, c0 = time.perf_counter(), time.process_time()
        build_targets(dev_person, dev_part, args.classes, **kw)
        _sync(args.device)
        after.append(time.perf_counter() - t0)
        after_cpu.append(time.process_time() - c0)
    b, a = statistics.median(before), statistics.median(after)
    print(json.dumps({
        "scene": {"size": args.size, "persons": args.persons, "classes": args.classes, "grid": args.grid},
        "before_s_per_image": {"median": b, "min": min(before), "device": "cpu"},
        "after_s_per_image": {"median": a, "min": min(after), "device": args.device},
        "ratio_before_over_after": b / a,
        # CPU seconds of this process: much less sensitive than wall time to other processes' load
        "before_cpu_s_per_image": statistics.median(before_cpu), "after_cpu_s_per_image": statistics.median(after_cpu),
        "cpu_ratio_before_over_after": statistics.median(before_cpu) / statistics.median(after_cpu),
        "torch_threads": torch.get_num_threads(), "torch": torch.__version__, "cpu": platform.processor() or platform.machine(),
        "load_average_at_end": list(os.getloadavg()),
    }, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
