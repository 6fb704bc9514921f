"""LIP (Look Into Person), in the layout of mmsegmentation / SCHP::

    <root>/train_images/<id>.jpg      <root>/train_segmentations/<id>.png
    <root>/val_images/<id>.jpg        <root>/val_segmentations/<id>.png
    <root>/train_id.txt, val_id.txt   (optional: the stems of the split, one per line)
    <root>/test_images/<id>.jpg       (no labels: split "test" gives unlabelled records)
"""

from __future__ import annotations

from pathlib import Path

from humanparse.errors import DataError

from ..records import Record
from ._common import (
    IMAGE_EXTS,
    LABEL_EXTS,
    files_by_stem,
    lookup,
    read_id_list,
    require_dir,
)


def read_split_folders(
    root: Path, split: str, *, domain: str, image_dir: str, label_dir: str, list_file: Path | None
) -> list[Record]:
    """``<split>_images`` / ``<split>_segmentations`` style folders (shared by the LIP and SCHP-ATR layouts)."""
    images = files_by_stem(require_dir(root / image_dir, f"{split} image"), IMAGE_EXTS)
    if (root / label_dir).is_dir():
        labels = files_by_stem(root / label_dir, LABEL_EXTS)
    elif split == "test":
        labels = None
    else:
        raise DataError(root / label_dir, f"{split} label folder not found")
    if list_file is not None and list_file.is_file():
        stems = read_id_list(list_file)
    else:
        list_file, stems = None, sorted(images)
    return [
        Record(
            image=lookup(images, s, root / image_dir, "image", list_file),
            label=lookup(labels, s, root / label_dir, "label", list_file) if labels is not None else None,
            domain=domain,
            stem=s,
        )
        for s in stems
    ]


def read_lip(root: Path, split: str, *, domain: str | None) -> list[Record]:
    """LIP records of ``split`` (train / val / test)."""
    return read_split_folders(
        root,
        split,
        domain=domain or "lip",
        image_dir=f"{split}_images",
        label_dir=f"{split}_segmentations",
        list_file=root / f"{split}_id.txt",
    )
