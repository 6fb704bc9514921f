"""Optimiser parameter groups: which parameters get weight decay."""

import pytest
import torch
from torch import nn

from humanparse.engine.schedule import build_optimizer, weight_decay_setting
from humanparse.errors import ConfigError


class _Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.backbone = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4))
        self.decoder = nn.Linear(4, 4)
        self.norm = nn.LayerNorm(4)
        self.bias_table = nn.Parameter(torch.zeros(9, 2))


class _Method(nn.Module):
    def __init__(self):
        super().__init__()
        self.embedding = nn.Parameter(torch.randn(3, 4))  # X_0
        self.proj = nn.Linear(4, 4, bias=False)


def _decay_of(optimizer):
    return {id(p): (g["weight_decay"], g["lr"]) for g in optimizer.param_groups for p in g["params"]}


def test_paper_rule_exempts_norms_biases_x0_and_tables():
    net, method = _Net(), _Method()
    opt = build_optimizer(net, method, {"lr": 1e-4, "backbone_lr_mult": 0.1,
                                        "weight_decay": {"value": 0.05, "decay_norms_biases_embeddings": False}})
    decay = _decay_of(opt)
    decayed = {net.backbone[0].weight, net.decoder.weight, method.proj.weight}
    for p in [*net.parameters(), *method.parameters()]:
        assert decay[id(p)][0] == (0.05 if any(p is q for q in decayed) else 0.0)
    assert decay[id(net.backbone[1].weight)] == (0.0, pytest.approx(1e-5))  # backbone lr kept
    assert decay[id(net.norm.weight)][0] == 0.0 and decay[id(method.embedding)][0] == 0.0
    assert sum(len(g["params"]) for g in opt.param_groups) == len(list(net.parameters())) + 2


def test_a_number_decays_every_parameter_as_before():
    net, method = _Net(), _Method()
    opt = build_optimizer(net, method, {"weight_decay": 0.05})
    assert {wd for wd, _ in _decay_of(opt).values()} == {0.05}
    # same groups and order as the rule before (rest, then backbone): resumable checkpoints
    assert [len(g["params"]) for g in opt.param_groups] == [7, 4]
    assert weight_decay_setting(0.01) == (0.01, True)
    with pytest.raises(ConfigError, match="weight_decay"):
        weight_decay_setting({"decay": 0.05})
