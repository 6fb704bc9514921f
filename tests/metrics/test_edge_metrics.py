"""Edges from labels on a hand-made map, and ODS / OIS / AP on hand-computed cases."""

import numpy as np
import pytest
from PIL import Image

from humanparse.errors import DataError
from humanparse.metrics import EdgeEvaluator, edges_from_labels, score_edge_dirs
from humanparse.metrics.edge import bsds_thresholds, edge_counts, edge_nms, match_edges

LABEL = np.array(
    [
        [0, 0, 0, 0, 255],
        [0, 1, 1, 0, 0],
        [0, 1, 1, 0, 0],
        [0, 0, 0, 2, 2],
        [0, 0, 0, 2, 2],
    ]
)


def test_edges_from_labels_4_connected():
    # (0,3) and (1,4) touch only the ignore pixel (0,4) and background: not edges
    want = np.array(
        [
            [0, 1, 1, 0, 0],
            [1, 1, 1, 1, 0],
            [1, 1, 1, 1, 1],
            [0, 1, 1, 1, 1],
            [0, 0, 1, 1, 0],
        ]
    )
    got = edges_from_labels(LABEL, connectivity=4)
    assert got.dtype == np.uint8 and np.array_equal(got, want)


def test_edges_from_labels_8_connected():
    # diagonal contacts add (0,0)-(1,1), (0,3)-(1,2), (3,0)-(2,1)
    want = np.array(
        [
            [1, 1, 1, 1, 0],
            [1, 1, 1, 1, 0],
            [1, 1, 1, 1, 1],
            [1, 1, 1, 1, 1],
            [0, 0, 1, 1, 0],
        ]
    )
    assert np.array_equal(edges_from_labels(LABEL, connectivity=8), want)


def test_edges_from_labels_ignore_treated_as_label_would_differ():
    # without ignore handling (ignore_index=None) 255 is a label: its neighbours become edges
    got = edges_from_labels(LABEL, connectivity=4, ignore_index=None)
    assert got[0, 4] == 1 and got[0, 3] == 1 and got[1, 4] == 1


def test_thin_option_gives_one_pixel_boundary():
    label = np.zeros((8, 8), int)
    label[:, 4:] = 1
    band = edges_from_labels(label)
    assert band[:, 3].all() and band[:, 4].all() and band.sum() == 16  # both sides of the border
    thin = edges_from_labels(label, thin=True)
    assert thin.dtype == np.uint8 and (thin <= band).all()
    assert (thin[1:].sum(1) == 1).all()  # one pixel per row (thinning may shorten the ends)


def line_image(h=64, w=64):
    gt = np.zeros((h, w), bool)
    gt[10, 5:50] = True  # horizontal 1-px line
    gt[20:60, 40] = True  # vertical 1-px line
    return gt


def test_thresholds_are_bsds():
    t = bsds_thresholds(99)
    assert t.size == 99 and t[0] == pytest.approx(0.01) and t[-1] == pytest.approx(0.99)


def test_perfect_prediction_scores_one_and_empty_scores_zero():
    gt = line_image()
    ev = EdgeEvaluator()
    ev.add(gt.astype(float), gt)
    res = ev.compute()
    assert res["ODS"] == pytest.approx(1.0) and res["OIS"] == pytest.approx(1.0)
    assert res["AP"] is None  # recall is 1 at every threshold: a single PR point
    empty = EdgeEvaluator()
    empty.add(np.zeros(gt.shape), gt)
    r = empty.compute()
    assert r["ODS"] == 0.0 and r["OIS"] == 0.0


def test_one_pixel_shift_is_within_tolerance_two_is_not():
    h = w = 100  # diagonal 141.4 -> tolerance 1.06 px
    gt = np.zeros((h, w), bool)
    gt[10:90, 50] = True
    for shift, want in ((1, 1.0), (2, 0.0)):
        pred = np.zeros((h, w))
        pred[10:90, 50 + shift] = 0.9
        ev = EdgeEvaluator()
        ev.add(pred, gt)
        assert ev.compute()["ODS"] == pytest.approx(want)


def test_matching_is_one_to_one():
    gt = np.zeros((100, 100), bool)
    gt[10:90, 50] = True  # 80 px
    pred = np.zeros((100, 100), bool)
    pred[10:90, 50:52] = True  # two columns, both within tolerance of the GT column
    assert match_edges(pred, gt) == 80  # each GT pixel used once: precision 1/2 without thinning
    counts = edge_counts(pred.astype(float), gt, thresholds=[0.5], thin=False)
    assert counts.tolist() == [[80, 160, 80, 80]]


