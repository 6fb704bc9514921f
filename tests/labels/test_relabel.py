"""Constrained relabelling (CCP ground truth + a LIP model -> LIP labels): known answers on hand-made maps."""

import numpy as np
import pytest

from humanparse.errors import ConfigError
from humanparse.labels import get_label_space
from humanparse.labels.relabel import RelabelTable

CCP, LIP = get_label_space("ccp"), get_label_space("lip")
C = CCP.names.index
L = LIP.names.index


def _scores(shape, favour: dict[str, float], base: float = 0.0) -> np.ndarray:
    s = np.full((LIP.num_classes, *shape), base, dtype=np.float32)
    for name, value in favour.items():
        s[L(name)] = value
    return s


def test_builtin_ccp_to_lip_covers_every_ccp_class():
    t = RelabelTable.builtin("ccp", "lip")
    assert t.candidates.any(1).all()
    assert t.candidates[C("hair")].nonzero()[0].tolist() == [L("hair")]
    assert set(t.candidates[C("skin")].nonzero()[0]) == {L(n) for n in ("face", "left-arm", "right-arm",
                                                                         "left-leg", "right-leg")}
    assert t.candidates[C("bag")].nonzero()[0].tolist() == [L("background")]  # LIP leaves bags unlabelled


def test_decided_classes_follow_the_ground_truth_whatever_the_model_says():
    t = RelabelTable.builtin("ccp", "lip")
    src = np.array([[C("hair"), C("bag"), 255], [C("jeans"), C("dress"), C("background")]], dtype=np.uint8)
    scores = _scores(src.shape, {"face": 10.0})  # the model says face everywhere
    out = t.relabel(src, scores)
    assert out.tolist() == [[L("hair"), 0, 255], [L("pants"), L("dress"), 0]]
    assert t.relabel(src, None).tolist() == out.tolist()  # nothing open: no model needed


def test_open_classes_take_the_best_allowed_candidate_never_a_forbidden_one():
    t = RelabelTable.builtin("ccp", "lip")
    src = np.full((2, 2), C("skin"), dtype=np.uint8)
    src[0, 0] = C("blouse")
    scores = _scores(src.shape, {"hat": 9.0, "face": 5.0, "left-leg": 1.0})  # hat is no candidate of skin
    out = t.relabel(src, scores)
    assert out[0, 0] == L("upper-clothes")
    assert (out.ravel()[1:] == L("face")).all()
    with pytest.raises(ValueError, match="needs a model's target scores"):
        t.relabel(src, None)


def test_the_side_comes_from_where_the_part_lies_not_from_the_model():
    """A person facing the camera: her left arm is on the image's right. The model calls both arms 'right-arm'
    (its weakest call); the part (arm) is kept, the side is set by position."""
    t = RelabelTable.builtin("ccp", "lip")
    src = np.zeros((6, 11), dtype=np.uint8)
    src[:, 4:7] = C("blouse")        # the torso: centre column 5
    src[1:4, 1] = C("skin")          # arm on the image's left
    src[1:4, 9] = C("skin")          # arm on the image's right
    scores = _scores(src.shape, {"right-arm": 3.0, "left-arm": 1.0, "face": 0.5})
    out = t.relabel(src, scores)
    assert (out[1:4, 1] == L("right-arm")).all()
    assert (out[1:4, 9] == L("left-arm")).all()
    # legs touching across the centre line are split at it
    src2 = src.copy()
    src2[5, 2:9] = C("skin")
    out2 = t.relabel(src2, _scores(src2.shape, {"right-leg": 3.0}))
    assert (out2[5, 2:5] == L("right-leg")).all() and (out2[5, 6:9] == L("left-leg")).all()


def test_a_garment_region_takes_one_class_by_summed_scores():
    t = RelabelTable.builtin("ccp", "lip")
    src = np.zeros((4, 9), dtype=np.uint8)
    src[:, 0:4] = C("jacket")        # region A
    src[:, 6:9] = C("jacket")        # region B, not connected to A
    scores = _scores(src.shape, {})
    # A: most pixels lean slightly to coat, a few strongly to upper-clothes -> the sum says upper-clothes
    scores[L("coat"), :, 0:4] = 1.0
    scores[L("upper-clothes"), :, 0:4] = 0.0
    scores[L("upper-clothes"), :, 0] = 5.0
    # B: coat
    scores[L("coat"), :, 6:9] = 2.0
    out = t.relabel(src, scores)
    assert (out[:, 0:4] == L("upper-clothes")).all()
    assert (out[:, 6:9] == L("coat")).all()


def test_a_table_must_name_every_source_class(tmp_path):
    bad = tmp_path / "t.yaml"
    bad.write_text("source: ccp\ntarget: lip\ncandidates: {background: [background]}\n")
    with pytest.raises(ConfigError, match="every ccp class needs one entry; missing: accessories"):
        RelabelTable.from_yaml(bad)
    with pytest.raises(ConfigError, match="no relabel table lip -> ccp"):
        RelabelTable.builtin("lip", "ccp")
