"""model.backbone.norm: frozen — fixed statistics and affine parameters, same outputs in eval."""

import pytest
import torch
from torchvision.ops import FrozenBatchNorm2d

from humanparse.errors import ConfigError
from humanparse.models import build_network
from humanparse.models.frozen_bn import freeze_batch_norm

TINY = {"backbone": {"name": "test_resnet", "pretrained": None},
        "encoder": {"dim": 32, "num_layers": 1, "num_heads": 4, "num_points": 2, "ffn_dim": 64},
        "decoder": {"dim": 16, "depths": [1, 1, 1], "num_heads": 2, "window_size": 4}}


def test_frozen_bn_equals_eval_bn_and_ignores_training_batches():
    torch.manual_seed(0)
    bn = torch.nn.BatchNorm2d(4)
    with torch.no_grad():
        bn.running_mean.normal_()
        bn.running_var.uniform_(0.5, 2.0)
        bn.weight.normal_()
        bn.bias.normal_()
    x = torch.randn(2, 4, 5, 5) * 3 + 1
    expected = bn.eval()(x)
    frozen = freeze_batch_norm(bn)
    assert isinstance(frozen, FrozenBatchNorm2d)
    frozen.train()  # training mode: still the stored statistics, not the batch's
    torch.testing.assert_close(frozen(x), expected, rtol=1e-5, atol=1e-5)
    assert list(frozen.parameters()) == []


def test_network_with_frozen_backbone_norm():
    torch.manual_seed(0)
    net = build_network({**TINY, "backbone": {**TINY["backbone"], "norm": "frozen"}}, {"lip": 20})
    bns = [m for m in net.backbone.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bns == [] and any(isinstance(m, FrozenBatchNorm2d) for m in net.backbone.modules())
    assert net.config["model_cfg"]["backbone"]["norm"] == "frozen"
    plain = build_network(TINY, {"lip": 20})
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in plain.backbone.modules())
    converted = torch.nn.SyncBatchNorm.convert_sync_batchnorm(net)  # what torchrun on GPUs does
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in converted.backbone.modules())
    with pytest.raises(ConfigError, match="norm"):
        build_network({**TINY, "backbone": {**TINY["backbone"], "norm": "group"}}, {"lip": 20})
