"""AP^p / PCP on hand-made images; the expected values are worked out in the comments.

In the CIHP layout a prediction's Human_ids map cannot hold two overlapping persons, so there a
"duplicate" of a matched person is a second fragment of it; the MHPv2 layout (one map per person)
holds overlapping persons, and ignore pixels count per person, as in the official script.
"""

import json

import numpy as np
import pytest
from PIL import Image

from humanparse.errors import DataError
from humanparse.metrics import evaluate_instances, score_instance_dirs
from humanparse.metrics.instance import InstanceEvaluator, maps_from_ids, person_maps_iou, person_part_iou, voc_ap

C = 20


def blank(h=10, w=10):
    return np.zeros((h, w), np.int64), np.zeros((h, w), np.int64)


def official_hist_iou(gt_map, pred_map, c):
    """``eval_mhp.py``'s ``cal_one_mean_iou`` in our words: a C x C histogram of (G's own map,
    P's map) over the pixels where G's map is in [0, c); IoU = diag / (row + col - diag)."""
    keep = (gt_map >= 0) & (gt_map < c)
    hist = np.bincount(c * gt_map[keep].astype(int) + pred_map[keep].astype(int), minlength=c * c).reshape(c, c)
    diag = np.diag(hist).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return diag / (hist.sum(1) + hist.sum(0) - diag)


def test_person_maps_iou_equals_the_official_histogram_on_overlapping_persons():
    rng = np.random.default_rng(0)
    c, h, w = 5, 12, 11
    gt = np.zeros((3, h, w), np.int64)
    pred = np.zeros((2, h, w), np.int64)
    for maps in (gt, pred):  # overlapping random rectangles of random parts
        for m in maps:
            y, x = rng.integers(0, 6, 2)
            m[y:y + 6, x:x + 6] = rng.integers(1, c, (6, 6))
    gt[gt.astype(bool) & (rng.random(gt.shape) < 0.15)] = 255  # ignore pixels, different per person
    assert (gt == 255).any()
    got = person_maps_iou(gt, pred, c)
    for i in range(len(pred)):
        for j in range(len(gt)):
            np.testing.assert_allclose(got[i, j], official_hist_iou(gt[j], pred[i], c), equal_nan=True)


def test_ignore_is_per_person_hand_case():
    """One row of 10 pixels. GT A: part 1 on 0-1, ignore (its own 255) on 2-5; GT B: part 2 on 6-9.
    Predictions overlap: P1 (.9) part 1 on 0-5, P2 (.8) part 2 on 2-9.

    Per person (official): P1 vs A drops 2-5 -> part 1 2/2, bg 4/4 -> 1.0. P2 vs B keeps all 10
    pixels: part 2 4/8, bg (0-1 vs 0-5) 2/6 -> .4167; P2 vs A drops 2-5: part 1 0, part 2 0, bg 0
    -> 0. So P2 is a false positive at .5: AP50 = .5 (recall .5 .5, precision 1 .5); t = .1-.4 both
    match (AP 1), t = .5-.9 only P1 (AP .5) -> AP_vol = (4 + 5 * .5) / 9; PCP50 = (1 + 0) / 2.
    Image-wide ignore (2-5 dropped for every pair) would give P2 vs B = 1.0 and AP50 = 1.0.
    """
    gt = np.zeros((2, 1, 10), np.int64)
    gt[0, 0, :2], gt[0, 0, 2:6], gt[1, 0, 6:] = 1, 255, 2
    pred = np.zeros((2, 1, 10), np.int64)
    pred[0, 0, :6], pred[1, 0, 2:] = 1, 2
    m = np.nanmean(person_maps_iou(gt, pred, C), -1)
    assert m[0, 0] == pytest.approx(1.0) and m[0, 1] == pytest.approx(0.0)
    assert m[1, 0] == pytest.approx(0.0) and m[1, 1] == pytest.approx((4 / 8 + 2 / 6) / 2)
    ev = InstanceEvaluator(C)
    ev.add_persons(gt, pred, [0.9, 0.8])
    res = ev.compute()
    assert res["APp50"] == pytest.approx(0.5)
    assert res["APpvol"] == pytest.approx((4 + 5 * 0.5) / 9)
    assert res["PCP50"] == pytest.approx(0.5)
    # the same ground truth in the CIHP layout (the ignore pixels carry A's id) scores the same
    parts = np.array([[1, 1, 255, 255, 255, 255, 2, 2, 2, 2]])
    ids = np.array([[1, 1, 1, 1, 1, 1, 2, 2, 2, 2]])
    np.testing.assert_allclose(person_maps_iou(maps_from_ids(parts, ids, [1, 2]), pred, C),
                               person_maps_iou(gt, pred, C), equal_nan=True)


