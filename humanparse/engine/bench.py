"""Speed measurements (not tests): inference latency and images/s, training images/s, FLOPs, peak fraction.

``humanparse bench`` and ``benchmarks/*.py`` call these. Every result records device, threads,
versions, resolution, batch and precision, so a number in docs/benchmarks.md can be reproduced.

What is timed:
- inference: ``model(images)`` in eval mode under ``inference_mode`` (one head for semantic networks,
  as ``parse`` runs), batch ``B`` at ``size x size``; ``parse_latency`` adds the bilinear resize to the
  input size and the arg-max.
- training: one optimisation step of the network: forward (every head), a loss over every output
  (the mean of each output tensor; the training method's own loss terms are not included), backward,
  AdamW step.
- FLOPs: ``torch.utils.flop_counter`` on one image (multiply-add = 2 FLOPs; convolutions, linears,
  matmuls, attention). A training step is counted as 3x the forward.
- on a GPU, the achieved fraction of the device's dense peak (``PEAK_TFLOPS``); on a CPU, the ratio
  of the latency to a timm resnet50 forward timed in the same run (machines differ, ratios less so).
"""

from __future__ import annotations

import inspect
import platform
import statistics
import time
from contextlib import nullcontext
from datetime import date
from pathlib import Path

import torch
import torch.nn.functional as F

from ..errors import ConfigError

PRECISIONS = ("fp32", "bf16")

# Dense (no structured sparsity) peaks in TFLOP/s from NVIDIA's data sheets, by device-name substring,
# most specific first. fp32 = CUDA cores; tf32 and bf16 = tensor cores. PyTorch runs fp32 convolutions
# on TF32 tensor cores by default (torch.backends.cudnn.allow_tf32), fp32 matmuls on CUDA cores.
PEAK_TFLOPS: list[tuple[str, dict[str, float]]] = [
    ("H200 NVL", {"bf16": 835.5, "tf32": 417.5, "fp32": 60.0}),
    ("H200", {"bf16": 989.5, "tf32": 494.7, "fp32": 67.0}),  # SXM
    ("H100 NVL", {"bf16": 835.5, "tf32": 417.5, "fp32": 60.0}),
    ("H100 PCIe", {"bf16": 756.5, "tf32": 378.0, "fp32": 51.0}),
    ("H100", {"bf16": 989.5, "tf32": 494.7, "fp32": 67.0}),  # SXM5 ("NVIDIA H100 80GB HBM3")
    ("A100", {"bf16": 312.0, "tf32": 156.0, "fp32": 19.5}),  # SXM4 and PCIe
]


def device_peak(name: str) -> tuple[str, dict[str, float]] | None:
    """``(table key, {"bf16", "tf32", "fp32": TFLOP/s})`` for a CUDA device name, or None if not in the table."""
    lowered = name.lower()
    for key, peaks in PEAK_TFLOPS:
        if key.lower() in lowered:
            return key, peaks
    return None


def environment(device: str | torch.device = "cpu") -> dict:
    import timm

    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
    env = {"date": date.today().isoformat(), "device": name, "device_type": device.type, "torch": torch.__version__,
           "timm": timm.__version__, "threads": torch.get_num_threads(), "python": platform.python_version()}
    try:
        import onnxruntime

        env["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        pass  # only reported when installed
    return env


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


def _sync(device: torch.device):
    return torch.cuda.synchronize if device.type == "cuda" else None


def _autocast(device: torch.device, precision: str):
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)} (got {precision!r})")
    if precision == "bf16":
        return torch.autocast(device_type=device.type, dtype=torch.bfloat16)
    return nullcontext()


def parse_latency(network: torch.nn.Module, domain: str, *, size: int = 512, batch: int = 1, repeat: int = 5,
                  device: str = "cpu", precision: str = "fp32", channels_last: bool = False) -> dict:
    """forward + bilinear resize of the logits to the input size + argmax, as ``parse`` does."""
    device = torch.device(device)
    network = network.eval().to(device)
    x = torch.randn(batch, 3, size, size, device=device)
    if channels_last:
        network, x = network.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def step():
        with _autocast(device, precision):
            logits = network(x, domains=[domain])["logits"][domain]
        return F.interpolate(logits.float(), size=(size, size), mode="bilinear", align_corners=False).argmax(1)

    return time_call(step, repeat=repeat, sync=_sync(device))


def timm_reference_latency(name: str = "resnet50", *, size: int = 512, batch: int = 1, repeat: int = 5,
                           device: str = "cpu", precision: str = "fp32", channels_last: bool = False) -> dict:
    """A plain timm classifier forward at the same size: the yardstick that absorbs machine drift."""
    import timm

    device = torch.device(device)
    model = timm.create_model(name, pretrained=False).eval().to(device)
    x = torch.randn(batch, 3, size, size, device=device)
    if channels_last:
        model, x = model.to(memory_format=torch.channels_last), x.contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def step():
        with _autocast(device, precision):
            return model(x)

    return time_call(step, repeat=repeat, sync=_sync(device))


