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
