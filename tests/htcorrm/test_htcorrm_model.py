"""The HTCorrM network: ablation keys -> module sets, main-task switching, shapes, backbones."""

import pytest
import torch

from humanparse.errors import ConfigError
from humanparse.htcorrm.hnl import ConcatFusion, HeterogeneousNonLocal
from humanparse.htcorrm.losses import HTCorrMLoss
from humanparse.htcorrm.model import TimmBranchBackbone

# (fusion, aux_tasks) -> (encoders, fusion class, W_1 present, number of fused inputs, own head W_3)
ABLATIONS = {
    "baseline": ("none", [], {"parsing"}, None, None, None, False),
    "1_self_attention": ("self", [], {"parsing"}, HeterogeneousNonLocal, False, 1, True),
    "2_multi_task": ("none", ["edge", "pose"], {"parsing", "edge", "pose"}, None, None, None, False),
    "3_concat_edge": ("concat", ["edge"], {"parsing", "edge"}, ConcatFusion, None, 2, True),
    "4_concat_pose": ("concat", ["pose"], {"parsing", "pose"}, ConcatFusion, None, 2, True),
    "5_concat_both": ("concat", ["edge", "pose"], {"parsing", "edge", "pose"}, ConcatFusion, None, 3, True),
    "6_hnl_edge": ("hnl", ["edge"], {"parsing", "edge"}, HeterogeneousNonLocal, True, 2, True),
    "7_hnl_pose": ("hnl", ["pose"], {"parsing", "pose"}, HeterogeneousNonLocal, True, 2, True),
    "8_hnl_edge_twice": ("hnl", ["edge", "edge"], {"parsing", "edge"}, HeterogeneousNonLocal, True, 3, True),
    "9_hnl_pose_twice": ("hnl", ["pose", "pose"], {"parsing", "pose"}, HeterogeneousNonLocal, True, 3, True),
    "11_hnl_both": ("hnl", ["edge", "pose"], {"parsing", "edge", "pose"}, HeterogeneousNonLocal, True, 3, True),
}


@pytest.mark.parametrize("name", sorted(ABLATIONS))
def test_ablation_keys_build_the_intended_modules(name, make_net):
    fusion, aux, encoders, fusion_cls, has_w1, n_inputs, has_w3 = ABLATIONS[name]
    net = make_net(fusion=fusion, aux_tasks=aux)
    assert set(net.encoders) == encoders
    if fusion_cls is None:
        assert net.fusion is None and net.main_head is None
    else:
        assert type(net.fusion) is fusion_cls
        assert net.fusion.num_inputs == n_inputs
        if fusion_cls is HeterogeneousNonLocal:
            assert (net.fusion.w1 is not None) == has_w1
            if has_w1:  # W_1 maps the n*C concatenation to C
                assert net.fusion.w1[0].in_channels == n_inputs * 32
    assert (net.main_head is not None) == has_w3


def test_bad_ablation_keys_raise_config_errors(make_net):
    with pytest.raises(ConfigError, match="fusion"):
        make_net(fusion="hlm")
    with pytest.raises(ConfigError, match="aux_tasks"):
        make_net(fusion="hnl", aux_tasks=[])
    with pytest.raises(ConfigError, match="not an auxiliary task"):
        make_net(aux_tasks=["parsing"])
    with pytest.raises(ConfigError, match="repeats"):
        make_net(fusion="none", aux_tasks=["edge", "edge"])
    with pytest.raises(ConfigError, match="main_task"):
        make_net(main_task="depth")
    with pytest.raises(ConfigError, match="unknown key"):
        make_net(chanels=8)


@pytest.mark.parametrize("main,aux,channels", [("parsing", ["edge", "pose"], 20), ("pose", ["parsing", "edge"], 16),
                                               ("edge", ["parsing", "pose"], 2)])
