"""ParsingDataset: item format, reproducibility, bad-file handling, eval mode."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from humanparse.data import (
    ParsingDataset,
    Record,
    build_eval_transforms,
    build_train_transforms,
    collate_parsing,
    read_dataset,
)
from humanparse.errors import DataError
from humanparse.labels import get_label_space

LIP = get_label_space("lip")
TRAIN_CFG = {"crop_size": 8, "jitter": {"brightness": 0.2}}


def _dataset(root, **kw):
    recs = read_dataset("folder", root, "all", domain="lip")
    return ParsingDataset(recs, LIP, build_train_transforms(TRAIN_CFG, LIP), **kw)


def test_item_format(folder_dataset):
    ds = _dataset(folder_dataset(n=3))
    item = ds[1]
    assert item["image"].dtype == torch.float32 and item["image"].shape == (3, 8, 8)
    assert item["label"].dtype == torch.int64 and item["label"].shape == (8, 8)
    assert item["domain"] == "lip"
    meta = item["meta"]
    assert meta["stem"] == "s001" and meta["orig_size"] == (16, 16) and meta["image_path"].endswith("s001.png")
    assert set(item["label"].unique().tolist()) <= set(range(20)) | {255}


def test_same_seed_same_sample_and_epochs_differ(folder_dataset):
    root = folder_dataset(n=2)
    a, b = _dataset(root, seed=3), _dataset(root, seed=3)
    assert torch.equal(a[0]["image"], b[0]["image"]) and torch.equal(a[0]["label"], b[0]["label"])
    first = a[0]["image"]
    a.set_epoch(1)
    assert not torch.equal(a[0]["image"], first)
    a.set_epoch(0)
    assert torch.equal(a[0]["image"], first)  # resume: epoch 0 again gives the same item
    assert not torch.equal(_dataset(root, seed=4)[0]["image"], first)


def test_workers_give_the_same_items(folder_dataset):
    ds = _dataset(folder_dataset(n=4), seed=1)
    ds.set_epoch(2)
    serial = [ds[i]["image"] for i in range(4)]
    loader = DataLoader(ds, batch_size=2, num_workers=2, collate_fn=collate_parsing)
    parallel = torch.cat([b["image"] for b in loader])
    assert torch.equal(torch.stack(serial), parallel)


def test_skip_bad_warns_and_continues(folder_dataset):
    root = folder_dataset(n=3)
    bad = root / "images" / "s001.png"
    bad.write_bytes(b"garbage")
    strict = _dataset(root)
    with pytest.raises(DataError, match="s001.png"):
        strict[1]
    lenient = _dataset(root, skip_bad=True)
    with pytest.warns(RuntimeWarning, match="s001.png"):
        item = lenient[1]
    assert item["meta"]["stem"] == "s002"  # the next good sample
    assert lenient[0]["meta"]["stem"] == "s000"


def test_label_errors_propagate(tmp_path, writer):
    root = tmp_path / "set"
    writer.image(root / "images" / "a.png")
    writer.label(root / "labels" / "a.png", np.full((16, 16), 42, np.uint8))  # 42 is not a LIP class
    writer.image(root / "images" / "b.png", h=16, w=16)
    writer.label(root / "labels" / "b.png", h=15, w=16)  # wrong size
    ds = _dataset(root)
    with pytest.raises(DataError, match="42"):
        ds[0]
    with pytest.raises(DataError) as err:
        ds[1]
    assert str(root / "images" / "b.png") in str(err.value) and str(root / "labels" / "b.png") in str(err.value)


def test_eval_mode_keeps_original_label(folder_dataset):
    root = folder_dataset(n=2, h=20, w=13)
    recs = read_dataset("folder", root, "all", domain="lip")
    ds = ParsingDataset(recs, LIP, build_eval_transforms({}), eval_mode=True)
    item = ds[0]
    original = np.asarray(Image.open(root / "labels" / "s000.png"))
    assert item["image"].shape == (3, 32, 32)
    assert torch.equal(item["orig_label"], torch.from_numpy(original.astype(np.int64)))
    assert torch.equal(item["label"][:20, :13], item["orig_label"])
    assert (item["label"][20:] == 255).all() and item["meta"]["valid_size"] == (20, 13)


def test_unlabelled_records_get_ignore(tmp_path, writer):
    writer.image(tmp_path / "p.png")
    ds = ParsingDataset([Record(image=tmp_path / "p.png", label=None, domain="lip")], LIP, build_eval_transforms({}))
    item = ds[0]
    assert (item["label"] == 255).all() and item["meta"]["stem"] == "p"


def test_person_maps_travel_with_the_sample(tmp_path, writer):
    root = tmp_path / "pascal_person_part"
    writer.pair(root / "images" / "a.png", root / "labels" / "a.png", num_classes=7)
    ids = writer.label(root / "instances" / "a.png", num_classes=3)
    pascal = get_label_space("pascal")
    ds = ParsingDataset(read_dataset("shared", root, "all"), pascal, build_eval_transforms({}))
    item = ds[0]
    assert torch.equal(item["human_ids"][:16, :16], torch.from_numpy(ids.astype(np.int64)))
