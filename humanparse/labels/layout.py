"""Try-on layouts: the label layouts that virtual try-on code reads, and how to derive them from a parse.

A layout is a data file (``layouts/<name>.yaml``): the layout's class names and colours, and for each
source domain (``lip``, ``cihp``, ``atr`` ...) where every source class goes. Classes of the layout
that a source can never produce are declared under ``not_derivable`` with the reason, and the loader
checks that the declaration matches the table, so the documentation cannot drift from the data.

    from humanparse.labels.layout import get_layout
    layout = get_layout("viton_hd")
    table = layout.table_from(get_label_space("cihp"))   # uint8 [20]: cihp id -> viton_hd id
    viton = table[cihp_label_map]
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from humanparse.errors import ConfigError, DataError, unknown_key_message
from humanparse.labels.label_space import LabelSpace

__all__ = ["Layout", "LAYOUTS_DIR", "get_layout", "list_layouts"]

LAYOUTS_DIR = Path(__file__).resolve().parent / "layouts"
_KEYS = ("name", "names", "palette", "provenance", "from", "not_derivable")
_CACHE: dict[str, "Layout"] = {}


class Layout:
    """A target layout (``label_space``: names + palette) and its tables from source domains (by class name)."""

    def __init__(self, label_space: LabelSpace, sources: dict[str, dict[str, str]],
                 not_derivable: dict[str, dict[str, str]], source: str = "<dict>"):
        self.label_space = label_space
        self._sources = sources
        self.not_derivable = not_derivable
        self.source = source

    @property
    def name(self) -> str:
        return self.label_space.name

    @property
    def sources(self) -> list[str]:
        """The source domains this layout can be derived from."""
        return sorted(self._sources)

    def table_from(self, domain: LabelSpace) -> np.ndarray:
        """uint8 [C_domain]: source class id -> layout class id, looked up by class *name*.

        ``domain`` is matched by its name (the checkpoint head's domain); a class of it that the layout's
        table does not list is a ConfigError.
        """
        if domain.name not in self._sources:
            raise ConfigError(f"layout {self.name!r} ({self.source}) has no table from domain {domain.name!r}; "
                              f"it can be derived from: {', '.join(self.sources)}")
        table = self._sources[domain.name]
        out = np.empty(domain.num_classes, dtype=np.uint8)
        for i, cls in enumerate(domain.names):
            if cls not in table:
                raise ConfigError(f"layout {self.name!r} ({self.source}): the {domain.name} table does not say "
                                  f"where class {cls!r} goes (the model's {domain.name} head differs from the "
                                  "built-in domain)")
            out[i] = self.label_space.index(table[cls])
        return out

    def apply(self, label: np.ndarray, domain: LabelSpace) -> np.ndarray:
        """A class-id map of ``domain`` -> the same map in this layout (uint8)."""
        return self.table_from(domain)[np.asarray(label)]

    # ------------------------------------------------------------------ loading
    @classmethod
    def from_file(cls, path: str | Path) -> "Layout":
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "layout file not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise DataError(path, f"cannot read layout YAML ({exc})") from exc
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "<dict>") -> "Layout":
        if not isinstance(d, Mapping):
            raise ConfigError(f"{source}: a layout file must be a mapping, got {type(d).__name__}")
        for key in d:
            if key not in _KEYS:
                raise ConfigError(f"{source}: " + unknown_key_message("layout key", str(key), _KEYS))
        space = LabelSpace.from_dict({k: d[k] for k in ("name", "names", "palette", "provenance") if k in d},
                                     source=source)
        raw = d.get("from")
        if not isinstance(raw, Mapping) or not raw:
            raise ConfigError(f"{source}: 'from' must map source domains to {{source class: layout class}}")
        sources: dict[str, dict[str, str]] = {}
        for dom, table in raw.items():
            if not isinstance(table, Mapping) or not table:
                raise ConfigError(f"{source}: from.{dom} must map every {dom} class to a layout class")
            for fine, target in table.items():
                if not isinstance(target, str):
                    raise ConfigError(f"{source}: from.{dom}.{fine} must be a {space.name} class name, got {target!r}")
                space.index(target)  # ConfigError with close matches
            sources[str(dom)] = {str(k): v for k, v in table.items()}
        declared = d.get("not_derivable") or {}
        if not isinstance(declared, Mapping):
            raise ConfigError(f"{source}: 'not_derivable' must map source domains to {{layout class: reason}}")
        not_derivable = {str(k): dict(v or {}) for k, v in declared.items()}
        for dom in not_derivable:
            if dom not in sources:
                raise ConfigError(f"{source}: not_derivable.{dom}: " + unknown_key_message("source domain", dom, sources))
        for dom, table in sources.items():
            missing = sorted(set(space.names) - set(table.values()), key=space.names.index)
            said = sorted(not_derivable.get(dom, {}), key=lambda n: space.names.index(n) if n in space.names else -1)
            if missing != said:
                raise ConfigError(f"{source}: from.{dom} never produces {missing or 'nothing'}, but not_derivable.{dom} "
                                  f"declares {said or 'nothing'}; make them agree")
        return cls(space, sources, not_derivable, source=source)


def list_layouts() -> list[str]:
    """Names of the built-in try-on layouts, sorted."""
    return sorted(p.stem for p in LAYOUTS_DIR.glob("*.yaml"))


def get_layout(name_or_path: "str | Path | Layout") -> Layout:
    """A built-in layout by name (``"viton_hd"``), or one read from a YAML file path."""
    if isinstance(name_or_path, Layout):
        return name_or_path
    key = str(name_or_path)
    if isinstance(name_or_path, Path) or key.endswith((".yaml", ".yml")) or "/" in key:
        return Layout.from_file(key)
    if key not in _CACHE:
        path = LAYOUTS_DIR / f"{key}.yaml"
        if not path.is_file():
            raise ConfigError(unknown_key_message("try-on layout", key, list_layouts())
                              + "; or give the path of a layout YAML file (see docs/label_domains.md)")
        layout = Layout.from_file(path)
        if layout.name != key:
            raise DataError(path, f"declares name {layout.name!r}; a built-in layout's name must equal its stem {key!r}")
        _CACHE[key] = layout
    return _CACHE[key]
