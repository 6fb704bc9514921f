"""MHP v2.0 (LV-MHP-v2), one part map per person::

    <root>/<split>/images/<id>.jpg
    <root>/<split>/parsing_annos/<id>_<NN>_<KK>.png   NN = persons in the image, KK = 01..NN
    <root>/list/<split>.txt                           (optional: the ids of the split)

(``annotations/`` is accepted for ``parsing_annos/``, as in the authors' evaluation scripts.) Each
person file holds part ids 0..58 on that person's pixels and 0 elsewhere; some are stored with three
identical channels, of which the first is used.

A record's ``label_parts`` lists the person files in KK order and ``label`` is the first of them;
``humanparse.data.io.load_label`` merges them on read into one part map and one person map
(person id = KK). Overlap rule: where persons overlap, the pixel keeps the FIRST person (lowest KK)
whose map is non-zero there. That merge is for semantic parsing only: multi-person training and
scoring read the files apart (``humanparse.data.io.read_person_maps``), so overlapping persons keep
their whole ground truth.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path

from humanparse.errors import DataError

from ..records import Record
from ._common import IMAGE_EXTS, files_by_stem, lookup, read_id_list, require_dir

_PERSON_FILE = re.compile(r"^(?P<id>.+)_(?P<n>\d+)_(?P<k>\d+)$")


def group_person_files(folder: Path) -> dict[str, list[Path]]:
    """image id -> its person files sorted by KK; checks that KK runs over 1..NN exactly."""
    groups: dict[str, list[tuple[int, int, Path]]] = defaultdict(list)
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() != ".png" or path.name.startswith("."):
            continue
        m = _PERSON_FILE.match(path.stem)
        if m is None:
            raise DataError(path, "person part map name does not match <id>_<persons>_<person>.png")
        groups[m["id"]].append((int(m["n"]), int(m["k"]), path))
    out = {}
    for image_id, items in groups.items():
        items.sort(key=lambda t: t[1])
        counts = {n for n, _, _ in items}
        ks = [k for _, k, _ in items]
        if len(counts) != 1 or ks != list(range(1, counts.pop() + 1)):
            raise DataError(
                items[0][2],
                f"person maps of image {image_id!r} are inconsistent: persons/index pairs "
                f"{[(n, k) for n, k, _ in items]} (expected <id>_NN_01 .. <id>_NN_NN)",
            )
        out[image_id] = [p for _, _, p in items]
    return out


def read_mhpv2(root: Path, split: str, *, domain: str | None) -> list[Record]:
    """MHPv2 records; unlabelled when the split has no annotation folder (the test split)."""
    split_dir = require_dir(root / split, f"MHPv2 {split}")
    images = files_by_stem(require_dir(split_dir / "images", "image"), IMAGE_EXTS)
    anno_dir = next((split_dir / d for d in ("parsing_annos", "annotations") if (split_dir / d).is_dir()), None)
    if anno_dir is None and not split.startswith("test"):
        raise DataError(split_dir / "parsing_annos", "annotation folder not found")
    persons = group_person_files(anno_dir) if anno_dir is not None else None
    list_file = root / "list" / f"{split}.txt"
    if list_file.is_file():
        stems = read_id_list(list_file)
    else:
        list_file, stems = None, sorted(images)
    records = []
    for s in stems:
        image = lookup(images, s, split_dir / "images", "image", list_file)
        if persons is None:
            records.append(Record(image=image, label=None, domain=domain or "mhpv2", stem=s))
            continue
        if s not in persons:
            raise DataError(anno_dir / f"{s}_NN_KK.png", f"no person part maps for image {image.name}")
        parts = tuple(persons[s])
        records.append(Record(image=image, label=parts[0], domain=domain or "mhpv2", stem=s, label_parts=parts))
    return records
