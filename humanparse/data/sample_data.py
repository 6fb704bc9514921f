"""The small real sample sets shipped inside the package (``humanparse/data/samples/``).

Built by ``scripts/make_sample_data.py`` from the project's shared data; see
``samples/README.md`` for provenance and licences (the images and labels are research-use data).
Each folder is ``<name>/images/<stem>.jpg`` + ``<name>/labels/<stem>.png`` (+ ``instances/`` for
pascal_person_part, ``labels_rev/`` for cihp) and is read with the ``shared`` reader.
"""

from __future__ import annotations

from pathlib import Path

from humanparse.errors import ConfigError, DataError, unknown_key_message

from .readers import read_dataset
from .records import Record

__all__ = ["SAMPLE_DATASETS", "sample_data_root", "sample_records"]

# sample folder -> label domain of its labels
SAMPLE_DATASETS = {
    "ccp": "ccp",
    "lip": "lip",
    "cihp": "cihp",
    "pascal_person_part": "pascal",
    "cihp_lowres": "cihp",
}


def sample_data_root() -> Path:
    """The folder holding the sample sets."""
    root = Path(__file__).resolve().parent / "samples"
    if not root.is_dir():
        raise DataError(root, "sample data folder not found; reinstall humanparse or run scripts/make_sample_data.py")
    return root


def sample_records(name: str, split: str = "all", **options) -> list[Record]:
    """Records of one sample set (``split``: all, or train / val of the stable hash split)."""
    if name not in SAMPLE_DATASETS:
        raise ConfigError(unknown_key_message("sample dataset", name, SAMPLE_DATASETS))
    return read_dataset("shared", sample_data_root() / name, split, domain=SAMPLE_DATASETS[name], **options)
