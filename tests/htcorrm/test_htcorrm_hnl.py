"""The heterogeneous non-local module (Eq. 1-3) and the concatenation fusion."""

import pytest
import torch

from humanparse.htcorrm.hnl import ConcatFusion, HeterogeneousNonLocal


def _features(n=3, b=2, c=8, h=6, w=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(b, c, h, w, generator=g) for _ in range(n)]


@pytest.mark.parametrize("sub_sample", [False, True])
def test_zero_w2_returns_main_feature_exactly(sub_sample):
    torch.manual_seed(0)
    hnl = HeterogeneousNonLocal(8, 3, sub_sample=sub_sample).train()
    assert torch.count_nonzero(hnl.w2.weight) == 0 and torch.count_nonzero(hnl.w2.bias) == 0
    with torch.no_grad():  # every other parameter random: the identity must come from W_2 = 0 alone
        for name, p in hnl.named_parameters():
            if not name.startswith("w2."):
                p.normal_()
    feats = _features()
    out = hnl(feats[0], feats)
    assert torch.equal(out, feats[0])


def test_relation_map_matches_equation_2():
    torch.manual_seed(0)
    hnl = HeterogeneousNonLocal(8, 3, inner_channels=4).double().eval()
    feats = [f.double() for f in _features()]
    main = feats[0]
    s = hnl.relation(main, feats)
    assert s.shape == (2, 24, 24)  # [B, L, L] with L = H*W: the paper's HW x HW map
    torch.testing.assert_close(s.sum(-1), torch.ones(2, 24, dtype=torch.float64))
    hybrid = hnl.w1(torch.cat(feats, 1))
    f1 = hnl.theta(hybrid).flatten(2).transpose(1, 2)  # L x C'
    f2 = hnl.phi(main).flatten(2)  # C' x L
    torch.testing.assert_close(s, torch.softmax(f1 @ f2, -1))
    with torch.no_grad():  # Eq. 3 with a non-zero W_2
        hnl.w2.weight.normal_()
    f3 = hnl.g(main).flatten(2).transpose(1, 2)
    y = (s @ f3).transpose(1, 2).reshape(2, 4, 6, 4)
    torch.testing.assert_close(hnl(main, feats), hnl.w2(y) + main)


def test_sub_sampled_relation_is_hw_by_quarter():
    hnl = HeterogeneousNonLocal(8, 2, sub_sample=True).eval()
    feats = _features(n=2)
    assert hnl.relation(feats[0], feats).shape == (2, 24, 6)


def test_self_attention_variant_has_no_w1_and_ignores_other_features():
    torch.manual_seed(0)
    sa = HeterogeneousNonLocal(8, 1, hybrid=False).eval()
    assert sa.w1 is None
    with torch.no_grad():
        sa.w2.weight.normal_()
    a, b = _features(n=2)
    torch.testing.assert_close(sa(a, [a]), sa(a, [a, b]))


def test_hnl_gradients_reach_every_parameter_after_w2_moves():
    torch.manual_seed(0)
    hnl = HeterogeneousNonLocal(8, 3)
    feats = [f.requires_grad_() for f in _features()]
    with torch.no_grad():
        hnl.w2.weight.fill_(0.1)
    hnl(feats[0], feats).square().sum().backward()
    for name, p in hnl.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_wrong_number_of_inputs_raises():
    hnl = HeterogeneousNonLocal(8, 3)
    fusion = ConcatFusion(8, 2)
    feats = _features(n=2)
    with pytest.raises(ValueError, match="3 input features"):
        hnl(feats[0], feats)
    with pytest.raises(ValueError, match="2 input features"):
        fusion(feats[0], feats[:1])
    assert fusion(feats[0], feats).shape == feats[0].shape
