"""ONNX / TorchScript export of one domain head of a parsing network, for any batch and image size.

The exported graph maps normalised images ``[B, 3, H, W]`` (any B; any H, W multiples of 32) to that
domain's logits at 1/4 resolution ``[B, C, H/4, W/4]``; up-sample bilinearly (align_corners=False) to
the input size and take the arg-max, as ``humanparse.engine.inference`` does. The label space (names,
palette, flip pairs) travels inside the file as metadata, so ``humanparse parse --backend onnx`` needs
nothing else.

How the sizes stay dynamic: both formats are recorded by the tracer (``torch.jit.trace``; the
TorchScript-based ``torch.onnx.export(..., dynamo=False)`` for ONNX). The network's size arithmetic
(Swin padding, shift and masks, deformable-attention level sizes, position codes) reads sizes from
the tensors and never turns them into Python ints, so the tracer records shape operations instead of
constants. ``export_model(check=True)`` proves it on every export: it runs the written file at the export
size (batch 1) and at a second size (batch 2) and compares with the eager network.
The TorchScript file is traced on the CPU and runs on the CPU (device constants are recorded).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Callable

import torch

from ..engine.checkpoint import atomic_write
from ..errors import ConfigError, HumanparseError, unknown_key_message

METADATA_KEY = "humanparse"
FORMATS = ("onnx", "torchscript")


class ExportError(HumanparseError):
    """The exported file does not reproduce the network (a size baked into the graph, an unsupported op)."""


class DomainLogits(torch.nn.Module):
    """The parsing network restricted to one head: images -> logits (a plain tensor, export friendly)."""

    def __init__(self, network: torch.nn.Module, domain: str):
        super().__init__()
        self.network = network
        self.domain = domain

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images, domains=[self.domain])["logits"][self.domain]


def export_model(checkpoint: str | Path, out: str | Path, *, fmt: str = "onnx", domain: str | None = None,
                 opset: int = 17, sample_size: tuple[int, int] = (256, 192), check: bool = True) -> Path:
    """Export ``domain``'s head of the model in ``checkpoint`` to ``out`` (atomically). Returns the path.

    ``sample_size`` is the (H, W) traced (multiples of 32); the file works at other sizes too.
    ``check`` runs the file at ``sample_size`` and at a second size and raises ``ExportError`` if it
    differs from the eager network (ONNX needs onnxruntime for this).
    """
    from ..engine.loading import load_model
    from ..models.encoders.ms_deform_attn import set_attn_impl

    if fmt not in FORMATS:
        raise ConfigError(unknown_key_message("export format", str(fmt), FORMATS))
    if any(s <= 0 or s % 32 for s in sample_size):
        raise ConfigError(f"sample_size {tuple(sample_size)} must be positive multiples of 32")
    model, label_spaces, meta = load_model(checkpoint, device="cpu")
    if meta.get("recipe", "semantic") != "semantic":
        raise ConfigError(f"{checkpoint}: export supports semantic parsing models (this one is {meta.get('recipe')!r})")
    if domain is None:
        if len(label_spaces) != 1:
            raise ConfigError(f"choose the head to export with --domain (one of {', '.join(label_spaces)})")
        domain = next(iter(label_spaces))
    if domain not in label_spaces:
        raise ConfigError(unknown_key_message("domain", domain, label_spaces))
    set_attn_impl(model, "pytorch")  # the traced op; a torch.compile'd one cannot be recorded
    wrapper = DomainLogits(model, domain).eval()
    info = json.dumps({"domain": domain, "label_space": label_spaces[domain].to_dict(),
                       "output": "logits at 1/4 input resolution",
                       "input": "ImageNet-normalised RGB [B, 3, H, W], H and W multiples of 32"})
    example = torch.zeros(1, 3, *sample_size)
    out = Path(out)
    if fmt == "onnx":
        atomic_write(out, lambda tmp: export_onnx(wrapper, example, tmp, opset=opset, metadata=info))
    else:
        atomic_write(out, lambda tmp: export_torchscript(wrapper, example, tmp, metadata=info))
    if check:
        check_export(out, fmt, wrapper, sample_size)
    return out


def export_onnx(wrapper: torch.nn.Module, example: torch.Tensor, path, *, opset: int = 17, metadata: str = "{}") -> None:
    """Trace ``wrapper`` (images -> logits) to ONNX with dynamic batch, height and width."""
    import onnx

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation and tracer notes
        torch.onnx.export(wrapper, (example,), path, dynamo=False, opset_version=opset,
                          input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"},
                                        "logits": {0: "batch", 2: "height_4", 3: "width_4"}})
    proto = onnx.load(path)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata
    onnx.save(proto, path)




def export_torchscript(wrapper: torch.nn.Module, example: torch.Tensor, path, *, metadata: str = "{}") -> None:
    """Trace ``wrapper`` to TorchScript (CPU); sizes are recorded as shape operations, not constants."""
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(wrapper, example, check_trace=False)
    torch.jit.save(traced, path, _extra_files={f"{METADATA_KEY}.json": metadata})


def load_exported(path: str | Path, fmt: str, *, threads: int | None = None) -> Callable[[torch.Tensor], torch.Tensor]:
    """The exported file as a function images [B, 3, H, W] -> logits (CPU tensors)."""
    if fmt == "torchscript":
        module = torch.jit.load(str(path), map_location="cpu").eval()

        def run_torchscript(images: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return module(images)

        return run_torchscript
    if fmt != "onnx":
        raise ConfigError(unknown_key_message("export format", str(fmt), FORMATS))
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError("running an ONNX file needs onnxruntime: pip install 'humanparse[export]'") from None
    opts = ort.SessionOptions()
    if threads:
        opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])

    def run_onnx(images: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(session.run(["logits"], {"images": images.detach().cpu().float().numpy()})[0])

    return run_onnx


def check_export(path: str | Path, fmt: str, wrapper: torch.nn.Module, sample_size: tuple[int, int],
                 *, min_agreement: float = 0.999) -> dict:
    """Run the exported file at the export size (batch 1) and at a second size (batch 2) against eager.

    Raises ``ExportError`` when the arg-max agrees on fewer than ``min_agreement`` of the pixels or the
    logits differ by more than 1e-3 of their range. Returns ``{"HxW/B": (agreement, max_abs_diff)}``.
    """
    run = load_exported(path, fmt)
    h, w = sample_size
    generator = torch.Generator().manual_seed(0)
    results = {}
    for size, batch in (((h, w), 1), ((h + 64, w + 32), 2)):
        images = torch.randn(batch, 3, *size, generator=generator)
        with torch.no_grad():
            expected = wrapper(images)
        key = f"{size[0]}x{size[1]}/{batch}"
        try:
            got = run(images)
        except Exception as exc:  # the runtime's own error types (onnxruntime's derive from Exception only)
            raise ExportError(f"{path}: the exported {fmt} model fails at input {key} ({type(exc).__name__}: "
                              f"{str(exc)[:300]}); the graph keeps a traced size") from exc
        if got.shape != expected.shape:
            raise ExportError(f"{path}: at input {key} the exported {fmt} model gives logits {tuple(got.shape)}, "
                              f"the network {tuple(expected.shape)}; the graph keeps a traced size")
        agreement = float((got.argmax(1) == expected.argmax(1)).float().mean())
        diff = float((got - expected).abs().max())
        scale = float(expected.abs().max()) or 1.0
        results[key] = (agreement, diff)
        if agreement < min_agreement or diff > 1e-3 * max(scale, 1.0):
            raise ExportError(f"{path}: at input {key} the exported {fmt} model differs from the network "
                              f"(arg-max agreement {agreement:.4%}, max |logit diff| {diff:.3g}); "
                              "report it with the model config, or export with --no-check to inspect the file")
    return results
