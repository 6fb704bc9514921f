"""CCP (Clothing Co-Parsing), pixel-level subset, in either layout.

Original repository (github.com/bearpaw/clothing-co-parsing)::

    <root>/photos/<NNNN>.jpg                      (2098 photos; only 1004 have pixel labels)
    <root>/annotations/pixel-level/<NNNN>.mat     (variable ``groundtruth``, ids 0..58)

Only photos with a pixel-level annotation become records; the others carry image-level tags only.

Converted layout (the shared data, the embedded samples)::

    <root>/images/<NNNN>.jpg
    <root>/labels/<NNNN>.png                      (mode L, ids 0..58)

CCP has no official split: ``all`` or the stable hash split (``train`` / ``val``).
"""

from __future__ import annotations

from pathlib import Path

from humanparse.errors import DataError

from ..records import Record
from ._common import IMAGE_EXTS, files_by_stem, hash_split, require_dir
from .folder import read_folder


def read_ccp(
    root: Path, split: str, *, domain: str | None, val_fraction: float = 0.2, split_seed: int = 0
) -> list[Record]:
    """CCP records (labels are ``.mat`` in the original layout, PNG in the converted one)."""
    domain = domain or "ccp"
    if (root / "photos").is_dir():
        photos = files_by_stem(root / "photos", IMAGE_EXTS)
        mats = files_by_stem(require_dir(root / "annotations" / "pixel-level", "pixel-level annotation"), (".mat",))
        stems = hash_split(sorted(mats), split, val_fraction=val_fraction, split_seed=split_seed)
        records = []
        for s in stems:
            if s not in photos:
                raise DataError(mats[s], f"annotation has no photo {root / 'photos' / s}.jpg")
            records.append(Record(image=photos[s], label=mats[s], domain=domain, stem=s))
        return records
    if (root / "images").is_dir():
        return read_folder(root, split, domain=domain, val_fraction=val_fraction, split_seed=split_seed)
    raise DataError(root / "photos", "CCP photo folder not found (nor images/)")