def test_voc_ap_hand_case():
    # precision envelope 1 up to recall .5, then 2/3 up to recall 1 -> .5 + .5 * 2/3
    assert voc_ap(np.array([0.5, 0.5, 1.0]), np.array([1.0, 0.5, 2 / 3])) == pytest.approx(5 / 6)


def test_perfect_prediction_scores_one():
    rng = np.random.default_rng(3)
    images = []
    for _ in range(2):
        parts = rng.integers(1, C, (16, 16))
        humans = np.zeros((16, 16), np.int64)
        humans[:, :5], humans[:, 6:11], humans[:, 12:] = 1, 2, 3
        parts[humans == 0] = 0
        images.append((parts, humans, parts.copy(), humans.copy(), {1: 0.9, 2: 0.5, 3: 0.7}))
    res = evaluate_instances(images, C)
    assert res["APp50"] == 1.0 and res["APpvol"] == 1.0 and res["PCP50"] == 1.0
    assert res["num_gt_persons"] == 6 and res["num_predictions"] == 6
    assert list(res["APp"]) == [f"0.{k}" for k in range(1, 10)]
    assert all(v == 1.0 for v in res["APp"].values())
    json.dumps(res)  # plain JSON-able


def test_duplicate_of_matched_person_is_false_positive():
    gt_parts, gt_h = blank()
    gt_parts[0, :], gt_h[0, :] = 1, 1  # A: row 0, 10 px
    gt_parts[5, :], gt_h[5, :] = 1, 2  # B: row 5, 10 px
    pred_parts, pred_h = blank()
    pred_parts[0, :6], pred_h[0, :6] = 1, 1  # P1: 6 px of A   (score .9)
    pred_parts[0, 6:], pred_h[0, 6:] = 1, 2  # P2: other 4 px of A, the duplicate (score .8)
    pred_parts[5, :], pred_h[5, :] = 1, 3  # P3: B exactly   (score .7)
    m = np.nanmean(person_part_iou(gt_parts, gt_h, np.array([1, 2]), pred_parts, pred_h, np.array([1, 2, 3]), C), -1)
    # P1 vs A: part 6/10, background 90/94;  P2 vs A: part 4/10, bg 90/96; vs B: part 0, bg 86/100
    assert m[0, 0] == pytest.approx((0.6 + 90 / 94) / 2)  # .7787
    assert m[1] == pytest.approx([(0.4 + 90 / 96) / 2, (0 + 86 / 100) / 2])  # .6688 (best: A), .43
    res = evaluate_instances([(gt_parts, gt_h, pred_parts, pred_h, {1: 0.9, 2: 0.8, 3: 0.7})], C)
    # t <= .7: TP, FP (A taken), TP -> recall .5 .5 1, precision 1 .5 2/3 -> AP = 5/6
    for t in ("0.1", "0.3", "0.5", "0.7"):
        assert res["APp"][t] == pytest.approx(5 / 6)
    # t = .8, .9: P1 (.7787) fails too: FP, FP, TP -> recall 0 0 .5, precision 0 0 1/3 -> AP = 1/6
    assert res["APp"]["0.8"] == pytest.approx(1 / 6) and res["APp"]["0.9"] == pytest.approx(1 / 6)
    assert res["APp50"] == pytest.approx(5 / 6)
    assert res["APpvol"] == pytest.approx((7 * 5 / 6 + 2 * 1 / 6) / 9)
    assert res["PCP50"] == 1.0  # A via P1 (part IoU .6 > .5), B via P3


