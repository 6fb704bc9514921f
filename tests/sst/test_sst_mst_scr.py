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
    total = scr_image([x] * 3, [y] * 3, [y] * 3, [mapped] * 3, [presence] * 3, [ones] * 3)
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


def test_mapping_shapes_both_directions():
    mst = MultiScaleSemanticTransfer(D, Z1, Z2, static_prior=torch.rand(Z2, Z1))
    out = mst.dataset_level(torch.randn(Z1, D), torch.randn(Z2, D))
    assert out.one_to_two.shape == (Z2, D) and out.two_to_one.shape == (Z1, D)
    x1, x2 = torch.randn(2, Z1, D), torch.randn(2, Z2, D)
    img = mst.image_level(1, x1, x2, torch.randn(2, Z1, D), torch.randn(2, Z2, D), torch.ones(2, Z1), torch.ones(2, Z2))
    assert img.one_to_two.shape == (2, Z2, D) and img.two_to_one.shape == (2, Z1, D)


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