def test_main_task_switches_head_and_loss(main, aux, channels, make_net, make_batch):
    net = make_net(main_task=main, aux_tasks=aux, fusion="hnl")
    batch = make_batch()
    out = net(batch["image"])
    assert out["main"].shape == (2, channels, 16, 16)
    assert net.main_head.out_channels == channels
    assert set(out["encoders"]) == {"parsing", "edge", "pose"}
    assert ("logits" in out) == (main == "parsing")
    loss = HTCorrMLoss(main_task=main, tasks=net.tasks, fused=True)
    terms = loss(out, batch)
    assert set(terms) == {f"main/{main}", "parsing", "edge", "pose"}
    # the main loss is the task's own loss function applied to O_m
    torch.testing.assert_close(terms[f"main/{main}"], loss.task_loss(main, out["main"], batch))
    other = HTCorrMLoss(main_task="parsing" if main != "parsing" else "pose", tasks=net.tasks, fused=True)
    assert other.weights != loss.weights  # per-main-task default weights (paper Sec. 4.2)


def test_forward_backward_shapes_and_every_parameter_gets_a_gradient(make_net, make_batch):
    net = make_net(backbone={"name": "resnet18", "pretrained": None}, fusion="hnl", aux_tasks=["edge", "pose"]).train()
    batch = make_batch()
    with torch.no_grad():  # move W_2 off zero so gradients reach theta/phi/g as well
        net.fusion.w2.weight.fill_(0.01)
    out = net(batch["image"])
    assert out["encoders"]["parsing"].shape == (2, 20, 16, 16)
    assert out["encoders"]["edge"].shape == (2, 2, 16, 16)
    assert out["encoders"]["pose"].shape == (2, 16, 16, 16)
    assert all(f.shape == (2, 32, 16, 16) for f in out["features"].values())
    total = sum(HTCorrMLoss(main_task="parsing", tasks=net.tasks, fused=True)(out, batch).values())
    total.backward()
    missing = [n for n, p in net.named_parameters() if p.grad is None]
    assert not missing, missing


def test_without_fusion_the_main_output_is_the_encoder_output_and_counted_once(make_net, make_batch):
    net = make_net(fusion="none", aux_tasks=["edge", "pose"]).eval()
    batch = make_batch()
    out = net(batch["image"])
    assert out["main"] is out["encoders"]["parsing"]
    terms = HTCorrMLoss(main_task="parsing", tasks=net.tasks, fused=False)(out, batch)
    assert set(terms) == {"main/parsing", "edge", "pose"}


def test_untrained_hnl_output_equals_a_head_on_the_main_feature(make_net, make_batch):
    net = make_net(fusion="hnl", aux_tasks=["edge", "pose"]).eval()
    out = net(make_batch()["image"])
    torch.testing.assert_close(out["main"], net.main_head(out["features"]["parsing"]))


def test_input_size_must_be_a_multiple_of_32(make_net):
    net = make_net().eval()
    with pytest.raises(ValueError, match="64x96"):
        net(torch.zeros(1, 3, 50, 70))


def test_hrnet_branch_backbone_feeds_the_encoders(make_net):
    net = make_net(backbone={"name": "hrnet_w18_small", "feature_location": ""}, main_task="pose",
                   aux_tasks=["parsing", "edge"], edge_levels=[0, 2, 3]).eval()
    assert net.backbone.out_channels == [16, 32, 64, 128] and net.backbone.strides == [4, 8, 16, 32]
    out = net(torch.zeros(1, 3, 64, 64))
    assert out["main"].shape == (1, 16, 16, 16)


def test_hrnet_w48_raw_branches_have_hrnetv2_widths():
    with torch.device("meta"):  # the unified backbone of the paper, probed without allocating weights
        bb = TimmBranchBackbone("hrnet_w48", feature_location="")
    assert bb.out_channels == [48, 96, 192, 384] and bb.strides == [4, 8, 16, 32]


@pytest.mark.parametrize("name", ["htcorrm_tiny_cpu", "htcorrm_r101", "htcorrm_hrnet"])
def test_shipped_configs_build(name):
    from humanparse.config import load_config
    from humanparse.htcorrm.model import build_htcorrm

    cfg = load_config(f"configs/{name}.yaml")
    assert cfg["recipe"] == "htcorrm"
    with torch.device("meta"):  # architecture only: no weights allocated
        net = build_htcorrm(cfg["model"], num_classes=20, domain="lip")
    assert net.main_task == "parsing" and net.aux_tasks == ["edge", "pose"]
    assert type(net.fusion) is HeterogeneousNonLocal and net.fusion.num_inputs == 3
