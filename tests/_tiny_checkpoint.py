"""A tiny random-weight semantic checkpoint (lip + pascal heads) for tests of the user-facing tools."""

from pathlib import Path

import torch

from humanparse.engine.checkpoint import save_inference_checkpoint
from humanparse.labels import get_label_space
from humanparse.models import build_network

from _tiny import TINY_MODEL


def make_tiny_checkpoint(path: Path, *, long_side: int = 96, seed: int = 0) -> Path:
    """Random weights, the lip head's logits spread (x20) so its arg-max map holds many classes."""
    torch.manual_seed(seed)
    network = build_network(TINY_MODEL, {"lip": 20, "pascal": 7}).eval()
    with torch.no_grad():
        network.heads.heads["lip"].weight.mul_(20.0)
    spaces = {d: get_label_space(d).to_dict() for d in ("lip", "pascal")}
    save_inference_checkpoint(path, network, recipe="semantic", model_config=network.config, label_spaces=spaces,
                              extra={"inference": {"long_side": long_side}})
    return path
