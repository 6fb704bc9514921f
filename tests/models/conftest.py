"""Tiny networks for fast CPU tests (timm's test_resnet, random weights, no network)."""

import pytest
import torch

TINY_CFG = {
    "backbone": {"name": "test_resnet", "pretrained": None},
    "encoder": {"dim": 32, "num_layers": 1, "num_heads": 4, "num_points": 2, "ffn_dim": 64},
    "decoder": {"dim": 16, "depths": [1, 2, 1], "num_heads": 2, "window_size": 4},
}
NUM_CLASSES = {"coarse": 3, "fine": 7}


@pytest.fixture
def tiny_network():
    from humanparse.models import build_network

    torch.manual_seed(0)
    return build_network(TINY_CFG, NUM_CLASSES)


@pytest.fixture
def tiny_cfg():
    import copy

    return copy.deepcopy(TINY_CFG)


@pytest.fixture
def num_classes():
    return dict(NUM_CLASSES)
