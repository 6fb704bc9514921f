"""PASCAL-Person-Part (7 classes: background, head, torso, upper/lower arms, upper/lower legs).

Graphonomy (``data/datasets/pascal``)::

    <root>/JPEGImages/<id>.jpg
    <root>/SegmentationPart/<id>.png
    <root>/list/<split>_id.txt                (split "all" reads every image)

The shared-data / embedded-sample layout::

    <root>/images/<id>.jpg
    <root>/labels_7/<id>.png  (or labels/)    7-class part map
    <root>/instances/<id>.png                 person index 1..N, 0 = none (optional)
    <root>/list/<split>_id.txt or <root>/<split>_id.txt (optional; otherwise the hash split)
"""

from __future__ import annotations

from pathlib import Path

from humanparse.errors import DataError

from ..records import Record
from .atr import read_voc_style
from .folder import read_folder


def read_pascal(
    root: Path, split: str, *, domain: str | None, val_fraction: float = 0.2, split_seed: int = 0
) -> list[Record]:
    """PASCAL-Person-Part records; ``human_ids`` are set when an ``instances/`` folder exists."""
    domain = domain or "pascal"
    if (root / "JPEGImages").is_dir():
        return read_voc_style(root, split, domain=domain, label_dir="SegmentationPart")
    if not (root / "images").is_dir():
        raise DataError(root / "JPEGImages", "PASCAL-Person-Part image folder not found (nor images/)")
    label_dir = next((d for d in ("labels_7", "labels") if (root / d).is_dir()), None)
    if label_dir is None:
        raise DataError(root / "labels_7", "label folder not found (nor labels/)")
    graphonomy_list = Path("list") / f"{split}_id.txt"
    return read_folder(
        root,
        split,
        domain=domain,
        label_dir=label_dir,
        human_dir="instances" if (root / "instances").is_dir() else None,
        list_file=str(graphonomy_list) if (root / graphonomy_list).is_file() else None,
        val_fraction=val_fraction,
        split_seed=split_seed,
    )
