"""The HTTP API of ``humanparse serve`` against a real server on loopback, with a tiny random-weight model."""

from __future__ import annotations

import io
import json
import threading

import numpy as np
import pytest
from PIL import Image

pytest.importorskip("fastapi", reason="the serve extra is not installed (pip install fastapi uvicorn python-multipart)")
pytest.importorskip("uvicorn", reason="the serve extra is not installed (pip install fastapi uvicorn python-multipart)")

from humanparse.api import Parser  # noqa: E402
from humanparse.cli.main import main  # noqa: E402
from humanparse.data.io import read_image  # noqa: E402
from humanparse.data.sample_data import sample_data_root  # noqa: E402
from humanparse.labels import get_label_space  # noqa: E402
from humanparse.labels.layout import get_layout  # noqa: E402
from humanparse.serve.encode import rle_decode, rle_encode  # noqa: E402
from humanparse.serve.service import ParseService, ServiceError  # noqa: E402

from _live_server import multipart  # noqa: E402


def sample_images(n=3):
    return sorted((sample_data_root() / "lip" / "images").iterdir())[:n]


def png_array(body: bytes) -> np.ndarray:
    with Image.open(io.BytesIO(body)) as img:
        assert img.mode == "P"
        return np.array(img)


def test_parse_png_is_the_label_map_that_humanparse_parse_writes(live_server, tiny_checkpoint, tmp_path, capsys):
    paths = sample_images(2)
    code = main(["parse", str(tiny_checkpoint), *map(str, paths), "--domain", "lip", "--out", str(tmp_path / "cli"),
                 "--device", "cpu"])
    capsys.readouterr()
    assert code == 0
    parser = Parser.from_checkpoint(tiny_checkpoint, device="cpu")
    for path in paths:
        raw = live_server.request("/parse?domain=lip", path.read_bytes(), {"Content-Type": "image/jpeg"})
        body, headers = multipart("file", path.name, path.read_bytes())
        form = live_server.request("/parse?domain=lip", body, headers)
        assert raw[0] == 200 and raw[1] == "image/png" and form[0] == 200
        from_api = png_array(raw[2])
        with Image.open(tmp_path / "cli" / f"{path.stem}.png") as img:
            from_cli = np.array(img)
        direct = parser(path, domain="lip")
        assert from_api.shape == read_image(path).shape[:2]
        assert len(np.unique(direct)) > 2  # a map with several classes, so equality means something
        assert np.array_equal(from_api, from_cli) and np.array_equal(from_api, direct)
        assert np.array_equal(png_array(form[2]), from_api)


def test_json_answer_holds_the_same_map_as_png_and_rle_with_the_class_table(live_server):
    path = sample_images(1)[0]
    status, ctype, body = live_server.request("/parse?domain=lip&format=json", path.read_bytes())
    assert status == 200 and ctype == "application/json"
    r = json.loads(body)
    label = png_array(__import__("base64").b64decode(r["label_png"]))
    assert np.array_equal(rle_decode(r["rle"], r["height"], r["width"]), label)
    lip = get_label_space("lip")
    assert [c["name"] for c in r["classes"]] == lip.names
    assert [c["color"] for c in r["classes"]] == lip.palette.tolist()
    assert r["present"] == np.unique(label).tolist() and r["domain"] == "lip"
    # a try-on layout: the lip map relabelled through the layout's table
    status, _, body = live_server.request("/parse?domain=lip&format=json&map_to=viton_hd", path.read_bytes())
    mapped = json.loads(body)
    table = get_layout("viton_hd").table_from(lip)
    assert status == 200 and mapped["domain"] == "viton_hd" and mapped["classes"][10]["name"] == "neck"
    assert np.array_equal(rle_decode(mapped["rle"], r["height"], r["width"]), table[label])


