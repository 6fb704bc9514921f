"""Helpers for the SST tests: a fake network with the ParsingNetwork output contract, batches."""
"""A tiny fake parsing network with the ParsingNetwork output contract, and a tiny real config."""

import torch
import torch.nn.functional as F
from torch import nn

from humanparse.models import DomainHeads

TINY_REAL_CFG = {
    "backbone": {"name": "test_resnet", "pretrained": None},
    "encoder": {"dim": 32, "num_layers": 1, "num_heads": 4, "num_points": 2, "ffn_dim": 64},
    "decoder": {"dim": 16, "depths": [1, 1, 1], "num_heads": 2, "window_size": 4},
}


class FakeNet(nn.Module):
    """images [B, 3, H, W] -> {"logits": {d: [B, C_d, H/4, W/4]}, "features": {H1, H2, H3, F}}."""

    def __init__(self, num_classes: dict, dim: int = 8):
        super().__init__()
        self.stem = nn.Conv2d(3, dim, 4, stride=4)
        self.down8 = nn.Conv2d(dim, dim, 2, stride=2)
        self.down16 = nn.Conv2d(dim, dim, 2, stride=2)
        self.mix = nn.Conv2d(dim, dim, 1)
        self.heads = DomainHeads(dim, num_classes)

    @property
    def feature_dim(self):
        return self.heads.in_dim

    @property
    def domains(self):
        return self.heads.domains

    @property
    def num_classes(self):
        return self.heads.num_classes

    def forward(self, images, domains=None):
        h3 = torch.relu(self.stem(images))
        h2 = torch.relu(self.down8(h3))
        h1 = torch.relu(self.down16(h2))
        f = self.mix(h3) + F.interpolate(h1, size=h3.shape[-2:], mode="nearest")
        return {"logits": self.heads(f, domains), "features": {"H1": h1, "H2": h2, "H3": h3, "F": f}}


def make_batch(domains, num_classes, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    labels = torch.stack([torch.randint(0, num_classes[d], (size, size), generator=g) for d in domains])
    labels[:, :2, :2] = 255  # a few ignore pixels
    return {"image": torch.randn(len(domains), 3, size, size, generator=g), "label": labels, "domain": list(domains)}


