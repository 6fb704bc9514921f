"""Experiment configuration: YAML files with ``_base_`` inheritance and ``key.sub=value`` overrides.

Defaults live in the constructors; a config only overrides them. Values given on the command line
are parsed as YAML scalars (``train.steps=10``, ``method.use_aux=false``), never evaluated as code.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Iterable

import yaml

from .errors import ConfigError, DataError

TOP_LEVEL_KEYS = {
    "_base_", "recipe", "seed", "output_dir", "domains", "model", "method", "data", "train", "eval",
    "loss", "dist", "description", "epochs",
}
EPOCH_KEYS = {"total", "lr_drops", "gamma", "train_sizes", "world_size"}


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> dict:
    """Read a YAML experiment config (following ``_base_``) and apply ``key=value`` overrides."""
    cfg = _load_with_bases(Path(path), seen=())
    for item in overrides:
        apply_override(cfg, item)
    unknown = set(cfg) - TOP_LEVEL_KEYS
    if unknown:
        from .errors import unknown_key_message

        raise ConfigError(f"{path}: " + unknown_key_message("top-level config key", sorted(unknown)[0], TOP_LEVEL_KEYS))
    if "epochs" in cfg:
        try:
            resolve_epochs(cfg)
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
    return cfg


def steps_per_epoch(train_sizes: dict, batch_size: int, world_size: int) -> int:
    """Batches per process in one epoch over the union of the training sets, exactly as
    ``MixedDomainBatchSampler`` counts them (drop_last): (sum of sizes // world_size) // batch_size."""
    return max(1, (sum(int(n) for n in train_sizes.values()) // world_size) // batch_size)


def resolve_epochs(cfg: dict, world_size: int | None = None) -> dict:
    """Turn the ``epochs`` section (the paper's schedule: 150 epochs, x0.1 at 125) into ``train.steps``
    and a step schedule with milestones in steps, in place. ``epochs``:
    ``total`` (epochs), ``lr_drops`` (epochs, default []), ``gamma`` (0.1), ``train_sizes``
    ({domain: number of training images}: the sizes of the official splits, checked against the data at
    run time by the sampler's per-domain report) and optionally ``world_size`` (default: $WORLD_SIZE as
    set by torchrun, else 1). Global batch = ``train.batch_size`` x world_size. Use with
    ``data.domain_weights: proportional`` so that one epoch is one pass over every image."""
    import os

    spec = cfg["epochs"]
    if not isinstance(spec, dict):
        raise ConfigError("'epochs' must be a mapping (total, lr_drops, gamma, train_sizes, world_size)")
    from .errors import check_keys

    check_keys("key in 'epochs'", spec, EPOCH_KEYS)
    train = cfg.setdefault("train", {})
    if "steps" in train:
        raise ConfigError("give either train.steps or an 'epochs' section, not both (epochs.total=N sets the length)")
    sizes = spec.get("train_sizes")
    if not isinstance(sizes, dict) or not sizes or any(int(n) <= 0 for n in sizes.values()):
        raise ConfigError("epochs.train_sizes must map every training domain to its number of training images")
    domains = [d for d, dcfg in (cfg.get("domains") or {}).items() if isinstance(dcfg, dict) and "train" in dcfg]
    if domains and sorted(domains) != sorted(sizes):
        raise ConfigError(f"epochs.train_sizes has {sorted(sizes)} but the training domains are {sorted(domains)}")
    total = int(spec.get("total", 0))
    if total < 1:
        raise ConfigError(f"epochs.total must be >= 1, got {spec.get('total')!r}")
    world = int(world_size or spec.get("world_size") or os.environ.get("WORLD_SIZE", 1))
    per_epoch = steps_per_epoch(sizes, int(train.get("batch_size", 8)), world)
    drops = [int(e) for e in spec.get("lr_drops", [])]
    if any(not 0 < e < total for e in drops):
        raise ConfigError(f"epochs.lr_drops must lie strictly between 0 and total={total}, got {drops}")
    train["steps"] = total * per_epoch
    train["schedule"] = {"type": "step", "milestones": [e * per_epoch for e in drops], "gamma": float(spec.get("gamma", 0.1))}
    return cfg


def _load_with_bases(path: Path, seen: tuple) -> dict:
    if not path.is_file():
        raise DataError(path, "config file not found")
    if path.resolve() in seen:
        raise ConfigError(f"{path}: _base_ chain loops back to itself")
    try:
        cfg = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a config must be a mapping at the top level")
    base = cfg.pop("_base_", None)
    if base:
        merged = _load_with_bases((path.parent / base), seen + (path.resolve(),))
        cfg = merge(merged, cfg)
    return cfg


def merge(base: dict, update: dict) -> dict:
    """Recursive dict merge; ``update`` wins. Neither input is modified."""
    out = copy.deepcopy(base)
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def apply_override(cfg: dict, item: str) -> None:
    """Apply one ``a.b.c=value`` override in place. The value is parsed as a YAML scalar or list."""
    if "=" not in item:
        raise ConfigError(f"override {item!r} must look like key=value (for example train.steps=100)")
    key, raw = item.split("=", 1)
    try:
        value: Any = yaml.safe_load(raw) if raw != "" else ""
    except yaml.YAMLError:
        value = raw
    node = cfg
    parts = key.strip().split(".")
    for part in parts[:-1]:
        nxt = node.get(part)
        if nxt is None:
            nxt = node[part] = {}
        if not isinstance(nxt, dict):
            raise ConfigError(f"override {item!r}: {part!r} is a value, not a section")
        node = nxt
    node[parts[-1]] = value


def section(cfg: dict, name: str, allowed: Iterable[str], *, where: str = "config") -> dict:
    """Return ``cfg[name]`` (or {}) after checking its keys against ``allowed``."""
    from .errors import check_keys

    sub = cfg.get(name) or {}
    if not isinstance(sub, dict):
        raise ConfigError(f"{where}: section {name!r} must be a mapping")
    check_keys(f"key in {name!r}", sub, allowed)
    return sub
