"""Load a trained model from an inference checkpoint (``model.safetensors``) or a training one (``last.pt``)."""

from __future__ import annotations

from pathlib import Path

import torch

from ..errors import CheckpointError, ConfigError


def load_model(path: str | Path, *, device: str | torch.device = "cpu"):
    """Return ``(model, label_spaces: {domain: LabelSpace}, meta)``; the model is in eval mode.

    Only the inference network is built: a training checkpoint's method state (SST modules ...) is ignored.
    """
    from ..labels import LabelSpace

    path = Path(path)
    if path.suffix == ".safetensors":
        from .checkpoint import read_inference_checkpoint

        meta, state = read_inference_checkpoint(path)
    else:
        from .checkpoint import load_training_checkpoint

        ckpt = load_training_checkpoint(path)
        long_side = ((ckpt.get("config") or {}).get("eval") or {}).get("long_side")
        meta = {"recipe": ckpt.get("recipe", "semantic"), "model_config": ckpt["model_config"],
                "label_spaces": ckpt.get("label_spaces", {}),
                "extra": {"inference": {"long_side": int(long_side)} if long_side else {}}}
        state = ckpt["model"]
    recipe = meta.get("recipe", "semantic")
    model = build_inference_model(recipe, meta["model_config"], path)
    missing, unexpected = model.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise CheckpointError(f"{path}: weights do not match the architecture in its config "
                              f"(missing: {sorted(missing)[:8]}, unexpected: {sorted(unexpected)[:8]})")
    model.to(device).eval()
    label_spaces = {d: LabelSpace.from_dict(ls, source=f"{path}:{d}") for d, ls in meta.get("label_spaces", {}).items()}
    return model, label_spaces, meta


DEFAULT_LONG_SIDE = 512  # for checkpoints that do not say at which size they were evaluated


def inference_long_side(meta: dict) -> int:
    """The input long side a checkpoint was trained and evaluated for (``extra.inference.long_side``)."""
    value = ((meta.get("extra") or {}).get("inference") or {}).get("long_side")
    return int(value) if value else DEFAULT_LONG_SIDE


def inference_flip(meta: dict) -> bool:
    """Whether a checkpoint is meant to be run with left/right flip averaging (``extra.inference.flip``): a model
    whose held-out numbers were measured that way stores it, so every path uses it unless told otherwise."""
    return bool(((meta.get("extra") or {}).get("inference") or {}).get("flip", False))


def build_network_from_config(config: dict) -> torch.nn.Module:
    """Rebuild a ParsingNetwork from its ``network.config`` ({"model_cfg": ..., "num_classes": ...})."""
    from ..models import build_network

    if not isinstance(config, dict) or "model_cfg" not in config or "num_classes" not in config:
        raise CheckpointError("checkpoint model config lacks 'model_cfg'/'num_classes'; was it saved by humanparse?")
    return build_network(config["model_cfg"], config["num_classes"])


def build_inference_model(recipe: str, model_config: dict, path: Path | str = "<checkpoint>") -> torch.nn.Module:
    if recipe in ("semantic",):
        return build_network_from_config(model_config)
    if recipe == "uniparser":
        from ..uniparser.model import build_uniparser_from_config

        return build_uniparser_from_config(model_config)
    if recipe == "htcorrm":
        from ..htcorrm.model import build_htcorrm_from_config

        return build_htcorrm_from_config(model_config)
    raise CheckpointError(f"{path}: unknown recipe {recipe!r} in checkpoint")


def resolve_device(name: str | None) -> torch.device:
    if name in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(name).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r} asked for, but no CUDA device is available (use --device cpu)")
    return torch.device(name)
