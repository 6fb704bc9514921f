"""The fastest correct inference path: CPU feature detection, the choice and its overrides, and per path the
agreement of its labels with the fp32 PyTorch reference (>= 99.5 % of pixels) on the sample images, with a
model trained for a few dozen steps."""

import hashlib
import importlib.util
import json

import numpy as np
import pytest
import torch

from humanparse.api import Parser
from humanparse.data.io import read_image
from humanparse.data.sample_data import sample_data_root
from humanparse.engine.trainer import train
from humanparse.errors import ConfigError
from humanparse.export.fast_path import (InferencePath, announce, choose_torch_path, cpu_features, onnx_cache_paths,
                                         pick_backend)

from _tiny import tiny_config

HAS_ORT = importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None
PLAIN = {"capability": "AVX2", "model": "x", "avx512_bf16": False, "amx": False}
NATIVE = {"capability": "AVX512", "model": "y", "avx512_bf16": True, "amx": False}


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    out = tmp_path_factory.mktemp("fast")
    train(tiny_config(steps=30, domains=("lip",)), output_dir=out, progress=False)
    return out / "model.safetensors"


@pytest.fixture(scope="module")
def images():
    folder = sample_data_root() / "lip" / "images"
    return [read_image(p) for p in sorted(folder.iterdir())[:6]]


def test_cpu_features_read_the_flags(tmp_path):
    info = tmp_path / "cpuinfo"
    info.write_text("processor\t: 0\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile\n"
                    "processor\t: 1\nmodel name\t: Test CPU 9000\nflags\t\t: fpu avx2\n")
    f = cpu_features(info)
    assert (f["model"], f["avx512_bf16"], f["amx"]) == ("Test CPU 9000", True, True)
    info.write_text("model name\t: Old\nflags\t\t: fpu avx2 avx512f\n")
    assert (cpu_features(info)["avx512_bf16"], cpu_features(info)["amx"]) == (False, False)
    assert cpu_features(info)["capability"] == torch.backends.cpu.get_cpu_capability()


def test_choice_follows_native_bf16_and_the_override():
    assert (choose_torch_path("cpu", features=PLAIN).precision, choose_torch_path("cpu", features=PLAIN).channels_last) \
        == ("fp32", False)
    fast = choose_torch_path("cpu", features=NATIVE)
    assert (fast.precision, fast.channels_last, fast.attn_impl) == ("bf16", True, "gather")
    assert choose_torch_path("cpu", precision="fp32", features=NATIVE).precision == "fp32"
    assert choose_torch_path("cpu", precision="bf16", features=PLAIN).precision == "bf16"
    with pytest.raises(ConfigError, match="did you mean 'bf16'"):
        choose_torch_path("cpu", precision="bf61", features=PLAIN)


def test_the_choice_is_printed_once(capsys):
    path = InferencePath(reason="print-once test")
    announce(path)
    announce(path)
    assert capsys.readouterr().err.count("print-once test") == 1


def _labels(parser, images):
    return [parser.predict([im], "lip")[0] for im in images]


def _agreement(labels, reference):
    same = sum(int((a == b).sum()) for a, b in zip(labels, reference))
    return same / sum(r.size for r in reference)


PATHS = [
    InferencePath(precision="fp32", attn_impl="gather", reason="default CPU path"),
    InferencePath(precision="fp32", attn_impl="embedding_bag", reason="embedding_bag"),
    InferencePath(precision="bf16", channels_last=True, attn_impl="gather", reason="bf16 + channels-last"),
]


