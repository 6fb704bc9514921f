"""Training methods: plug-ins that turn (model, batch) into named loss terms.

A method exists only during training. Its own parameters (SST's MSA/MSE/MST, for instance) are
optimised with the model and stored in training checkpoints, never in inference checkpoints, and
the network never imports a method.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from ..errors import ConfigError, unknown_key_message

_METHODS: dict[str, Callable[..., "TrainingMethod"]] = {}


class TrainingMethod(nn.Module):
    """Base class. Subclasses implement ``training_step``; the total loss is the sum of the terms."""

    def training_step(self, model: nn.Module, batch: dict) -> dict[str, torch.Tensor]:
        raise NotImplementedError


def register_method(name: str):
    """Class decorator: ``@register_method("sst")``. The builder is ``cls.from_config``."""

    def wrap(cls):
        if name in _METHODS:
            raise ConfigError(f"training method {name!r} is registered twice")
        _METHODS[name] = cls
        return cls

    return wrap


def list_methods() -> list[str]:
    _import_builtin_methods()
    return sorted(_METHODS)


def build_method(name: str, cfg: dict, *, model: nn.Module, label_spaces: dict) -> TrainingMethod:
    """Build the registered method ``name`` from its config section."""
    _import_builtin_methods()
    if name not in _METHODS:
        raise ConfigError(unknown_key_message("training method", name, _METHODS))
    return _METHODS[name].from_config(cfg or {}, model=model, label_spaces=label_spaces)


def _import_builtin_methods() -> None:
    # Importing registers them; kept lazy so the inference path never loads training code.
    from . import supervised  # noqa: F401
    try:
        from .. import sst  # noqa: F401
    except ImportError as exc:  # only while the package is being assembled
        if "humanparse.sst" not in str(exc) and "sst" not in str(exc):
            raise
