"""Each reader on a tiny fixture in its exact on-disk layout."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from humanparse.data import load_label, read_dataset, read_label
from humanparse.data.readers import READERS, hash_split
from humanparse.errors import ConfigError, DataError


def _stems(records):
    return [r.stem for r in records]


# --- LIP ------------------------------------------------------------------------------------------

def _lip(root: Path, writer, split: str, stems):
    for s in stems:
        writer.pair(root / f"{split}_images" / f"{s}.jpg", root / f"{split}_segmentations" / f"{s}.png")


def test_lip_layout(tmp_path, writer):
    root = tmp_path / "LIP"
    _lip(root, writer, "train", ["100_1", "200_2"])
    _lip(root, writer, "val", ["300_3", "400_4"])
    train = read_dataset("lip", root, "train")
    assert _stems(train) == ["100_1", "200_2"]
    assert all(r.domain == "lip" and r.label.parent.name == "train_segmentations" for r in train)
    assert train[0].image == root / "train_images" / "100_1.jpg"
    # the optional id list selects and orders the split
    (root / "val_id.txt").write_text("400_4\n")
    assert _stems(read_dataset("lip", root, "val")) == ["400_4"]


def test_lip_missing_split_folder_names_it(tmp_path, writer):
    root = tmp_path / "LIP"
    _lip(root, writer, "train", ["a"])
    with pytest.raises(DataError, match="val_images"):
        read_dataset("lip", root, "val")


def test_list_file_naming_missing_image(tmp_path, writer):
    root = tmp_path / "LIP"
    _lip(root, writer, "train", ["a", "b"])
    (root / "train_id.txt").write_text("a\nzzz\n")
    with pytest.raises(DataError, match="zzz") as err:
        read_dataset("lip", root, "train")
    assert "train_id.txt" in str(err.value)


# --- CIHP -----------------------------------------------------------------------------------------

def _cihp(base: Path, writer, split_dir: str, split: str, stems):
    d = base / split_dir
    for s in stems:
        writer.pair(d / "Images" / f"{s}.jpg", d / "Category_ids" / f"{s}.png")
        writer.label(d / "Human_ids" / f"{s}.png", num_classes=3)
        writer.label(d / "Instance_ids" / f"{s}.png", num_classes=5)
    (d / f"{split}_id.txt").write_text("\n".join(stems) + "\n")


def test_cihp_official_layout(tmp_path, writer):
    base = tmp_path / "instance-level_human_parsing"
    _cihp(base, writer, "Training", "train", ["0000001", "0000002"])
    _cihp(base, writer, "Validation", "val", ["0000003", "0000004"])
    for root in (tmp_path, base):  # the extracted folder or its parent
        train = read_dataset("cihp", root, "train")
        assert _stems(train) == ["0000001", "0000002"]
        r = train[1]
        assert r.domain == "cihp"
        assert r.label == base / "Training" / "Category_ids" / "0000002.png"
        assert r.human_ids == base / "Training" / "Human_ids" / "0000002.png"
        assert r.instance_ids == base / "Training" / "Instance_ids" / "0000002.png"
    assert _stems(read_dataset("cihp", base, "val")) == ["0000003", "0000004"]


def test_cihp_graphonomy_flat_layout(tmp_path, writer):
    root = tmp_path / "CIHP_4w"
    for s in ("a", "b"):
        writer.pair(root / "Images" / f"{s}.jpg", root / "Category_ids" / f"{s}.png")
    (root / "lists").mkdir()
    (root / "lists" / "val_id.txt").write_text("b\n")
    recs = read_dataset("cihp", root, "val")
    assert _stems(recs) == ["b"] and recs[0].human_ids is None
    with pytest.raises(DataError, match="train_id.txt"):
        read_dataset("cihp", root, "train")


# --- ATR ------------------------------------------------------------------------------------------

def test_atr_graphonomy_layout(tmp_path, writer):
    root = tmp_path / "ATR"
    for s in ("x1", "x2"):
        writer.pair(root / "JPEGImages" / f"{s}.jpg", root / "SegmentationClassAug" / f"{s}.png", num_classes=18)
    (root / "list").mkdir()
    (root / "list" / "train_id.txt").write_text("x2\nx1\n")
    recs = read_dataset("atr", root, "train")
    assert _stems(recs) == ["x2", "x1"]
    assert recs[0].domain == "atr" and recs[0].label.parent.name == "SegmentationClassAug"
    assert _stems(read_dataset("atr", root, "all")) == ["x1", "x2"]
    with pytest.raises(DataError, match="val_id.txt"):
        read_dataset("atr", root, "val")


def test_atr_schp_layout(tmp_path, writer):
    root = tmp_path / "ATR"
    _lip(root, writer, "train", ["p", "q"])
    recs = read_dataset("atr", root, "train")
    assert _stems(recs) == ["p", "q"] and recs[0].domain == "atr"


# --- PASCAL-Person-Part ---------------------------------------------------------------------------

def test_pascal_graphonomy_layout(tmp_path, writer):
    root = tmp_path / "pascal"
    for s in ("2008_000001", "2008_000002"):
        writer.pair(root / "JPEGImages" / f"{s}.jpg", root / "SegmentationPart" / f"{s}.png", num_classes=7)
    (root / "list").mkdir()
    (root / "list" / "val_id.txt").write_text("2008_000002\n")
    recs = read_dataset("pascal", root, "val")
    assert _stems(recs) == ["2008_000002"] and recs[0].domain == "pascal"
    assert recs[0].label == root / "SegmentationPart" / "2008_000002.png"


def test_pascal_shared_layout_with_instances(tmp_path, writer):
    root = tmp_path / "pascal_person_part"
    for s in ("a", "b"):
        writer.pair(root / "images" / f"{s}.jpg", root / "labels_7" / f"{s}.png", num_classes=7)
        writer.label(root / "instances" / f"{s}.png", num_classes=3)
    recs = read_dataset("pascal", root, "all")
    assert _stems(recs) == ["a", "b"]
    assert recs[0].label.parent.name == "labels_7" and recs[0].human_ids == root / "instances" / "a.png"
    shared = read_dataset("shared", root, "all")
    assert [r.human_ids for r in shared] == [r.human_ids for r in recs] and shared[0].domain == "pascal"


# --- MHPv2 ----------------------------------------------------------------------------------------

def test_mhpv2_layout_and_merge(tmp_path, writer):
    root = tmp_path / "LV-MHP-v2"
    annos = root / "val" / "parsing_annos"
    writer.image(root / "val" / "images" / "7.jpg")
    writer.image(root / "val" / "images" / "8.jpg")
    p1 = np.zeros((16, 16), np.uint8)
    p1[2:10, 2:10] = 5  # person 1: left-arm block
    p2 = np.zeros((16, 16), np.uint8)
    p2[6:14, 6:14] = 30  # person 2 overlaps person 1 on [6:10, 6:10]
    writer.label(annos / "7_02_01.png", p1)
    # person 2 stored with three channels, as some MHPv2 files are: the first channel holds the ids
    Image.fromarray(np.stack([p2, p2, p2], axis=2)).save(annos / "7_02_02.png")
    p3 = np.zeros((16, 16), np.uint8)
    p3[0:4, :] = 3
    writer.label(annos / "8_01_01.png", p3)
    (root / "list").mkdir()
    (root / "list" / "val.txt").write_text("7\n8\n")

    recs = read_dataset("mhpv2", root, "val")
    assert _stems(recs) == ["7", "8"] and recs[0].domain == "mhpv2"
    assert [p.name for p in recs[0].label_parts] == ["7_02_01.png", "7_02_02.png"]
    parts, persons = load_label(recs[0], num_classes=59)
    overlap = np.zeros((16, 16), bool)
    overlap[6:10, 6:10] = True
    # first person whose map is non-zero keeps the pixel
    assert (parts[overlap] == 5).all() and (persons[overlap] == 1).all()
    only2 = (p2 > 0) & ~overlap
    assert (parts[only2] == 30).all() and (persons[only2] == 2).all()
    assert (parts[(p1 == 0) & (p2 == 0)] == 0).all() and (persons[(p1 == 0) & (p2 == 0)] == 0).all()
    parts8, persons8 = load_label(recs[1], num_classes=59)
    assert np.array_equal(parts8, p3) and set(np.unique(persons8)) == {0, 1}


def test_mhpv2_inconsistent_person_files(tmp_path, writer):
    root = tmp_path / "mhp"
    writer.image(root / "train" / "images" / "1.jpg")
    writer.label(root / "train" / "parsing_annos" / "1_03_01.png", num_classes=5)
    writer.label(root / "train" / "parsing_annos" / "1_03_03.png", num_classes=5)
    with pytest.raises(DataError, match="inconsistent"):
        read_dataset("mhpv2", root, "train")


# --- CCP ------------------------------------------------------------------------------------------

def test_ccp_original_layout_mat(tmp_path, writer):
    from scipy.io import savemat

    root = tmp_path / "clothing-co-parsing"
    for s in ("0001", "0002", "1500"):
        writer.image(root / "photos" / f"{s}.jpg")
    gts = {}
    for s in ("0001", "0002"):  # 1500 has image-level tags only: not a record
        gts[s] = writer.rng.integers(0, 59, (16, 16), dtype=np.uint8)
        (root / "annotations" / "pixel-level").mkdir(parents=True, exist_ok=True)
        savemat(root / "annotations" / "pixel-level" / f"{s}.mat", {"groundtruth": gts[s]})
    recs = read_dataset("ccp", root, "all")
    assert _stems(recs) == ["0001", "0002"] and recs[0].domain == "ccp"
    assert np.array_equal(read_label(recs[1].label, 59), gts["0002"])


def test_ccp_converted_layout(folder_dataset):
    root = folder_dataset("ccp", n=2, num_classes=59)
    recs = read_dataset("ccp", root, "all")
    assert len(recs) == 2 and recs[0].label.suffix == ".png" and recs[0].domain == "ccp"


# --- folder and the hash split --------------------------------------------------------------------

def test_folder_any_extensions(tmp_path, writer):
    root = tmp_path / "mine"
    writer.image(root / "images" / "a.jpeg")
    writer.image(root / "images" / "b.PNG")
    writer.label(root / "labels" / "a.png")
    writer.label(root / "labels" / "b.png")
    recs = read_dataset("folder", root, "all", domain="lip")
    assert [r.image.name for r in recs] == ["a.jpeg", "b.PNG"] and recs[1].label.name == "b.png"
    with pytest.raises(ConfigError, match="domain"):
        read_dataset("folder", root, "all")


def test_folder_image_without_label_is_named(tmp_path, writer):
    root = tmp_path / "mine"
    writer.pair(root / "images" / "a.png", root / "labels" / "a.png")
    writer.image(root / "images" / "lonely.png")
    with pytest.raises(DataError, match="lonely"):
        read_dataset("folder", root, "all", domain="lip")


def test_hash_split_is_stable_disjoint_and_configurable():
    stems = [f"img{i:04d}" for i in range(1000)]
    train, val = hash_split(stems, "train"), hash_split(stems, "val")
    assert not set(train) & set(val) and set(train) | set(val) == set(stems)
    assert 150 < len(val) < 250  # default val fraction 0.2
    assert hash_split(stems, "val") == val  # deterministic
    assert hash_split(stems[::-1], "val") == val[::-1]  # depends on the stem only
    assert hash_split(stems[:500], "val") == [s for s in val if s in set(stems[:500])]
    assert 400 < len(hash_split(stems, "val", val_fraction=0.5)) < 600
    assert hash_split(stems, "val", split_seed=1) != val
    with pytest.raises(ConfigError, match="list file"):
        hash_split(stems, "test")


def test_folder_split_uses_hash_or_list(folder_dataset):
    root = folder_dataset("mine", n=12)
    every = _stems(read_dataset("folder", root, "all", domain="lip"))
    train = _stems(read_dataset("folder", root, "train", domain="lip", val_fraction=0.5))
    val = _stems(read_dataset("folder", root, "val", domain="lip", val_fraction=0.5))
    assert sorted(train + val) == every and not set(train) & set(val)
    (root / "val_id.txt").write_text("s003\ns001\n")
    assert _stems(read_dataset("folder", root, "val", domain="lip")) == ["s003", "s001"]


# --- registry -------------------------------------------------------------------------------------

def test_registry_errors(tmp_path, folder_dataset):
    assert {"lip", "cihp", "atr", "pascal", "mhpv2", "ccp", "folder", "shared"} <= set(READERS)
    with pytest.raises(ConfigError, match="did you mean 'cihp'"):
        read_dataset("chip", tmp_path, "train")
    root = folder_dataset("mine", n=2)
    with pytest.raises(ConfigError, match="val_fraction"):
        read_dataset("folder", root, "train", domain="lip", val_fractoin=0.3)
    with pytest.raises(DataError, match="nowhere"):
        read_dataset("lip", tmp_path / "nowhere", "train")
    # an empty split is an error, naming the root
    with pytest.raises(DataError, match="no samples"):
        read_dataset("folder", root, "val", domain="lip", val_fraction=0.0)


@pytest.mark.skipif(not Path("/work/shared/data/lip").is_dir(), reason="shared data not present")
def test_shared_folders_are_readable():
    expect = {"lip": 62, "cihp": 6, "ccp": 900, "pascal_person_part": 8, "cihp_lowres_derived": 64}
    for name, n in expect.items():
        recs = read_dataset("shared", Path("/work/shared/data") / name, "all")
        assert len(recs) == n
        assert all(r.label is not None and r.label.is_file() for r in recs[:3])
