"""``Parser`` over an exported ONNX model, run by ONNX Runtime (``humanparse parse --backend onnx``)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch

from ..api import Parser
from ..errors import CheckpointError, ConfigError
from .exporters import METADATA_KEY


class OnnxNetwork(torch.nn.Module):
    """Looks like a ParsingNetwork with one head to the inference code; runs ONNX Runtime on the CPU."""

    def __init__(self, path: str | Path, domain: str, threads: int | None = None):
        super().__init__()
        import onnxruntime as ort

        opts = ort.SessionOptions()
        if threads:
            opts.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
        self.domain = domain

    def forward(self, images: torch.Tensor, domains=None) -> dict:
        logits = self.session.run(["logits"], {"images": images.detach().cpu().numpy().astype(np.float32)})[0]
        return {"logits": {self.domain: torch.from_numpy(logits)}}


def read_onnx_metadata(path: str | Path) -> dict:
    import onnx

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: ONNX file not found")
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable ONNX file ({exc})") from None
    meta = {p.key: p.value for p in proto.metadata_props}
    if METADATA_KEY not in meta:
        raise CheckpointError(f"{path}: ONNX file without humanparse metadata; export it with `humanparse export`")
    return json.loads(meta[METADATA_KEY])


class OnnxParser(Parser):
    def __init__(self, path: str | Path, *, long_side: int | None = 512, batch_size: int = 4, threads: int | None = None,
                 inference_path=None, flip: bool = False):
        from ..labels import LabelSpace
        from .fast_path import InferencePath

        meta = read_onnx_metadata(path)
        domain = meta["domain"]
        label_space = LabelSpace.from_dict(meta["label_space"], source=f"{path}:{domain}")
        super().__init__(OnnxNetwork(path, domain, threads), {domain: label_space}, device="cpu",
                         long_side=long_side, batch_size=batch_size, flip=flip,
                         inference_path=inference_path or InferencePath(backend="onnx", attn_impl="pytorch", reason="an .onnx file"))

    def _domain(self, domain):
        if domain is not None and domain not in self.label_spaces:
            raise ConfigError(f"this ONNX model holds only the {next(iter(self.label_spaces))!r} head (asked for {domain!r})")
        return next(iter(self.label_spaces))