def test_best_gt_taken_even_when_already_matched_no_fallback():
    # 100 x 100 so that background IoUs are close to 1 and a small part overlap clears 0.5
    gt_parts, gt_h = blank(100, 100)
    gt_parts[0, :10], gt_h[0, :10] = 1, 1  # A: 10 px
    gt_parts[50, :10], gt_h[50, :10] = 1, 2  # B: 10 px
    pred_parts, pred_h = blank(100, 100)
    pred_parts[0, :6], pred_h[0, :6] = 1, 1  # P1: 6 px of A                   (score .9)
    pred_parts[0, 6:10], pred_h[0, 6:10] = 1, 2  # P2: other 4 px of A ...       (score .8)
    pred_parts[50, 0], pred_h[50, 0] = 1, 2  # ... plus 1 px of B
    m = np.nanmean(person_part_iou(gt_parts, gt_h, np.array([1, 2]), pred_parts, pred_h, np.array([1, 2]), C), -1)
    # P1 vs A: 6/10 and 9990/9994 -> .7998
    # P2 vs A: 4/11 and 9989/9996 -> .6815 (best);  vs B: 1/14 and 9986/9999 -> .5351 (> .5!)
    assert m[0, 0] == pytest.approx((6 / 10 + 9990 / 9994) / 2)
    assert m[1] == pytest.approx([(4 / 11 + 9989 / 9996) / 2, (1 / 14 + 9986 / 9999) / 2])
    assert m[1, 1] > 0.5
    res = evaluate_instances([(gt_parts, gt_h, pred_parts, pred_h, {1: 0.9, 2: 0.8})], C)
    # P2 takes A (already matched) -> FP; a fallback to B would give AP50 = 1.0. TP, FP of 2 GT:
    assert res["APp50"] == pytest.approx(0.5)
    # t = .1 ... .7 -> .5; t = .8, .9 -> P1 (.7998) fails -> 0
    assert res["APpvol"] == pytest.approx(7 * 0.5 / 9)
    assert res["PCP50"] == pytest.approx(0.5)  # A: 1 of 1 parts > .5; B unmatched: 0


def test_pcp_counts_only_parts_present_and_nan_classes_are_excluded():
    gt_parts, gt_h = blank()
    gt_parts[0, :], gt_parts[1, :] = 1, 2  # GT person: part 1 (row 0) and part 2 (row 1)
    gt_h[:2, :] = 1
    pred_parts, pred_h = blank()
    pred_parts[0, :], pred_h[0, :] = 1, 1  # part 1 right, part 2 missed (background)
    res = evaluate_instances([(gt_parts, gt_h, pred_parts, pred_h, {1: 1.0})], C)
    # background 80/90, part 1: 1, part 2: 0, the 17 other classes NaN -> mean .6296
    # (counting NaN classes as 0 would give 1.889/20 = .094 and no match at all)
    assert res["APp50"] == 1.0
    assert res["APpvol"] == pytest.approx(6 / 9)  # TP for t = .1 ... .6, FP above
    assert res["PCP50"] == pytest.approx(0.5)  # 1 of the 2 parts present has IoU > .5


def test_gt_persons_foreground_vs_all_and_min_score():
    gt_parts, gt_h = blank()
    gt_parts[0, :], gt_h[0, :] = 1, 1  # person 1 with a foreground part
    gt_h[9, :] = 2  # person 2: pixels all labelled background (no foreground part)
    pred_parts, pred_h = blank()
    pred_parts[0, :], pred_h[0, :] = 1, 1
    img = (gt_parts, gt_h, pred_parts, pred_h, {1: 0.005})
    fg = evaluate_instances([img], C)
    assert fg["num_gt_persons"] == 1 and fg["APp50"] == 1.0 and fg["PCP50"] == 1.0
    everyone = evaluate_instances([img], C, gt_persons="all")
    assert everyone["num_gt_persons"] == 2
    assert everyone["APp50"] == pytest.approx(0.5) and everyone["PCP50"] == pytest.approx(0.5)
    floored = evaluate_instances([img], C, min_score=0.01)  # M2FP's floor drops the only prediction
    assert floored["num_predictions"] == 0 and floored["APp50"] == 0.0


def test_bad_inputs_raise():
    gt_parts, gt_h = blank()
    pred_parts, pred_h = blank()
    pred_h[0, 0] = 1
    with pytest.raises(ValueError, match=r"\[4\]"):
        evaluate_instances([(gt_parts, gt_h, pred_parts, pred_h, {1: 0.5, 4: 0.3})], C)
    with pytest.raises(ValueError, match=r"\[1\].*no score"):
        evaluate_instances([(gt_parts, gt_h, pred_parts, pred_h, {})], C)
    with pytest.raises(ValueError, match="gt_persons"):
        evaluate_instances([], C, gt_persons="visible")


def _save(path, arr):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, np.uint8)).save(path)


