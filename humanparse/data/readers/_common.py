"""Helpers shared by the layout readers: folder checks, list files, stem matching, the hash split."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path

from humanparse.errors import ConfigError, DataError

IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
LABEL_EXTS = (".png", ".bmp", ".tif", ".tiff", ".mat")
HASH_SPLITS = ("all", "train", "val")


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise DataError(path, f"{what} folder not found")
    return path


def files_by_stem(folder: Path, exts: Sequence[str]) -> dict[str, Path]:
    """Map stem -> file for the files of ``folder`` with one of ``exts`` (case-insensitive)."""
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith(".") or path.suffix.lower() not in exts or not path.is_file():
            continue
        if path.stem in found:
            raise DataError(path, f"two files share the stem {path.stem!r} (also {found[path.stem].name}); keep one")
        found[path.stem] = path
    return found


def read_id_list(path: Path) -> list[str]:
    """Stems listed one per line (first whitespace-separated token; a file extension is dropped)."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(path, f"cannot read list file: {exc}") from exc
    stems = []
    for line in text.splitlines():
        token = line.strip().split()[0] if line.strip() else ""
        if token and not token.startswith("#"):
            stems.append(Path(token).stem if Path(token).suffix.lower() in IMAGE_EXTS + LABEL_EXTS else token)
    return stems


def stable_fraction(stem: str, seed: int) -> float:
    """A number in [0, 1) fixed by (seed, stem): the first 8 bytes of sha1("<seed>:<stem>")."""
    digest = hashlib.sha1(f"{seed}:{stem}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def hash_split(stems: Iterable[str], split: str, *, val_fraction: float = 0.2, split_seed: int = 0) -> list[str]:
    """Our own held-out split for data with no split files.

    ``all`` keeps every stem; ``val`` keeps stems whose ``stable_fraction(stem, split_seed)`` is below
    ``val_fraction``; ``train`` keeps the others. The rule depends only on the stem, so adding or
    removing files never moves another file between train and val.
    """
    if split not in HASH_SPLITS:
        raise ConfigError(
            f"split {split!r} needs a list file; without one the split must be one of {', '.join(HASH_SPLITS)} "
            "(train/val come from a stable hash of the file stem)"
        )
    if not 0.0 <= val_fraction <= 1.0:
        raise ConfigError(f"val_fraction must be in [0, 1], got {val_fraction}")
    stems = list(stems)
    if split == "all":
        return stems
    want_val = split == "val"
    return [s for s in stems if (stable_fraction(s, split_seed) < val_fraction) == want_val]


def lookup(table: dict[str, Path], stem: str, folder: Path, what: str, list_file: Path | None = None) -> Path:
    """The file for ``stem`` in ``table`` or a DataError naming what is missing."""
    try:
        return table[stem]
    except KeyError:
        source = f" (listed in {list_file})" if list_file is not None else ""
        raise DataError(folder / stem, f"no {what} file with this stem in {folder}{source}") from None
