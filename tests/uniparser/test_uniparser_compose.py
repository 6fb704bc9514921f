import cv2
import numpy as np
import pytest

from humanparse.uniparser.compose import PersonCutout, SceneComposer, cutout_from_sample


def composer(cuts, flip6, **kw):
    args = dict(canvas=(96, 96), persons=(2, 5), height_range=(0.4, 0.9), flip_prob=0.5,
                flip_permutation=flip6, seed=7)
    args.update(kw)
    return SceneComposer(cuts, **args)


def render(cut: PersonCutout, entry: dict, flip6, canvas) -> np.ndarray:
    """Re-draw one pasted person's labels on an empty canvas from what the scene reports."""
    w, h = entry["size"]
    parts = cv2.resize(cut.parts, (w, h), interpolation=cv2.INTER_NEAREST)
    if entry["flipped"]:
        parts = flip6[parts[:, ::-1]].astype(np.uint8)
    out = np.zeros(canvas, np.uint8)
    x, y = entry["offset"]
    H, W = canvas
    y0, x0, y1, x1 = max(y, 0), max(x, 0), min(y + h, H), min(x + w, W)
    if y1 > y0 and x1 > x0:
        out[y0:y1, x0:x1] = parts[y0 - y:y1 - y, x0 - x:x1 - x]
    return out


def test_same_seed_same_scene_other_seed_other_scene(synthetic_cutouts, flip6):
    cuts = synthetic_cutouts()
    a, b = composer(cuts, flip6).compose(3), composer(cuts, flip6).compose(3)
    assert np.array_equal(a.image, b.image) and np.array_equal(a.parts, b.parts)
    assert np.array_equal(a.person_ids, b.person_ids) and a.pasted == b.pasted
    c = composer(cuts, flip6, seed=8).compose(3)
    d = composer(cuts, flip6).compose(4)
    assert not np.array_equal(a.image, c.image) and not np.array_equal(a.image, d.image)


def test_labels_are_exact_and_later_persons_occlude_earlier_ones(synthetic_cutouts, flip6):
    cuts = synthetic_cutouts()
    comp = composer(cuts, flip6)
    overlaps = flips = 0
    for index in range(25):
        scene = comp.compose(index)
        layers = [render(cuts[e["cutout"]], e, flip6, comp.canvas) for e in scene.pasted]
        stack = np.stack(layers)                                  # [n, H, W] labels of each pasted person
        covered = stack != 0
        expect_owner = np.where(covered.any(0), covered.shape[0] - np.argmax(covered[::-1], 0), 0)  # last painter
        final_id = np.array([0] + [e["id"] for e in scene.pasted])
        assert np.array_equal(scene.person_ids, final_id[expect_owner])
        top = np.take_along_axis(stack, np.maximum(expect_owner - 1, 0)[None], 0)[0]
        has_id = scene.person_ids > 0
        assert np.array_equal(scene.parts[has_id], top[has_id])    # each person pixel: its own source label
        assert (scene.parts[has_id] != 0).all()
        assert (scene.parts[~covered.any(0)] == 0).all()         # background stays background
        overlaps += int((covered.sum(0) > 1).sum() > 0)
        flips += sum(e["flipped"] for e in scene.pasted)
        # person count and id numbering
        kept = [e for e in scene.pasted if e["id"] > 0]
        assert [e["id"] for e in kept] == list(range(1, len(kept) + 1))
        assert set(np.unique(scene.person_ids)) - {0} == {e["id"] for e in kept}
        assert all(e["visible"] == int((scene.person_ids == e["id"]).sum()) for e in kept)
        assert scene.persons == kept
    assert overlaps > 5 and flips > 5  # the test did exercise occlusion and flips


def test_fully_occluded_persons_are_dropped():
    square = PersonCutout(image=np.full((20, 20, 3), 9, np.uint8), parts=np.full((20, 20), 3, np.uint8))
    comp = SceneComposer([square], canvas=(64, 64), persons=(3, 3), height_range=(1.0, 1.0),
                         flip_prob=0.0, max_outside=0.0, seed=0)
    scene = comp.compose(0)
    assert [e["id"] for e in scene.pasted] == [0, 0, 1]  # the last one covers the canvas
    assert len(scene.persons) == 1 and (scene.person_ids == 1).all() and (scene.parts == 3).all()


def test_min_visible_drops_slivers_as_ignore_never_background(synthetic_cutouts, flip6):
    cuts = synthetic_cutouts()
    comp = composer(cuts, flip6, persons=(5, 5), min_visible=400)
    found = False
    for index in range(20):
        scene = comp.compose(index)
        for e in scene.pasted:
            if e["id"] == 0 and e["visible"] > 0:
                found = True
        assert all(e["visible"] >= 400 for e in scene.persons)
        ignored = scene.parts == 255
        assert (scene.person_ids[ignored] == 0).all()
        assert int(ignored.sum()) == sum(e["visible"] for e in scene.pasted if e["id"] == 0)
    assert found


