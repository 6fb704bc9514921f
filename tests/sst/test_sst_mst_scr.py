"""MST (Eq. 8-9) and SCR (Eq. 10-11)."""

import torch

from humanparse.sst.mst import MultiScaleSemanticTransfer, SemanticMapping
from humanparse.sst.scr import consistency, scr_dataset, scr_image

D, Z1, Z2 = 5, 3, 4


def test_scr_zero_for_identical_two_for_opposite():
    x = torch.randn(Z1, D)
    assert torch.allclose(consistency(x, x), torch.tensor(0.0), atol=1e-6)
    assert torch.allclose(consistency(x, -x), torch.tensor(2.0), atol=1e-6)
    y = torch.randn(Z2, D)
    assert torch.allclose(scr_dataset(x, y, y, x), torch.tensor(0.0), atol=1e-6)
    assert torch.allclose(scr_dataset(x, y, -y, -x), torch.tensor(4.0), atol=1e-6)  # two directions


def test_image_scr_follows_eq_11_dividing_by_z_by_default():
    """Eq. 11 as written: (1/Z) sum over all Z categories, absent ones included."""
    x = torch.randn(2, Z1, D)
    mapped = x.clone()
    mapped[:, 0] = -x[:, 0]                    # category 0 opposite (distance 2), others identical
    presence = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    y = torch.randn(2, Z2, D)
    # per scale: (2 / 3) for domain 1 in both images (absent or not), 0 for domain 2; 3 scales
    total = scr_image([x] * 3, [y] * 3, [y] * 3, [mapped] * 3, [presence] * 3, [torch.ones(2, Z2)] * 3)
    assert torch.allclose(total, torch.tensor(3 * 2.0 / 3), atol=1e-6)


def test_image_scr_averages_over_present_categories_only():
    x = torch.randn(2, Z1, D)
    mapped = x.clone()
    mapped[:, 0] = -x[:, 0]                    # category 0 opposite (distance 2), others identical
    presence = torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    per_image = consistency(x, mapped, presence)
    assert torch.allclose(per_image, torch.tensor([1.0, 0.0]), atol=1e-6)   # (2 + 0) / 2 and 0 / 2
    y = torch.randn(2, Z2, D)
    ones = torch.ones(2, Z2)
    # 3 scales x (mean over pairs of 0.5 + 0)
    total = scr_image([x] * 3, [y] * 3, [y] * 3, [mapped] * 3, [presence] * 3, [ones] * 3, categories="present")
    assert torch.allclose(total, torch.tensor(1.5), atol=1e-6)


def test_dynamic_prior_shape_and_value():
    mst = MultiScaleSemanticTransfer(D, Z1, Z2, static_prior=torch.rand(Z2, Z1))
    with torch.no_grad():
        for proj in (*mst.prior_proj_1, *mst.prior_proj_2):
            proj.weight.copy_(torch.eye(D))
    s1, s2 = torch.randn(3, Z1, D), torch.randn(3, Z2, D)
    m = mst.dynamic_prior(2, s1, s2)
    assert m.shape == (3, Z2, Z1)
    assert torch.allclose(m, s2 @ s1.transpose(1, 2), atol=1e-5)


def _sm_by_hand(layer, source, target, prior, presence):
    q = target @ layer.query.weight.T + layer.query.bias
    k = source @ layer.key.weight.T + layer.key.bias
    v = source @ layer.value.weight.T + layer.value.bias
    scores = q @ k.transpose(-1, -2) / D ** 0.5 + (presence[..., None, :] - 1.0) * 1e9
    return (torch.softmax(scores, -1) * prior) @ v


def test_image_level_mapping_values_both_directions():
    """Eq. 9 by hand for two image pairs: 1->2 uses M_dyn [Z2, Z1] and masks absent domain-1 keys;
    2->1 uses M_dyn^T and masks absent domain-2 keys; pair p only sees row p of both sides."""
    torch.manual_seed(0)
    mst = MultiScaleSemanticTransfer(D, Z1, Z2, static_prior=torch.rand(Z2, Z1))
    x1, x2 = torch.randn(2, Z1, D), torch.randn(2, Z2, D)
    s1, s2 = torch.randn(2, Z1, D), torch.randn(2, Z2, D)
    p1 = torch.tensor([[1.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    p2 = torch.tensor([[1.0, 1.0, 1.0, 1.0], [0.0, 1.0, 1.0, 0.0]])
    img = mst.image_level(2, x1, x2, s1, s2, p1, p2)
    for p in range(2):
        m = (s2[p] @ mst.prior_proj_2[1].weight.T) @ (s1[p] @ mst.prior_proj_1[1].weight.T).T
        torch.testing.assert_close(img.one_to_two[p], _sm_by_hand(mst.dynamic_one_to_two[1], x1[p], x2[p], m, p1[p]))
        torch.testing.assert_close(img.two_to_one[p], _sm_by_hand(mst.dynamic_two_to_one[1], x2[p], x1[p], m.T, p2[p]))
    out = mst.dataset_level(x1[0], x2[0])
    ones = torch.ones(Z1)
    torch.testing.assert_close(out.one_to_two, _sm_by_hand(mst.static_one_to_two, x1[0], x2[0], mst.static_prior, ones))


def test_static_prior_multiplies_after_softmax_and_absent_sources_are_masked():
    sm = SemanticMapping(D)
    prior = torch.rand(Z2, Z1)
    prior[:, 1] = 0.0
    src, dst = torch.randn(Z1, D), torch.randn(Z2, D)
    mapped, att = sm(src, dst, prior, return_attention=True)
    assert att.shape == (Z2, Z1) and torch.all(att[:, 1] == 0)
    plain = torch.softmax(sm.query(dst) @ sm.key(src).T / D ** 0.5, -1)
    assert torch.allclose(att, plain * prior, atol=1e-6)
    assert torch.allclose(mapped, att @ sm.value(src), atol=1e-6)
    _, att2 = sm(src, dst, torch.ones(Z2, Z1), source_presence=torch.tensor([1.0, 1.0, 0.0]), return_attention=True)
    assert torch.all(att2[:, 2] == 0) and torch.allclose(att2.sum(-1), torch.ones(Z2))


def test_static_prior_not_in_state_dict():
    mst = MultiScaleSemanticTransfer(D, Z1, Z2, static_prior=torch.rand(Z2, Z1), num_scales=0)
    assert "static_prior" not in mst.state_dict()
    assert len(mst.dynamic_one_to_two) == 0


def test_dynamic_prior_is_float32_under_bf16_autocast():
    """Eq. 9's unnormalised M_dyn inside a bf16 autocast region equals the float64 product (bf16 keeps
    3 significant digits: its error here would be ~0.1)."""
    torch.manual_seed(0)
    mst = MultiScaleSemanticTransfer(16, Z1, Z2, num_scales=2)
    s1, s2 = torch.randn(2, Z1, 16) * 4, torch.randn(2, Z2, 16) * 4
    w1, w2 = mst.prior_proj_1[1].weight.double(), mst.prior_proj_2[1].weight.double()
    expected = (s2.double() @ w2.T) @ (s1.double() @ w1.T).transpose(1, 2)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        m = mst.dynamic_prior(2, s1, s2)
    assert m.dtype == torch.float32
    torch.testing.assert_close(m.double(), expected, rtol=1e-5, atol=1e-4)
