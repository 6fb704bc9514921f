import ast
import copy
import inspect
import io
import json
import warnings
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from humanparse import models
from humanparse.errors import ConfigError
from humanparse.models import ParsingNetwork, build_network, pad_to_multiple


def test_output_shapes_every_scale_every_domain(tiny_network, num_classes):
    out = tiny_network(torch.randn(2, 3, 64, 96))
    assert {d: tuple(t.shape) for d, t in out["logits"].items()} == {"coarse": (2, 3, 16, 24), "fine": (2, 7, 16, 24)}
    d = tiny_network.feature_dim
    assert d == 16
    assert {k: tuple(t.shape) for k, t in out["features"].items()} == {
        "H1": (2, d, 4, 6), "H2": (2, d, 8, 12), "H3": (2, d, 16, 24), "F": (2, d, 16, 24)}
    assert tiny_network.domains == ["coarse", "fine"]
    assert tiny_network.num_classes == num_classes


def test_domain_subset_and_unknown_domain(tiny_network):
    x = torch.randn(1, 3, 64, 64)
    full = tiny_network.eval()(x)["logits"]
    only = tiny_network(x, domains=["fine"])["logits"]
    assert list(only) == ["fine"]
    torch.testing.assert_close(only["fine"], full["fine"])
    assert list(tiny_network(x, domains="coarse")["logits"]) == ["coarse"]
    with pytest.raises(ConfigError, match="did you mean 'fine'"):
        tiny_network(x, domains=["fin"])


def test_input_not_multiple_of_32(tiny_network):
    assert ParsingNetwork.requires_divisible_input_shape
    with pytest.raises(ValueError, match="pad it to 96x64"):
        tiny_network(torch.randn(1, 3, 70, 64))
    padded, pad = pad_to_multiple(torch.ones(1, 3, 70, 33))
    assert padded.shape[-2:] == (96, 64) and pad == (26, 31)
    assert padded[..., :70, :33].eq(1).all() and padded[..., 70:, :].eq(0).all() and padded[..., 33:].eq(0).all()


def test_predict_any_size_restores_mode(tiny_network):
    tiny_network.train()
    logits = tiny_network.predict(torch.randn(1, 3, 50, 70), "fine")
    assert logits.shape == (1, 7, 50, 70) and not logits.requires_grad
    assert tiny_network.training


def test_backward_reaches_every_part(tiny_network):
    # Deformable DETR starts the query -> offsets/weights projections at zero, which would stop the
    # gradient of the position code (level_embed) on step 0; move them off zero as training would
    for name, p in tiny_network.encoder.named_parameters():
        if name.endswith(("sampling_offsets.weight", "attention_weights.weight")):
            torch.nn.init.normal_(p, std=0.01)
    # timm zero-initialises each residual block's last BN (so the blocks start as identities, and nothing
    # before that BN in a block gets a gradient on step 0); give those BNs weight 1 as training would
    with torch.no_grad():
        for m in tiny_network.backbone.modules():
            if isinstance(m, torch.nn.BatchNorm2d) and not m.weight.any():
                m.weight.fill_(1.0)
    out = tiny_network(torch.randn(1, 3, 64, 64))
    loss = sum(t.square().mean() for t in out["logits"].values())
    loss.backward()
    for part in ("backbone", "encoder", "decoder", "heads"):
        params = list(getattr(tiny_network, part).named_parameters())
        assert params and all(p.grad is not None for _, p in params), part
        zero = [n for n, p in params if not p.grad.abs().sum() > 0]
        assert not zero, f"{part}: zero gradient for {zero[:5]}"


