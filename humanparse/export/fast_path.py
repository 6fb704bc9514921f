"""The fastest correct inference path per device, chosen once, printed once, overridable.

A path is (backend, precision, channels-last, deformable-attention impl). ``choose_torch_path`` decides
from what the device has: on a CPU, bf16 autocast with channels-last only where the CPU computes bf16
natively (AVX512-BF16 or AMX, read from ``/proc/cpuinfo``; emulated bf16 is slower than fp32), else fp32;
on a GPU, bf16 where supported; the ``gather`` attention op everywhere. ONNX Runtime is chosen only
where it is installed *and* measured faster than that torch path on this machine: the file is exported
once next to the checkpoint, named by the checkpoint's SHA-256, and the measurement is cached beside it.
Every path is held to the same bar by a test: its labels agree with the fp32 PyTorch reference
(``attn_impl: pytorch``) on at least 99.5 % of the pixels of the sample images
(tests/export/test_fast_path.py). ``--precision`` / ``--backend`` override the choice.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from ..engine.checkpoint import sha256_file
from ..errors import ConfigError, unknown_key_message

__all__ = ["BACKENDS", "PRECISIONS", "InferencePath", "apply_path", "autocast_context", "choose_torch_path",
           "cpu_features", "announce", "onnx_cache_paths", "checkpoint_sha256", "pick_backend"]

PRECISIONS = ("auto", "fp32", "bf16")
BACKENDS = ("auto", "torch", "onnx", "measure")
_ANNOUNCED: set[str] = set()


@dataclass(frozen=True)
class InferencePath:
    backend: str = "torch"        # torch | onnx
    precision: str = "fp32"       # fp32 | bf16 (autocast)
    channels_last: bool = False
    attn_impl: str = "gather"
    reason: str = ""

    def describe(self) -> str:
        if self.backend == "onnx":
            return f"ONNX Runtime fp32 ({self.reason})"
        layout = ", channels-last" if self.channels_last else ""
        return f"PyTorch {self.precision}{layout}, attention {self.attn_impl} ({self.reason})"


def cpu_features(cpuinfo: str | Path = "/proc/cpuinfo") -> dict:
    """``{"capability", "model", "avx512_bf16", "amx"}``: torch's SIMD level and the CPU's bf16 instructions."""
    flags: set[str] = set()
    model = ""
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        text = ""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags" and not flags:
            flags = set(value.split())
        elif key.strip() == "model name" and not model:
            model = value.strip()
    return {"capability": torch.backends.cpu.get_cpu_capability(), "model": model,
            "avx512_bf16": "avx512_bf16" in flags, "amx": bool({"amx_bf16", "amx_tile"} & flags)}


def _check(kind: str, value: str, valid) -> str:
    if value not in valid:
        raise ConfigError(unknown_key_message(kind, str(value), valid))
    return value


def choose_torch_path(device: torch.device | str, *, precision: str = "auto", features: dict | None = None) -> InferencePath:
    """The fastest PyTorch path for ``device`` (``precision="auto"``), or the one asked for."""
    from ..models.encoders.ms_deform_attn import DEFAULT_IMPL

    _check("precision", precision, PRECISIONS)
    device = torch.device(device)
    if device.type == "cuda":
        bf16 = torch.cuda.is_bf16_supported()
        if precision == "auto":
            return InferencePath(precision="bf16" if bf16 else "fp32", channels_last=True, attn_impl=DEFAULT_IMPL,
                                 reason="GPU with bf16" if bf16 else "GPU without bf16")
        return InferencePath(precision=precision, channels_last=True, attn_impl=DEFAULT_IMPL, reason="--precision")
    f = cpu_features() if features is None else features
    native = f["avx512_bf16"] or f["amx"]
    what = f"CPU {f['capability']}, " + ("AMX" if f["amx"] else "AVX512-BF16" if f["avx512_bf16"] else "no native bf16")
    if precision == "auto":
        precision = "bf16" if native else "fp32"
    else:
        what = f"--precision {precision}; {what}"
    return InferencePath(precision=precision, channels_last=precision == "bf16", attn_impl=DEFAULT_IMPL, reason=what)


def apply_path(model: torch.nn.Module, path: InferencePath) -> torch.nn.Module:
    """Set the attention impl and memory format of a torch model for ``path`` (in place)."""
    from ..models.encoders.ms_deform_attn import set_attn_impl

    set_attn_impl(model, path.attn_impl)
    if path.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def autocast_context(path: InferencePath, device: torch.device | str):
    """bf16 autocast for a bf16 path, nothing otherwise."""
    if path.backend == "torch" and path.precision == "bf16":
        return torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def announce(path: InferencePath) -> None:
    """Print the chosen path once per process (stderr)."""
    text = path.describe()
    if text not in _ANNOUNCED:
        _ANNOUNCED.add(text)
        print(f"humanparse: inference path: {text}", file=sys.stderr)


checkpoint_sha256 = sha256_file  # the ONNX cache is keyed by the checkpoint's digest


def onnx_cache_paths(checkpoint: str | Path, domain: str) -> tuple[Path, Path]:
    """(``<stem>.<sha16>.<domain>.onnx``, its ``.timing.json``) next to ``checkpoint``."""
    checkpoint = Path(checkpoint)
    key = checkpoint_sha256(checkpoint)[:16]
    onnx = checkpoint.with_name(f"{checkpoint.stem}.{key}.{domain}.onnx")
    return onnx, onnx.with_suffix(".timing.json")


def _median_seconds(fn, images: torch.Tensor, runs: int = 3) -> float:
    fn(images)  # warm-up
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn(images)
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


def pick_backend(checkpoint: str | Path, model: torch.nn.Module, domain: str, torch_path: InferencePath, *,
                 device: torch.device | str, long_side: int, backend: str = "auto") -> tuple[InferencePath, Path | None]:
    """``(path, onnx_file)`` for ``backend``:

    ``torch``: ``torch_path``. ``onnx``: ONNX Runtime (the file exported once, next to the checkpoint).
    ``measure``: export if needed, time ``torch_path`` and ONNX Runtime at ``long_side`` x ``long_side``,
    batch 1, cache the timing next to the checkpoint (keyed by CPU, threads, torch path and size), take the faster.
    ``auto`` (the default): the faster of the two where such a timing is cached for this machine, else
    ``torch_path`` (exporting and timing cost tens of seconds, so they happen only when asked for).
    """
    _check("backend", backend, BACKENDS)
    device = torch.device(device)
    if backend == "torch" or (backend == "auto" and (device.type != "cpu" or not _onnx_installed())):
        return torch_path, None
    key = {"cpu": cpu_features()["model"], "threads": torch.get_num_threads(), "torch_path": torch_path.describe(),
           "size": long_side, "torch": torch.__version__}
    if backend == "auto":
        checkpoint = Path(checkpoint)
        if not any(checkpoint.parent.glob(f"{checkpoint.stem}.*.{domain}.timing.json")):  # no hashing then
            return replace(torch_path, reason=torch_path.reason + "; ONNX Runtime not timed here: --backend measure"), None
        onnx_file, timing_file = onnx_cache_paths(checkpoint, domain)
        cached = json.loads(timing_file.read_text()) if timing_file.is_file() and onnx_file.is_file() else {}
        if cached.get("key") != key:
            return replace(torch_path, reason=torch_path.reason + "; ONNX Runtime not timed here: --backend measure"), None
        return _faster(torch_path, cached, onnx_file)
    if not _onnx_installed():
        raise ConfigError("--backend onnx needs onnxruntime and onnx: pip install onnxruntime onnx")
    if device.type != "cpu":
        raise ConfigError("--backend onnx runs on the CPU; use --device cpu (or --backend torch on a GPU)")
    onnx_file, timing_file = onnx_cache_paths(checkpoint, domain)
    if not onnx_file.is_file():
        from .exporters import export_model

        print(f"humanparse: exporting {onnx_file.name} once (ONNX Runtime candidate)", file=sys.stderr)
        export_model(checkpoint, onnx_file, fmt="onnx", domain=domain)
    onnx_path = InferencePath(backend="onnx", precision="fp32", attn_impl="pytorch", reason="--backend onnx")
    if backend == "onnx":
        return onnx_path, onnx_file
    cached = {"key": key, **measure_backends(model, onnx_file, domain, torch_path, device=device, size=long_side)}
    from ..engine.checkpoint import atomic_write

    atomic_write(timing_file, lambda tmp: Path(tmp).write_text(json.dumps(cached, indent=1)))
    return _faster(torch_path, cached, onnx_file)


def _faster(torch_path: InferencePath, cached: dict, onnx_file: Path) -> tuple[InferencePath, Path | None]:
    if cached["onnx_s"] < cached["torch_s"]:
        return InferencePath(backend="onnx", precision="fp32", attn_impl="pytorch",
                             reason=f"measured {cached['onnx_s']:.3f} s vs PyTorch {cached['torch_s']:.3f} s"), onnx_file
    return replace(torch_path, reason=torch_path.reason
                   + f"; ONNX Runtime measured slower, {cached['onnx_s']:.3f} vs {cached['torch_s']:.3f} s"), None


def measure_backends(model: torch.nn.Module, onnx_file: Path, domain: str, torch_path: InferencePath, *,
                     device: torch.device, size: int) -> dict:
    """Median forward seconds of the torch path and of ONNX Runtime, batch 1, ``size`` x ``size``."""
    from .onnx_parser import OnnxNetwork

    images = torch.randn(1, 3, size, size, generator=torch.Generator().manual_seed(0))
    apply_path(model, torch_path)
    onnx_net = OnnxNetwork(onnx_file, domain, threads=torch.get_num_threads())

    @torch.inference_mode()
    def run_torch(x):
        with autocast_context(torch_path, device):
            return model(x.to(device), domains=[domain])["logits"][domain]

    return {"torch_s": _median_seconds(run_torch, images), "onnx_s": _median_seconds(onnx_net, images)}


def _onnx_installed() -> bool:
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None
