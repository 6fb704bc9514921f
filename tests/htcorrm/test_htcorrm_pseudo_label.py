"""BlazePose (33 landmarks) -> MPII/LIP (16 joints) on a hand-made landmark array; no mediapipe needed."""

import json
import sys

import numpy as np
import pytest

from humanparse.errors import ConfigError
from humanparse.htcorrm import pseudo_label
from humanparse.htcorrm.pseudo_label import BLAZEPOSE_NAMES, blazepose_to_mpii
from humanparse.metrics.pose import JOINT_NAMES


def _person() -> np.ndarray:
    """An upright person facing the camera (their left on the image's right), all landmarks visible."""
    lm = np.zeros((33, 3))
    lm[:, 2] = 0.9
    at = {
        "nose": (50, 28), "left_ear": (56, 30), "right_ear": (44, 30),
        "left_shoulder": (60, 50), "right_shoulder": (40, 50), "left_elbow": (64, 70), "right_elbow": (36, 70),
        "left_wrist": (66, 88), "right_wrist": (34, 88), "left_hip": (56, 100), "right_hip": (44, 100),
        "left_knee": (57, 130), "right_knee": (43, 130), "left_ankle": (58, 160), "right_ankle": (42, 160),
    }
    for name, xy in at.items():
        lm[BLAZEPOSE_NAMES.index(name), :2] = xy
    return lm


def test_mapping_on_a_hand_made_person():
    kp, score = blazepose_to_mpii(_person(), (200, 100))
    expected = {
        "r_ankle": (42, 160), "r_knee": (43, 130), "r_hip": (44, 100), "l_hip": (56, 100), "l_knee": (57, 130),
        "l_ankle": (58, 160), "pelvis": (50, 100), "thorax": (50, 50),
        "upper_neck": (50, 50 - 0.2 * 20), "head_top": (50, 50 - 1.8 * 20),  # ears 20 px above the thorax
        "r_wrist": (34, 88), "r_elbow": (36, 70), "r_shoulder": (40, 50), "l_shoulder": (60, 50),
        "l_elbow": (64, 70), "l_wrist": (66, 88),
    }
    for j, name in enumerate(JOINT_NAMES):
        np.testing.assert_allclose(kp[j, :2], expected[name], err_msg=name)
    assert (kp[:, 2] == 1).all()
    np.testing.assert_allclose(score, 0.9)


def test_visibility_threshold_and_image_bounds():
    lm = _person()
    lm[BLAZEPOSE_NAMES.index("left_wrist"), 2] = 0.3  # occluded
    lm[BLAZEPOSE_NAMES.index("right_hip"), 2] = 0.2  # pelvis score = mean(0.9, 0.2) = 0.55 -> still visible
    lm[BLAZEPOSE_NAMES.index("right_ankle"), 1] = 250  # below the image
    kp, score = blazepose_to_mpii(lm, (200, 100))
    names = list(JOINT_NAMES)
    assert kp[names.index("l_wrist"), 2] == 0 and score[names.index("l_wrist")] == pytest.approx(0.3)
    assert kp[names.index("r_hip"), 2] == 0
    assert kp[names.index("pelvis"), 2] == 1 and score[names.index("pelvis")] == pytest.approx(0.55)
    assert kp[names.index("r_ankle"), 2] == 0  # outside the image
    assert kp[names.index("r_ankle"), 1] == 250  # the coordinate is still written
    kp2, _ = blazepose_to_mpii(lm, None, min_visibility=0.1)
    assert kp2[:, 2].sum() == 16


def test_bad_landmark_shape():
    with pytest.raises(ValueError, match=r"\[33, 3\]"):
        blazepose_to_mpii(np.zeros((17, 3)))


def test_pseudo_label_pose_writes_the_metrics_pose_format(tmp_path, monkeypatch):
    from PIL import Image

    for stem in ("a", "b"):
        Image.new("RGB", (100, 200)).save(tmp_path / f"{stem}.jpg")

    def fake_run(images, *, python=None):  # stands in for the mediapipe subprocess
        paths = [str(p.resolve()) for p in images]
        return {paths[0]: _person(), paths[1]: None}

    monkeypatch.setattr(pseudo_label, "run_blazepose", fake_run)
    out = tmp_path / "kp.json"
    summary = pseudo_label.pseudo_label_pose(tmp_path, out)
    assert summary["images"] == 2 and summary["detected"] == 1 and summary["visible_joints"] == 16
    data = json.loads(out.read_text())
    assert np.asarray(data["a"]["keypoints"]).shape == (16, 3) and data["a"]["detected"] is True
    assert data["b"] == {"keypoints": [[0.0, 0.0, 0]] * 16, "scores": [0.0] * 16, "detected": False}
    from humanparse.htcorrm.dataset import load_keypoints

    assert set(load_keypoints(out)) == {"a", "b"}


def test_missing_mediapipe_names_the_fix(monkeypatch):
    monkeypatch.delenv("HUMANPARSE_MEDIAPIPE_PYTHON", raising=False)
    monkeypatch.setattr(pseudo_label.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="mediapipe==0.10.21"):
        pseudo_label._mediapipe_python(None)
    assert pseudo_label._mediapipe_python(sys.executable) == sys.executable
