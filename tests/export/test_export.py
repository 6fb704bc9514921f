"""Export: one traced ONNX / TorchScript file must match the PyTorch network at other batch sizes and image sizes."""

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from humanparse.cli.main import main
from humanparse.data.io import read_image
from humanparse.data.sample_data import sample_data_root
from humanparse.engine.checkpoint import save_inference_checkpoint
from humanparse.engine.inference import to_tensor
from humanparse.errors import ConfigError
from humanparse.export import ExportError, check_export, export_model, load_exported
from humanparse.export.exporters import DomainLogits, export_torchscript
from humanparse.labels import get_label_space
from humanparse.models import build_network

from _tiny import TINY_MODEL

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

EXPORT_SIZE = (64, 96)  # 1/32 map 2x3: one Swin window, padded; 1/16 map 4x6: padded, shifted
# 128x128: nothing padded at 1/32 (a mask-free eager path); 96x160: 1/32 map 3x5, two windows, shifted
TEST_SIZES = [((128, 128), 2), ((96, 160), 1)]


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is as fast, and cannot stall on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    torch.manual_seed(0)
    network = build_network(TINY_MODEL, {"lip": 20, "pascal": 7}).eval()
    with torch.no_grad():  # a head with spread-out logits, so the arg-max map has many classes to get wrong
        network.heads.heads["lip"].weight.mul_(20.0)
    spaces = {d: get_label_space(name).to_dict() for d, name in (("lip", "lip"), ("pascal", "pascal"))}
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    save_inference_checkpoint(path, network, recipe="semantic", model_config=network.config, label_spaces=spaces)
    return path, network


@pytest.fixture(scope="module")
def onnx_file(checkpoint, tmp_path_factory):
    """Written by the CLI, which also runs the file at two sizes against the network (the default check)."""
    path = tmp_path_factory.mktemp("onnx") / "lip.onnx"
    code = main(["export", str(checkpoint[0]), "--domain", "lip", "--out", str(path),
                 "--sample-size", *map(str, EXPORT_SIZE)])
    assert code == 0 and path.is_file()
    return path


def sample_batch(size, batch):
    """Real photos (LIP samples), resized to ``size``, normalised: [batch, 3, H, W]."""
    paths = sorted((sample_data_root() / "lip" / "images").iterdir())[:batch]
    images = [to_tensor(read_image(p)) for p in paths]
    return torch.stack([F.interpolate(t[None], size=size, mode="bilinear", align_corners=False)[0] for t in images])


def compare(run, wrapper, size, batch):
    images = sample_batch(size, batch)
    with torch.no_grad():
        expected = wrapper(images)
    got = run(images)
    assert got.shape == expected.shape == (batch, expected.shape[1], size[0] // 4, size[1] // 4)
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    # full-resolution labels, as `parse` computes them
    up = lambda t: F.interpolate(t, size=size, mode="bilinear", align_corners=False).argmax(1)  # noqa: E731
    labels = up(expected)
    assert (up(got) == labels).float().mean() >= 0.999
    return labels


@pytest.mark.parametrize("size,batch", TEST_SIZES)
def test_onnx_runs_at_other_sizes_and_batches(checkpoint, onnx_file, size, batch):
    wrapper = DomainLogits(checkpoint[1], "lip").eval()
    labels = compare(load_exported(onnx_file, "onnx"), wrapper, size, batch)
    assert len(labels.unique()) >= 3  # a real comparison, not a constant map


def test_onnx_metadata_and_dynamic_axes(onnx_file):
    import onnx

    from humanparse.export.onnx_parser import read_onnx_metadata

    meta = read_onnx_metadata(onnx_file)
    assert meta["domain"] == "lip" and meta["label_space"]["names"] == get_label_space("lip").names
    dims = onnx.load(str(onnx_file)).graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "height", "width"]


def test_torchscript_round_trip_and_other_size(checkpoint, tmp_path):
    path = export_model(checkpoint[0], tmp_path / "lip.pt", fmt="torchscript", domain="lip", sample_size=EXPORT_SIZE,
                        check=False)
    wrapper = DomainLogits(checkpoint[1], "lip").eval()
    run = load_exported(path, "torchscript")
    compare(run, wrapper, EXPORT_SIZE, 1)  # the export size
    compare(run, wrapper, *TEST_SIZES[1])  # and another one: the trace recorded shape operations
    extra = {"humanparse.json": ""}
    torch.jit.load(str(path), _extra_files=extra)
    assert json.loads(extra["humanparse.json"])["domain"] == "lip"


def test_onnx_parse_matches_torch_parse(checkpoint, onnx_file, tmp_path):
    ckpt, onnx_path = checkpoint[0], onnx_file
    images = sorted((sample_data_root() / "lip" / "images").iterdir())[:3]  # three aspect ratios
    common = ["--domain", "lip", "--long-side", "128", "--batch-size", "2"]
    assert main(["parse", str(onnx_path), *map(str, images), "--out", str(tmp_path / "onnx"), "--backend", "onnx",
                 *common]) == 0
    # fp32 PyTorch, as the ONNX graph computes (the bf16 path has its own 99.5 % agreement test: test_fast_path.py)
    assert main(["parse", str(ckpt), *map(str, images), "--out", str(tmp_path / "torch"), "--device", "cpu",
                 "--precision", "fp32", *common]) == 0
    for p in images:
        a = np.array(Image.open(tmp_path / "onnx" / f"{p.stem}.png"))
        b = np.array(Image.open(tmp_path / "torch" / f"{p.stem}.png"))
        assert a.shape == b.shape == np.array(Image.open(p)).shape[:2]
        assert (a == b).mean() >= 0.999 and len(np.unique(b)) >= 3


class _BakedSize(torch.nn.Module):
    """A graph that keeps its traced size: int() on a size is recorded as a constant."""

    def forward(self, images):
        h, w = int(images.shape[-2]), int(images.shape[-1])
        return F.interpolate(images, size=(h // 4, w // 4), mode="bilinear", align_corners=False)


class _BakedBatch(torch.nn.Module):
    """A graph that fails at another batch size: the traced reshape keeps batch 1."""

    def forward(self, images):
        b, c, h, w = (int(s) for s in images.shape)
        return images.reshape(b, c * h * w).reshape(b, c, h, w)[:, :, ::4, ::4]


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
@pytest.mark.parametrize("module,problem", [(_BakedSize, "gives logits"), (_BakedBatch, "fails at input")])
def test_check_export_catches_a_size_baked_into_the_graph(tmp_path, fmt, module, problem):
    from humanparse.export.exporters import export_onnx

    wrapper = module().eval()
    example = torch.zeros(1, 3, 64, 64)
    path = tmp_path / f"baked.{fmt}"
    (export_onnx if fmt == "onnx" else export_torchscript)(wrapper, example, str(path))
    with pytest.raises(ExportError, match=f"{problem}.*128x96/2|128x96/2.*{problem}"):
        check_export(path, fmt, wrapper, (64, 64))


def test_export_argument_errors(checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'onnx'"):
        export_model(checkpoint[0], tmp_path / "x", fmt="onnxx", domain="lip")
    with pytest.raises(ConfigError, match="choose the head"):
        export_model(checkpoint[0], tmp_path / "x.onnx")
    with pytest.raises(ConfigError, match="multiples of 32"):
        export_model(checkpoint[0], tmp_path / "x.onnx", domain="lip", sample_size=(100, 64))
