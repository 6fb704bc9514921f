"""Pose annotation readers (LIP CSV, CorrPM JSON, MPII .mat) and the converter to the keypoint JSON."""

import json

import numpy as np
import pytest

from humanparse.data.keypoints import read_corrpm_json, read_lip_csv, read_mpii_mat, write_pose_json
from humanparse.errors import DataError
from humanparse.metrics.pose import score_pose_files


def _lip_row(name, missing=()):
    values = []
    for k in range(16):
        values += ["nan", "nan", "nan"] if k in missing else [str(10 + k), str(100 + 2 * k), "0" if k % 2 else "1"]
    return ",".join([name] + values)


def test_lip_csv_reader_keeps_joints_and_marks_nan_missing(tmp_path):
    csv = tmp_path / "lip_val_set.csv"
    csv.write_text(_lip_row("100034_483681.jpg", missing=(3, 9)) + "\n" + _lip_row("7_1.jpg") + "\n")
    table = read_lip_csv(csv)
    assert set(table) == {"100034_483681", "7_1"}
    kp = table["100034_483681"][0]["keypoints"]
    assert kp.shape == (16, 3) and kp[3, 2] == 0 and kp[9, 2] == 0
    np.testing.assert_array_equal(kp[5], [15, 110, 1])  # the occlusion flag is ignored: annotated = visible
    assert table["7_1"][0]["head_box"] is None
    csv.write_text("a.jpg,1,2\n")
    with pytest.raises(DataError, match="line 1: expected an image name and 48 numbers"):
        read_lip_csv(csv)


def test_corrpm_json_treats_origin_as_missing(tmp_path):
    joints = [[10.0 + k, 20.0, 1] for k in range(16)]
    joints[4] = [0, 0, 0]
    f = tmp_path / "LIP_SP_VAL_annotations.json"
    f.write_text(json.dumps({"root": [{"im_name": "a.jpg", "joint_self": joints}]}))
    kp = read_corrpm_json(f)["a"][0]["keypoints"]
    assert kp[4, 2] == 0 and kp[5].tolist() == [15.0, 20.0, 1.0]


def _mpii_mat(path):
    """A two-image MPII-style RELEASE struct (image 1: two people, one with points; image 2: test split)."""
    from scipy.io import savemat

    def point(j, x, y, vis):
        return {"id": j, "x": x, "y": y, "is_visible": vis}

    pts = np.array([point(j, 50.0 + j, 60.0 + j, 1 if j != 2 else 0) for j in range(16) if j != 6], dtype=object)
    rect_a = {"x1": 40.0, "y1": 30.0, "x2": 70.0, "y2": 70.0, "annopoints": {"point": pts}}
    rect_b = {"x1": 1.0, "y1": 1.0, "x2": 2.0, "y2": 2.0, "annopoints": np.zeros((0, 0))}  # no points
    rects = np.empty((2,), dtype=object)
    rects[0], rects[1] = rect_a, rect_b
    anno = np.empty((2,), dtype=object)
    anno[0] = {"image": {"name": "015601864.jpg"}, "annorect": rects}
    anno[1] = {"image": {"name": "099999999.jpg"}, "annorect": np.zeros((0, 0))}
    savemat(str(path), {"RELEASE": {"annolist": anno, "img_train": np.array([1, 0])}})


def test_mpii_mat_reader_and_converter_round_trip(tmp_path):
    from humanparse.cli.main import main as cli

    mat = tmp_path / "mpii.mat"
    _mpii_mat(mat)
    table = read_mpii_mat(mat, "train")
    assert list(table) == ["015601864"] and len(table["015601864"]) == 1  # the point-less person is left out
    person = table["015601864"][0]
    assert person["head_box"] == [40.0, 30.0, 70.0, 70.0]
    assert person["keypoints"][6, 2] == 0  # pelvis not annotated
    assert person["keypoints"][2].tolist() == [52.0, 62.0, 1.0] and person["keypoints"][3, 2] == 2.0
    with pytest.raises(DataError, match="no annotated person in the test split"):
        read_mpii_mat(mat, "test")
    out = tmp_path / "mpii.json"
    assert cli(["keypoints", "convert", "--format", "mpii-mat", str(mat), "--out", str(out)]) == 0
    entry = json.loads(out.read_text())["015601864"]
    assert entry["head_box"] == [40.0, 30.0, 70.0, 70.0]
    res = score_pose_files(out, out)  # ground truth scored against itself: all correct, MPII head rule
    assert res["PCKh"] == 1.0 and res["head_size_source"]["head_box"] == 1


def test_write_pose_json_writes_persons_lists(tmp_path):
    kp = np.zeros((16, 3))
    kp[:, 2] = 1
    table = {"one": [{"keypoints": kp, "head_box": None}], "two": [{"keypoints": kp, "head_box": None}] * 2}
    data = json.loads(write_pose_json(table, tmp_path / "k.json").read_text())
    assert "keypoints" in data["one"] and len(data["two"]["persons"]) == 2
    assert not list(tmp_path.glob(".*tmp*"))  # written through a temporary file, renamed
