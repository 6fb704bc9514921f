"""Edge and pose targets (humanparse.htcorrm.labels) on hand-made inputs with known answers."""

import numpy as np
import pytest

from humanparse.htcorrm.dataset import affine_matrix
from humanparse.htcorrm.labels import decode_pose, edge_target, flip_keypoints, pose_targets, transform_keypoints
from humanparse.metrics.pose import FLIP_INDEX


def test_edge_target_two_regions_known_band():
    label = np.zeros((6, 8), np.uint8)
    label[:, 4:] = 5  # border between columns 3 and 4
    edge = edge_target(label, connectivity=8, dilation=0)
    expected = np.zeros((6, 8), np.uint8)
    expected[:, 3:5] = 1  # both sides of the border
    np.testing.assert_array_equal(edge, expected)
    wide = edge_target(label, connectivity=8, dilation=1)  # one 3x3 dilation: a 4 px band
    expected[:, 2:6] = 1
    np.testing.assert_array_equal(wide, expected)


def test_edge_target_ignore_pixels_are_ignored_and_make_no_edge():
    label = np.zeros((5, 5), np.uint8)
    label[:, 3:] = 255  # padding on the right
    edge = edge_target(label, connectivity=4, dilation=1, ignore_index=255)
    assert (edge[:, 3:] == 255).all()
    assert (edge[:, :3] == 0).all()  # a border against padding is not an edge


def test_edge_target_diagonal_needs_8_connectivity():
    label = np.array([[1, 0], [0, 1]], np.uint8)
    four = edge_target(label, connectivity=4, dilation=0)
    eight = edge_target(label, connectivity=8, dilation=0)
    assert four.sum() == 4 and eight.sum() == 4
    single = np.array([[1, 0, 0], [0, 0, 0], [0, 0, 0]], np.uint8)
    single[2, 2] = 0
    assert edge_target(single, connectivity=8, dilation=0)[1, 1] == 1
    assert edge_target(single, connectivity=4, dilation=0)[1, 1] == 0


@pytest.mark.parametrize("stride", [1, 4])
def test_heatmap_round_trip_within_a_pixel(stride):
    rng = np.random.default_rng(0)
    h, w = 64, 48
    kp = np.zeros((16, 3))
    kp[:, 0] = rng.uniform(8, w - 9, 16)  # off the border cells, where the decoder cannot refine
    kp[:, 1] = rng.uniform(8, h - 9, 16)
    kp[:, 2] = 1
    kp[3, 2] = 0  # an invisible joint
    heat, weight = pose_targets(kp, (h, w), stride=stride, sigma=2.0)
    assert heat.shape == (16, h // stride, w // stride) and heat.dtype == np.float32
    np.testing.assert_array_equal(weight, (kp[:, 2] > 0).astype(np.float32))
    assert heat[3].max() == 0.0
    assert np.allclose(heat[weight > 0].max(axis=(1, 2)), 1.0, atol=0.15)  # peak ~1 near the centre
    decoded = decode_pose(heat, stride=stride)
    err = np.abs(decoded[:, :2] - kp[:, :2])[weight > 0]
    assert err.max() <= 1.0  # within one input pixel (quarter-cell refinement: <= stride / 4 per axis)


def test_heatmap_joint_outside_grid_gets_zero_weight():
    kp = np.zeros((16, 3))
    kp[:, 2] = 1
    kp[0, :2] = (500, 10)
    heat, weight = pose_targets(kp, (32, 32), stride=4)
    assert weight[0] == 0 and heat[0].max() == 0 and weight[1] == 1


def test_flip_keypoints_mirrors_and_swaps_pairs():
    kp = np.zeros((16, 3))
    kp[:, 0] = np.arange(16)
    kp[:, 1] = 100 + np.arange(16)
    kp[:, 2] = 1
    flipped = flip_keypoints(kp, width=20)
    for k in range(16):  # joint k of the mirror image is joint FLIP_INDEX[k] of the original, mirrored
        src = FLIP_INDEX[k]
        assert flipped[k, 0] == 19 - src and flipped[k, 1] == 100 + src
    np.testing.assert_allclose(flip_keypoints(flipped, width=20), kp)


def test_affine_flip_matches_flip_keypoints():
    rng = np.random.default_rng(1)
    kp = np.column_stack([rng.uniform(0, 29, 16), rng.uniform(0, 39, 16), np.ones(16)])
    m = affine_matrix((40, 30), (40, 30), flip=True)
    np.testing.assert_allclose(transform_keypoints(kp, m, flipped=True), flip_keypoints(kp, 30), atol=1e-9)
    moved = transform_keypoints(kp, affine_matrix((40, 30), (20, 15)), (20, 15))
    np.testing.assert_allclose(moved[:, :2], (kp[:, :2] - [14.5, 19.5]) * 0.5 + [7, 9.5], atol=1e-9)


def test_write_edge_maps_writes_thin_edges_that_a_perfect_prediction_scores_one(tmp_path):
    from PIL import Image

    from humanparse.htcorrm.labels import write_edge_maps
    from humanparse.metrics.edge import score_edge_dirs

    label = np.zeros((12, 16), np.uint8)
    label[:, 8:] = 5
    label[3:7, 2:5] = 2
    label[0, 0] = 255
    (tmp_path / "labels").mkdir()
    Image.fromarray(label).save(tmp_path / "labels" / "a.png")
    assert write_edge_maps(tmp_path / "labels", tmp_path / "edges", connectivity=8) == 1
    edge = np.asarray(Image.open(tmp_path / "edges" / "a.png"))
    assert set(np.unique(edge)) == {0, 1}
    # one pixel wide: the vertical border between columns 7 and 8 is one pixel per row
    assert (edge[1:, 6:10].sum(1) == 1).all() and edge[0, 6:10].sum() <= 1  # (thinning may drop an end pixel)
    # every edge pixel touches a label border, every border pair has an edge pixel on it
    band = edge_target(label, connectivity=8, dilation=0)
    assert not (edge & (band != 1)).any()
    (tmp_path / "pred").mkdir()
    Image.fromarray(edge * 255).save(tmp_path / "pred" / "a.png")  # a perfect prediction (probability 1 on edges)
    r = score_edge_dirs(tmp_path / "pred", tmp_path / "edges")
    assert r["ODS"] == 1.0 and r["OIS"] == 1.0
    with pytest.raises(ValueError, match="thin edges cannot be dilated"):
        edge_target(label, dilation=1, thin=True)
