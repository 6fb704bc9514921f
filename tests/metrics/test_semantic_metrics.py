"""ConfusionMatrix and score_semantic_dirs against an independent per-class computation."""

import math

import numpy as np
import pytest
from PIL import Image

from humanparse.errors import DataError
from humanparse.metrics import ConfusionMatrix, score_semantic_dirs


def per_class_reference(preds, gts, c, ignore=255):
    """Straightforward per-class loop, no confusion matrix."""
    tp = np.zeros(c)
    fp = np.zeros(c)
    fn = np.zeros(c)
    correct = total = 0
    for p, g in zip(preds, gts):
        valid = g != ignore
        for k in range(c):
            tp[k] += np.sum((p == k) & (g == k) & valid)
            fp[k] += np.sum((p == k) & (g != k) & valid)
            fn[k] += np.sum((p != k) & (g == k) & valid)
        correct += np.sum((p == g) & valid)
        total += np.sum(valid)
    ious = [tp[k] / (tp[k] + fp[k] + fn[k]) if tp[k] + fp[k] + fn[k] > 0 else None for k in range(c)]
    accs = [tp[k] / (tp[k] + fn[k]) if tp[k] + fn[k] > 0 else None for k in range(c)]
    return ious, accs, correct / total


def test_matches_per_class_loop_on_random_maps():
    rng = np.random.default_rng(0)
    c = 7  # classes 0..5 occur; class 6 never occurs in GT nor prediction -> NaN
    preds, gts = [], []
    cm = ConfusionMatrix(c)
    for _ in range(3):
        g = rng.integers(0, 6, size=(13, 17))
        g[rng.random(g.shape) < 0.2] = 255
        p = rng.integers(0, 6, size=g.shape)
        p[0, :3] = 5  # make sure pred-only pixels exist too
        preds.append(p)
        gts.append(g)
        cm.update(p, g)
    ious, accs, pix = per_class_reference(preds, gts, c)
    res = cm.compute()
    assert ious[6] is None and res["per_class_iou"][6] is None
    for got, want in zip(res["per_class_iou"], ious):
        assert (got is None and want is None) or got == pytest.approx(want)
    defined = [v for v in ious if v is not None]
    assert res["mIoU"] == pytest.approx(np.mean(defined))
    assert res["mean_acc"] == pytest.approx(np.mean([a for a in accs if a is not None]))
    assert res["pixel_acc"] == pytest.approx(pix)
    # SCHP convention: NaN class counts 0 and the mean is over all C
    schp = cm.compute(nan_as_zero=True)
    assert schp["mIoU"] == pytest.approx(sum(defined) / c)
    assert schp["mIoU"] < res["mIoU"]
    assert schp["per_class_iou"][6] == 0.0


def test_ignore_pixels_are_not_counted_hand_case():
    gt = np.array([[0, 1], [255, 1]])
    pred = np.array([[0, 1], [1, 0]])  # the ignored pixel's prediction (1) must not count
    cm = ConfusionMatrix(2)
    cm.update(pred, gt)
    assert cm.hist.tolist() == [[1, 0], [1, 1]]
    res = cm.compute()
    assert res["per_class_iou"] == pytest.approx([0.5, 0.5])  # 1/(1+1+0), 1/(2+1-1)
    assert res["mIoU"] == pytest.approx(0.5)
    assert res["pixel_acc"] == pytest.approx(2 / 3)
    assert res["mean_acc"] == pytest.approx((1 / 1 + 1 / 2) / 2)
    assert res["num_pixels"] == 3


def test_errors_name_bad_values_and_shapes():
    cm = ConfusionMatrix(3)
    with pytest.raises(ValueError, match=r"\[7\]"):
        cm.update(np.zeros((2, 2), int), np.array([[0, 7], [255, 1]]))
    with pytest.raises(ValueError, match="shape"):
        cm.update(np.zeros((2, 2), int), np.zeros((2, 3), int))
    with pytest.raises(ValueError, match=r"\[3\]"):
        cm.update(np.full((2, 2), 3), np.zeros((2, 2), int))


def test_merge_equals_single_accumulation_and_reset():
    rng = np.random.default_rng(1)
    a, b, both = ConfusionMatrix(4), ConfusionMatrix(4), ConfusionMatrix(4)
    for cm in (a, b):
        p, g = rng.integers(0, 4, (5, 5)), rng.integers(0, 4, (5, 5))
        cm.update(p, g)
        both.update(p, g)
    assert np.array_equal(a.merge(b).hist, both.hist)
    a.reset()
    assert a.hist.sum() == 0 and a.compute()["mIoU"] is None


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, np.uint8)).save(path)


def test_score_semantic_dirs_matches_matrix_and_reports_problems(tmp_path):
    rng = np.random.default_rng(2)
    cm = ConfusionMatrix(5)
    for stem in ("a", "b"):
        g = rng.integers(0, 5, (6, 8))
        g[0, 0] = 255
        p = rng.integers(0, 5, (6, 8))
        _save(tmp_path / "gt" / f"{stem}.png", g)
        _save(tmp_path / "pred" / f"{stem}.png", p)
        cm.update(p, g)
    res = score_semantic_dirs(tmp_path / "pred", tmp_path / "gt", num_classes=5)
    assert res["mIoU"] == pytest.approx(cm.compute()["mIoU"]) and res["num_images"] == 2
    assert 0 <= res["pixel_acc"] <= 1 and not math.isnan(res["mean_acc"])

    # missing predictions are listed by name
    _save(tmp_path / "gt" / "c.png", np.zeros((6, 8)))
    _save(tmp_path / "gt" / "d.png", np.zeros((6, 8)))
    with pytest.raises(DataError, match=r"c\.png, d\.png"):
        score_semantic_dirs(tmp_path / "pred", tmp_path / "gt", num_classes=5)
    # size mismatches: all listed
    _save(tmp_path / "pred" / "c.png", np.zeros((5, 8)))
    _save(tmp_path / "pred" / "d.png", np.zeros((6, 7)))
    with pytest.raises(DataError, match=r"2 file\(s\).*c\.png 5x8 vs c\.png 6x8.*d\.png 6x7"):
        score_semantic_dirs(tmp_path / "pred", tmp_path / "gt", num_classes=5)
    # out-of-range prediction values name the file and values
    _save(tmp_path / "pred" / "c.png", np.full((6, 8), 9))
    _save(tmp_path / "pred" / "d.png", np.zeros((6, 8)))
    with pytest.raises(DataError, match=r"c\.png.*\[9\]"):
        score_semantic_dirs(tmp_path / "pred", tmp_path / "gt", num_classes=5)
    # ground truth with a value that is neither a class nor the ignore index
    _save(tmp_path / "pred" / "c.png", np.zeros((6, 8)))
    _save(tmp_path / "gt" / "d.png", np.full((6, 8), 12))
    with pytest.raises(DataError, match=r"d\.png.*\[12\]"):
        score_semantic_dirs(tmp_path / "pred", tmp_path / "gt", num_classes=5)
