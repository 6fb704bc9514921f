import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from humanparse.uniparser.losses import (
    UniParserLoss, build_targets, build_targets_from_maps, center_cells, dice_loss, focal_center_loss, metric_loss,
)

C = 6  # background + 5 parts


def two_person_scene():
    """64x64: two rectangular persons aligned to the stride-4 grid, each with two parts."""
    person = torch.zeros(64, 64, dtype=torch.long)
    part = torch.zeros(64, 64, dtype=torch.long)
    person[8:40, 4:24] = 1
    part[8:24, 4:24], part[24:40, 4:24] = 3, 4
    person[16:56, 36:60] = 2
    part[16:36, 36:60], part[36:56, 36:60] = 3, 5
    return person, part


def perfect_outputs(person, part, targets, grid):
    """Network outputs that solve the scene exactly: one-hot instance features (background e0,
    person p e_p), one-hot category similarities, orthonormal category kernels, confident heatmap."""
    D = 8
    ds = F.interpolate(person[None, None].float(), scale_factor=0.25, mode="nearest")[0, 0].long()
    ins = F.one_hot(ds, D).permute(2, 0, 1).float()
    part_ds = F.interpolate(part[None, None].float(), scale_factor=0.25, mode="nearest")[0, 0].long()
    cate = F.one_hot(part_ds, C).permute(2, 0, 1).float()[1:]
    logits = torch.where(targets.heat > 0, 30.0, -30.0).view(1, 1, grid, grid)
    return {"center_logits": logits, "ins_feats": ins[None], "cate_sim": cate[None],
            "cate_kernels": torch.eye(C - 1, D)}


def test_dice_is_zero_at_a_perfect_prediction_and_positive_otherwise():
    g = (torch.rand(3, 10, 10) > 0.5).float()
    assert torch.allclose(dice_loss(g, g), torch.zeros(3), atol=1e-6)
    assert (dice_loss(1 - g, g) > 0.99).all()
    # negative predictions count as zero
    assert torch.allclose(dice_loss(g - 2 * (1 - g), g), torch.zeros(3), atol=1e-6)