def test_cutout_maps_labels_and_keeps_every_person_pixel():
    label = np.zeros((10, 8), np.uint8)
    label[2:9, 1:6] = 1
    label[4:6, 2:4] = 2
    label[7, 1] = 255
    image = np.zeros((10, 8, 3), np.uint8)
    table = np.array([0, 5, 0])  # class 2 has no target class -> 255, still a person pixel
    cut = cutout_from_sample(image, label, label_map=table)
    assert cut.parts.shape == (7, 5)
    assert set(np.unique(cut.parts).tolist()) == {0, 5, 255}
    assert int((cut.parts == 255).sum()) == 4       # the class-2 pixels
    assert cut.parts[7 - 2, 1 - 1] == 0             # a source ignore pixel is not a person pixel: not pasted
    assert int((cut.parts == 5).sum()) == 7 * 5 - 4 - 1
    assert cutout_from_sample(image, np.zeros((10, 8), np.uint8)) is None
    with pytest.raises(ValueError):
        SceneComposer([cut], flip_prob=0.5)  # flipping needs a flip permutation


@pytest.mark.parametrize("name,space", [("lip", "lip"), ("ccp", "ccp")])
def test_real_single_person_samples_become_exact_cutouts(name, space):
    from humanparse.data.io import read_image, read_label
    from humanparse.data.sample_data import sample_records
    from humanparse.labels import get_label_space

    ls = get_label_space(space)
    for rec in sample_records(name)[:3]:
        image, label = read_image(rec.image, apply_exif=False), read_label(rec.label, ls.num_classes)
        cut = cutout_from_sample(image, label, label_map=ls.mapping_to(ls))
        person = (label != 0) & (label != 255)
        assert int(cut.mask.sum()) == int(person.sum())          # every non-background pixel, nothing else
        ys, xs = np.nonzero(person)
        crop = label[ys.min():ys.max() + 1, xs.min():xs.max() + 1]
        assert np.array_equal(cut.parts[cut.mask], crop[cut.mask])  # identity mapping keeps the labels
    scene = SceneComposer([cut], canvas=(64, 64), persons=(2, 2), flip_permutation=ls.flip_permutation,
                          seed=0).compose(0)
    assert set(np.unique(scene.parts[scene.person_ids > 0])) <= set(range(1, ls.num_classes)) | {255}


def test_person_free_background_removes_the_person():
    from humanparse.uniparser.compose import person_free_background

    image = np.zeros((120, 80, 3), np.uint8)
    image[...] = (0, 0, 255)                      # a blue scene ...
    label = np.zeros((120, 80), np.uint8)
    label[30:100, 25:55] = 5                      # ... with a red labelled person
    label[20:30, 30:50] = 255                     # and ignore pixels, which belong to people too
    image[label != 0] = (255, 0, 0)
    image[29:101, 24:56][..., 0] = np.maximum(image[29:101, 24:56][..., 0], 128)  # a soft halo at the border
    out = person_free_background(image, label, max_side=60)
    assert out.shape == (60, 40, 3)
    assert out[..., 0].max() < 40 and out[..., 2].min() > 200   # no trace of the person: blue everywhere


def test_background_photos_fill_every_non_person_pixel(synthetic_cutouts, flip6):
    cuts = synthetic_cutouts()
    green = np.zeros((50, 70, 3), np.uint8)
    green[...] = (0, 200, 0)
    comp = composer(cuts, flip6, backgrounds=[green], background_prob=1.0)
    for index in range(5):
        scene = comp.compose(index)
        bg = scene.person_ids == 0
        assert bg.any() and (scene.image[bg] == (0, 200, 0)).all()
        again = comp.compose(index)
        assert np.array_equal(scene.image, again.image) and np.array_equal(scene.parts, again.parts)
    plain = composer(cuts, flip6)  # without photos the synthetic field stays (no constant green)
    assert not (plain.compose(0).image[plain.compose(0).person_ids == 0] == (0, 200, 0)).all()
    half = composer(cuts, flip6, backgrounds=[green], background_prob=0.5)
    used = [(half.compose(i).image[half.compose(i).person_ids == 0] == (0, 200, 0)).all() for i in range(40)]
    assert 8 <= sum(used) <= 32


def test_recipe_builds_background_photos_from_config():
    from humanparse.config import load_config
    from humanparse.uniparser.recipe import UniParserRecipe

    cfg = load_config("configs/uniparser_tiny_cpu.yaml",
                      ["data.backgrounds=[{reader: shared, root: 'samples://ccp', split: all}]", "data.background_prob=1"])
    comp = UniParserRecipe(cfg).composer("sources", 0)
    assert comp.num_backgrounds > 0 and comp.background_prob == 1.0
    scene = comp.compose(0)
    photo = comp._background(0)
    assert photo.dtype == np.uint8 and max(photo.shape[:2]) <= 2 * 128
    assert scene.image[scene.person_ids == 0].std() > 1  # a real photo, not an empty canvas
    assert UniParserRecipe(load_config("configs/uniparser_tiny_cpu.yaml")).composer("val_sources", 1).num_backgrounds == 0
