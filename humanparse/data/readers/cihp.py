"""CIHP (Crowd Instance-level Human Parsing).

Official release (``instance-level_human_parsing.tar.gz``); ``root`` is the extracted folder or its parent::

    <root>/instance-level_human_parsing/Training/Images/<id>.jpg
                                        Training/Category_ids/<id>.png   (part ids 0..19)
                                        Training/Human_ids/<id>.png      (person ids, 0 = none)
                                        Training/Instance_ids/<id>.png   (part-instance ids)
                                        Training/train_id.txt
                                        Validation/... val_id.txt, Testing/Images + test_id.txt

Graphonomy's flat copy (``CIHP_4w``) is read too: ``<root>/Images``, ``<root>/Category_ids``,
``<root>/lists/<split>_id.txt``.
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

SPLIT_DIRS = {"train": "Training", "val": "Validation", "test": "Testing"}


def _split_dir(root: Path, split: str) -> tuple[Path, Path]:
    """(folder with Images/ etc., list file) for the official or the Graphonomy layout."""
    if split in SPLIT_DIRS:
        for base in (root, root / "instance-level_human_parsing"):
            if (base / SPLIT_DIRS[split]).is_dir():
                folder = base / SPLIT_DIRS[split]
                return folder, folder / f"{split}_id.txt"
    if (root / "Images").is_dir():
        return root, root / "lists" / f"{split}_id.txt"
    expected = root / "instance-level_human_parsing" / SPLIT_DIRS.get(split, split)
    raise DataError(expected, f"CIHP {split} folder not found (nor {root / SPLIT_DIRS.get(split, split)}, nor a flat {root / 'Images'})")


def read_cihp(root: Path, split: str, *, domain: str | None) -> list[Record]:
    """CIHP records with part labels and, where present, person and instance id maps."""
    folder, list_file = _split_dir(root, split)
    images = files_by_stem(require_dir(folder / "Images", "image"), IMAGE_EXTS)

    def optional(name: str) -> dict[str, Path] | None:
        return files_by_stem(folder / name, LABEL_EXTS) if (folder / name).is_dir() else None

    labels = optional("Category_ids")
    if labels is None and split != "test":
        raise DataError(folder / "Category_ids", "label folder not found")
    humans, insts = optional("Human_ids"), optional("Instance_ids")
    if list_file.is_file():
        stems = read_id_list(list_file)
    elif folder is root and (root / "lists").is_dir():
        raise DataError(list_file, "list file not found (the flat CIHP layout needs lists/<split>_id.txt)")
    else:
        list_file, stems = None, sorted(images)
    records = []
    for s in stems:
        records.append(
            Record(
                image=lookup(images, s, folder / "Images", "image", list_file),
                label=lookup(labels, s, folder / "Category_ids", "label", list_file) if labels is not None else None,
                domain=domain or "cihp",
                human_ids=lookup(humans, s, folder / "Human_ids", "person-id", list_file) if humans is not None else None,
                instance_ids=lookup(insts, s, folder / "Instance_ids", "instance-id", list_file) if insts is not None else None,
                stem=s,
            )
        )
    return records
