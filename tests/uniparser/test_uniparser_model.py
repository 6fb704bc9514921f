import pytest
import torch
import torch.nn.functional as F

from humanparse.errors import ConfigError
from humanparse.uniparser.model import build_uniparser, coord_channels, index_fusion, sample_kernels



def test_output_shapes_and_unit_norm(tiny_model):
    torch.manual_seed(1)
    images = torch.randn(2, 3, 64, 96)
    out = tiny_model(images)
    assert out["center_logits"].shape == (2, 1, 8, 8)
    assert out["ins_feats"].shape == (2, 16, 16, 24)
    assert out["cate_feats"].shape == (2, 16, 16, 24)
    assert out["cate_kernels"].shape == (5, 16)  # no background kernel
    assert out["cate_sim"].shape == (2, 5, 16, 24)
    for key in ("ins_feats", "cate_feats"):
        assert torch.allclose(out[key].norm(dim=1), torch.ones(2, 16, 24), atol=1e-4)
    assert torch.allclose(out["cate_kernels"].norm(dim=1), torch.ones(5), atol=1e-5)
    # Q_cate = cosine of the RAW CFSB features with the RAW category kernels (computed independently)
    with torch.no_grad():
        raw = tiny_model.cfsb(tiny_model.neck_features(images))
    want = F.cosine_similarity(raw[:, None], tiny_model.cate_kernels[None, :, :, None, None], dim=2)
    assert torch.allclose(out["cate_sim"].detach(), want, atol=1e-5)
    # the heatmap starts near the 0.01 prior
    assert 0.005 < float(out["center_logits"].detach().sigmoid().mean()) < 0.02


def test_paper_options_frozen_stem_norm_eval_dcn_and_gn_on_every_feature_conv(tiny_cfg):
    from humanparse.uniparser.model import ModulatedDeformConv

    torch.manual_seed(0)
    plain = build_uniparser(tiny_cfg)
    torch.manual_seed(0)
    paper = build_uniparser({**tiny_cfg, "norm_last": True,
                             "backbone": {"name": "test_resnet", "frozen_stride": 4, "norm_eval": True, "dcn": True}})
    # GroupNorm after every IFSB / CFSB conv (5 convs, 5 GroupNorms each); the CL still ends in a logit conv
    for tower in (paper.ifsb, paper.cfsb):
        convs = [m for m in tower if isinstance(m, torch.nn.Conv2d)]
        norms = [m for m in tower if isinstance(m, torch.nn.GroupNorm)]
        assert len(convs) == len(norms) == 5
    assert sum(isinstance(m, torch.nn.GroupNorm) for m in plain.ifsb) == 4
    # deformable convs in res3-res5 only, starting as the plain conv (zero offsets, mask 0.5)
    dcn = [n for n, m in paper.backbone.named_modules() if isinstance(m, ModulatedDeformConv)]
    assert dcn and all(".layer1." not in f".{n}" for n in dcn)
    block = paper.backbone.get_submodule(dcn[0].rsplit(".", 1)[0])
    x = torch.randn(1, block.conv2.weight.shape[1], 8, 8)
    plain_conv = F.conv2d(x, block.conv2.weight, block.conv2.bias, stride=block.conv2.stride, padding=block.conv2.padding)
    assert torch.allclose(block.conv2(x), 0.5 * plain_conv, atol=1e-5)
    # frozen stem + res2: no gradient; norm_eval: BatchNorm statistics do not move in train mode
    paper.train()
    frozen = [n for n, p in paper.backbone.named_parameters() if not p.requires_grad]
    assert frozen and all(n.startswith(("model.conv1", "model.bn1", "model.layer1")) for n in frozen)
    bn = next(m for n, m in paper.backbone.named_modules() if "layer3" in n and isinstance(m, torch.nn.BatchNorm2d))
    before = bn.running_mean.clone()
    out = paper(torch.randn(2, 3, 64, 64))
    assert torch.equal(bn.running_mean, before) and not bn.training
    (out["ins_feats"].sum() + out["cate_sim"].sum() + out["center_logits"].sum()).backward()
    assert all(p.grad is None for p in paper.backbone.parameters() if not p.requires_grad)
    assert block.conv2.offset_mask.weight.grad is not None  # the offsets learn


def test_backward_reaches_every_parameter(tiny_model):
    out = tiny_model(torch.randn(1, 3, 64, 64))
    (out["center_logits"].sum() + out["ins_feats"].sum() + out["cate_sim"].sum()).backward()
    missing = [n for n, p in tiny_model.named_parameters() if p.grad is None]
    assert not missing


def test_light_variant_uses_only_p2_and_a_1x1_conv(tiny_cfg):
    light = build_uniparser({**tiny_cfg, "light": True})
    full = build_uniparser(tiny_cfg)
    assert light.neck.kernel_size == (1, 1) and light.neck.in_channels == 16
    assert full.neck.in_channels == 5 * 16
    assert light(torch.randn(1, 3, 64, 64))["ins_feats"].shape == (1, 16, 16, 16)
    assert sum(p.numel() for p in light.parameters()) < sum(p.numel() for p in full.parameters())


def test_bad_size_and_unknown_keys(tiny_cfg):
    net = build_uniparser(tiny_cfg)
    with pytest.raises(ValueError, match="64x96"):
        net(torch.randn(1, 3, 60, 90))
    with pytest.raises(ConfigError, match="feat_dim"):
        build_uniparser({**tiny_cfg, "feat_dimm": 8})
    with pytest.raises(ConfigError, match="name"):
        build_uniparser({**tiny_cfg, "backbone": {"nme": "resnet18"}})


def test_coords_and_kernel_sampling():
    x = coord_channels(torch.zeros(1, 1, 4, 5))
    assert torch.allclose(x[0, 1, 0], torch.linspace(-1, 1, 5))
    assert torch.allclose(x[0, 2, :, 0], torch.linspace(-1, 1, 4))
    # a 2-channel feature map whose left half is e0, right half e1; 2x2 grid
    feats = torch.zeros(2, 8, 8)
    feats[0, :, :4] = 1
    feats[1, :, 4:] = 1
    k = sample_kernels(feats, torch.tensor([0, 1, 3]), grid=2)
    assert torch.allclose(k, torch.tensor([[1.0, 0], [0, 1], [0, 1]]))


def test_index_fusion_clamps_negative_cosines():
    ins = torch.tensor([[[-0.8, 0.5]]])
    cate = torch.tensor([[[-0.9, 0.5]], [[0.4, 1.0]]])
    fused = index_fusion(ins, cate)
    assert fused.shape == (1, 2, 1, 2)
    assert fused[0, 0, 0, 0] == 0  # (-) x (-) must not become positive
    assert torch.isclose(fused[0, 1, 0, 1], torch.tensor(0.5))