def inference_forward(model: torch.nn.Module, runner=None):
    """``images -> output`` as inference runs it: one head (the first domain) for multi-head networks.

    ``runner`` (e.g. ``torch.compile(model)``) is what gets called; ``model`` tells how to call it.
    """
    runner = model if runner is None else runner
    domains = getattr(model, "domains", None)
    if domains and "domains" in inspect.signature(model.forward).parameters:
        first = [list(domains)[0]]
        return lambda images: runner(images, domains=first)
    return runner


def output_loss(output) -> torch.Tensor:
    """A loss that depends on every floating-point tensor of a (nested) model output."""
    if isinstance(output, torch.Tensor):
        return output.float().mean() if output.is_floating_point() else output.new_zeros((), dtype=torch.float32)
    if isinstance(output, dict):
        output = list(output.values())
    if isinstance(output, (list, tuple)):
        terms = [output_loss(o) for o in output]
        return torch.stack(terms).sum() if terms else torch.zeros(())
    return torch.zeros(())


def _prepare(model: torch.nn.Module, device: torch.device, channels_last: bool, compile: bool):
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    runner = torch.compile(model) if compile else model
    return model, runner


def _images(batch: int, size: int, device: torch.device, channels_last: bool) -> torch.Tensor:
    x = torch.randn(batch, 3, size, size, device=device)
    return x.contiguous(memory_format=torch.channels_last) if channels_last else x


def inference_throughput(model: torch.nn.Module, *, device="cpu", precision="fp32", batch=1, size=512,
                         channels_last=False, compile=False, warmup=2, repeat=5) -> dict:
    device = torch.device(device)
    model, runner = _prepare(model.eval(), device, channels_last, compile)
    forward = inference_forward(model, runner)
    x = _images(batch, size, device, channels_last)

    @torch.inference_mode()
    def step():
        with _autocast(device, precision):
            return forward(x)

    t = time_call(step, warmup=warmup, repeat=repeat, sync=_sync(device))
    return {"latency_s": t["median_s"], "min_s": t["min_s"], "images_per_s": batch / t["median_s"], "repeat": repeat}


def train_throughput(model: torch.nn.Module, *, device="cpu", precision="fp32", batch=2, size=512,
                     channels_last=False, compile=False, warmup=2, repeat=5) -> dict:
    device = torch.device(device)
    model, runner = _prepare(model.train(), device, channels_last, compile)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-6)
    x = _images(batch, size, device, channels_last)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)

    def step():
        with _autocast(device, precision):
            loss = output_loss(runner(x))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    t = time_call(step, warmup=warmup, repeat=repeat, sync=_sync(device))
    out = {"step_s": t["median_s"], "min_s": t["min_s"], "images_per_s": batch / t["median_s"], "repeat": repeat}
    if device.type == "cuda":
        out["peak_memory_GiB"] = torch.cuda.max_memory_allocated(device) / 2**30
    return out


def build_from_config(path: str | Path) -> tuple[torch.nn.Module, dict]:
    """(training network, config) of an experiment config, with random weights, without reading any data."""
    from ..config import load_config
    from .recipes import build_recipe

    cfg = load_config(path)
    cfg.setdefault("model", {}).setdefault("backbone", {})["pretrained"] = None  # random weights: nothing to read
    recipe = build_recipe(cfg)
    return recipe.build_model(), cfg


def benchmark_model(model: torch.nn.Module, *, device="cpu", precision="fp32", batch=1, size=512, channels_last=False,
                    compile=False, attn_impl: str | None = None, modes=("inference", "train"), warmup=2, repeat=5,
                    reference: dict | None = None) -> dict:
    """Params, FLOPs and the timed modes of one model; on a GPU the fraction of peak, on a CPU the ratio to
    ``reference`` (a ``timm_reference_latency`` result at the same batch, size and precision)."""
    from ..models.encoders.ms_deform_attn import set_attn_impl

    device = torch.device(device)
    if attn_impl is not None:
        set_attn_impl(model, attn_impl)
    entry: dict = {"params_M": sum(p.numel() for p in model.parameters()) / 1e6}
    model.eval().to(device)
    flops = count_flops(inference_forward(model), torch.zeros(1, 3, size, size, device=device))
    entry["GFLOPs_per_image"] = flops / 1e9
    peak = device_peak(torch.cuda.get_device_name(device)) if device.type == "cuda" else None
    timed = {"inference": (inference_throughput, 1), "train": (train_throughput, 3)}
    for mode in modes:
        fn, flop_factor = timed[mode]
        r = fn(model, device=device, precision=precision, batch=batch, size=size, channels_last=channels_last,
               compile=compile, warmup=warmup, repeat=repeat)
        achieved = flop_factor * flops * r["images_per_s"] / 1e12
        r["achieved_TFLOPs"] = achieved
        if peak is not None:
            kinds = ("bf16",) if precision == "bf16" else ("tf32", "fp32")
            r["fraction_of_peak"] = {k: achieved / peak[1][k] for k in kinds}
            r["peak_table_entry"] = peak[0]
        entry[mode] = r
    if reference is not None and "inference" in entry:
        entry["inference"]["ratio_to_timm_resnet50"] = entry["inference"]["latency_s"] / reference["median_s"]
    return entry


__all__ = [
    "PEAK_TFLOPS", "PRECISIONS", "benchmark_model", "build_from_config", "count_flops", "device_peak", "environment",
    "inference_throughput", "output_loss", "parse_latency", "time_call", "timm_reference_latency", "train_throughput",
]
