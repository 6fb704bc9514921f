"""Pretrained models: the starter model shipped in the package, local model folders, Hugging Face Hub repos.

A *model folder* is the layout smp and timm publish on the Hugging Face Hub: ``config.json`` (what the model
is: architecture, label spaces, inference size, how it was trained) beside ``model.safetensors`` (the weights,
fp16 by default, with the same description in the file's own metadata). ``save_pretrained`` writes one from
any checkpoint; ``resolve_pretrained`` finds the checkpoint file for

- ``None`` or ``"starter"``: the model bundled in the package (``humanparse/weights/starter``), its SHA-256
  checked against ``SHA256SUMS`` before it is loaded;
- a path: a model folder, or a checkpoint file (``model.safetensors`` / ``last.pt``);
- ``"owner/name"`` that is not a local path: a Hub repository, downloaded through ``huggingface_hub``
  (needs network; offline, the error says so).
"""

from __future__ import annotations

import json
from pathlib import Path

from .engine.checkpoint import sha256_file
from .errors import CheckpointError, ConfigError

__all__ = ["STARTER", "resolve_pretrained", "save_pretrained", "sha256_file", "starter_dir"]

STARTER = "starter"
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
SUMS_FILE = "SHA256SUMS"


def starter_dir() -> Path:
    return Path(__file__).resolve().parent / "weights" / STARTER




def _check_sums(folder: Path) -> None:
    """Every file listed in ``folder/SHA256SUMS`` exists and has its listed digest."""
    sums = folder / SUMS_FILE
    if not sums.is_file():
        raise CheckpointError(f"{sums}: missing; the bundled model cannot be verified (reinstall humanparse)")
    for line in sums.read_text().splitlines():
        if not line.strip():
            continue
        digest, name = line.split(maxsplit=1)
        path = folder / name.strip().lstrip("*")
        if not path.is_file():
            raise CheckpointError(f"{path}: missing (listed in {sums}); reinstall humanparse")
        actual = sha256_file(path)
        if actual != digest:
            raise CheckpointError(f"{path}: SHA-256 {actual[:16]}... does not match {digest[:16]}... in {sums}; "
                                  "the file is damaged or was replaced (reinstall humanparse)")


def _from_hub(repo_id: str, revision: str | None) -> Path:
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:  # pragma: no cover - huggingface_hub comes with timm
        raise ConfigError(f"{repo_id!r} is not a local path; loading from the Hub needs huggingface_hub") from None
    try:
        for name in (CONFIG_FILE, WEIGHTS_FILE):
            path = Path(hf_hub_download(repo_id, name, revision=revision))
    except Exception as exc:  # offline, unknown repo, missing file: one line that says which
        raise CheckpointError(
            f"{repo_id}: not a local model folder or checkpoint, and the Hugging Face Hub download failed "
            f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})"
        ) from None
    return path.parent / WEIGHTS_FILE


def resolve_pretrained(name_or_path: str | Path | None = None, *, revision: str | None = None) -> Path:
    """The checkpoint file behind a pretrained model name, a local folder/file, or a Hub repo id."""
    if name_or_path in (None, STARTER):
        folder = starter_dir()
        _check_sums(folder)
        return folder / WEIGHTS_FILE
    path = Path(str(name_or_path)).expanduser()
    if path.is_dir():
        weights = path / WEIGHTS_FILE
        if not weights.is_file():
            raise CheckpointError(f"{path}: a model folder needs {WEIGHTS_FILE} (and {CONFIG_FILE}); not found")
        if (path / SUMS_FILE).is_file():
            _check_sums(path)
        return weights
    if path.is_file():
        return path
    text = str(name_or_path)
    if text.count("/") == 1 and not text.startswith((".", "/", "~")):
        return _from_hub(text, revision)
    raise CheckpointError(f"{text}: no such model folder or checkpoint (and not a Hub repo id 'owner/name')")


def save_pretrained(checkpoint: str | Path, folder: str | Path, *, fp16: bool = True, int8: bool = False,
                    card: dict | None = None, flip: bool | None = None) -> Path:
    """Write ``folder/{model.safetensors, config.json, SHA256SUMS}`` from a checkpoint (``model.safetensors`` or
    ``last.pt``). fp16 halves the file; loading casts back to the network's float32. ``int8`` also stores layer
    weights as int8 with one scale per output channel (about a quarter of float32; the starter model's held-out
    numbers with it are in docs/models.md). ``card``: extra facts for ``config.json`` (data, command, held-out
    numbers ...). ``flip``: store whether the model is to be run with flip averaging by default (None: keep what
    the checkpoint says). Returns the weights file."""
    from .engine.checkpoint import atomic_write, save_inference_checkpoint
    from .engine.loading import load_model

    model, label_spaces, meta = load_model(checkpoint)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    extra = dict(meta.get("extra") or {})
    if card:
        extra["card"] = card
    if flip is not None:
        extra["inference"] = dict(extra.get("inference") or {}, flip=bool(flip))
    weights = folder / WEIGHTS_FILE
    save_inference_checkpoint(weights, model, recipe=meta.get("recipe", "semantic"), model_config=meta["model_config"],
                              label_spaces={d: ls.to_dict() for d, ls in label_spaces.items()}, extra=extra, int8=int8,
                              float16=fp16)
    config = {"library": "humanparse", "recipe": meta.get("recipe", "semantic"), "model_config": meta["model_config"],
              "label_spaces": {d: ls.to_dict() for d, ls in label_spaces.items()}, "extra": extra,
              "dtype": ("int8 layer weights (per-output-channel scales) + " if int8 else "")
              + ("float16" if fp16 else "float32")}
    atomic_write(folder / CONFIG_FILE, lambda tmp: Path(tmp).write_text(json.dumps(config, indent=1) + "\n"))
    sums = "".join(f"{sha256_file(folder / n)}  {n}\n" for n in (WEIGHTS_FILE, CONFIG_FILE))
    atomic_write(folder / SUMS_FILE, lambda tmp: Path(tmp).write_text(sums))
    return weights
