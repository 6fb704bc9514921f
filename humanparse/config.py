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
    "loss", "dist", "description",
}


def load_config(path: str | Path, overrides: Iterable[str] = ()) -> dict:
    """Read a YAML experiment config (following ``_base_``) and apply ``key=value`` overrides."""
    cfg = _load_with_bases(Path(path), seen=())
    for item in overrides:
        apply_override(cfg, item)
    unknown = set(cfg) - TOP_LEVEL_KEYS
    if unknown:
        from .errors import unknown_key_message

        raise ConfigError(f"{path}: " + unknown_key_message("top-level config key", sorted(unknown)[0], TOP_LEVEL_KEYS))
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
