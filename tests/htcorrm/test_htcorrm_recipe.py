"""HTCorrM data (sample LIP + shipped keypoints) and the recipe through the generic trainer."""

import json

import numpy as np
import pytest
import torch

from humanparse.config import load_config
from humanparse.data import sample_records
from humanparse.data.sample_data import sample_data_root
from humanparse.errors import DataError
from humanparse.htcorrm.dataset import HTCorrMDataset, collate_htcorrm, load_keypoints
from humanparse.htcorrm.labels import flip_keypoints
from humanparse.labels import get_label_space

KEYPOINTS = sample_data_root() / "lip" / "keypoints.json"


@pytest.fixture(scope="module")
def lip():
    return get_label_space("lip")


@pytest.fixture(scope="module")
def records():
    return sample_records("lip")[:3]


def test_shipped_keypoints_cover_every_lip_sample():
    kp = load_keypoints(KEYPOINTS)
    stems = {r.stem for r in sample_records("lip")}
    assert stems == set(kp)
    assert all(v.shape == (1, 16, 3) for v in kp.values())  # one person per LIP image
    assert sum(int((v[:, 2] > 0).any()) for v in kp.values()) >= len(stems) // 2  # most people were found


def test_items_carry_consistent_targets(lip, records):
    ds = HTCorrMDataset(records, lip, load_keypoints(KEYPOINTS), crop_size=64, seed=3)
    item = ds[0]
    assert item["image"].shape == (3, 64, 64) and item["label"].shape == (64, 64)
    assert item["pose_heatmap"].shape == (16, 16, 16) and item["pose_weight"].shape == (16,)
    assert set(item["edge"].unique().tolist()) <= {0, 1, 255}
    np.testing.assert_array_equal(item["edge"].numpy(), _band(item["label"].numpy()))
    batch = collate_htcorrm([ds[0], ds[1]])
    assert batch["image"].shape == (2, 3, 64, 64) and batch["keypoints"].shape == (2, 1, 16, 3)
    again = HTCorrMDataset(records, lip, load_keypoints(KEYPOINTS), crop_size=64, seed=3)[0]
    assert torch.equal(again["image"], item["image"])  # same (seed, epoch, index) -> same item


def _band(label, ignore=255):
    """The training edge target, computed independently: a valid pixel with a valid 8-neighbour of another
    label is a border pixel; the band is every pixel within one pixel (Chebyshev) of a border pixel."""
    from scipy.ndimage import binary_dilation

    h, w = label.shape
    pad = np.pad(label, 1, constant_values=ignore)
    border = np.zeros((h, w), bool)
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            nb = pad[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w]
            border |= (nb != label) & (nb != ignore) & (label != ignore)
    band = binary_dilation(border, np.ones((3, 3), bool)).astype(np.uint8)
    band[label == ignore] = ignore
    return band


def test_flip_mirrors_image_swaps_classes_and_joints(lip, records):
    kp = load_keypoints(KEYPOINTS)
    opts = {"crop_size": 64, "scale_range": (1.0, 1.0), "rotation": 0.0}
    plain = HTCorrMDataset(records, lip, kp, flip_prob=0.0, **opts)[0]
    flipped = HTCorrMDataset(records, lip, kp, flip_prob=1.0, **opts)[0]
    torch.testing.assert_close(flipped["image"], plain["image"].flip(-1), atol=1e-4, rtol=0)
    perm = torch.as_tensor(np.append(lip.flip_permutation, np.arange(lip.num_classes, 256)))
    torch.testing.assert_close(flipped["label"], perm[plain["label"].flip(-1)])
    np.testing.assert_allclose(flipped["keypoints"][0].numpy(), flip_keypoints(plain["keypoints"][0].numpy(), 64),
                               atol=1e-4)


def test_missing_or_malformed_keypoints_name_the_file(lip, records, tmp_path):
    bad = tmp_path / "kp.json"
    bad.write_text(json.dumps({records[0].stem: {"keypoints": [[0, 0, 0]] * 16}}))
    with pytest.raises(DataError, match="no keypoint entry"):
        HTCorrMDataset(records, lip, load_keypoints(bad), keypoint_file=str(bad))
    bad.write_text(json.dumps({"x": {"keypoints": [[0, 0]] * 16}}))
    with pytest.raises(DataError, match="16 x"):
        load_keypoints(bad)


def test_recipe_trains_and_evaluates_every_task(tmp_path):
    from humanparse.engine.recipes import build_recipe
    from humanparse.engine.trainer import train

    real = tmp_path / "val_keypoints.json"  # stand-in "real" annotations: the pseudo-labels minus their markers
    real.write_text(json.dumps({k: {"keypoints": v["keypoints"]} for k, v in json.loads(KEYPOINTS.read_text()).items()}))
    cfg = load_config("configs/htcorrm_tiny_cpu.yaml", [
        "model.backbone.name=test_resnet", "model.channels=16", "model.aspp_channels=8", "model.pose_mid_channels=8",
        "model.edge_mid_channels=8", "data.crop_size=64", "eval.long_side=64", "eval.size=64", "eval.max_images=2",
        "eval.tasks=[parsing,pose,edge]", "train.steps=2", "train.batch_size=4", "train.log_every=1",
        f"domains.lip.val_keypoints={real}",
    ])
    result = train(cfg, output_dir=tmp_path / "run", progress=False)
    assert len(result["losses"]) == 2 and all(np.isfinite(result["losses"]))
    ev = result["eval"]
    assert {"lip/mIoU", "pose/PCKh", "pose/PCKh_joint_mean", "edge/ODS", "edge/OIS"} <= set(ev)
    logged = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert {"main/parsing", "parsing", "edge", "pose"} <= set(logged[0])
    from humanparse.engine.loading import load_model

    net, spaces, meta = load_model(tmp_path / "run" / "model.safetensors")  # rebuilt without pickle
    assert meta["recipe"] == "htcorrm" and list(spaces) == ["lip"] and net.aux_tasks == ["edge", "pose"]
    with torch.no_grad():
        assert net(torch.zeros(1, 3, 64, 64), domains=["lip"])["logits"]["lip"].shape == (1, 20, 16, 16)
    # the reloaded network evaluates exactly as the trained one did: every task's numbers survive the round trip
    again = build_recipe(cfg).evaluate(net.eval())
    for key in ("lip/mIoU", "pose/PCKh", "edge/ODS", "edge/OIS"):
        assert again[key] == pytest.approx(ev[key], abs=1e-9), key
