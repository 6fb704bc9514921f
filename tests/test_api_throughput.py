"""``Parser.parse_files`` overlaps reading and writing with the forward, and writes what ``predict`` returns."""

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from PIL import Image

from humanparse.api import Parser, prefetched
from humanparse.labels import get_label_space
from humanparse.models import build_network

from _tiny import TINY_MODEL


def test_prefetched_keeps_order_and_produces_in_the_pool():
    producers = []

    def items():
        for i in range(5):
            producers.append(threading.get_ident())
            yield i

    with ThreadPoolExecutor(max_workers=1) as pool:
        assert list(prefetched(items(), pool)) == [0, 1, 2, 3, 4]
        assert list(prefetched(iter([]), pool)) == []
    assert threading.get_ident() not in producers


def test_parse_files_writes_the_labels_of_predict(tmp_path):
    torch.manual_seed(0)
    net = build_network(TINY_MODEL, {"lip": 20}).eval()
    with torch.no_grad():
        net.heads.heads["lip"].weight.mul_(20.0)
    parser = Parser(net, {"lip": get_label_space("lip")}, long_side=None, batch_size=2)
    rng = np.random.default_rng(0)
    folder = tmp_path / "in"
    folder.mkdir()
    images = {}
    for i, (h, w) in enumerate([(40, 56), (64, 64), (40, 56), (33, 90), (64, 64)]):
        images[f"im{i}"] = rng.integers(0, 255, (h, w, 3), dtype=np.uint8)
        Image.fromarray(images[f"im{i}"]).save(folder / f"im{i}.png")
    (folder / "broken.png").write_bytes(b"not a png")
    report = parser.parse_files([folder], tmp_path / "out", domain="lip", overlay=True)
    assert list(report.failed) == [str(folder / "broken.png")]
    pngs = [p for p in report.written if p.suffix == ".png"]
    assert sorted(p.stem for p in pngs) == sorted(images) and len(report.written) == 2 * len(images)
    for path in pngs:
        expected = parser.predict([images[path.stem]], "lip")[0]
        assert len(np.unique(expected)) > 1
        written = np.array(Image.open(path))
        assert written.shape == expected.shape and (written == expected).mean() >= 0.999  # batched vs alone: fp noise
