"""HTCorrM validation: edges scored at the original resolution against thin ground truth after NMS,
pose scored against real keypoints with the community PCKh, never against pseudo-labels."""

import json

import numpy as np
import pytest
import torch
from torch import nn

from humanparse.data import sample_records
from humanparse.errors import ConfigError
from humanparse.htcorrm.dataset import HTCorrMDataset, load_pose_table
from humanparse.htcorrm.evaluate import evaluate_edge, evaluate_pose, warp_back
from humanparse.labels import get_label_space
from humanparse.metrics.edge import EdgeEvaluator, edges_from_labels
from humanparse.metrics.pose import encode_heatmaps


class _Replay(nn.Module):
    """A stand-in network that returns prepared outputs, one per call, as its main task's output."""

    def __init__(self, task, outputs):
        super().__init__()
        self.main_task, self.tasks, self.outputs = task, [task], list(outputs)

    def forward(self, images):
        return {"main": self.outputs.pop(0)[None], "encoders": {}}


@pytest.fixture(scope="module")
def val_ds():
    return HTCorrMDataset(sample_records("lip")[:3], get_label_space("lip"), None, crop_size=320, train=False)


def test_warp_back_inverts_the_evaluation_warp():
    from humanparse.htcorrm.dataset import affine_matrix

    rng = np.random.default_rng(0)
    smooth = np.cumsum(np.cumsum(rng.random((50, 30)), 0), 1)
    m = affine_matrix((50, 30), (64, 64))  # fit 50 x 30 into 64 x 64 (upscale, padded left/right)
    import cv2

    warped = cv2.warpAffine(smooth.astype(np.float32), m, (64, 64), flags=cv2.INTER_LINEAR)
    back = warp_back(warped, m, (50, 30))
    np.testing.assert_allclose(back[2:-2, 2:-2], smooth[2:-2, 2:-2], rtol=0, atol=0.01 * smooth.max())
    shifted = warp_back(warped, m + [[0, 0, 3], [0, 0, 0]], (50, 30))  # a wrong inverse is far off
    assert np.abs(shifted[2:-2, 2:-2] - smooth[2:-2, 2:-2]).max() > 0.02 * smooth.max()


def test_edges_are_scored_at_the_original_size_and_an_oracle_scores_near_one(val_ds, monkeypatch):
    sizes = []
    add = EdgeEvaluator.add
    monkeypatch.setattr(EdgeEvaluator, "add", lambda self, p, g: (sizes.append((p.shape, g.shape)), add(self, p, g)))
    oracle, blank = [], []
    for i in range(len(val_ds)):
        label = val_ds[i]["label"].numpy()
        edge = edges_from_labels(label, connectivity=8, thin=True).astype(np.float32)
        oracle.append(torch.from_numpy(np.stack([np.zeros_like(edge), 20 * edge - 10])))
        blank.append(torch.zeros(2, 40, 40))
    good = evaluate_edge(_Replay("edge", oracle), val_ds, range(len(val_ds)))
    originals = [val_ds.reader.load(i)["label"].shape for i in range(len(val_ds))]
    assert [s[0] for s in sizes] == originals and [s[1] for s in sizes] == originals
    assert originals != [(320, 320)] * 3  # the warp size differs from the originals
    assert good["edge/ODS"] > 0.85, good
    flat = evaluate_edge(_Replay("edge", blank), val_ds, range(len(val_ds)))
    assert flat["edge/ODS"] < 0.2, flat


def _gt_table(val_ds, rng):
    table = {}
    for rec in val_ds.records:
        h, w = val_ds.reader.load(val_ds.records.index(rec))["image"].shape[:2]
        kp = np.column_stack([rng.uniform(0.2, 0.8, 16) * w, rng.uniform(0.2, 0.8, 16) * h, np.ones(16)])
        table[rec.stem] = [{"keypoints": kp, "head_box": None, "head_size": 40.0}]
    return table


def test_pose_oracle_scores_one_and_the_headline_is_pooled(val_ds):
    rng = np.random.default_rng(0)
    table = _gt_table(val_ds, rng)
    heat = []
    for i, rec in enumerate(val_ds.records):
        m = np.asarray(val_ds[i]["meta"]["affine"])
        kp = table[rec.stem][0]["keypoints"].copy()
        kp[:, :2] = kp[:, :2] @ m[:, :2].T + m[:, 2]
        kp[6, :2] += 80  # pelvis far off in every image: counted by the 16-joint mean, not the headline
        heat.append(torch.from_numpy(encode_heatmaps(kp, (80, 80), 4, 2)))
    r = evaluate_pose(_Replay("pose", heat), val_ds, range(3), gt_table=table)
    assert r["pose/PCKh"] == pytest.approx(1.0) and r["pose/num_images"] == 3
    assert r["pose/PCKh_joint_mean"] == pytest.approx(15 / 16)


def test_pose_is_never_scored_against_pseudo_labels(tmp_path):
    from humanparse.config import load_config
    from humanparse.data.sample_data import sample_data_root
    from humanparse.engine.recipes import build_recipe

    pseudo = sample_data_root() / "lip" / "keypoints.json"
    assert load_pose_table(pseudo)[1]  # the shipped keypoints are BlazePose pseudo-labels
    cfg = load_config("configs/htcorrm_tiny_cpu.yaml", ["eval.tasks=[parsing,pose]"])
    with pytest.raises(ConfigError, match="val_keypoints"):
        build_recipe(cfg)
    cfg["domains"]["lip"]["val_keypoints"] = str(pseudo)
    with pytest.raises(ConfigError, match="pseudo-labels"):
        build_recipe(cfg).val_pose_table()
    real = tmp_path / "val.json"
    real.write_text(json.dumps({k: {"keypoints": v["keypoints"]} for k, v in json.loads(pseudo.read_text()).items()}))
    cfg["domains"]["lip"]["val_keypoints"] = str(real)
    assert len(build_recipe(cfg).val_pose_table()) == 62