def test_bad_requests_get_a_clear_4xx_json_error_and_the_server_goes_on(live_server):
    good = sample_images(1)[0].read_bytes()
    noise = np.random.default_rng(0).integers(0, 255, (1200, 1200, 3), dtype=np.uint8)
    big = io.BytesIO()
    Image.fromarray(noise).save(big, format="PNG")  # ~4.3 MB, over the fixture's 2 MB limit
    huge_header = io.BytesIO()
    Image.new("L", (2500, 2000)).save(huge_header, format="PNG")  # small file, 5 Mpixel > the 4 Mpixel limit
    cases = [
        ("/parse?domain=lip", b"", 400, "empty upload"),
        ("/parse?domain=lip", b"this is not an image", 415, "cannot read image"),
        ("/parse?domain=lip", big.getvalue(), 413, "larger than this server accepts"),
        ("/parse?domain=lip", huge_header.getvalue(), 413, "2500x2000"),
        ("/parse?domain=lipp", good, 400, "did you mean 'lip'"),
        ("/parse", good, 400, "several heads"),
        ("/parse?domain=lip&task=multi", good, 400, "no multi model"),
        ("/parse?domain=lip&format=gif", good, 422, "format"),
        ("/parse?domain=pascal&map_to=viton_hd", good, 400, "can be derived from: atr, cihp, lip"),
    ]
    for path, data, status, words in cases:
        got, ctype, body = live_server.request(path, data)
        assert got == status and ctype == "application/json", (path, got, body[:200])
        assert words in json.loads(body)["error"], (path, body)
    body, headers = multipart("photo", "x.jpg", good)  # wrong field name
    got, _, answer = live_server.request("/parse?domain=lip", body, headers)
    assert got == 400 and "'file'" in json.loads(answer)["error"]
    assert live_server.request("/parse?domain=lip", good)[0] == 200


def test_health_domains_and_openapi(live_server):
    status, _, body = live_server.request("/health")
    assert status == 200 and json.loads(body)["tasks"] == ["semantic"]
    d = json.loads(live_server.request("/domains")[2])
    assert [s["name"] for s in d["semantic"]] == ["lip", "pascal"] and d["multi"] is None
    assert {"viton_hd", "viton_hd_13"} <= {lay["name"] for lay in d["layouts"]}
    schema = json.loads(live_server.request("/openapi.json")[2])
    assert {"/parse", "/domains", "/health"} <= set(schema["paths"])
    assert "multipart/form-data" in schema["paths"]["/parse"]["post"]["requestBody"]["content"]
    page = live_server.request("/")[2].decode()
    assert "/static/app.js" in page and live_server.request("/static/app.js")[0] == 200


def test_rle_round_trip_known_answer():
    label = np.array([[0, 0, 3], [3, 3, 1]], np.uint8)
    assert rle_encode(label) == [0, 2, 3, 3, 1, 1]
    assert np.array_equal(rle_decode([0, 2, 3, 3, 1, 1], 2, 3), label)
    with pytest.raises(ValueError):
        rle_decode([0, 2], 2, 3)


class FakeParser:
    """Labels = first channel mod C; records every call, and whether two calls ever overlapped."""

    def __init__(self):
        self.label_spaces = {"lip": get_label_space("lip"), "pascal": get_label_space("pascal")}
        self.calls: list[tuple[str, int]] = []
        self.active = 0
        self.overlapped = False
        self.lock = threading.Lock()

    def _domain(self, domain):
        return Parser._domain(self, domain)

    def predict(self, images, domain):
        with self.lock:
            self.active += 1
            self.overlapped |= self.active > 1
        self.calls.append((domain, len(images)))
        n = self.label_spaces[domain].num_classes
        out = [(im[..., 0] % n).astype(np.uint8) for im in images]
        with self.lock:
            self.active -= 1
        return out


