"""Built-in label domains (``domains/<name>.yaml``) and lookup by name or by path."""

from __future__ import annotations

from pathlib import Path

from humanparse.errors import ConfigError, DataError, unknown_key_message
from humanparse.labels.label_space import LabelSpace

__all__ = ["DOMAINS_DIR", "get_label_space", "list_label_spaces"]

DOMAINS_DIR = Path(__file__).resolve().parent / "domains"
_BUILTIN_CACHE: dict[str, LabelSpace] = {}


def list_label_spaces() -> list[str]:
    """Names of the built-in label domains, sorted."""
    return sorted(p.stem for p in DOMAINS_DIR.glob("*.yaml"))


def _looks_like_path(key: str) -> bool:
    return key.endswith((".yaml", ".yml")) or "/" in key or "\\" in key


def get_label_space(name_or_path: "str | Path | LabelSpace") -> LabelSpace:
    """A built-in label space by name (``"lip"``), or one read from a YAML file path.

    Built-ins are loaded once and shared (their arrays are read-only). A path is read on every call.
    """
    if isinstance(name_or_path, LabelSpace):
        return name_or_path
    if isinstance(name_or_path, Path) or _looks_like_path(str(name_or_path)):
        return LabelSpace.from_file(name_or_path)
    name = str(name_or_path)
    if name not in _BUILTIN_CACHE:
        path = DOMAINS_DIR / f"{name}.yaml"
        if not path.is_file():
            raise ConfigError(unknown_key_message("label space", name, list_label_spaces())
                              + "; or give the path of a YAML label-space file (see docs/label_domains.md)")
        space = LabelSpace.from_file(path)
        if space.name != name:
            raise DataError(path, f"declares name {space.name!r}; a built-in file's name must equal its stem {name!r}")
        _BUILTIN_CACHE[name] = space
    return _BUILTIN_CACHE[name]
