"""Model folders (config.json + model.safetensors), the bundled starter model, Hub repo ids."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from humanparse.api import Parser
from humanparse.errors import CheckpointError
from humanparse.pretrained import resolve_pretrained, save_pretrained, starter_dir


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory):
    from _tiny import TINY_MODEL

    from humanparse.engine.checkpoint import save_inference_checkpoint
    from humanparse.labels import get_label_space
    from humanparse.models import build_network

    torch.manual_seed(0)
    net = build_network(TINY_MODEL, {"lip": 20, "pascal": 7}).eval()
    path = tmp_path_factory.mktemp("ckpt") / "model.safetensors"
    save_inference_checkpoint(path, net, recipe="semantic", model_config=net.config,
                              label_spaces={d: get_label_space(d).to_dict() for d in ("lip", "pascal")},
                              extra={"inference": {"long_side": 128}})
    return path


def _image(seed=0):
    return np.random.default_rng(seed).integers(0, 255, (150, 100, 3), dtype=np.uint8)


def test_model_folder_round_trip(tiny_checkpoint, tmp_path):
    folder = tmp_path / "my-model"
    save_pretrained(tiny_checkpoint, folder, card={"trained_by": "test"})
    assert sorted(p.name for p in folder.iterdir()) == ["SHA256SUMS", "config.json", "model.safetensors"]
    config = json.loads((folder / "config.json").read_text())
    assert config["label_spaces"]["lip"]["names"][0] == "Background" or len(config["label_spaces"]["lip"]["names"]) == 20
    assert config["extra"]["inference"]["long_side"] == 128 and config["dtype"] == "float16"
    # fp32 compute on both sides: what is compared is the storage of the weights, not the CPU's bf16 path
    ref = Parser.from_checkpoint(tiny_checkpoint, precision="fp32")
    got = Parser.from_pretrained(folder, precision="fp32")
    assert got.long_side == ref.long_side == 128  # the stored inference size is the default
    a, b = ref.predict_proba([_image()], "lip")[0], got.predict_proba([_image()], "lip")[0]
    assert (a.argmax(0) == b.argmax(0)).float().mean() > 0.99  # fp16 weights: labels as fp32's
    assert (folder / "model.safetensors").stat().st_size < 0.6 * tiny_checkpoint.stat().st_size


def test_damaged_model_folder_is_refused(tiny_checkpoint, tmp_path):
    folder = tmp_path / "m"
    save_pretrained(tiny_checkpoint, folder)
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="SHA-256") as err:
        resolve_pretrained(folder)
    assert "model.safetensors" in str(err.value) and "\n" not in str(err.value)


def test_hub_repo_id_goes_through_huggingface_hub(tiny_checkpoint, tmp_path, monkeypatch):
    """A repo id that is not a local path is downloaded with hf_hub_download (here served from a local folder)."""
    import huggingface_hub

    hub = tmp_path / "hub" / "someone" / "parser"
    save_pretrained(tiny_checkpoint, hub)
    calls = []

    def fake_download(repo_id, filename, revision=None, **_):
        calls.append((repo_id, filename, revision))
        return str(tmp_path / "hub" / repo_id / filename)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.chdir(tmp_path)
    parser = Parser.from_pretrained("someone/parser", revision="v1")
    assert ("someone/parser", "model.safetensors", "v1") in calls
    assert parser.domains == ["lip", "pascal"]


def test_unreachable_hub_gives_one_line(monkeypatch, tmp_path):
    import huggingface_hub

    def offline(*_, **__):
        raise OSError("We couldn't connect to the Hub\nmore lines")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(CheckpointError) as err:
        resolve_pretrained("nobody/nothing")
    assert "nobody/nothing" in str(err.value) and "\n" not in str(err.value)


def test_missing_local_path_is_not_mistaken_for_a_repo(tmp_path):
    with pytest.raises(CheckpointError, match="no such model folder"):
        resolve_pretrained(str(tmp_path / "a" / "b" / "c"))


starter_missing = not (starter_dir() / "model.safetensors").is_file()


@pytest.mark.skipif(starter_missing, reason="the starter model is not bundled in this checkout")
def test_starter_model_is_verified_small_and_parses_a_person():
    weights = resolve_pretrained()
    assert weights.stat().st_size < 20 * 2**20
    parser = Parser.from_pretrained()
    assert set(parser.domains) >= {"ccp", "lip", "cihp", "pascal"}
    # the held-out LIP photos (hash split 'val', never trained on): person vs background right on most pixels
    # (0.78 on average for the shipped model; a model that predicts background everywhere gets 0.54)
    from PIL import Image

    from humanparse.data.io import read_image
    from humanparse.data.readers import read_dataset
    from humanparse.data.sample_data import sample_data_root

    records = read_dataset("folder", Path(sample_data_root()) / "lip", "val", domain="lip")
    agreement = []
    for rec in records:
        truth = np.asarray(Image.open(rec.label))
        pred = parser(read_image(rec.image), domain="lip")
        valid = truth < 255
        agreement.append((((pred > 0) == (truth > 0)) & valid).sum() / valid.sum())
    assert len(records) >= 5 and np.mean(agreement) > 0.7, agreement


@pytest.mark.skipif(starter_missing, reason="the starter model is not bundled in this checkout")
def test_starter_labels_do_not_depend_on_the_stored_resolution():
    """Scale consistency: a 3x up-scaled copy of a photo parses (nearly) as the original."""
    import cv2

    from humanparse.data.io import read_image
    from humanparse.data.sample_data import sample_data_root

    image = read_image(sorted((Path(sample_data_root()) / "lip" / "images").iterdir())[0])
    big = cv2.resize(image, (image.shape[1] * 3, image.shape[0] * 3), interpolation=cv2.INTER_CUBIC)
    parser = Parser.from_pretrained()
    small_label = parser(image, domain="lip")
    big_label = parser(big, domain="lip")
    back = cv2.resize(big_label, (image.shape[1], image.shape[0]), interpolation=cv2.INTER_NEAREST)
    assert (back == small_label).mean() > 0.95


def test_int8_model_folder_keeps_every_weight_within_half_a_step_and_the_labels(tiny_checkpoint, tmp_path):
    from safetensors.torch import load_file

    from humanparse.engine.checkpoint import INT8_SCALE, read_inference_checkpoint

    folder = tmp_path / "int8"
    save_pretrained(tiny_checkpoint, folder, int8=True)
    raw = load_file(str(folder / "model.safetensors"))
    _, original = read_inference_checkpoint(tiny_checkpoint)
    _, restored = read_inference_checkpoint(folder / "model.safetensors")
    quantized = [k for k in raw if raw[k].dtype == torch.int8]
    assert len(quantized) > 10 and set(restored) == set(original)  # scales are not part of the state dict
    for key in quantized:
        w = original[key].float().reshape(original[key].shape[0], -1)
        step = w.abs().amax(1) / 127  # the scale, computed here independently of the quantiser
        assert torch.allclose(raw[key + INT8_SCALE], step, rtol=1e-6)
        err = (restored[key].reshape(w.shape) - w).abs()
        assert (err <= step[:, None] / 2 + 1e-7).all(), key  # rounding to the nearest step, per output channel
        peak = raw[key].reshape(w.shape).abs().amax(1)  # each non-zero channel's largest weight maps to 127
        assert torch.equal(peak, torch.where(step > 0, 127, 0).to(torch.int8))
    ref = Parser.from_checkpoint(tiny_checkpoint, precision="fp32")
    got = Parser.from_pretrained(folder, precision="fp32")
    a, b = ref.predict_proba([_image()], "lip")[0], got.predict_proba([_image()], "lip")[0]
    assert (a.argmax(0) == b.argmax(0)).float().mean() > 0.95
    assert (folder / "model.safetensors").stat().st_size < 0.35 * tiny_checkpoint.stat().st_size


def test_stored_flip_default_makes_the_parser_mirror_equivariant(tmp_path):
    """A model saved with flip=True is run with flip averaging by every path (Parser, parse, eval). Its answer for
    a mirrored photo is then exactly the mirror of its answer for the photo, left/right classes swapped; without
    flip a random network is not (the property the averaging buys)."""
    import numpy as np

    from humanparse import Parser
    from humanparse.labels import get_label_space
    from humanparse.pretrained import save_pretrained

    from _tiny_checkpoint import make_tiny_checkpoint

    ckpt = make_tiny_checkpoint(tmp_path / "tiny.safetensors")
    folder = tmp_path / "flipped"
    save_pretrained(ckpt, folder, fp16=False, flip=True)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (96, 64, 3), dtype=np.uint8)
    perm = np.asarray(get_label_space("lip").flip_permutation)
    with_flip = Parser.from_pretrained(folder, precision="fp32")
    assert with_flip.flip
    a = with_flip.predict_proba([image], "lip")[0].numpy()
    b = with_flip.predict_proba([image[:, ::-1].copy()], "lip")[0].numpy()
    np.testing.assert_allclose(b, a[perm][:, :, ::-1], atol=1e-5)
    plain = Parser.from_pretrained(folder, precision="fp32", flip=False)
    assert not plain.flip
    a0 = plain.predict_proba([image], "lip")[0].numpy()
    b0 = plain.predict_proba([image[:, ::-1].copy()], "lip")[0].numpy()
    assert np.abs(b0 - a0[perm][:, :, ::-1]).max() > 1e-3
    assert not Parser.from_pretrained(ckpt, precision="fp32").flip  # nothing stored: off
