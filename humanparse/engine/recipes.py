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

    def build_batch_sampler(self, dataset: Dataset, *, batch_size: int, seed: int, rank: int = 0,
                            world_size: int = 1) -> "SeededBatchSampler":
        """Batches of dataset indices, reproducible per epoch; override for domain mixing."""
        return SeededBatchSampler(len(dataset), batch_size, seed=seed, rank=rank, world_size=world_size)

    def label_space_dicts(self) -> dict[str, dict]:
        """Label spaces the model predicts, as JSON-able dicts (stored in checkpoints)."""
        return {}

    def inference_settings(self) -> dict:
        """How the model is meant to be run (stored in inference checkpoints, read by eval / parse / Parser)."""
        return {}


class SeededBatchSampler:
    """Shuffled batches, the order a pure function of (seed, epoch); rank r takes every world-th batch."""

    def __init__(self, size: int, batch_size: int, *, seed: int = 0, rank: int = 0, world_size: int = 1,
                 drop_last: bool = True):
        if size < batch_size * world_size and drop_last:
            raise ConfigError(f"the training set has {size} items, fewer than one batch of {batch_size} per process"
                              f" x {world_size} processes; lower train.batch_size")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size, self.drop_last = rank, world_size, drop_last

    def batches_for_epoch(self, epoch: int) -> list[list[int]]:
        import numpy as np

        order = np.random.default_rng([self.seed, epoch]).permutation(self.size).tolist()
        n = self.size // self.batch_size if self.drop_last else -(-self.size // self.batch_size)
        batches = [order[i * self.batch_size:(i + 1) * self.batch_size] for i in range(n)]
        usable = len(batches) - len(batches) % self.world_size
        return batches[self.rank:usable:self.world_size]


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