def test_focal_positive_box_follows_sigma_and_radius():
    mask = torch.zeros(400, 400, dtype=torch.bool)
    mask[105:305, 145:265] = True  # box 200 x 120, barycentre (205, 205): cell (20, 20) of 40 (10 px cells)
    cells, centre = center_cells(mask, 40, sigma=0.2, radius=None)
    rows, cols = cells // 40, cells % 40
    # half box = 0.1 * (200, 120) = (20, 12) px -> rows floor(18.5)..floor(22.5), cols floor(19.3)..floor(21.7)
    assert centre == 20 * 40 + 20
    assert sorted(set(rows.tolist())) == list(range(18, 23))
    assert sorted(set(cols.tolist())) == list(range(19, 22))
    assert len(cells) == 5 * 3
    # the official +-1 cell clamp
    cells, _ = center_cells(mask, 40, sigma=0.2, radius=1)
    assert sorted(set((cells // 40).tolist())) == [19, 20, 21] and sorted(set((cells % 40).tolist())) == [19, 20, 21]
    # sigma scales the box
    small, _ = center_cells(mask, 40, sigma=0.02, radius=None)
    assert small.tolist() == [centre]


def test_targets_and_heatmap():
    person, part = two_person_scene()
    t = build_targets(person, part, C, grid=8, sigma=0.2, radius=1)
    assert t.ins_masks.shape == (2, 16, 16) and t.cate_masks.shape == (5, 16, 16)
    assert t.present.tolist() == [False, False, True, True, True]
    pairs = sorted(zip(t.pair_person.tolist(), t.pair_cate.tolist()))
    assert pairs == [(0, 2), (0, 3), (1, 2), (1, 4)]  # (person, part-1), paired explicitly
    for q, (p, k) in enumerate(zip(t.pair_person.tolist(), t.pair_cate.tolist())):
        full = ((person == p + 1) & (part == k + 1)).float()
        assert torch.equal(t.pair_masks[q], F.avg_pool2d(full[None, None], 4)[0, 0].ge(0.5).float())
    assert int(t.heat.sum()) == len(torch.unique(t.kernel_cells))
    assert t.heat.flatten()[t.bary_cells].eq(1).all()


def test_every_term_is_zero_at_a_perfect_prediction():
    person, part = two_person_scene()
    loss = UniParserLoss(num_classes=C, grid=8)
    targets = loss.targets(person[None], part[None])
    terms = loss(perfect_outputs(person, part, targets[0], 8), targets)
    assert set(terms) == {"center", "aux_ins", "aux_cate", "aux_neg", "par", "metric"}
    for name, value in terms.items():
        assert math.isfinite(float(value))
        assert float(value) < 1e-4, (name, float(value))


def test_terms_are_positive_and_weighted_for_a_wrong_prediction():
    person, part = two_person_scene()
    loss = UniParserLoss(num_classes=C, grid=8)
    targets = loss.targets(person[None], part[None])
    out = perfect_outputs(person, part, targets[0], 8)
    swapped = dict(out)
    swapped["ins_feats"] = torch.ones_like(out["ins_feats"]) / math.sqrt(8)  # every pixel alike
    swapped["cate_kernels"] = F.normalize(torch.ones(C - 1, 8), dim=1)     # every kernel alike
    swapped["center_logits"] = -out["center_logits"]
    bad = loss(swapped, targets)
    assert bad["aux_ins"] > 0.5 and bad["par"] > 0.3 and bad["center"] > 1.0
    # metric: 5 kernels all equal -> 20 off-diagonal ones, 2 persons alike -> 2; over (5 + 2)
    assert torch.isclose(bad["metric"], torch.tensor(22 / 7), atol=1e-4)
    heavy = UniParserLoss(num_classes=C, grid=8, par_weight=6.0, metric_weight=2.0)(swapped, targets)
    assert torch.isclose(heavy["par"], 2 * bad["par"]) and torch.isclose(heavy["metric"], 2 * bad["metric"])
    # Table 4(b): the instance and category auxiliary terms have their own weights (default: aux_weight)
    half = dict(swapped, cate_sim=0.5 * out["cate_sim"])  # category maps at half strength: Dice > 0
    base = loss(half, targets)
    split = UniParserLoss(num_classes=C, grid=8, aux_ins_weight=0.0, aux_cate_weight=6.0)(half, targets)
    assert base["aux_cate"] > 0.1 and base["aux_ins"] > 0.5
    assert float(split["aux_ins"]) == 0.0 and torch.isclose(split["aux_cate"], 2 * base["aux_cate"])


def test_absent_categories_l1_and_empty_image():
    person, part = two_person_scene()
    loss = UniParserLoss(num_classes=C, grid=8)
    targets = loss.targets(person[None], part[None])
    out = perfect_outputs(person, part, targets[0], 8)
    out["cate_sim"] = out["cate_sim"].clone()
    out["cate_sim"][0, 0] = -0.5  # absent category 1 at -0.5 everywhere: |.| = 0.5 per pixel
    assert torch.isclose(loss(out, targets)["aux_neg"], torch.tensor(3.0 * 0.5 / 2))  # mean over the 2 absent maps
    # an image without persons: finite terms, gradients still flow
    empty = loss.targets(torch.zeros(1, 64, 64, dtype=torch.long), torch.zeros(1, 64, 64, dtype=torch.long))
    feats = F.normalize(torch.randn(1, 8, 16, 16), dim=1).requires_grad_()
    terms = loss({"center_logits": torch.zeros(1, 1, 8, 8, requires_grad=True), "ins_feats": feats,
                  "cate_sim": torch.rand(1, C - 1, 16, 16), "cate_kernels": torch.eye(C - 1, 8)}, empty)
    assert all(math.isfinite(float(v.detach())) for v in terms.values())
    sum(terms.values()).backward()


def test_focal_and_metric_helpers():
    heat = torch.zeros(1, 4, 4)
    heat[0, 1, 1] = 1
    good = torch.where(heat > 0, 20.0, -20.0)[:, None]
    assert focal_center_loss(good, heat) < 1e-6
    assert focal_center_loss(torch.zeros(1, 1, 4, 4), heat) > 0.05
    assert metric_loss(torch.eye(3, 4), [torch.eye(2, 4)]) == 0


def reference_targets(maps, valid, c, grid, sigma, radius, stride=4):
    """The targets of one image written out literally, one person and one cell at a time (numpy)."""
    maps = np.asarray(maps)
    _, H, W = maps.shape
    h, w = H // stride, W // stride

    def down(mask):
        frac = mask.reshape(h, stride, w, stride).mean((1, 3))
        out = frac >= 0.5
        return (out if out.any() else frac > 0).astype(np.float32)

    persons = [m for m in maps if ((m > 0) & (m < c)).any()]
    heat, kernels, bary = np.zeros((grid, grid)), [], []
    for p, m in enumerate(persons):
        ys, xs = np.nonzero((m > 0) & (m < c))
        cy, cx = ys.mean() + 0.5, xs.mean() + 0.5
        bh, bw = ys.max() - ys.min() + 1, xs.max() - xs.min() + 1
        row, col = min(int(cy * grid / H), grid - 1), min(int(cx * grid / W), grid - 1)
        hh, hw = 0.5 * sigma * bh, 0.5 * sigma * bw
        top, bottom = int(np.floor((cy - hh) * grid / H)), int(np.floor((cy + hh) * grid / H))
        left, right = int(np.floor((cx - hw) * grid / W)), int(np.floor((cx + hw) * grid / W))
        top, bottom = max(top, row - radius, 0), min(bottom, row + radius, grid - 1)
        left, right = max(left, col - radius, 0), min(right, col + radius, grid - 1)
        for r in range(top, bottom + 1):
            for q in range(left, right + 1):
                heat[r, q] = 1
                kernels.append((p, r * grid + q))
        bary.append(row * grid + col)
    ins = [down((m > 0) & (m < c)) for m in persons]
    cate = [down(np.any([m == k for m in persons], 0)) if any((m == k).any() for m in persons) else np.zeros((h, w))
            for k in range(1, c)]
    pairs = [(p, k) for p, m in enumerate(persons) for k in range(1, c) if (m == k).any()]
    return {"heat": heat, "kernels": kernels, "bary": bary, "ins": np.array(ins), "cate": np.array(cate),
            "pairs": pairs, "pair_masks": np.array([down(persons[p] == k) for p, k in pairs]),
            "valid": valid.reshape(h, stride, w, stride).mean((1, 3)) >= 0.5}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_vectorised_targets_equal_the_literal_construction_with_overlapping_persons(seed):
    rng = np.random.default_rng(seed)
    c, H, W, grid = 7, 48, 64, 8
    maps = np.zeros((4, H, W), np.int64)
    for k, m in enumerate(maps[:3]):  # three persons, overlapping rectangles of random parts; the 4th has no pixel
        y, x = 4 + 6 * k + rng.integers(0, 4), 4 + 12 * k + rng.integers(0, 4)
        m[y:y + 24, x:x + 20] = rng.integers(1, c, (24, 20)) * (rng.random((24, 20)) < 0.9)
    maps[0, :2] = 255  # ignore values never count as a person's pixels
    valid = rng.random((H, W)) > 0.1
    t = build_targets_from_maps(torch.from_numpy(maps), torch.from_numpy(valid), c, grid=grid, sigma=0.3, radius=1)
    want = reference_targets(maps, valid, c, grid, 0.3, 1)
    assert ((maps[0] > 0) & (maps[1] > 0) & (maps[0] < c)).any()  # the scene does overlap
    np.testing.assert_array_equal(t.heat.numpy(), want["heat"])
    assert list(zip(t.kernel_person.tolist(), t.kernel_cells.tolist())) == want["kernels"]
    assert t.bary_cells.tolist() == want["bary"]
    np.testing.assert_array_equal(t.ins_masks.numpy(), want["ins"])
    np.testing.assert_array_equal(t.cate_masks.numpy(), want["cate"])
    assert list(zip(t.pair_person.tolist(), (t.pair_cate + 1).tolist())) == want["pairs"]
    np.testing.assert_array_equal(t.pair_masks.numpy(), want["pair_masks"])
    np.testing.assert_array_equal(t.valid.numpy().astype(bool), want["valid"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_targets_built_on_the_gpu_equal_the_cpu_ones():
    person, part = two_person_scene()
    cpu = build_targets(person, part, C, grid=8)
    gpu = build_targets(person.cuda(), part.cuda(), C, grid=8)
    for name, value in vars(gpu).items():
        assert value.is_cuda, name
        assert torch.equal(value.cpu(), getattr(cpu, name)), name
