"""Recipes: everything task-specific the trainer needs, built from one experiment config.

The trainer is generic: it asks the recipe for a model, a training method, a training dataset
with its collate function, and an evaluation. ``semantic`` (single/multi-domain parsing, SST),
``uniparser`` (multi-person) and ``htcorrm`` (parsing + pose + edge) are recipes.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from torch import nn
from torch.utils.data import Dataset

from ..errors import ConfigError, unknown_key_message

_RECIPES: dict[str, Callable[..., "Recipe"]] = {}


class Recipe:
    """Base class. ``cfg`` is the whole experiment config (a dict); ``root`` resolves relative paths."""

    name = "recipe"

    def __init__(self, cfg: dict, *, root: Path | str = "."):
        self.cfg = cfg
        self.root = Path(root)

    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def build_method(self, model: nn.Module) -> nn.Module:
        """The training-only plug-in (a ``TrainingMethod``) that computes the loss terms."""
        raise NotImplementedError

    def build_train_dataset(self) -> Dataset:
        raise NotImplementedError

    def collate(self, items: list) -> dict:
        raise NotImplementedError

    def evaluate(self, model: nn.Module, *, max_images: int | None = None) -> dict[str, float]:
        """Flat ``{metric name: value}`` on the validation split (fractions in [0, 1])."""
        raise NotImplementedError

    def inference_model(self, model: nn.Module) -> nn.Module:
        """What an inference checkpoint holds (training-only parts removed)."""
        return model


def register_recipe(name: str):
    def wrap(cls):
        if name in _RECIPES:
            raise ConfigError(f"recipe {name!r} is registered twice")
        cls.name = name
        _RECIPES[name] = cls
        return cls

    return wrap


def build_recipe(cfg: dict, *, root: Path | str = ".") -> Recipe:
    _import_builtin_recipes()
    name = cfg.get("recipe", "semantic")
    if name not in _RECIPES:
        raise ConfigError(unknown_key_message("recipe", name, _RECIPES))
    return _RECIPES[name](cfg, root=root)


def list_recipes() -> list[str]:
    _import_builtin_recipes()
    return sorted(_RECIPES)


def _import_builtin_recipes() -> None:
    import importlib

    for module in ("humanparse.engine.semantic_recipe", "humanparse.uniparser.recipe", "humanparse.htcorrm.recipe"):
        try:
            importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:  # a real missing dependency inside the module
                raise