def test_ods_ois_ap_hand_case():
    # Each image: a true line and a false line (far from any GT, same length L).
    gt = np.zeros((64, 64), bool)
    gt[10, 5:45] = True
    false = (40, slice(5, 45))
    img1 = np.zeros((64, 64))
    img1[10, 5:45], img1[false] = 0.305, 0.205  # best threshold in (.205, .305]
    img2 = np.zeros((64, 64))
    img2[10, 5:45], img2[false] = 0.805, 0.505  # best threshold in (.505, .805]
    ev = EdgeEvaluator()
    ev.add(img1, gt)
    ev.add(img2, gt)
    res = ev.compute()
    # OIS: each image perfect at its own threshold -> 1
    assert res["OIS"] == pytest.approx(1.0)
    # dataset curve: t<=.20: P 2L/4L, R 1 (F .667); .21-.30: P 2L/3L, R 1 (F .8);
    # .31-.50: P .5, R .5; .51-.80: P 1, R .5 (F .667); above: 0.  ODS = .8
    assert res["ODS"] == pytest.approx(0.8)
    assert res["ODS_precision"] == pytest.approx(2 / 3) and res["ODS_recall"] == pytest.approx(1.0)
    # AP: unique R {0, .5, 1} with first P {0, .5, .5}: P(r) = r up to .5, then .5
    # sum over r = 0, .01, ..., 1 -> (12.75 + 25) * .01
    assert res["AP"] == pytest.approx(0.3775)


def test_score_edge_dirs(tmp_path):
    gt = np.zeros((40, 40), np.uint8)
    gt[5, 5:30] = 255
    pred = np.zeros((40, 40), np.uint8)
    pred[5, 5:30] = 200
    for d in ("pred", "gt"):
        (tmp_path / d).mkdir()
    Image.fromarray(gt).save(tmp_path / "gt" / "x.png")
    Image.fromarray(pred).save(tmp_path / "pred" / "x.png")
    res = score_edge_dirs(tmp_path / "pred", tmp_path / "gt")
    assert res["ODS"] == pytest.approx(1.0) and res["num_images"] == 1
    bad = gt.copy()
    bad[0, 0] = 7
    Image.fromarray(bad).save(tmp_path / "gt" / "x.png")
    with pytest.raises(DataError, match=r"x\.png.*0/1 or 0/255"):
        score_edge_dirs(tmp_path / "pred", tmp_path / "gt")


# --- thin ground truth, edge NMS, and agreement with an independent BSDS implementation ---------------

def _random_label(rng, h=60, w=80, parts=6):
    """A random part map: a few filled ellipses on background."""
    label = np.zeros((h, w), np.uint8)
    yy, xx = np.mgrid[:h, :w]
    for k in range(1, parts + 1):
        cy, cx = rng.uniform(5, h - 5), rng.uniform(5, w - 5)
        ry, rx = rng.uniform(4, h / 3), rng.uniform(4, w / 3)
        label[((yy - cy) / ry) ** 2 + ((xx - cx) / rx) ** 2 <= 1] = k
    return label


def test_perfect_prediction_of_thin_ground_truth_scores_one(tmp_path):
    from humanparse.cli.main import main as cli

    rng = np.random.default_rng(0)
    (tmp_path / "gt").mkdir()
    (tmp_path / "pred").mkdir()
    for i in range(3):
        gt = edges_from_labels(_random_label(rng), connectivity=8, thin=True)
        Image.fromarray(gt * 255).save(tmp_path / "gt" / f"{i}.png")
        Image.fromarray(gt * 255).save(tmp_path / "pred" / f"{i}.png")  # prediction = ground truth
    r = score_edge_dirs(tmp_path / "pred", tmp_path / "gt")
    assert r["ODS"] == pytest.approx(1.0) and r["OIS"] == pytest.approx(1.0)
    assert cli(["score", "--task", "edge", "--pred", str(tmp_path / "pred"), "--gt", str(tmp_path / "gt"), "--json"]) == 0
    # the two-pixel band as ground truth caps the same perfect-looking prediction well below 1
    label = _random_label(np.random.default_rng(1))
    band = edges_from_labels(label, connectivity=8)
    ev = EdgeEvaluator()
    ev.add(band.astype(float), band)
    assert ev.compute()["ODS"] < 0.8


