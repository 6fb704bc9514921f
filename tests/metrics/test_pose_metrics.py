"""PCKh on a hand-made case, head sizes, the file scorer, flip pairs, heatmap round trip."""

import json

import numpy as np
import pytest

from humanparse.errors import DataError
from humanparse.metrics import (
    FLIP_INDEX,
    JOINT_NAMES,
    decode_heatmaps,
    encode_heatmaps,
    lip_head_size,
    mpii_head_size,
    pckh,
    score_pose_files,
)


def test_joint_order_and_flip_pairs_match_metrics_md():
    assert JOINT_NAMES[0] == "r_ankle" and JOINT_NAMES[9] == "head_top" and JOINT_NAMES[15] == "l_wrist"
    pairs = {(0, 5), (1, 4), (2, 3), (10, 15), (11, 14), (12, 13)}
    for k in range(16):
        j = FLIP_INDEX[k]
        assert FLIP_INDEX[j] == k  # involution
        assert j == k or (min(k, j), max(k, j)) in pairs
    assert sum(FLIP_INDEX[k] != k for k in range(16)) == 12


def test_pckh_hand_case():
    gt = np.zeros((2, 16, 2)) + 50.0
    pred = gt.copy()
    vis = np.ones((2, 16), bool)
    vis[:, 6] = False  # pelvis never visible -> None, left out of the mean
    head = np.array([10.0, 20.0])  # radius .5 * head: 5 and 10 px
    pred[0, 0] += [4, 0]  # 4 <= 5: correct
    pred[0, 1] += [3, 4]  # 5 <= 5: correct (inclusive)
    pred[1, 1] += [6, 8]  # 10 <= 10: correct
    pred[1, 0] += [0, 10.5]  # 10.5 > 10: wrong
    pred[0, 2] += [6, 0]  # 6 > 5: wrong
    vis[1, 3] = False
    pred[1, 3] += 1000  # invisible: ignored
    res = pckh(pred, gt, vis, head)
    pj = res["per_joint"]
    assert pj["pelvis"] is None
    assert pj["r_ankle"] == 0.5 and pj["r_knee"] == 1.0 and pj["r_hip"] == 0.5 and pj["l_hip"] == 1.0
    # 15 joints with a value: 13 at 1.0, two at .5
    assert res["mean"] == pytest.approx((13 + 0.5 + 0.5) / 15)
    # pooled over 14 joints (no pelvis, thorax): visible 14*2 - 1 (l_hip of person 1) = 27, wrong 2
    assert res["pooled_14"] == pytest.approx(25 / 27)
    assert res["num_visible"] == 32 - 2 - 1


def test_pckh_rejects_missing_head_size():
    gt = np.zeros((1, 16, 2))
    with pytest.raises(ValueError, match="head size"):
        pckh(gt, gt, np.ones((1, 16), bool), np.array([0.0]))


def test_head_sizes():
    kp = np.zeros((2, 16, 3))
    kp[:, :, 2] = 1
    kp[0, 8, :2], kp[0, 9, :2] = (10, 10), (13, 14)  # distance 5
    kp[1, 9, 2] = 0  # head_top missing -> NaN
    hs = lip_head_size(kp)
    assert hs[0] == pytest.approx(5.0) and np.isnan(hs[1])
    assert mpii_head_size(np.array([[0, 0, 30, 40]]))[0] == pytest.approx(0.6 * 50)


def test_score_pose_files(tmp_path):
    def person(dx):
        kp = [[100.0 + 3 * k, 200.0 + 2 * k, 1] for k in range(16)]
        kp[8][:2], kp[9][:2] = [100.0, 100.0], [100.0, 80.0]  # head size 20 -> radius 10
        return [[x + dx, y, v] for x, y, v in kp]

    gt = {
        "a": {"keypoints": person(0)},
        "b": {"keypoints": person(0), "head_size": 4.0},  # radius 2
        "c": {"keypoints": [[x, y, 0 if k == 9 else v] for k, (x, y, v) in enumerate(person(0))]},
    }
    pred = {
        "a": {"keypoints": [p[:2] for p in person(9)]},  # [x, y] pairs are accepted for predictions
        "b": {"keypoints": person(3)},
        "c": {"keypoints": person(0)},
    }
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    res = score_pose_files(tmp_path / "pred.json", tmp_path / "gt.json")
    # a: every joint off by 9 <= 10 -> correct; b: off by 3 > 2 -> wrong; c: no head_top -> skipped
    assert res["skipped_images"] == ["c"] and res["num_images"] == 2
    assert res["PCKh"] == pytest.approx(0.5) and all(v == 0.5 for v in res["per_joint"].values())
    assert res["PCKh_joint_mean"] == pytest.approx(0.5)
    assert res["head_size_source"] == {"head_size": 1, "head_box": 0, "joints": 1}
    del pred["b"]
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    with pytest.raises(DataError, match="no prediction: b"):
        score_pose_files(tmp_path / "pred.json", tmp_path / "gt.json")


