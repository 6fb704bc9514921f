"""The ``sst`` method: terms, weights, gradients, ablation switches, config errors."""

import numpy as np
import pytest
import torch

import humanparse.labels
from humanparse.engine.methods import build_method
from humanparse.engine.supervised import per_domain_cross_entropy
from humanparse.errors import ConfigError
from humanparse.sst import SSTUniversal

NUM_CLASSES = {"coarse": 3, "fine": 5}
ADJ = {"coarse": np.eye(3, dtype=np.uint8), "fine": np.ones((5, 5), dtype=np.uint8)}
PRIORS = {("coarse", "fine"): np.full((5, 3), 0.5, dtype=np.float32)}


def _method(**kwargs):
    torch.manual_seed(0)
    return SSTUniversal(feature_dim=8, num_classes=NUM_CLASSES, adjacency=ADJ, static_priors=PRIORS, **kwargs)


@pytest.fixture
def setup(fake_net_cls, batch_factory):
    torch.manual_seed(0)
    net = fake_net_cls(NUM_CLASSES)
    batch = batch_factory(["coarse", "fine", "fine", "coarse"], NUM_CLASSES)
    return net, batch


def test_one_step_is_finite_with_named_weighted_terms(setup):
    net, batch = setup
    method = _method()
    terms = method.training_step(net, batch)
    assert set(terms) == {"seg/coarse", "seg/fine", "aux/coarse", "aux/fine",
                          "scr_dataset/coarse-fine", "scr_img/coarse-fine"}
    assert all(t.dim() == 0 and torch.isfinite(t) for t in terms.values())
    ce = per_domain_cross_entropy(net(batch["image"])["logits"], batch["label"], batch["domain"])
    assert torch.allclose(terms["seg/fine"], 10.0 * ce["fine"])
    assert 0.0 <= float(terms["scr_dataset/coarse-fine"].detach()) <= 5.0 * 4.0
    assert 0.0 <= float(terms["scr_img/coarse-fine"].detach()) <= 5.0 * 2.0 * 3 * 2.0


def test_gradients_reach_x0_ws_and_sm_projections(setup):
    net, batch = setup
    method = _method()
    sum(method.training_step(net, batch).values()).backward()
    mst = method.mst["coarse-fine"]
    checked = {
        "X_0": method.mse["fine"].embedding,
        "W_s": method.msa["coarse"].proj.weight,
        "SP f_Q": method.mse["coarse"].layers[0].query.weight,
        "SM_0 q": mst.static_one_to_two.query.weight,
        "SM_0 v (2->1)": mst.static_two_to_one.value.weight,
        "SM_3 k": mst.dynamic_one_to_two[2].key.weight,
        "SM_1 v (2->1)": mst.dynamic_two_to_one[0].value.weight,
        "W_l^(1)": mst.prior_proj_1[1].weight,
        "W_l^(2)": mst.prior_proj_2[2].weight,
        "network": net.stem.weight,
    }
    for name, p in checked.items():
        assert p.grad is not None and torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    # every parameter the method owns gets a gradient (nothing built that is unused)
    assert all(p.grad is not None for p in method.parameters())


@pytest.mark.parametrize("off, absent", [
    ("use_aux", {"aux/coarse", "aux/fine"}),
    ("use_scr_dataset", {"scr_dataset/coarse-fine"}),
    ("use_scr_img", {"scr_img/coarse-fine"}),
])
def test_ablation_switch_removes_its_terms(setup, off, absent):
    net, batch = setup
    terms = _method(**{off: False}).training_step(net, batch)
    full = {"seg/coarse", "seg/fine", "aux/coarse", "aux/fine", "scr_dataset/coarse-fine", "scr_img/coarse-fine"}
    assert set(terms) == full - absent


def test_all_switches_off_is_multi_datasets(setup):
    net, batch = setup
    method = _method(use_aux=False, use_intra_prior=False, use_scr_dataset=False, use_scr_img=False)
    assert list(method.parameters()) == []
    assert set(method.training_step(net, batch)) == {"seg/coarse", "seg/fine"}


def test_intra_prior_switch(setup):
    net, batch = setup
    assert _method().mse["coarse"].use_intra_prior
    method = _method(use_intra_prior=False, use_scr_dataset=False, use_scr_img=False)  # Table 6 "L_aux (None)"
    assert not method.mse["coarse"].use_intra_prior
    assert set(method.training_step(net, batch)) == {"seg/coarse", "seg/fine", "aux/coarse", "aux/fine"}


def test_batch_without_one_domain_skips_image_level_only(fake_net_cls, batch_factory):
    net = fake_net_cls(NUM_CLASSES)
    terms = _method().training_step(net, batch_factory(["fine", "fine"], NUM_CLASSES))
    assert set(terms) == {"seg/fine", "aux/fine", "scr_dataset/coarse-fine"}


def test_weights_scale_terms(setup):
    net, batch = setup
    a = _method().training_step(net, batch)
    b = _method(seg_weight=1.0, aux_weight=2.0, scr_weight=1.0).training_step(net, batch)
    assert torch.allclose(a["seg/coarse"], 10 * b["seg/coarse"])
    assert torch.allclose(2 * a["aux/fine"], b["aux/fine"])
    assert torch.allclose(a["scr_img/coarse-fine"], 5 * b["scr_img/coarse-fine"])


class _Space:
    def __init__(self, name, n):
        self.name, self.num_classes = name, n
        self.adjacency = np.ones((n, n), dtype=np.uint8)


def test_from_config_builds_and_rejects_bad_keys(fake_net_cls, monkeypatch):
    net = fake_net_cls(NUM_CLASSES)
    spaces = {"coarse": _Space("coarse", 3), "fine": _Space("fine", 5)}
    calls = []

    def fake_similarity(src, dst):
        calls.append((src.name, dst.name))
        return np.full((dst.num_classes, src.num_classes), 2.0, dtype=np.float32)  # clipped to 1

    monkeypatch.setattr(humanparse.labels, "static_similarity", fake_similarity)
    method = build_method("sst", {"pairing": "progressive"}, model=net, label_spaces=spaces)
    assert isinstance(method, SSTUniversal) and calls == [("coarse", "fine")]
    assert method.mst["coarse-fine"].static_prior.max() == 1.0
    assert (method.seg_weight, method.aux_weight, method.scr_weight) == (10.0, 1.0, 5.0)
    with pytest.raises(ConfigError, match="use_scr_img"):
        build_method("sst", {"use_scr_imgs": False}, model=net, label_spaces=spaces)
    with pytest.raises(ConfigError, match="true or false"):
        build_method("sst", {"use_aux": "no"}, model=net, label_spaces=spaces)
    with pytest.raises(ConfigError, match="graphonomy"):  # no Graphonomy matrix for these domains
        build_method("sst", {"static_prior": "graphonomy"}, model=net, label_spaces=spaces)
    with pytest.raises(ConfigError, match="no head"):
        build_method("sst", {}, model=net, label_spaces={**spaces, "extra": _Space("extra", 4)})


def test_state_dict_holds_learned_parameters_only(setup):
    keys = _method().state_dict().keys()
    assert not any(k.endswith(("adjacency", "static_prior")) for k in keys)
    assert "mse.fine.embedding" in keys and "msa.coarse.proj.weight" in keys


def test_step_under_bf16_autocast_is_finite(setup):
    net, batch = setup
    method = _method()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = method.training_step(net, batch)
    total = sum(terms.values())
    total.backward()
    assert torch.isfinite(total) and method.mse["coarse"].embedding.grad is not None