def test_thin_edges_are_one_pixel_wide():
    label = np.zeros((10, 12), np.uint8)
    label[:, 6:] = 3
    thin = edges_from_labels(label, connectivity=8, thin=True)
    # one pixel per row (thinning may shorten the line by its end pixel at the image border)
    assert (thin[1:].sum(1) == 1).all() and thin[0].sum() <= 1 and set(np.nonzero(thin)[1]) <= {5, 6}


def test_edge_nms_keeps_the_ridge_of_a_blurred_line():
    x = np.arange(40, dtype=float)
    profile = np.exp(-((x - 17.0) ** 2) / (2 * 2.0**2))  # a vertical edge 5 px wide around column 17
    prob = np.tile(profile, (30, 1))
    out = edge_nms(prob)
    inner = out[6:-6]  # away from the 5-px border suppression
    assert (inner[:, 17] > 0.5).all()
    assert np.count_nonzero(inner[:, :17]) == 0 and np.count_nonzero(inner[:, 18:]) == 0
    assert out[0].max() == 0.0 and out[:, 0].max() == 0.0  # soft border suppression: weight 0 at the border
    np.testing.assert_allclose(out[2, 17] / out[15, 17], 2 / 5)  # weight k / 5 at distance k


def _noisy_prediction(rng, gt):
    from scipy.ndimage import gaussian_filter

    prob = gaussian_filter(gt.astype(float), 1.0) * 2.5 + rng.uniform(0, 0.35, gt.shape)
    prob[rng.random(gt.shape) < 0.02] = rng.uniform(0.3, 1.0)  # scattered false positives
    return np.clip(prob, 0, 1)


def test_agrees_with_pyedgeeval_on_random_cases():
    """pyEdgeEval (PyPI) ports BSDS's correspondPixels (CSA assignment) and Dollar's edgesNmsMex."""
    pytest.importorskip("pyEdgeEval")
    from pyEdgeEval.common.binary_label.evaluate_boundaries import evaluate_boundaries_threshold
    from pyEdgeEval.common.metrics import compute_rec_prec_f1, interpolated_max_scores
    from pyEdgeEval.preprocess import fast_nms

    rng = np.random.default_rng(7)
    thresholds = bsds_thresholds(25)
    ours, theirs = EdgeEvaluator(thresholds), []
    for _ in range(4):
        gt = edges_from_labels(_random_label(rng), connectivity=8, thin=True).astype(bool)
        prob = _noisy_prediction(rng, gt)
        nms_ours, nms_theirs = edge_nms(prob), fast_nms(prob.copy())
        assert np.mean(np.abs(nms_ours - nms_theirs) > 1e-6) < 0.01  # the same NMS (up to a 1e-5 guard)
        ours.add(nms_ours, gt)
        cr, sr, cp, sp = evaluate_boundaries_threshold(thresholds, nms_ours, gt, max_dist=0.0075)
        theirs.append((cr, sr, cp, sp))
        # per-threshold counts: both find maximal matchings within the same tolerance
        mine = ours.counts[-1]
        # thinning: skimage's and pyEdgeEval's port of bwmorph 'thin' differ by a pixel here and there
        assert np.abs(mine[:, 1] - sp).max() <= max(2, 0.01 * sp.max())
        np.testing.assert_array_equal(mine[:, 3], sr)
        assert np.abs(mine[:, 0] - cp).max() <= max(2, 0.01 * sp.max())
    r = ours.compute()
    cr, sr, cp, sp = (np.sum([t[i] for t in theirs], 0) for i in range(4))
    rec, prec, _ = compute_rec_prec_f1(cr, sr, cp, sp)
    ods = interpolated_max_scores(thresholds, rec, prec)[3]
    best = [compute_rec_prec_f1(*t)[2].argmax() for t in theirs]
    ois = compute_rec_prec_f1(*(np.sum([t[i][b] for t, b in zip(theirs, best)]) for i in range(4)))[2]
    assert r["ODS"] == pytest.approx(ods, abs=0.005) and r["OIS"] == pytest.approx(float(ois), abs=0.005)
    assert 0.3 < r["ODS"] < 0.99  # a non-trivial case
