"""MSE (Eq. 5-7): the M_intra product, key masking and the residual update."""

import math

import torch

from humanparse.sst.msa import ScaleSemantics
from humanparse.sst.mse import MultiScaleSemanticEnhancement, SemanticPropagation, auxiliary_logits, masked_attention

Z, D = 4, 6
ADJ = torch.tensor([
    [1, 1, 0, 0],
    [1, 1, 1, 0],
    [0, 1, 1, 1],
    [0, 0, 1, 1],
], dtype=torch.float32)


def _scales(batch=2, presence=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    presence = torch.ones(batch, Z) if presence is None else presence
    return [ScaleSemantics(torch.randn(batch, Z, D, generator=g) * presence[..., None], presence) for _ in range(3)]


def test_intra_prior_zeroes_exactly_the_non_adjacent_weights():
    torch.manual_seed(0)
    with_prior = MultiScaleSemanticEnhancement(D, Z, adjacency=ADJ.numpy().astype("uint8"))
    without = MultiScaleSemanticEnhancement(D, Z, adjacency=ADJ, use_intra_prior=False)
    without.load_state_dict(with_prior.state_dict())
    scales = _scales()
    a = with_prior(scales, return_attention=True).attention[0]
    b = without(scales, return_attention=True).attention[0]
    assert a.shape == (2, Z, Z)
    assert torch.all(a[:, ADJ == 0] == 0)            # non-adjacent: exactly zero
    assert torch.all(a[:, ADJ == 1] > 0)             # adjacent: kept
    assert torch.equal(a, b * ADJ)                   # product after the softmax, no renormalisation
    assert torch.allclose(b.sum(-1), torch.ones(2, Z))
    assert not torch.allclose(a.sum(-1), torch.ones(2, Z))


def test_absent_keys_are_masked_before_softmax():
    q, k = torch.randn(1, Z, D), torch.randn(1, Z, D)
    presence = torch.tensor([[1.0, 0.0, 1.0, 1.0]])
    att = masked_attention(q, k, key_presence=presence)
    assert torch.all(att[..., 1] == 0)
    assert torch.allclose(att.sum(-1), torch.ones(1, Z))
    # equals a softmax over the present keys only
    keep = [0, 2, 3]
    ref = torch.softmax(q @ k[:, keep].transpose(1, 2) / math.sqrt(D), -1)
    assert torch.allclose(att[..., keep], ref, atol=1e-6)
    # no present key: the row is all zeros (no NaN)
    assert torch.equal(masked_attention(q, k, key_presence=torch.zeros(1, Z)), torch.zeros(1, Z, Z))


def test_sp_layer_is_attention_times_value_plus_residual():
    layer = SemanticPropagation(D)
    x0, s = torch.randn(Z, D), torch.randn(2, Z, D)
    out, att = layer(x0, s, torch.ones(2, Z), ADJ)
    expected = att @ layer.value(s) + x0
    assert torch.allclose(out, expected, atol=1e-6)
    q, k = layer.query(x0).expand(2, Z, D), layer.key(s)
    ref = torch.softmax(q @ k.transpose(1, 2) / math.sqrt(D), -1) * ADJ
    assert torch.allclose(att, ref, atol=1e-6)


def test_image_without_categories_keeps_x0_and_shapes():
    mse = MultiScaleSemanticEnhancement(D, Z, adjacency=ADJ)
    out = mse(_scales(batch=1, presence=torch.zeros(1, Z)))
    assert len(out.representations) == 4 and out.representations[0].shape == (Z, D)
    for x in out.representations[1:]:
        assert x.shape == (1, Z, D)
        assert torch.allclose(x[0], mse.embedding)
    assert out.attention == []  # only when asked for


def test_auxiliary_logits_are_feature_dot_representation():
    f = torch.randn(2, D, 3, 5)
    x = torch.randn(2, Z, D)
    a = auxiliary_logits(f, x)
    assert a.shape == (2, Z, 3, 5)
    assert torch.allclose(a[1, 2, 0, 4], (f[1, :, 0, 4] * x[1, 2]).sum(), atol=1e-5)


def test_adjacency_is_not_saved():
    mse = MultiScaleSemanticEnhancement(D, Z, adjacency=ADJ)
    assert "adjacency" not in mse.state_dict() and "embedding" in mse.state_dict()


def test_attention_is_float32_under_bf16_autocast():
    """The logits and softmax of Eq. 6 run in float32 inside a bf16 autocast region: equal to an
    independent float32 computation (a bf16 matmul would be off by ~1e-2)."""
    g = torch.Generator().manual_seed(0)
    query, key = torch.randn(2, Z, 64, generator=g) * 3, torch.randn(2, Z, 64, generator=g) * 3
    presence = torch.tensor([[1.0, 1.0, 0.0, 1.0], [1.0, 1.0, 1.0, 1.0]])
    expected = torch.softmax((query.double() @ key.double().transpose(1, 2)) / 8.0
                             + torch.where(presence[:, None, :] > 0, 0.0, -1e30).double(), -1) * ADJ.double()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        att = masked_attention(query, key, key_presence=presence, prior=ADJ)
    assert att.dtype == torch.float32
    torch.testing.assert_close(att.double(), expected, rtol=0, atol=1e-5)
