"""Dataset layout readers: ``read_dataset(reader, root, split)`` -> ``list[Record]``.

One module per on-disk layout; ``docs/datasets.md`` describes each. A reader is a function
``(root: Path, split: str, *, domain: str | None, **options) -> list[Record]``; its keyword options
(e.g. ``val_fraction``) are the only extra arguments ``read_dataset`` accepts for it.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path

from humanparse.errors import ConfigError, DataError, check_keys, unknown_key_message

from ..records import Record
from ._common import hash_split, stable_fraction
from .atr import read_atr
from .ccp import read_ccp
from .cihp import read_cihp
from .folder import SHARED_LAYOUTS, read_folder, read_shared
from .lip import read_lip
from .mhpv2 import read_mhpv2
from .pascal import read_pascal

Reader = Callable[..., list[Record]]

READERS: dict[str, Reader] = {
    "lip": read_lip,
    "cihp": read_cihp,
    "atr": read_atr,
    "pascal": read_pascal,
    "mhpv2": read_mhpv2,
    "ccp": read_ccp,
    "folder": read_folder,
    "shared": read_shared,
}

__all__ = ["READERS", "SHARED_LAYOUTS", "read_dataset", "reader_options", "hash_split", "stable_fraction"]


def reader_options(reader: str) -> list[str]:
    """The keyword options a reader accepts besides ``domain``."""
    params = inspect.signature(_get(reader)).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY and p.name != "domain"]


def _get(reader: str) -> Reader:
    if reader not in READERS:
        raise ConfigError(unknown_key_message("dataset reader", reader, READERS))
    return READERS[reader]


def read_dataset(reader: str, root: str | Path, split: str, *, domain: str | None = None, **options) -> list[Record]:
    """Records of ``split`` of the dataset at ``root`` in the ``reader`` layout.

    Raises ConfigError for an unknown reader or option (with close matches), DataError naming the
    missing folder or file, and DataError when the split has no samples.
    """
    fn = _get(reader)
    check_keys(f"option of reader {reader!r}", options, reader_options(reader))
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DataError(root, f"dataset root folder not found (reader {reader!r})")
    records = fn(root, split, domain=domain, **options)
    if not records:
        raise DataError(root, f"split {split!r} has no samples (reader {reader!r})")
    return records
