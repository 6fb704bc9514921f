"""ONNX / TorchScript export of one domain head of a parsing network.

The exported graph maps normalised images ``[B, 3, H, W]`` (H, W multiples of 32; dynamic batch
and size) to that domain's logits at 1/4 resolution ``[B, C, H/4, W/4]``; up-sample bilinearly
(align_corners=False) to the input size and take the arg-max, as ``humanparse.engine.inference``
does. The label space (names, palette, flip pairs) travels inside the file as metadata, so
``humanparse parse --backend onnx`` needs nothing else.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch

from ..errors import ConfigError, unknown_key_message
from ..engine.checkpoint import atomic_write

METADATA_KEY = "humanparse"


class DomainLogits(torch.nn.Module):
    """The parsing network restricted to one head: images -> logits (a plain tensor, export friendly)."""

    def __init__(self, network: torch.nn.Module, domain: str):
        super().__init__()
        self.network = network
        self.domain = domain

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.network(images, domains=[self.domain])["logits"][self.domain]


def export_model(checkpoint: str | Path, out: str | Path, *, fmt: str = "onnx", domain: str | None = None,
                 opset: int = 17, sample_size: tuple[int, int] = (256, 192)) -> Path:
    """Export ``domain``'s head of the model in ``checkpoint`` to ``out`` (atomically). Returns the path."""
    from ..engine.loading import load_model

    model, label_spaces, meta = load_model(checkpoint, device="cpu")
    if meta.get("recipe", "semantic") != "semantic":
        raise ConfigError(f"{checkpoint}: export supports semantic parsing models (this one is {meta.get('recipe')!r})")
    if domain is None:
        if len(label_spaces) != 1:
            raise ConfigError(f"choose the head to export with --domain (one of {', '.join(label_spaces)})")
        domain = next(iter(label_spaces))
    if domain not in label_spaces:
        raise ConfigError(unknown_key_message("domain", domain, label_spaces))
    wrapper = DomainLogits(model, domain).eval()
    info = json.dumps({"domain": domain, "label_space": label_spaces[domain].to_dict(),
                       "output": "logits at 1/4 input resolution", "input": "ImageNet-normalised RGB, H and W multiples of 32"})
    example = torch.zeros(1, 3, *sample_size)
    out = Path(out)
    if fmt == "onnx":
        atomic_write(out, lambda tmp: _export_onnx(wrapper, example, tmp, opset, info))
    elif fmt == "torchscript":
        atomic_write(out, lambda tmp: _export_torchscript(wrapper, example, tmp, info))
    else:
        raise ConfigError(f"--format must be onnx or torchscript (got {fmt!r})")
    return out


def _export_onnx(wrapper, example, path, opset, info) -> None:
    import onnx

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript-based exporter's deprecation and tracer notes
        torch.onnx.export(wrapper, (example,), path, dynamo=False, opset_version=opset,
                          input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch", 2: "height", 3: "width"},
                                        "logits": {0: "batch", 2: "height_4", 3: "width_4"}})
    proto = onnx.load(path)
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, info
    onnx.save(proto, path)


def _export_torchscript(wrapper, example, path, info) -> None:
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(wrapper, example, check_trace=False)
    torch.jit.save(traced, path, _extra_files={f"{METADATA_KEY}.json": info})
