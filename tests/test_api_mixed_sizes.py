"""``Parser`` on a list of images of different sizes: batched by padded size, identical to one by one."""

import numpy as np
import torch

from humanparse.api import Parser
from humanparse.labels import get_label_space
from humanparse.models import build_network

from _tiny import TINY_MODEL


class CountingModel(torch.nn.Module):
    def __init__(self, net):
        super().__init__()
        self.net = net
        self.batches: list[tuple[int, int, int]] = []

    def forward(self, x, domains):
        self.batches.append((x.shape[0], x.shape[2], x.shape[3]))
        return self.net(x, domains=domains)


def test_mixed_sizes_are_batched_by_padded_size_and_equal_one_by_one():
    torch.manual_seed(0)
    torch.set_num_threads(1)
    net = build_network(TINY_MODEL, {"lip": 20}).eval()
    with torch.no_grad():
        net.heads.heads["lip"].weight.mul_(20.0)
    model = CountingModel(net)
    parser = Parser(model, {"lip": get_label_space("lip")}, long_side=None, batch_size=2)
    rng = np.random.default_rng(0)
    sizes = [(40, 56), (64, 64), (40, 56), (33, 90), (64, 64), (38, 60), (40, 56)]
    images = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in sizes]
    together = parser.predict_proba(images, "lip")
    # padded to 32: (40,56)->(64,64) x3 + (38,60)->(64,64) = 4 of 64x64 plus 2 of the (64,64) originals = 6 -> 3
    # batches of 2; (33,90)->(64,96) alone -> 1 batch
    assert sorted(model.batches) == sorted([(2, 64, 64)] * 3 + [(1, 64, 96)])
    model.batches.clear()
    alone = [parser.predict_proba([im], "lip")[0] for im in images]
    assert len(model.batches) == len(images)
    for a, b, (h, w) in zip(together, alone, sizes):
        assert a.shape == (20, h, w)
        assert torch.allclose(a, b, atol=1e-5)
        assert torch.equal(a.argmax(0), b.argmax(0))
    assert len(torch.unique(torch.cat([a.argmax(0).flatten() for a in together]))) > 3  # many classes compared
