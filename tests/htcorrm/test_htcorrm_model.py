"""The HTCorrM network: ablation keys -> module sets, main-task switching, shapes, backbones."""

import pytest
import torch

from humanparse.errors import ConfigError
from humanparse.htcorrm.hnl import ConcatFusion, HeterogeneousNonLocal
from humanparse.htcorrm.losses import HTCorrMLoss

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
    # the main loss is the task's loss on O_m, computed here independently of humanparse.htcorrm.losses
    torch.testing.assert_close(terms[f"main/{main}"], _independent_task_loss(main, out["main"], batch))
    # Eq. 4 weights of the paper's Sec. 4.2 for this main task (alpha: parsing, beta: pose, gamma: edge)
    paper = {"parsing": (1.0, 50.0, 2.0), "pose": (0.001, 1.0, 0.0025), "edge": (0.08, 200.0, 1.0)}[main]
    for task, w in zip(("parsing", "pose", "edge"), paper):
        torch.testing.assert_close(terms[task], w * _independent_task_loss(task, out["encoders"][task], batch))


def _independent_task_loss(task, logits, batch):
    import torch.nn.functional as F

    if task == "pose":  # MSE over the joints with weight 1 (all joints visible in tiny_batch)
        return ((logits - batch["pose_heatmap"]) ** 2).mean()
    target = batch["label"] if task == "parsing" else batch["edge"]
    up = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
    nll = -up.log_softmax(1)
    valid = target != 255
    picked = nll.gather(1, target.clamp(max=logits.shape[1] - 1)[:, None])[:, 0]
    if task == "parsing":
        return picked[valid].mean()
    pos, neg = valid & (target == 1), valid & (target == 0)  # class-balanced: half edge, half non-edge
    return 0.5 * (picked[pos].mean() + picked[neg].mean())


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


def test_hrnetv2_backbone_feeds_the_encoders(make_net):
    net = make_net(backbone={"name": "hrnet_w18_small"}, main_task="pose", aux_tasks=["parsing", "edge"]).eval()
    bb = net.backbone
    # stage 1 (one map), stages 3 and 4 through the HRNetV2 head (branches concatenated at stride 4),
    # and the stage-4 stride-16 branch for the pose deconvs
    assert bb.strides == [4, 4, 4, 4, 16] and bb.out_channels == [128, 16 + 32 + 64, 16 + 32 + 64 + 128,
                                                                  16 + 32 + 64 + 128, 64]
    levels = bb(torch.zeros(1, 3, 64, 64))
    assert [tuple(t.shape[-2:]) for t in levels] == [(16, 16)] * 4 + [(4, 4)]
    assert levels[2] is levels[3]
    out = net(torch.zeros(1, 3, 64, 64))
    assert out["main"].shape == (1, 16, 16, 16)


