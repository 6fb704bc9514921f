"""Tiny HTCorrM networks for CPU tests: timm's test_resnet (resnet18 where named) with random weights,
64x64 inputs, narrow encoders."""

import copy

import pytest
import torch

TINY_MODEL = {
    "backbone": {"name": "test_resnet", "pretrained": None},
    "channels": 32,
    "aspp_channels": 16,
    "pose_mid_channels": 16,
    "edge_mid_channels": 16,
}


def tiny_net(**overrides):
    from humanparse.htcorrm.model import build_htcorrm

    torch.manual_seed(0)
    cfg = copy.deepcopy(TINY_MODEL)
    cfg.update(overrides)
    return build_htcorrm(cfg, num_classes=20, domain="lip")


def tiny_batch(batch_size: int = 2, size: int = 64, seed: int = 0) -> dict:
    """Random images with consistent random targets for every task."""
    g = torch.Generator().manual_seed(seed)
    label = torch.randint(0, 20, (batch_size, size, size), generator=g)
    label[:, :4] = 255
    edge = torch.randint(0, 2, (batch_size, size, size), generator=g)
    edge[:, :4] = 255
    return {
        "image": torch.randn(batch_size, 3, size, size, generator=g),
        "label": label,
        "edge": edge,
        "pose_heatmap": torch.rand(batch_size, 16, size // 4, size // 4, generator=g),
        "pose_weight": torch.ones(batch_size, 16),
        "domain": ["lip"] * batch_size,
    }


@pytest.fixture
def make_net():
    return tiny_net


@pytest.fixture
def make_batch():
    return tiny_batch
