"""The embedded sample data: present, small, documented, and labelled within each domain's classes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from humanparse.data import (
    SAMPLE_DATASETS,
    ParsingDataset,
    build_train_transforms,
    collate_parsing,
    read_label,
    sample_data_root,
    sample_records,
)
from humanparse.errors import ConfigError
from humanparse.labels import get_label_space

EXPECTED_COUNTS = {"ccp": 240, "lip": 62, "cihp": 6, "pascal_person_part": 8, "cihp_lowres": 16}


def test_sample_data_present_and_small():
    root = sample_data_root()
    total = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert total <= 25 * 1024 * 1024
    assert (root / "README.md").is_file() and "research-use" in (root / "README.md").read_text()
    assert set(SAMPLE_DATASETS) == set(EXPECTED_COUNTS)
    for name, n in EXPECTED_COUNTS.items():
        folder = root / name
        assert len(list((folder / "images").glob("*.jpg"))) == n
        assert len(list((folder / "labels").glob("*.png"))) == n
        readme = (folder / "README.md").read_text()
        assert "commit" in readme.lower() and "research-use" in readme
        sources = (folder / "SOURCES.txt").read_text().splitlines()
        assert sum(1 for line in sources if line.endswith(".jpg") and "images/" in line) == n
    assert len(list((root / "pascal_person_part" / "instances").glob("*.png"))) == 8
    assert len(list((root / "cihp" / "labels_rev").glob("*.png"))) == 6


def test_ccp_sample_never_includes_withheld_ids():
    stems = [int(r.stem) for r in sample_records("ccp")]
    assert max(stems) <= 900 and min(stems) <= 10 and max(stems) >= 890  # spread over 0001-0900


@pytest.mark.parametrize("name", sorted(EXPECTED_COUNTS))
def test_sample_labels_valid_for_their_domain(name):
    records = sample_records(name)
    space = get_label_space(SAMPLE_DATASETS[name])
    assert len(records) == EXPECTED_COUNTS[name] and all(r.domain == space.name for r in records)
    for r in records:
        label = read_label(r.label, space.num_classes, space.ignore_index)  # raises on out-of-range ids
        with Image.open(r.image) as img:
            assert img.size == (label.shape[1], label.shape[0]) and max(img.size) <= 320


def test_sample_records_splits_and_errors():
    train, val = sample_records("lip", "train"), sample_records("lip", "val")
    assert len(train) + len(val) == 62 and not {r.stem for r in train} & {r.stem for r in val}
    with pytest.raises(ConfigError, match="did you mean 'lip'"):
        sample_records("lipp")


def test_sample_batch_end_to_end():
    cihp = get_label_space("cihp")
    ds = ParsingDataset(sample_records("cihp"), cihp, build_train_transforms({"crop_size": 64}, cihp), seed=0)
    batch = collate_parsing([ds[i] for i in range(len(ds))])
    assert batch["image"].shape == (6, 3, 64, 64) and batch["domain"] == ["cihp"] * 6
    labels = batch["label"]
    assert labels[labels != 255].max() < cihp.num_classes and (labels != 255).float().mean() > 0.3
    assert np.isfinite(batch["image"].numpy()).all()
