"""One label domain: class names, colours, flip pairs, part adjacency (M_intra) and coarse mappings.

A label space is data, read from a YAML file (format in ``docs/label_domains.md``). Classes and flip
pairs are referred to by *name* in the file and turned into indices once, here. Every array a
``LabelSpace`` hands out is read-only, so one instance can be shared safely.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import yaml

from humanparse.errors import ConfigError, DataError, unknown_key_message

__all__ = ["LabelSpace", "voc_colormap"]

_KEYS = ("name", "names", "palette", "flip_pairs", "adjacency", "groups", "mappings", "ignore_index",
         "provenance")
_GROUP_PREFIX = "@"


def voc_colormap(num_classes: int) -> np.ndarray:
    """The PASCAL-VOC bit-interleaving colour map: uint8 [num_classes, 3]."""
    cmap = np.zeros((num_classes, 3), dtype=np.uint8)
    for i in range(num_classes):
        c, rgb = i, [0, 0, 0]
        for j in range(8):
            for ch in range(3):
                rgb[ch] |= ((c >> ch) & 1) << (7 - j)
            c >>= 3
        cmap[i] = rgb
    return cmap


def _readonly(array: np.ndarray) -> np.ndarray:
    array.setflags(write=False)
    return array


class LabelSpace:
    """A validated label domain. Build it with :meth:`from_file` or :meth:`from_dict`."""

    def __init__(self, *, name: str, names: list[str], palette: np.ndarray,
                 flip_pairs: list[tuple[str, str]], adjacency: np.ndarray | None,
                 mappings: dict[str, dict[str, str | None]], ignore_index: int = 255,
                 provenance: str | None = None, source: str = "<dict>",
                 embeddings_path: Path | None = None):
        """Takes already-validated values; use ``from_dict``/``from_file`` for user input."""
        self.name = name
        self._names = tuple(names)
        self._index = {n: i for i, n in enumerate(names)}
        self.ignore_index = ignore_index
        self.provenance = provenance
        self.source = source
        self.palette = _readonly(np.asarray(palette, dtype=np.uint8))
        self._flip_pairs = tuple((a, b) for a, b in flip_pairs)
        perm = np.arange(len(names), dtype=np.int64)
        for a, b in self._flip_pairs:
            perm[self._index[a]], perm[self._index[b]] = self._index[b], self._index[a]
        self.flip_permutation = _readonly(perm)
        self.adjacency_is_prior = adjacency is not None
        self._adjacency = None if adjacency is None else _readonly(adjacency.astype(np.uint8))
        self._mappings = {k: dict(v) for k, v in mappings.items()}
        self._embeddings_path = embeddings_path
        self._embeddings: np.ndarray | None = None

    # ---------------------------------------------------------------- properties
    @property
    def names(self) -> list[str]:
        return list(self._names)

    @property
    def flip_pairs(self) -> list[tuple[str, str]]:
        """Classes that swap under a horizontal flip, by name."""
        return list(self._flip_pairs)

    @property
    def num_classes(self) -> int:
        return len(self._names)

    def index(self, name: str) -> int:
        """The id of class ``name``; ConfigError with close matches if unknown."""
        if name not in self._index:
            raise ConfigError(f"{self.source}: " + unknown_key_message(f"{self.name} class", name, self._names))
        return self._index[name]

    @property
    def adjacency(self) -> np.ndarray:
        """M_intra: uint8 [C, C], 0/1, symmetric, diagonal 1. All ones (warned) when the file gave none."""
        if self._adjacency is None:
            warnings.warn(
                f"label space {self.name!r} ({self.source}) declares no 'adjacency': using all-ones M_intra "
                "(no part-adjacency prior). Add an 'adjacency' edge list to the file to give one.",
                UserWarning, stacklevel=2)
            self._adjacency = _readonly(np.ones((self.num_classes, self.num_classes), dtype=np.uint8))
        return self._adjacency

    @property
    def declared_mappings(self) -> list[str]:
        return sorted(self._mappings)

    @property
    def embeddings_path(self) -> Path | None:
        return self._embeddings_path

    @property
    def name_embeddings(self) -> np.ndarray | None:
        """Cached label-name text embeddings, float32 [C, E], loaded on first use; None without a cache."""
        if self._embeddings is None and self._embeddings_path is not None:
            path = self._embeddings_path
            try:
                emb = np.load(path, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise DataError(path, f"cannot read label-name embeddings ({exc})") from exc
            if emb.ndim != 2 or emb.shape[0] != self.num_classes:
                raise DataError(path, f"embeddings have shape {emb.shape} but {self.name!r} has "
                                      f"{self.num_classes} classes; rerun "
                                      f"`python -m humanparse.labels.embeddings {self.source}`")
            self._embeddings = _readonly(emb.astype(np.float32))
        return self._embeddings

    # ---------------------------------------------------------------- mappings
    def mapping_to(self, other: "str | LabelSpace") -> np.ndarray:
        """int64 [C]: fine id -> coarse id in ``other`` (its ignore_index where the file maps to null)."""
        other_name = other.name if isinstance(other, LabelSpace) else str(other)
        if other_name == self.name:
            return np.arange(self.num_classes, dtype=np.int64)
        if other_name not in self._mappings:
            declared = ", ".join(self.declared_mappings) or "none"
            raise ConfigError(f"{self.source}: label space {self.name!r} declares no mapping to {other_name!r} "
                              f"(declared: {declared}); add one under 'mappings:' in the file")
        if not isinstance(other, LabelSpace):
            from humanparse.labels.registry import get_label_space
            other = get_label_space(other_name)
        table = self._mappings[other_name]
        out = np.empty(self.num_classes, dtype=np.int64)
        for i, fine in enumerate(self._names):
            coarse = table[fine]
            if coarse is None:
                out[i] = other.ignore_index
            elif coarse in other._index:
                out[i] = other._index[coarse]
            else:
                raise ConfigError(f"{self.source}: mapping to {other_name!r} sends {fine!r} to " +
                                  unknown_key_message(f"{other_name} class", coarse, other._names))
        return out

    # ---------------------------------------------------------------- (de)serialisation
    def to_dict(self) -> dict[str, Any]:
        """JSON-able; ``LabelSpace.from_dict(ls.to_dict())`` rebuilds an equal label space."""
        d: dict[str, Any] = {
            "name": self.name,
            "names": list(self._names),
            "ignore_index": self.ignore_index,
            "palette": self.palette.tolist(),
            "flip_pairs": [list(p) for p in self.flip_pairs],
            "adjacency": self._adjacency.tolist() if self.adjacency_is_prior else None,
            "mappings": {k: dict(v) for k, v in self._mappings.items()},
        }
        if self.provenance:
            d["provenance"] = self.provenance
        return d

    @classmethod
    def from_file(cls, path: str | Path) -> "LabelSpace":
        """Read a YAML label-space file; ``<stem>.embeddings.npy`` beside it is its embedding cache."""
        path = Path(path)
        if not path.is_file():
            raise DataError(path, "label-space file not found")
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise DataError(path, f"cannot read label-space YAML ({exc})") from exc
        cache = path.with_name(path.stem + ".embeddings.npy")
        return cls.from_dict(data, source=str(path), embeddings_path=cache if cache.is_file() else None)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], source: str = "<dict>", *,
                  embeddings_path: Path | None = None) -> "LabelSpace":
        """Validate a label-space mapping (the YAML file's content or ``to_dict()``'s output)."""
        if not isinstance(d, Mapping):
            raise ConfigError(f"{source}: a label-space file must be a mapping, got {type(d).__name__}")
        for key in d:
            if key not in _KEYS:
                raise ConfigError(f"{source}: " + unknown_key_message("label-space key", str(key), _KEYS))
        for key in ("name", "names"):
            if key not in d:
                raise ConfigError(f"{source}: missing required key {key!r}")
        name = d["name"]
        if not isinstance(name, str) or not name:
            raise ConfigError(f"{source}: 'name' must be a non-empty string, got {name!r}")
        names = _parse_names(d["names"], source)
        index = {n: i for i, n in enumerate(names)}
        ignore_index = d.get("ignore_index", 255)
        if not isinstance(ignore_index, int) or isinstance(ignore_index, bool) or 0 <= ignore_index < len(names):
            raise ConfigError(f"{source}: 'ignore_index' must be an integer outside 0..{len(names) - 1}, "
                              f"got {ignore_index!r}")
        return cls(
            name=name, names=names, ignore_index=ignore_index, source=source, embeddings_path=embeddings_path,
            palette=_parse_palette(d.get("palette", "voc"), len(names), source),
            flip_pairs=_parse_flip_pairs(d.get("flip_pairs") or [], index, source),
            adjacency=_parse_adjacency(d.get("adjacency"), d.get("groups") or {}, index, source),
            mappings=_parse_mappings(d.get("mappings") or {}, index, source),
            provenance=d.get("provenance"),
        )

    def __repr__(self) -> str:
        return f"LabelSpace({self.name!r}, {self.num_classes} classes, source={self.source!r})"


# -------------------------------------------------------------------- parsing helpers
def _check_name(value: Any, where: str, index: Mapping[str, int], source: str) -> str:
    if not isinstance(value, str) or value not in index:
        raise ConfigError(f"{source}: {where}: " + unknown_key_message("class", str(value), index))
    return value


def _parse_names(raw: Any, source: str) -> list[str]:
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{source}: 'names' must be a non-empty list of class names (id = position)")
    seen: dict[str, int] = {}
    for i, n in enumerate(raw):
        if not isinstance(n, str) or not n.strip() or n.startswith(_GROUP_PREFIX):
            raise ConfigError(f"{source}: class {i} has an invalid name {n!r}: names are non-empty strings "
                              f"not starting with {_GROUP_PREFIX!r} (quote words YAML reads as other "
                              "types, e.g. 'null', 'yes', 'on')")
        if n in seen:
            raise ConfigError(f"{source}: duplicate class name {n!r} (ids {seen[n]} and {i})")
        seen[n] = i
    return list(raw)


def _parse_palette(raw: Any, num_classes: int, source: str) -> np.ndarray:
    if raw == "voc":
        return voc_colormap(num_classes)
    try:
        palette = np.asarray(raw, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: 'palette' must be 'voc' or a list of [r, g, b] ({exc})") from exc
    if palette.shape != (num_classes, 3):
        raise ConfigError(f"{source}: 'palette' has shape {palette.shape}, expected ({num_classes}, 3): "
                          "one [r, g, b] per class, or 'voc'")
    if palette.min() < 0 or palette.max() > 255:
        raise ConfigError(f"{source}: 'palette' values must be in 0..255")
    return palette.astype(np.uint8)


def _parse_flip_pairs(raw: Any, index: Mapping[str, int], source: str) -> list[tuple[str, str]]:
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: 'flip_pairs' must be a list of [left_name, right_name]")
    pairs, used = [], {}
    for k, pair in enumerate(raw):
        if not isinstance(pair, list) or len(pair) != 2:
            raise ConfigError(f"{source}: flip_pairs[{k}] must be [left_name, right_name], got {pair!r}")
        a, b = (_check_name(p, f"flip_pairs[{k}]", index, source) for p in pair)
        if a == b:
            raise ConfigError(f"{source}: flip_pairs[{k}] pairs {a!r} with itself")
        for n in (a, b):
            if n in used:
                raise ConfigError(f"{source}: class {n!r} is in flip_pairs[{used[n]}] and flip_pairs[{k}]")
            used[n] = k
        pairs.append((a, b))
    return pairs


def _expand(item: Any, groups: Mapping[str, list], index: Mapping[str, int], where: str,
            source: str, seen: tuple[str, ...] = ()) -> list[int]:
    """A class name, a '@group' reference, or a list of those -> class ids."""
    if isinstance(item, list):
        return [i for sub in item for i in _expand(sub, groups, index, where, source, seen)]
    if isinstance(item, str) and item.startswith(_GROUP_PREFIX):
        group = item[len(_GROUP_PREFIX):]
        if group not in groups:
            raise ConfigError(f"{source}: {where}: " + unknown_key_message("group", group, groups))
        if group in seen:
            raise ConfigError(f"{source}: group {group!r} refers to itself ({' -> '.join(seen + (group,))})")
        return _expand(groups[group], groups, index, f"{where} ({item})", source, seen + (group,))
    return [index[_check_name(item, where, index, source)]]


def _parse_adjacency(raw: Any, groups: Any, index: Mapping[str, int], source: str) -> np.ndarray | None:
    if raw is None:
        return None
    n = len(index)
    if not isinstance(raw, list):
        raise ConfigError(f"{source}: 'adjacency' must be a list of edges [a, b] (or a {n}x{n} 0/1 matrix)")
    if raw and all(isinstance(r, list) and r and all(isinstance(v, int) for v in r) for r in raw):
        return _parse_matrix(raw, n, source)
    if not isinstance(groups, Mapping):
        raise ConfigError(f"{source}: 'groups' must map group names to lists of class names")
    for g, members in groups.items():
        if not isinstance(members, list):
            raise ConfigError(f"{source}: group {g!r} must be a list of class names")
    adj = np.eye(n, dtype=np.uint8)
    for k, edge in enumerate(raw):
        if not isinstance(edge, list) or len(edge) != 2:
            raise ConfigError(f"{source}: adjacency[{k}] must be an edge [a, b] (names, '@groups' or lists), "
                              f"got {edge!r}")
        left = _expand(edge[0], groups, index, f"adjacency[{k}]", source)
        right = _expand(edge[1], groups, index, f"adjacency[{k}]", source)
        adj[np.ix_(left, right)] = 1
        adj[np.ix_(right, left)] = 1
    np.fill_diagonal(adj, 1)
    return adj


def _parse_matrix(raw: list, n: int, source: str) -> np.ndarray:
    adj = np.asarray(raw) if all(len(r) == n for r in raw) else None
    if adj is None or adj.shape != (n, n):
        raise ConfigError(f"{source}: an adjacency matrix must be {n}x{n}")
    if not np.isin(adj, (0, 1)).all() or not (adj == adj.T).all() or not (np.diag(adj) == 1).all():
        raise ConfigError(f"{source}: an adjacency matrix must be 0/1, symmetric, with 1 on the diagonal")
    return adj.astype(np.uint8)


def _parse_mappings(raw: Any, index: Mapping[str, int], source: str) -> dict[str, dict[str, str | None]]:
    if not isinstance(raw, Mapping):
        raise ConfigError(f"{source}: 'mappings' must be {{coarse_domain: {{fine_name: coarse_name or null}}}}")
    out = {}
    for coarse, table in raw.items():
        if not isinstance(table, Mapping):
            raise ConfigError(f"{source}: mappings.{coarse} must map every class name to a {coarse} class or null")
        for fine, target in table.items():
            _check_name(fine, f"mappings.{coarse}", index, source)
            if target is not None and not isinstance(target, str):
                raise ConfigError(f"{source}: mappings.{coarse}.{fine} must be a {coarse} class name or null")
        missing = [n for n in index if n not in table]
        if missing:
            raise ConfigError(f"{source}: mappings.{coarse} does not say where {', '.join(missing)} go "
                              "(give a class name, or null for 'no equivalent')")
        out[str(coarse)] = dict(table)
    return out