@pytest.mark.parametrize("path", PATHS, ids=lambda p: p.reason)
def test_every_torch_path_agrees_with_the_fp32_reference(checkpoint, images, path):
    reference_parser = Parser.from_checkpoint(checkpoint, backend="torch", precision="fp32")
    reference_parser.inference_path = InferencePath(attn_impl="pytorch", reason="reference")
    from humanparse.export.fast_path import apply_path

    apply_path(reference_parser.model, reference_parser.inference_path)
    reference = _labels(reference_parser, images)
    assert len(np.unique(np.concatenate([r.ravel() for r in reference]))) >= 2  # not a constant map
    parser = Parser.from_checkpoint(checkpoint, backend="torch", precision=path.precision)
    parser.inference_path = path
    apply_path(parser.model, path)
    labels = _labels(parser, images)
    assert _agreement(labels, reference) >= 0.995
    if path.precision == "bf16":  # it really ran in bf16: same labels, different probabilities
        p16 = parser.predict_proba(images[:1], "lip")[0]
        p32 = reference_parser.predict_proba(images[:1], "lip")[0]
        assert (p16 - p32).abs().max() > 1e-4


@pytest.mark.skipif(not HAS_ORT, reason="onnxruntime / onnx not installed")
def test_onnx_path_exports_once_next_to_the_checkpoint_and_agrees(checkpoint, images):
    from humanparse.export.onnx_parser import OnnxParser

    reference = _labels(Parser.from_checkpoint(checkpoint, backend="torch", precision="fp32"), images)
    parser = Parser.from_checkpoint(checkpoint, backend="onnx")
    assert isinstance(parser, OnnxParser)
    sha = hashlib.sha256(checkpoint.read_bytes()).hexdigest()
    onnx_file = checkpoint.with_name(f"model.{sha[:16]}.lip.onnx")
    assert onnx_file.is_file()
    stamp = onnx_file.stat().st_mtime_ns
    assert _agreement(_labels(parser, images), reference) >= 0.995
    Parser.from_checkpoint(checkpoint, backend="onnx")
    assert onnx_file.stat().st_mtime_ns == stamp  # exported once


@pytest.mark.skipif(not HAS_ORT, reason="onnxruntime / onnx not installed")
def test_measure_caches_the_timing_and_auto_follows_it(checkpoint):
    from humanparse.engine.loading import load_model

    model, _, _ = load_model(checkpoint)
    torch_path = choose_torch_path("cpu")
    chosen, _ = pick_backend(checkpoint, model, "lip", torch_path, device="cpu", long_side=64, backend="measure")
    _, timing_file = onnx_cache_paths(checkpoint, "lip")
    record = json.loads(timing_file.read_text())
    assert record["torch_s"] > 0 and record["onnx_s"] > 0
    assert chosen.backend == ("onnx" if record["onnx_s"] < record["torch_s"] else "torch")
    for onnx_s, expected in ((record["torch_s"] / 2, "onnx"), (record["torch_s"] * 2, "torch")):
        timing_file.write_text(json.dumps({**record, "onnx_s": onnx_s}))  # auto reads, never re-times
        chosen, onnx_file = pick_backend(checkpoint, model, "lip", torch_path, device="cpu", long_side=64, backend="auto")
        assert chosen.backend == expected and (onnx_file is not None) == (expected == "onnx")
    chosen, _ = pick_backend(checkpoint, model, "lip", torch_path, device="cpu", long_side=96, backend="auto")
    assert chosen.backend == "torch" and "not timed" in chosen.reason  # another size: not measured


def test_backend_onnx_needs_one_head(tmp_path):
    from humanparse.engine.checkpoint import save_inference_checkpoint
    from humanparse.labels import get_label_space
    from humanparse.models import build_network

    from _tiny import TINY_MODEL

    net = build_network(TINY_MODEL, {"lip": 20, "pascal": 7})
    path = tmp_path / "two.safetensors"
    save_inference_checkpoint(path, net, recipe="semantic", model_config=net.config,
                              label_spaces={d: get_label_space(d).to_dict() for d in ("lip", "pascal")})
    with pytest.raises(ConfigError, match="--backend onnx runs one head: choose it with --domain"):
        Parser.from_checkpoint(path, backend="onnx")