@pytest.mark.parametrize("config,size,stride", [("htcorrm_r101", 384, 8), ("htcorrm_hrnet", 384, 4)])
def test_paper_backbones_stride_and_aspp_geometry(config, size, stride):
    """The paper's backbones at the paper's input size: the map ASPP runs on has the stated stride,
    and every atrous branch (rates 12/24/36) has off-centre taps that land inside that map."""
    from humanparse.config import load_config
    from humanparse.htcorrm.model import build_htcorrm

    cfg = load_config(f"configs/{config}.yaml")
    with torch.device("meta"):  # shapes only, no weights allocated or computed
        net = build_htcorrm(cfg["model"], num_classes=20, domain="lip")
        levels = net.backbone(torch.zeros(2, 3, size, size))
        feats = net(torch.zeros(2, 3, size, size))["features"]
    deep = levels[3]
    assert deep.shape[-1] == size // stride, deep.shape  # measured, not read from feature_info
    assert all(f.shape[-2:] == (size // 4, size // 4) for f in feats.values())
    atrous = [b for b in net.encoders["parsing"].aspp.branches if isinstance(b, torch.nn.Sequential)
              and b[0].kernel_size == (3, 3)]
    assert [b[0].dilation[0] for b in atrous] == [12, 24, 36]
    n = deep.shape[-1]
    for b in atrous:
        r = b[0].dilation[0]
        assert r < n, f"rate {r} on a {n}x{n} map: every off-centre tap is padding"


def test_cpu_recipe_backbone_is_the_packaged_imagenet_lite2_dilated_to_stride_16():
    """configs/htcorrm_lite2_cpu.yaml: EfficientNet-Lite2 with the packaged ImageNet weights (every tensor),
    Res5's counterpart dilated to stride 16 (measured), and ASPP taps inside the 12x12 map of a 192 px crop."""
    import timm

    from humanparse.config import load_config
    from humanparse.htcorrm.model import build_htcorrm
    from humanparse.models.backbones.packaged_weights import packaged_state_dict

    cfg = load_config("configs/htcorrm_lite2_cpu.yaml")
    net = build_htcorrm(cfg["model"], num_classes=20, domain="lip").eval()
    with torch.device("meta"):
        keys = timm.create_model("tf_efficientnet_lite2").state_dict()
    expected = packaged_state_dict("tf_efficientnet_lite2", keys)
    own = net.backbone.model.state_dict()
    assert len(own) > 100 and all(torch.equal(own[k], expected[k]) for k in own)
    size = cfg["data"]["crop_size"]
    with torch.no_grad():
        levels = net.backbone(torch.zeros(1, 3, size, size))
    assert [t.shape[-1] for t in levels] == [size // 4, size // 8, size // 16, size // 16]
    n = levels[3].shape[-1]
    rates = [b[0].dilation[0] for b in net.encoders["parsing"].aspp.branches
             if isinstance(b, torch.nn.Sequential) and b[0].kernel_size == (3, 3)]
    assert rates == [2, 5, 7] and all(r < n for r in rates)


def test_corrpm_geometry_is_available_as_output_stride_16():
    from humanparse.htcorrm.backbones import build_backbone

    with torch.device("meta"):
        bb = build_backbone({"name": "resnet101", "output_stride": 16, "stem": "deep"})
        shapes = [tuple(t.shape[-2:]) for t in bb(torch.zeros(1, 3, 384, 384))]
    assert shapes == [(96, 96), (48, 48), (24, 24), (24, 24)]  # notes: Res2..Res5 at 384 px in CorrPM
    assert bb.model.conv1[0].out_channels == 64 and bb.model.conv1[6].out_channels == 128  # deep stem 64-64-128
    with pytest.raises(ConfigError, match="feature_location is gone"):
        build_backbone({"name": "hrnet_w48", "feature_location": ""})


def test_hnl_without_the_duplicated_main_feature(make_net, make_batch):
    net = make_net(fusion="hnl", aux_tasks=["edge", "pose"], hnl_duplicate_main=False)
    assert net.fusion.num_inputs == 2 and net.fusion.w1[0].in_channels == 2 * 32
    assert net(make_batch()["image"])["main"].shape == (2, 20, 16, 16)


@pytest.mark.parametrize("name,main,aux,size", [
    ("htcorrm_tiny_cpu", "parsing", ["edge", "pose"], 128), ("htcorrm_r101", "parsing", ["edge", "pose"], 384),
    ("htcorrm_r101_cihp", "parsing", ["edge", "pose"], 384), ("htcorrm_hrnet", "parsing", ["edge", "pose"], 384),
    ("htcorrm_pose_lip", "pose", ["parsing", "edge"], 256), ("htcorrm_edge_lip", "edge", ["parsing", "pose"], 384)])
def test_shipped_configs_build(name, main, aux, size):
    from humanparse.config import load_config
    from humanparse.engine.recipes import build_recipe
    from humanparse.htcorrm.model import build_htcorrm

    cfg = load_config(f"configs/{name}.yaml")
    build_recipe(cfg)  # every key is known to the recipe
    assert cfg["recipe"] == "htcorrm" and cfg["data"]["crop_size"] == size
    with torch.device("meta"):  # architecture only: no weights allocated
        net = build_htcorrm(cfg["model"], num_classes=20, domain="lip")
        out = net(torch.zeros(2, 3, size, size))
    assert net.main_task == main and net.aux_tasks == aux
    assert type(net.fusion) is HeterogeneousNonLocal and net.fusion.num_inputs == 3
    assert all(f.shape[-2:] == (size // 4, size // 4) for f in out["features"].values())  # the paper's 96 / 64 grids