def test_bf16_autocast_close_to_float32(tiny_network):
    """Sampling locations and grid_sample stay float32 under autocast; the rest follows bf16."""
    x = torch.randn(1, 3, 96, 64)
    with torch.no_grad():
        ref = tiny_network.eval()(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = tiny_network(x)
    for name in ("H1", "H2", "H3", "F"):
        a, b = ref["features"][name], low["features"][name].float()
        assert torch.isfinite(b).all() and (a - b).norm() / a.norm() < 0.1, name


def test_config_unknown_keys_suggest(num_classes):
    cases = [
        ({"backbone": {"name": "test_resnet"}, "encoder": {"num_layer": 1}}, "did you mean 'num_layers'"),
        ({"backbone": {"name": "test_resnet"}, "decoder": {"deptsh": [1, 1, 1]}}, "did you mean 'depths'"),
        ({"backbone": {"name": "test_resnet", "pretrain": None}}, "did you mean 'pretrained'"),
        ({"backbone": {"name": "test_resnet"}, "encodr": {}}, "did you mean 'encoder'"),
        ({"backbone": {"name": "test_resnet"}, "encoder": {"type": "deformabel"}}, "did you mean 'deformable'"),
        ({"encoder": {}}, "backbone.name is required"),
    ]
    for cfg, message in cases:
        with pytest.raises(ConfigError, match=message):
            build_network(cfg, num_classes)


def test_rebuild_from_config_gives_same_architecture(tiny_network):
    config = tiny_network.config
    assert json.loads(json.dumps(config)) == config  # JSON-able
    assert config["model_cfg"]["encoder"]["ffn_dim"] == 64 and config["model_cfg"]["decoder"]["window_size"] == 4
    assert config["model_cfg"]["encoder"]["dropout"] == 0.0  # defaults are resolved into the config
    rebuilt = build_network(**copy.deepcopy(config))
    a, b = tiny_network.state_dict(), rebuilt.state_dict()
    assert list(a) == list(b) and all(a[k].shape == b[k].shape for k in a)
    rebuilt.load_state_dict(a)
    x = torch.randn(1, 3, 64, 64)
    torch.testing.assert_close(rebuilt.eval()(x)["logits"]["fine"], tiny_network.eval()(x)["logits"]["fine"])
    tiny_network.add_head("extra", 5)  # a head added later is part of the config
    assert tiny_network.config["num_classes"]["extra"] == 5
    assert "extra" in build_network(**tiny_network.config).domains


def test_config_rebuild_does_not_need_the_initial_weights(tmp_path, tiny_cfg, num_classes):
    path = tmp_path / "init.safetensors"
    save_file({k: v.contiguous() for k, v in timm.create_model("test_resnet").state_dict().items()}, str(path))
    tiny_cfg["backbone"]["pretrained"] = str(path)
    net = build_network(tiny_cfg, num_classes)
    assert net.config["model_cfg"]["backbone"]["pretrained"] is None
    path.unlink()
    build_network(**net.config)  # the file is gone: the rebuild must not look for it


class OneDomain(torch.nn.Module):
    """What an exporter sees: images -> one domain's logits."""

    def __init__(self, net, domain):
        super().__init__()
        self.net, self.domain = net, domain

    def forward(self, images):
        return self.net(images, [self.domain])["logits"][self.domain]


def test_trace_one_domain(tiny_network):
    wrapper = OneDomain(tiny_network, "coarse").eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        traced = torch.jit.trace(wrapper, x, check_trace=False)
        torch.testing.assert_close(traced(x), wrapper(x), rtol=1e-4, atol=1e-4)


def test_onnx_export_matches_eager(tiny_network):
    """Exported at a second, non-square size (padded Swin windows); run by onnx's reference evaluator."""
    onnx = pytest.importorskip("onnx")
    from onnx.reference import ReferenceEvaluator

    wrapper = OneDomain(tiny_network, "fine").eval()
    x = torch.randn(1, 3, 96, 64)
    legacy = {"dynamo": False} if "dynamo" in inspect.signature(torch.onnx.export).parameters else {}
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(wrapper, (x,), buffer, opset_version=20, input_names=["images"], **legacy)
    model = onnx.load_model_from_string(buffer.getvalue())
    onnx.checker.check_model(model)
    (logits,) = ReferenceEvaluator(model).run(None, {"images": x.numpy()})
    with torch.no_grad():
        torch.testing.assert_close(torch.from_numpy(logits), wrapper(x), rtol=1e-4, atol=1e-4)


def test_network_never_imports_training_code():
    forbidden = ("humanparse.sst", "humanparse.uniparser", "humanparse.htcorrm", "humanparse.engine")
    package = Path(models.__file__).parent
    for path in package.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                names = [("." * node.level) + (node.module or "")]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            for name in names:
                assert not name.startswith(forbidden) and not name.startswith(("..sst", "..engine")), (path, name)


def test_constructor_checks_parts(tiny_network):
    with pytest.raises(ConfigError, match="strides"):
        ParsingNetwork(backbone=torch.nn.Identity(), encoder=tiny_network.encoder, decoder=tiny_network.decoder,
                       heads=tiny_network.heads)
    from humanparse.models import DomainHeads

    with pytest.raises(ConfigError, match="heads take 8 channels"):
        ParsingNetwork(backbone=tiny_network.backbone, encoder=tiny_network.encoder, decoder=tiny_network.decoder,
                       heads=DomainHeads(8, {"a": 2}))
    with pytest.raises(ConfigError, match="already has a head"):
        tiny_network.add_head("fine", 3)