@pytest.mark.parametrize("stride", [1, 4])
def test_heatmap_round_trip_within_a_pixel(stride):
    rng = np.random.default_rng(0)
    h, w = 32, 24
    kp = np.zeros((16, 3))
    kp[:, 0] = rng.uniform(2, w - 3, 16) * stride
    kp[:, 1] = rng.uniform(2, h - 3, 16) * stride
    kp[:, 2] = 1
    kp[5, 2] = 0  # invisible -> all-zero map
    hm = encode_heatmaps(kp, (h, w), stride=stride, sigma=2)
    assert hm.shape == (16, h, w) and hm.dtype == np.float32
    assert not hm[5].any() and hm.max() <= 1.0
    out = decode_heatmaps(hm, stride=stride)
    err = np.abs(out[:, :2] - kp[:, :2])
    vis = kp[:, 2] > 0
    assert err[vis].max() <= 0.25 * stride + 1e-6  # quarter-cell refinement
    assert err[vis].max() <= 1.0 + 1e-6
    assert np.all(out[vis, 2] > 0.9)  # peak value close to 1
    # batched input decodes the same
    assert np.allclose(decode_heatmaps(hm[None], stride)[0], out)


def _gt_person(dx=0.0):
    kp = [[100.0 + 3 * k + dx, 200.0 + 2 * k, 1] for k in range(16)]
    kp[8][:2], kp[9][:2] = [100.0 + dx, 100.0], [100.0 + dx, 80.0]  # LIP head size 20
    return kp


def test_headline_pckh_is_the_community_pooled_number(tmp_path):
    """MPII "Mean" / LIP "Avg.": count-weighted over the 14 joints other than pelvis and thorax."""
    gt = {"a": {"keypoints": _gt_person()}, "b": {"keypoints": _gt_person()}}
    wrong = _gt_person()
    for k in (6, 7, 10):  # pelvis, thorax and r_wrist off by 50 px (> 10 = 0.5 x head size)
        wrong[k][0] += 50
    b = _gt_person()
    b[11][2] = 0  # r_elbow unannotated in image b's ground truth
    gt["b"] = {"keypoints": b}
    pred = {"a": {"keypoints": wrong}, "b": {"keypoints": _gt_person()}}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    res = score_pose_files(tmp_path / "pred.json", tmp_path / "gt.json")
    assert res["PCKh"] == pytest.approx(26 / 27)  # 27 pooled visible joints, one (a's r_wrist) wrong
    per_joint = [1.0] * 16
    per_joint[6] = per_joint[7] = per_joint[10] = 0.5
    assert res["PCKh_joint_mean"] == pytest.approx(np.mean(per_joint))


def test_mpii_head_boxes_and_several_persons_per_image(tmp_path):
    box = [90.0, 70.0, 120.0, 110.0]  # diagonal 50 -> MPII head size 30, radius 15
    p1, p2 = _gt_person(), _gt_person(dx=300)
    gt = {"img": {"persons": [{"keypoints": p1, "head_box": box}, {"keypoints": p2, "head_box": box}]}}
    off = [[x + 12, y, v] for x, y, v in p1]  # 12 px off: wrong by LIP's rule (10), right by MPII's (15)
    pred = {"img": {"persons": [{"keypoints": off}, {"keypoints": [[x + 20, y, v] for x, y, v in p2]}]}}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    res = score_pose_files(tmp_path / "pred.json", tmp_path / "gt.json")
    assert res["num_persons"] == 2 and res["head_size_source"]["head_box"] == 2
    assert res["PCKh"] == pytest.approx(0.5)  # person 1 all right, person 2 (20 px > 15) all wrong
    lip = score_pose_files(tmp_path / "pred.json", tmp_path / "gt.json", head_rule="lip")
    assert lip["PCKh"] == pytest.approx(0.0) and lip["head_size_source"]["joints"] == 2
    pred["img"]["persons"].pop()
    (tmp_path / "pred.json").write_text(json.dumps(pred))
    with pytest.raises(DataError, match="1 predicted person"):
        score_pose_files(tmp_path / "pred.json", tmp_path / "gt.json")
