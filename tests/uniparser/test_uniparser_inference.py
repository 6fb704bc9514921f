import numpy as np
import pytest
import torch
import torch.nn.functional as F
from pycocotools import mask as mask_utils

import humanparse.uniparser.inference as inference
from humanparse.uniparser.inference import decode, find_centres

S = 8


def hand_outputs(boxes, peaks=None, size=64, num_classes=6, part_of_row=None):
    """Outputs for persons drawn as boxes (y0, y1, x0, x1) at input resolution ``size``.

    Instance features: background e0, person n e_(n+1). Categories: every person's top half is
    part 3, bottom half part 4 (cosine 1), elsewhere 0. Heatmap: a peak at each barycentre cell.
    """
    h = size // 4
    ins = torch.zeros(8, h, h)
    ins[0] = 1
    cate = torch.zeros(num_classes - 1, h, h)
    heat = torch.full((S, S), 0.01)
    for n, (y0, y1, x0, x1) in enumerate(boxes):
        sl = (slice(y0 // 4, y1 // 4), slice(x0 // 4, x1 // 4))
        ins[(slice(None),) + sl] = 0
        ins[(n + 1,) + sl] = 1
        mid = (y0 + y1) // 8
        cate[2, y0 // 4:mid, x0 // 4:x1 // 4] = 1
        cate[3, mid:y1 // 4, x0 // 4:x1 // 4] = 1
        cy, cx = (y0 + y1) / 2, (x0 + x1) / 2
        heat[int(cy * S / size), int(cx * S / size)] = 0.9 if peaks is None else peaks[n]
    logits = torch.logit(heat)[None, None]
    return {"center_logits": logits, "ins_feats": ins[None], "cate_sim": cate[None]}


BOXES = [(4, 44, 4, 20), (8, 60, 28, 40), (20, 60, 48, 64)]


def test_n_separated_persons_give_exactly_n_persons():
    out = hand_outputs(BOXES, peaks=[0.9, 0.6, 0.8])
    [res] = decode(out, valid_sizes=[(64, 64)], out_sizes=[(64, 64)], theta_ctr=0.1, theta_mask=0.5)
    assert len(res["persons"]) == 3
    assert res["person_ids"].shape == (64, 64) and res["parts"].dtype == np.uint8
    # ids follow descending score: box 0 (0.9) -> 1, box 2 (0.8) -> 2, box 1 (0.6) -> 3
    scores = [p["score"] for p in res["persons"]]
    assert scores == sorted(scores, reverse=True)
    for pid, (y0, y1, x0, x1) in zip([1, 3, 2], BOXES):
        want = np.zeros((64, 64), bool)
        want[y0:y1, x0:x1] = True
        got = res["person_ids"] == pid
        assert (got & want).sum() / (got | want).sum() > 0.85
        rle = res["persons"][pid - 1]["rle"]
        assert rle["size"] == [64, 64] and isinstance(rle["counts"], str)
        assert np.array_equal(mask_utils.decode({"size": rle["size"], "counts": rle["counts"].encode()}) > 0, got)
        mid = (y0 + y1) // 2
        assert set(np.unique(res["parts"][y0 + 2:mid - 2, x0 + 2:x1 - 2])) == {3}
        assert set(np.unique(res["parts"][mid + 2:y1 - 2, x0 + 2:x1 - 2])) == {4}
    assert (res["parts"][res["person_ids"] == 0] == 0).all()


def test_thresholds_and_padding():
    out = hand_outputs(BOXES, peaks=[0.9, 0.05, 0.8])   # one centre below theta_ctr = 0.1
    [res] = decode(out, valid_sizes=[(64, 64)], out_sizes=[(64, 64)])
    assert len(res["persons"]) == 2
    nobody = hand_outputs([])
    [res] = decode(nobody, valid_sizes=[(64, 64)], out_sizes=[(64, 64)])
    assert res["persons"] == [] and (res["person_ids"] == 0).all() and (res["parts"] == 0).all()
    # an image of 48 x 40 padded to 64 x 64, reported at its original size 96 x 80
    [res] = decode(hand_outputs([(4, 44, 4, 36)]), valid_sizes=[(48, 40)], out_sizes=[(96, 80)])
    assert res["person_ids"].shape == (96, 80) and len(res["persons"]) == 1
    ys, xs = np.nonzero(res["person_ids"])
    assert abs(ys.min() - 8) <= 3 and abs(ys.max() - 87) <= 3 and abs(xs.max() - 71) <= 3


def test_overlapping_duplicate_centres_resolve_to_one_owner_per_pixel():
    # two centres of the same person (one cell apart is suppressed by the peak window; three apart is not)
    out = hand_outputs([(4, 60, 4, 60)])
    heat = out["center_logits"].sigmoid()[0, 0]
    heat[1, 1] = 0.5
    out["center_logits"] = torch.logit(heat)[None, None]
    cells, _ = find_centres(heat, theta_ctr=0.1, peak_kernel=3)
    assert len(cells) == 2
    [res] = decode(out, valid_sizes=[(64, 64)], out_sizes=[(64, 64)])
    # both kernels see the same instance map; the better-scored one owns every pixel, the other is dropped
    assert len(res["persons"]) == 1 and res["persons"][0]["score"] > 0.8


def test_peak_extraction_is_a_tensor_op():
    heat = torch.zeros(S, S)
    heat[1, 1], heat[1, 2], heat[6, 6] = 0.5, 0.4, 0.3
    cells, scores = find_centres(heat, theta_ctr=0.1, peak_kernel=3)
    assert cells.tolist() == [1 * S + 1, 6 * S + 6] and torch.allclose(scores, torch.tensor([0.5, 0.3]))
    cells, _ = find_centres(heat, theta_ctr=0.1, peak_kernel=1)
    assert len(cells) == 3
    cells, _ = find_centres(heat, theta_ctr=0.1, peak_kernel=3, max_persons=1)
    assert cells.tolist() == [9]


def test_close_persons_are_both_kept_and_a_duplicate_peak_is_not_a_second_person():
    """No box or mask suppression: two touching persons whose centre cells have one cell between
    them (cols 2 and 4 of 8) are both found, with their own masks; a second, weaker peak inside
    person B (col 6) reads B's kernel again and loses every pixel to B, so it is no person."""
    A, B = (0, 64, 0, 28), (0, 64, 28, 64)
    out = hand_outputs([A, B])
    heat = torch.full((S, S), 0.01)
    heat[4, 2], heat[4, 4] = 0.9, 0.8
    out["center_logits"] = torch.logit(heat)[None, None]
    [res] = decode(out, valid_sizes=[(64, 64)], out_sizes=[(64, 64)], theta_ctr=0.1, theta_mask=0.5)
    assert len(res["persons"]) == 2
    for pid, (y0, y1, x0, x1) in zip([1, 2], [A, B]):
        want = np.zeros((64, 64), bool)
        want[y0:y1, x0:x1] = True
        got = res["person_ids"] == pid
        assert (got & want).sum() / (got | want).sum() > 0.9
    heat[4, 6] = 0.7  # the duplicate peak inside B
    out["center_logits"] = torch.logit(heat)[None, None]
    [dup] = decode(out, valid_sizes=[(64, 64)], out_sizes=[(64, 64)], theta_ctr=0.1, theta_mask=0.5)
    assert len(find_centres(heat, theta_ctr=0.1)[0]) == 3  # three peaks go in ...
    assert len(dup["persons"]) == 2  # ... two persons come out
    assert np.array_equal(dup["person_ids"], res["person_ids"])


def test_predict_end_to_end_on_a_tiny_model(tiny_model):
    tiny_model.eval()
    images = [np.random.default_rng(0).integers(0, 255, (50, 70, 3), dtype=np.uint8),
              np.zeros((64, 40, 3), np.uint8)]
    results = inference.predict(tiny_model, images, theta_ctr=0.0)  # every peak kept: exercises the path
    assert [r["parts"].shape for r in results] == [(50, 70), (64, 40)]
    for r in results:
        ids = {p["id"] for p in r["persons"]}
        assert ids == set(np.unique(r["person_ids"]).tolist()) - {0}
    with pytest.raises(ValueError, match="RGB uint8"):
        inference.predict(tiny_model, [np.zeros((10, 10), np.uint8)])