def test_service_batches_waiting_requests_by_kind_and_runs_one_call_at_a_time():
    fake = FakeParser()
    service = ParseService(fake, max_batch=4)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (5 + k, 7, 3), dtype=np.uint8) for k in range(7)]
    domains = ["lip", "lip", "pascal", "lip", "lip", "lip", "pascal"]
    with pytest.raises(ServiceError):  # not started: refused, not left hanging
        service.submit(images[0], "semantic", "lip")
    service._thread = threading.current_thread()  # queue everything before the worker runs
    futures = [service.submit(im, "semantic", d) for im, d in zip(images, domains)]
    service._thread = None
    service.start()
    results = [f.result(30) for f in futures]
    service.close()
    for im, d, r in zip(images, domains, results):
        assert np.array_equal(r["label"], im[..., 0] % fake.label_spaces[d].num_classes)
    # 5 lip jobs -> batches of 4 and 1; 2 pascal jobs -> one batch: 3 calls, not 7
    assert sorted(fake.calls) == [("lip", 1), ("lip", 4), ("pascal", 2)] and not fake.overlapped
    assert service.batches_run == 3 and service.jobs_done == 7
    with pytest.raises(ServiceError) as err:
        ParseService(fake).check("semantic", "lipp")
    assert err.value.status == 400 and "did you mean 'lip'" in str(err.value)


def test_a_full_queue_is_refused_with_503():
    service = ParseService(FakeParser(), max_batch=1, max_queue=2)
    service._thread = threading.current_thread()  # "running" but nobody takes jobs
    image = np.zeros((4, 4, 3), np.uint8)
    service.submit(image, "semantic", "lip")
    service.submit(image, "semantic", "lip")
    with pytest.raises(ServiceError) as err:
        service.submit(image, "semantic", "lip")
    assert err.value.status == 503 and "busy" in str(err.value)


def test_without_a_checkpoint_the_starter_model_is_asked_for(monkeypatch):
    from humanparse.errors import ConfigError
    from humanparse.serve import service as svc

    asked = {}

    def fake_from_pretrained(name=None, **kwargs):
        asked["name"] = name
        return "starter-parser"

    monkeypatch.setattr(Parser, "from_pretrained", staticmethod(fake_from_pretrained), raising=False)
    assert svc.load_semantic_parser(None, device="cpu") == "starter-parser" and asked["name"] is None
    monkeypatch.delattr(Parser, "from_pretrained")
    with pytest.raises(ConfigError, match="no bundled starter model"):
        svc.load_semantic_parser(None)


def test_multi_person_parse_over_http_matches_the_parser(tmp_path):
    import base64

    import torch
    from pycocotools import mask as mask_utils

    from humanparse.uniparser.model import build_uniparser
    from humanparse.uniparser.predictor import MultiPersonParser

    from _live_server import LiveServer

    torch.manual_seed(0)
    model = build_uniparser({"backbone": {"name": "test_resnet"}, "num_classes": 20, "fpn_dim": 16, "feat_dim": 16,
                             "S": 8, "gn_groups": 4})
    multi = MultiPersonParser.from_model(model, get_label_space("lip"), theta_ctr=0.0, max_persons=3, long_side=96)
    path = sample_images(1)[0]
    expected = multi([read_image(path)])[0]
    with LiveServer(ParseService(None, multi)) as server:
        assert server.request("/parse?task=semantic", path.read_bytes())[0] == 400  # no semantic model here
        status, _, body = server.request("/parse?task=multi&format=json", path.read_bytes())
    assert status == 200
    r = json.loads(body)
    h, w = r["height"], r["width"]
    assert np.array_equal(rle_decode(r["rle"], h, w), expected["parts"])
    ids = rle_decode(r["person_rle"], h, w)
    assert np.array_equal(ids, expected["person_ids"]) and np.array_equal(
        png_array(base64.b64decode(r["person_ids_png"])), ids)
    assert [p["id"] for p in r["persons"]] == [p["id"] for p in expected["persons"]] and r["persons"]
    for p in r["persons"]:  # each person's RLE mask is where the id map holds its id
        rle = {"size": p["rle"]["size"], "counts": p["rle"]["counts"].encode()}
        assert np.array_equal(mask_utils.decode(rle).astype(bool), ids == p["id"])
