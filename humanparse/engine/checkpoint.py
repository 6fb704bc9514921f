"""Checkpoints, written atomically so that a crash or Ctrl-C never leaves a half-written file.

Two kinds:
- training checkpoints (``last.pt``): model, training-method, optimiser, scheduler, RNG and loop
  state; read with ``torch.load(weights_only=True)`` (no arbitrary pickle).
- inference checkpoints (``model.safetensors``): the inference network's weights only, with the
  config needed to rebuild it (architecture, label spaces) stored as safetensors metadata. A saved
  SST model holds exactly the parameters of the same network trained without SST.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file, safe_open, save_file

from ..errors import CheckpointError

INFERENCE_FORMAT = "humanparse-inference"
FORMAT_VERSION = 1


def _umask() -> int:
    mask = os.umask(0o022)  # reading the umask means setting it; put it straight back
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write) -> None:
    """Call ``write(tmp_path)`` then move the file into place with ``os.replace`` (atomic on POSIX).

    The file gets the mode a plain ``open`` would give (0666 less the umask), not mkstemp's 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MB blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_training_checkpoint(path: str | Path, state: dict) -> None:
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_training_checkpoint(path: str | Path, map_location="cpu") -> dict:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt or foreign file: say which
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        raise CheckpointError(f"{path}: not a readable humanparse training checkpoint ({type(exc).__name__}: {first})") from None
    if not isinstance(state, dict) or "model" not in state or "model_config" not in state:
        raise CheckpointError(f"{path}: not a humanparse training checkpoint (missing 'model'/'model_config')")
    return state


INT8_SCALE = ".int8_scale"  # suffix of the per-output-channel scale stored beside an int8 weight
INT8_MIN_NUMEL = 1024        # smaller weights (norms, biases, tiny kernels) stay in floating point


def quantize_int8(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Weights of layers (``*.weight`` with 2+ dims and at least ``INT8_MIN_NUMEL`` values) -> symmetric int8 with
    one float32 scale per output channel (max |w| / 127): a quarter of float32's bytes, every value within half
    a scale step of the original. Everything else is returned unchanged."""
    out: dict[str, torch.Tensor] = {}
    for key, value in tensors.items():
        if key.endswith(".weight") and value.is_floating_point() and value.dim() >= 2 and value.numel() >= INT8_MIN_NUMEL:
            flat = value.detach().float().reshape(value.shape[0], -1)
            scale = flat.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / 127.0
            out[key] = torch.round(flat / scale[:, None]).clamp_(-127, 127).to(torch.int8).reshape(value.shape)
            out[key + INT8_SCALE] = scale
        else:
            out[key] = value
    return out


def dequantize_int8(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Inverse of ``quantize_int8`` (float32 weights); a state dict without int8 weights is returned as is."""
    scales = {k[: -len(INT8_SCALE)]: v for k, v in tensors.items() if k.endswith(INT8_SCALE)}
    if not scales:
        return tensors
    out = {k: v for k, v in tensors.items() if not k.endswith(INT8_SCALE)}
    for key, scale in scales.items():
        q = out[key]
        out[key] = (q.float().reshape(q.shape[0], -1) * scale.float()[:, None]).reshape(q.shape)
    return out


def save_inference_checkpoint(path: str | Path, model: torch.nn.Module, *, recipe: str, model_config: dict,
                              label_spaces: dict[str, dict], extra: dict | None = None, int8: bool = False,
                              float16: bool = False) -> None:
    """Weights (contiguous, shared tensors de-duplicated) + self-describing metadata. ``int8``: layer weights
    stored as int8 with per-output-channel scales (``quantize_int8``, from the float32 weights), dequantised
    when the file is read; ``float16``: the other floating-point tensors in fp16 (scales stay float32)."""
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    if int8:
        tensors = quantize_int8(tensors)
    if float16:
        tensors = {k: v.half() if v.is_floating_point() and not k.endswith(INT8_SCALE) else v
                   for k, v in tensors.items()}
    meta = {
        "format": INFERENCE_FORMAT,
        "version": FORMAT_VERSION,
        "recipe": recipe,
        "model_config": model_config,
        "label_spaces": label_spaces,
        "extra": extra or {},
    }
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata={"humanparse": json.dumps(meta)}))


def read_inference_checkpoint(path: str | Path) -> tuple[dict, dict[str, torch.Tensor]]:
    """Return (metadata, state_dict) of an inference checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with safe_open(str(path), framework="pt") as fh:
            raw = (fh.metadata() or {}).get("humanparse")
        state = load_file(str(path))
    except Exception as exc:
        raise CheckpointError(f"{path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from None
    if raw is None:
        raise CheckpointError(f"{path}: safetensors file without humanparse metadata (was it saved by humanparse?)")
    meta = json.loads(raw)
    if meta.get("format") != INFERENCE_FORMAT:
        raise CheckpointError(f"{path}: unknown format {meta.get('format')!r}")
    if meta.get("version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer humanparse (format {meta['version']}); upgrade humanparse")
    return meta, dequantize_int8(state)


def load_initial_weights(model: torch.nn.Module, path: str | Path, prefix: str | None = None) -> int:
    """Start a run from a trained network (``train.init_weights``): an inference checkpoint, or a model folder
    holding ``model.safetensors``. Every tensor of the network must be in the file with its shape (training-only
    modules live in the method and start fresh); fp16 files are cast to the network's dtype.

    ``prefix`` (``train.init_prefix``, e.g. ``"backbone."``): only the network's tensors under that name are
    loaded (all of them must be in the file, with their shapes); the rest keep their initialisation, and the
    file's other tensors are not used. This is how another method's trained backbone starts a run (the
    starter's parsing backbone under UniParser). Returns the number of tensors loaded."""
    path = Path(path)
    if path.is_dir():
        path = path / "model.safetensors"
    _, state = read_inference_checkpoint(path)
    own = model.state_dict()
    if prefix:
        own = {k: v for k, v in own.items() if k.startswith(prefix)}
        if not own:
            raise CheckpointError(f"{path}: train.init_prefix {prefix!r} names no tensor of this network")
        state = {k: v for k, v in state.items() if k.startswith(prefix)}
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    wrong = sorted(k for k in own if k in state and tuple(state[k].shape) != tuple(own[k].shape))
    if missing or unexpected or wrong:
        parts = [f"{len(v)} {name} (first: {v[0]})" for name, v in
                 (("missing", missing), ("unexpected", unexpected), ("of another shape", wrong)) if v]
        raise CheckpointError(f"{path}: train.init_weights does not fit this network"
                              + (f" under {prefix!r}" if prefix else "") + ": " + ", ".join(parts))
    model.load_state_dict({k: state[k].to(own[k].dtype) for k in own}, strict=not prefix)
    return len(own)
