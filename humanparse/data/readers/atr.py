"""ATR, in either layout used by public parsers.

Graphonomy (``data/datasets/ATR``)::

    <root>/JPEGImages/<id>.jpg
    <root>/SegmentationClassAug/<id>.png      (+ SegmentationClassAug_rev/ flipped labels, not needed)
    <root>/list/<split>_id.txt                (required; split "all" reads every image instead)

SCHP: ``<root>/<split>_images``, ``<root>/<split>_segmentations``, optional ``<root>/<split>_id.txt``
(the LIP layout).
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
from .lip import read_split_folders


def read_voc_style(
    root: Path, split: str, *, domain: str, label_dir: str, human_dir: str | None = None
) -> list[Record]:
    """``JPEGImages/`` + ``<label_dir>/`` + ``list/<split>_id.txt`` (Graphonomy's ATR and PASCAL copies)."""
    images = files_by_stem(require_dir(root / "JPEGImages", "image"), IMAGE_EXTS)
    labels = files_by_stem(require_dir(root / label_dir, "label"), LABEL_EXTS)
    humans = files_by_stem(require_dir(root / human_dir, "person-id"), LABEL_EXTS) if human_dir else None
    if split == "all":
        list_file, stems = None, sorted(images)
    else:
        list_file = root / "list" / f"{split}_id.txt"
        if not list_file.is_file():
            raise DataError(list_file, f"list file for split {split!r} not found (split 'all' reads every image)")
        stems = read_id_list(list_file)
    return [
        Record(
            image=lookup(images, s, root / "JPEGImages", "image", list_file),
            label=lookup(labels, s, root / label_dir, "label", list_file),
            domain=domain,
            human_ids=lookup(humans, s, root / human_dir, "person-id", list_file) if humans is not None else None,
            stem=s,
        )
        for s in stems
    ]


def read_atr(root: Path, split: str, *, domain: str | None) -> list[Record]:
    """ATR records (18 classes)."""
    domain = domain or "atr"
    if (root / "JPEGImages").is_dir():
        return read_voc_style(root, split, domain=domain, label_dir="SegmentationClassAug")
    return read_split_folders(
        root,
        split,
        domain=domain,
        image_dir=f"{split}_images",
        label_dir=f"{split}_segmentations",
        list_file=root / f"{split}_id.txt",
    )