def test_score_instance_dirs_cihp_layout(tmp_path):
    rng = np.random.default_rng(5)
    images, scores = [], {}
    for k, stem in enumerate(("0001", "0002")):
        gh = np.zeros((12, 12), np.int64)
        gh[:, :4], gh[:, 5:9], gh[:, 10:] = 1, 2, 3
        gp = np.where(gh > 0, rng.integers(1, C, (12, 12)), 0)
        gp[0, 0] = 255
        pp = np.where(rng.random(gp.shape) < 0.3, rng.integers(0, C, gp.shape), gp % 255)
        ph = np.where(rng.random(gp.shape) < 0.1, 0, gh)
        sc = {1: 0.3 + k / 10, 2: 0.8, 3: 0.5}
        for root, name, arr in ((tmp_path / "gt", "Category_ids", gp), (tmp_path / "gt", "Human_ids", gh),
                                (tmp_path / "pred", "Category_ids", pp), (tmp_path / "pred", "Human_ids", ph)):
            _save(root / name / f"{stem}.png", arr)
        scores[stem] = {str(i): s for i, s in sc.items()}
        images.append((gp, gh, pp, ph, sc))
    (tmp_path / "pred" / "scores.json").write_text(json.dumps(scores))
    res = score_instance_dirs(tmp_path / "pred", tmp_path / "gt")
    want = evaluate_instances(images, C)
    assert res == want  # same numbers: scores survive the JSON round trip exactly
    assert 0 < res["APpvol"] < 1 and 0 < res["PCP50"] <= 1

    scores["0001"]["7"] = 0.5  # a person id with no pixel in the map
    (tmp_path / "pred" / "scores.json").write_text(json.dumps(scores))
    with pytest.raises(DataError, match=r"scores\.json.*'0001'.*\[7\]"):
        score_instance_dirs(tmp_path / "pred", tmp_path / "gt")
    (tmp_path / "pred" / "Human_ids" / "0002.png").unlink()
    with pytest.raises(DataError, match=r"Human_ids.*0002\.png"):
        score_instance_dirs(tmp_path / "pred", tmp_path / "gt")


def test_score_instance_dirs_mhpv2_layout_overlapping_persons(tmp_path):
    """The hand case of test_ignore_is_per_person_hand_case written as MHPv2 folders (the ground
    truth as RGB files, channel 0 used, as the MHPv2 release stores some of them)."""
    gt = np.zeros((2, 1, 10), np.uint8)
    gt[0, 0, :2], gt[0, 0, 2:6], gt[1, 0, 6:] = 1, 255, 2
    pred = np.zeros((2, 1, 10), np.uint8)
    pred[0, 0, :6], pred[1, 0, 2:] = 1, 2
    for k in range(2):
        path = tmp_path / "gt" / "parsing_annos" / f"7_02_0{k + 1}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.repeat(gt[k][..., None], 3, axis=2)).save(path)
        _save(tmp_path / "pred" / "parsing_annos" / f"7_02_0{k + 1}.png", pred[k])
    (tmp_path / "pred" / "scores.json").write_text(json.dumps({"7": {"1": 0.9, "2": 0.8}}))
    res = score_instance_dirs(tmp_path / "pred", tmp_path / "gt", num_classes=C)
    assert res["APp50"] == pytest.approx(0.5) and res["PCP50"] == pytest.approx(0.5)
    assert res["num_gt_persons"] == 2 and res["num_predictions"] == 2
    # a CIHP-layout prediction against the MHPv2 ground truth: P2 cut to 6-9 (the id map has no overlap)
    _save(tmp_path / "cihp" / "Category_ids" / "7.png", [[1, 1, 1, 1, 1, 1, 2, 2, 2, 2]])
    _save(tmp_path / "cihp" / "Human_ids" / "7.png", [[1, 1, 1, 1, 1, 1, 2, 2, 2, 2]])
    (tmp_path / "cihp" / "scores.json").write_text(json.dumps({"7": {"1": 0.9, "2": 0.8}}))
    assert score_instance_dirs(tmp_path / "cihp", tmp_path / "gt", num_classes=C)["APp50"] == 1.0
    (tmp_path / "pred" / "scores.json").write_text(json.dumps({"7": {"1": 0.9}}))
    with pytest.raises(DataError, match=r"scores\.json.*'7'.*\[2\].*no score"):
        score_instance_dirs(tmp_path / "pred", tmp_path / "gt", num_classes=C)
