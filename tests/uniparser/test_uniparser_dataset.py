"""UniParser training items from real instance data: MHPv2 (one part map per person, overlapping
persons kept apart) on a fixture in the exact MHPv2 release layout."""

import numpy as np
import pytest
import torch
from PIL import Image

from humanparse.labels import get_label_space
from humanparse.uniparser.dataset import collate_instances
from humanparse.uniparser.recipe import UniParserRecipe

H, W = 40, 48


def write_mhpv2(root):
    """LV-MHP-v2 layout: train/images/<id>.jpg, train/parsing_annos/<id>_<NN>_<KK>.png, list/train.txt.
    Image 7 has two persons that overlap on rows 10-29, cols 20-27 (A in front: both files label
    those pixels). A's file is stored with three identical channels, as some release files are."""
    (root / "train" / "images").mkdir(parents=True)
    (root / "train" / "parsing_annos").mkdir()
    (root / "list").mkdir()
    (root / "list" / "train.txt").write_text("7\n")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (H, W, 3), dtype=np.uint8)).save(
        root / "train" / "images" / "7.jpg")
    a = np.zeros((H, W), np.uint8)
    a[4:36, 8:28] = 10          # A: torso-ish part 10
    a[4:10, 8:28] = 5           # A: part 5 (a left part; 5 <-> 6 is an MHPv2 flip pair)
    b = np.zeros((H, W), np.uint8)
    b[10:30, 20:44] = 12        # B: part 12, under A on cols 20-27
    b[32:36, 20:44] = 255       # B: ignore (exactly one row of stride-4 cells)
    Image.fromarray(np.repeat(a[..., None], 3, axis=2)).save(root / "train" / "parsing_annos" / "7_02_01.png")
    Image.fromarray(b).save(root / "train" / "parsing_annos" / "7_02_02.png")
    return a, b


def recipe_for(root, **data):
    cfg = {"recipe": "uniparser", "seed": 0,
           "model": {"backbone": {"name": "test_resnet"}, "fpn_dim": 16, "feat_dim": 16, "S": 8, "gn_groups": 4},
           "data": {"label_space": "mhpv2", "real_train": [{"reader": "mhpv2", "root": str(root), "split": "train"}],
                    "flip_prob": 0.0, **data}}
    return UniParserRecipe(cfg, root=root)


def test_mhpv2_persons_stay_separate_where_they_overlap(tmp_path):
    a, b = write_mhpv2(tmp_path)
    recipe = recipe_for(tmp_path)
    data = recipe.build_train_dataset()
    item = data[0]
    maps = item["person_parts"].numpy()
    assert maps.shape == (2, H, W)
    assert np.array_equal(maps[0], a) and np.array_equal(maps[1], b)   # exactly the files, overlap included
    # labelled overlap: rows 10-29 x cols 20-27 = 20 * 8 = 160. B's ignore rows 32-35 also lie under
    # A on cols 20-27 (4 * 8 = 32 more), so "b > 0" alone (which counts 255) would give 192.
    overlap = (a > 0) & (b > 0) & (b != 255)
    assert overlap.sum() == 20 * 8
    assert ((a > 0) & (b == 255)).sum() == 4 * 8
    batch = collate_instances([item])
    assert batch["person_parts"][0].shape == (2, 64, 64)
    method = recipe.build_method(model := recipe.build_model())
    [t] = method.loss.targets(batch["person"], batch["part"], batch["person_parts"])
    # both persons own the overlap (a first-wins merge would give it to A only)
    ins = t.ins_masks.bool()
    # A: cells rows 1-8, cols 2-6; B: rows 2-7 (rows 10-11 and 28-29 fill half a cell: on), cols 5-10
    assert len(ins) == 2 and (ins[0] & ins[1]).sum() == 6 * 2
    pairs = sorted(zip(t.pair_person.tolist(), (t.pair_cate + 1).tolist()))
    assert pairs == [(0, 5), (0, 10), (1, 12)]
    b_mask = t.pair_masks[pairs.index((1, 12))].bool()
    assert b_mask[2:8, 5:11].all() and b_mask.sum() == 6 * 6
    # category 12's mask covers the pixels hidden behind A too; B's ignore rows do not count
    assert t.cate_masks[11].bool()[10 // 4:30 // 4, 20 // 4:28 // 4].all()
    # B's ignore rows count nowhere, except under A (cols 20-27), whose own label covers them
    assert t.valid[32 // 4, 28 // 4:44 // 4].sum() == 0 and t.valid[32 // 4, :28 // 4].all()
    terms = method.training_step(model, batch)
    assert all(torch.isfinite(v) for v in terms.values())


def test_mhpv2_flip_swaps_left_right_in_every_person_map(tmp_path):
    a, b = write_mhpv2(tmp_path)
    item = recipe_for(tmp_path, flip_prob=1.0).build_train_dataset()[0]
    lut = np.arange(256)
    perm = get_label_space("mhpv2").flip_permutation
    lut[: len(perm)] = perm
    maps = item["person_parts"].numpy()
    assert np.array_equal(maps[0], lut[a[:, ::-1]]) and np.array_equal(maps[1], lut[b[:, ::-1]])
    assert (maps[0] == 6).any() and not (maps[0] == 5).any()


def test_short_side_jitter_draws_from_the_listed_sizes_with_a_long_side_cap(tmp_path):
    write_mhpv2(tmp_path)
    data = recipe_for(tmp_path, real_short_sides=[20, 24, 28], real_max_long_side=30).build_train_dataset()
    sizes = set()
    for epoch in range(30):
        data.set_epoch(epoch)
        item = data[0]
        sizes.add(tuple(item["person_parts"].shape[1:]))
        assert tuple(item["image"].shape[1:]) in sizes
    # short side 20 -> 20 x 24; 24 -> 24 x 29 (29 <= 30); 28 -> long side capped at 30 -> 25 x 30
    assert sizes == {(20, 24), (24, 29), (25, 30)}
    with pytest.raises(Exception, match="not both"):
        recipe_for(tmp_path, real_short_sides=[20], real_long_side=32).build_train_dataset()
