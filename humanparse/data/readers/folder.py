"""Generic ``folder`` layout (``images/`` + ``labels/`` with matching stems) and the ``shared`` style.

``folder``::

    <root>/images/<stem>.<any image ext>
    <root>/labels/<stem>.png            (optional: label_dir=None reads unlabelled photos)
    <root>/<split>_id.txt               (optional list of stems; otherwise the hash split)

``shared`` is ``folder`` with the sub-folder names and label domain of the datasets under
``/work/shared/data`` and of the embedded samples, chosen by the root folder's name.
"""

from __future__ import annotations

from pathlib import Path

from humanparse.errors import ConfigError, DataError

from ..records import Record
from ._common import (
    IMAGE_EXTS,
    LABEL_EXTS,
    files_by_stem,
    hash_split,
    lookup,
    read_id_list,
    require_dir,
)


def read_folder(
    root: Path,
    split: str,
    *,
    domain: str | None,
    image_dir: str = "images",
    label_dir: str | None = "labels",
    human_dir: str | None = None,
    instance_dir: str | None = None,
    list_file: str | None = None,
    val_fraction: float = 0.2,
    split_seed: int = 0,
) -> list[Record]:
    """Images and labels paired by file stem (any extensions).

    The split's stems come from ``list_file`` (relative to ``root``; must exist) when given, else from
    ``<root>/<split>_id.txt`` when that file exists; otherwise ``split`` is ``all``, ``train`` or
    ``val`` of the stable hash split (see ``hash_split``).
    """
    if domain is None:
        raise ConfigError("the folder reader needs domain=<label space name> (e.g. domain='lip')")
    images = files_by_stem(require_dir(root / image_dir, "image"), IMAGE_EXTS)
    labels = files_by_stem(require_dir(root / label_dir, "label"), LABEL_EXTS) if label_dir else None
    humans = files_by_stem(require_dir(root / human_dir, "person-id"), LABEL_EXTS) if human_dir else None
    insts = files_by_stem(require_dir(root / instance_dir, "instance-id"), LABEL_EXTS) if instance_dir else None

    listed = root / list_file if list_file is not None else root / f"{split}_id.txt"
    if list_file is not None and not listed.is_file():
        raise DataError(listed, "list file not found")
    if listed.is_file():
        stems = read_id_list(listed)
    else:
        listed = None
        stems = hash_split(sorted(images), split, val_fraction=val_fraction, split_seed=split_seed)

    records = []
    for stem in stems:
        records.append(
            Record(
                image=lookup(images, stem, root / image_dir, "image", listed),
                label=lookup(labels, stem, root / label_dir, "label", listed) if labels is not None else None,
                domain=domain,
                human_ids=lookup(humans, stem, root / human_dir, "person-id", listed) if humans is not None else None,
                instance_ids=lookup(insts, stem, root / instance_dir, "instance-id", listed) if insts is not None else None,
                stem=stem,
            )
        )
    return records


# Sub-folder names and label domain per shared / sample dataset folder. A tuple of label folders is a
# preference order: the first one that exists is used (pascal: the 7-class map of the shared data,
# ``labels/`` in the embedded samples).
SHARED_LAYOUTS: dict[str, dict] = {
    "lip": {"domain": "lip", "label_dir": ("labels",)},
    "cihp": {"domain": "cihp", "label_dir": ("labels",)},
    "cihp_lowres": {"domain": "cihp", "label_dir": ("labels",)},
    "cihp_lowres_derived": {"domain": "cihp", "label_dir": ("labels",)},
    "ccp": {"domain": "ccp", "label_dir": ("labels",)},
    "pascal_person_part": {"domain": "pascal", "label_dir": ("labels_7", "labels"), "human_dir": "instances"},
}


def read_shared(
    root: Path,
    split: str,
    *,
    domain: str | None,
    val_fraction: float = 0.2,
    split_seed: int = 0,
) -> list[Record]:
    """The ``images/`` + ``labels*/`` folders of the shared data and embedded samples (by folder name)."""
    name = root.name
    if name not in SHARED_LAYOUTS:
        raise ConfigError(
            f"the shared reader knows the folders {', '.join(sorted(SHARED_LAYOUTS))}, not {name!r}; "
            "use reader 'folder' with image_dir/label_dir for other data"
        )
    layout = SHARED_LAYOUTS[name]
    label_dir = next((d for d in layout["label_dir"] if (root / d).is_dir()), None)
    if label_dir is None:
        raise DataError(root / layout["label_dir"][0], "label folder not found")
    return read_folder(
        root,
        split,
        domain=domain or layout["domain"],
        label_dir=label_dir,
        human_dir=layout.get("human_dir"),
        val_fraction=val_fraction,
        split_seed=split_seed,
    )
