"""Speed measurements (not tests): parse latency, inference and training throughput, FLOPs.

``humanparse bench`` and ``benchmarks/*.py`` call these. Every result records device, threads,
versions, resolution, batch and precision, so a number in docs/benchmarks.md can be reproduced.
"""

from __future__ import annotations

import platform
import statistics
import time
from datetime import date

import torch
import torch.nn.functional as F


def environment() -> dict:
    import timm

    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else platform.processor() or platform.machine()
    return {"date": date.today().isoformat(), "device": dev, "torch": torch.__version__, "timm": timm.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version()}


def time_call(fn, *, warmup: int = 2, repeat: int = 5, sync=None) -> dict:
    """Median and min seconds of ``fn()`` over ``repeat`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    if sync:
        sync()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        if sync:
            sync()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times), "repeat": repeat}


def count_flops(model: torch.nn.Module, *inputs, **kwargs) -> int:
    """Forward FLOPs (multiply-add = 2 FLOPs) counted by torch.utils.flop_counter."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        model(*inputs, **kwargs)
    return int(counter.get_total_flops())


def parse_latency(network: torch.nn.Module, domain: str, *, size: int = 512, batch: int = 1, repeat: int = 5,
                  device: str = "cpu") -> dict:
    """forward + bilinear resize of the logits to the input size + argmax, as ``parse`` does."""
    network = network.eval().to(device)
    x = torch.randn(batch, 3, size, size, device=device)

    @torch.inference_mode()
    def step():
        logits = network(x, domains=[domain])["logits"][domain]
        return F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False).argmax(1)

    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    return time_call(step, repeat=repeat, sync=sync)


def timm_reference_latency(name: str = "resnet50", *, size: int = 512, repeat: int = 5, device: str = "cpu") -> dict:
    """A plain timm classifier forward at the same size: the yardstick that absorbs machine drift."""
    import timm

    model = timm.create_model(name, pretrained=False).eval().to(device)
    x = torch.randn(1, 3, size, size, device=device)

    @torch.inference_mode()
    def step():
        return model(x)

    sync = torch.cuda.synchronize if device.startswith("cuda") else None
    return time_call(step, repeat=repeat, sync=sync)
