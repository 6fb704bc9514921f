"""The ``sst`` method: terms, weights, gradients, ablation switches, config errors."""

import numpy as np
import pytest
import torch

import humanparse.labels
from humanparse.engine.methods import build_method
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
    # L_seg by hand: the fine images (rows 1, 2), logits up-sampled bilinearly, plain cross-entropy
    logits = net(batch["image"])["logits"]["fine"][[1, 2]]
    up = torch.nn.functional.interpolate(logits, size=(32, 32), mode="bilinear", align_corners=False)
    expected = torch.nn.functional.cross_entropy(up, batch["label"][[1, 2]], ignore_index=255)
    torch.testing.assert_close(terms["seg/fine"], 10.0 * expected)
    # Eq. 8 + Eq. 10 by hand from X_0 and the SM_0 weights
    mst = method.mst["coarse-fine"]
    x1, x2 = method.mse["coarse"].embedding, method.mse["fine"].embedding
    prior = torch.as_tensor(PRIORS[("coarse", "fine")])
    one_to_two = _hand_mapping(mst.static_one_to_two, x1, x2, prior)
    two_to_one = _hand_mapping(mst.static_two_to_one, x2, x1, prior.T)
    expected = _hand_distance(x1, two_to_one) + _hand_distance(x2, one_to_two)
    torch.testing.assert_close(terms["scr_dataset/coarse-fine"], 5.0 * expected, rtol=1e-5, atol=1e-6)


def _hand_mapping(layer, source, target, prior, presence=None):
    """(softmax(q(target) k(source)^T / sqrt(D)), absent sources masked) * prior, times v(source)."""
    q = target @ layer.query.weight.T + layer.query.bias
    k = source @ layer.key.weight.T + layer.key.bias
    v = source @ layer.value.weight.T + layer.value.bias
    scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5
    if presence is not None:
        scores = scores + (presence[..., None, :] - 1.0) * 1e9
    return (torch.softmax(scores, -1) * prior) @ v


def _hand_distance(original, mapped, presence=None):
    """Mean over categories (all, or the present ones) of 1 - cosine."""
    # a zero vector (the mapped row of a category absent from the image) has cosine 0, distance 1
    cos = (original * mapped).sum(-1) / (original.norm(dim=-1).clamp(min=1e-8) * mapped.norm(dim=-1).clamp(min=1e-8))
    if presence is None:
        return (1.0 - cos).mean(-1)
    return ((1.0 - cos) * presence).sum(-1) / presence.sum(-1).clamp(min=1)


@pytest.mark.parametrize("categories", ["all", "present"])
def test_image_level_scr_through_pairing_matches_a_hand_computation(fake_net_cls, batch_factory, categories):
    """Eq. 9 + Eq. 11 for the batch [c, c, f, c, f]: pairs (0, 2), (1, 4), (3, 2) (the shorter domain is
    cycled); each term is computed by hand from that image pair's S_l and X_l and averaged over pairs.
    ``all`` is the paper's 1/Z over every category; ``present`` averages over the image's categories."""
    from humanparse.sst.universal import encode_domain

    torch.manual_seed(0)
    net = fake_net_cls(NUM_CLASSES)
    domains = ["coarse", "coarse", "fine", "coarse", "fine"]
    batch = batch_factory(domains, NUM_CLASSES)
    batch["label"][0] = torch.where(batch["label"][0] == 2, 0, batch["label"][0])  # coarse class 2 absent in image 0
    method = _method(use_scr_dataset=False, scr_img_categories=categories)
    got = method.training_step(net, batch)["scr_img/coarse-fine"]

    features = net(batch["image"])["features"]
    enc = {}
    for d, rows in (("coarse", [0, 1, 3]), ("fine", [2, 4])):
        sub = {k: v[rows] for k, v in features.items()}
        enc[d] = (rows, encode_domain(method.msa[d], method.mse[d], sub, batch["label"][rows]))
    mst = method.mst["coarse-fine"]
    total = 0.0
    for i, j in ((0, 2), (1, 4), (3, 2)):
        (rows_c, e_c), (rows_f, e_f) = enc["coarse"], enc["fine"]
        a, b = rows_c.index(i), rows_f.index(j)
        for scale in (1, 2, 3):
            s_c, s_f = e_c.semantics[scale - 1], e_f.semantics[scale - 1]
            x_c, x_f = e_c.mse.representations[scale][a], e_f.mse.representations[scale][b]
            m_dyn = (s_f.features[b] @ mst.prior_proj_2[scale - 1].weight.T) @ (
                s_c.features[a] @ mst.prior_proj_1[scale - 1].weight.T).T  # Eq. 9, [Z_f, Z_c]
            c_to_f = _hand_mapping(mst.dynamic_one_to_two[scale - 1], x_c, x_f, m_dyn, s_c.presence[a])
            f_to_c = _hand_mapping(mst.dynamic_two_to_one[scale - 1], x_f, x_c, m_dyn.T, s_f.presence[b])
            p_c = None if categories == "all" else s_c.presence[a]
            p_f = None if categories == "all" else s_f.presence[b]
            total = total + _hand_distance(x_c, f_to_c, p_c) + _hand_distance(x_f, c_to_f, p_f)
    torch.testing.assert_close(got, 5.0 * total / 3, rtol=1e-5, atol=1e-6)


def test_scr_dataset_alone_is_refused(fake_net_cls):
    """use_scr_dataset without use_aux / use_scr_img trains only X_0 and SM_0 (nothing reaches the network)."""
    with pytest.raises(ConfigError, match="never reach the parsing network"):
        _method(use_aux=False, use_scr_img=False)
    net = fake_net_cls(NUM_CLASSES)
    spaces = {"coarse": _Space("coarse", 3), "fine": _Space("fine", 5)}
    with pytest.raises(ConfigError, match="use_aux: true"):
        build_method("sst", {"use_aux": False, "use_scr_img": False}, model=net, label_spaces=spaces)
    assert set(_method(use_aux=False, use_scr_dataset=False, use_scr_img=False).msa) == set()  # the baseline is fine
    with pytest.raises(ConfigError, match="scr_img_categories"):
        build_method("sst", {"scr_img_categories": "some"}, model=net, label_spaces=spaces)


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


def test_step_under_bf16_autocast_is_close_to_float32(setup):
    """Under bf16 autocast every term stays within 2 % of its float32 value (the attention of Eq. 6, 8, 9
    runs in float32), and the gradient of X_0 points the same way (cosine > 0.99)."""
    net, batch = setup
    method = _method()
    ref = method.training_step(net, batch)
    sum(ref.values()).backward()
    grad32 = method.mse["coarse"].embedding.grad.clone()
    method.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        terms = method.training_step(net, batch)
    sum(terms.values()).backward()
    assert set(terms) == set(ref)
    for name in ref:
        torch.testing.assert_close(terms[name].float(), ref[name], rtol=0.02, atol=1e-3, msg=name)
    grad16 = method.mse["coarse"].embedding.grad
    assert torch.nn.functional.cosine_similarity(grad16.flatten(), grad32.flatten(), dim=0) > 0.99
