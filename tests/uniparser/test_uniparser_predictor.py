import json

import numpy as np
import pytest
import torch
from PIL import Image

from humanparse.engine.checkpoint import save_inference_checkpoint
from humanparse.errors import CheckpointError
from humanparse.labels import get_label_space
from humanparse.metrics.instance import score_instance_dirs
from humanparse.uniparser.inference import encode_rle
from humanparse.uniparser.predictor import MultiPersonParser, write_cihp_predictions, write_id_png


def hand_result():
    ids = np.zeros((30, 40), np.int32)
    ids[2:20, 3:15], ids[5:28, 20:38] = 1, 2
    parts = np.where(ids > 0, 5, 0).astype(np.uint8)
    parts[2:8, 3:15] = 13
    persons = [{"id": k, "score": s, "rle": encode_rle(ids == k)} for k, s in ((1, 0.9), (2, 0.7))]
    return {"person_ids": ids, "parts": parts, "persons": persons}


def test_write_files(tmp_path):
    lip = get_label_space("lip")
    res = hand_result()
    parser = MultiPersonParser.from_model(torch.nn.Identity(), lip)
    paths = parser.write(res, tmp_path / "out", "img")
    with Image.open(paths["parts"]) as im:
        assert im.mode == "P" and np.array_equal(np.array(im), res["parts"])
        assert im.getpalette()[13 * 3:13 * 3 + 3] == lip.palette[13].tolist()
    with Image.open(paths["persons"]) as im:
        assert im.mode == "P" and np.array_equal(np.array(im), res["person_ids"])
    meta = json.loads(paths["json"].read_text())
    assert meta["height"] == 30 and [p["id"] for p in meta["persons"]] == [1, 2]
    assert meta["persons"][0]["rle"] == res["persons"][0]["rle"]
    assert not list((tmp_path / "out").glob("*.tmp"))  # atomic writes leave no temporary file


def test_cihp_layout_round_trip_scores_a_perfect_prediction_as_one(tmp_path):
    res = hand_result()
    write_cihp_predictions([res], ["img"], tmp_path / "pred")
    write_id_png(tmp_path / "gt" / "Category_ids" / "img.png", res["parts"])
    write_id_png(tmp_path / "gt" / "Human_ids" / "img.png", res["person_ids"])
    assert json.loads((tmp_path / "pred" / "scores.json").read_text()) == {"img": {"1": 0.9, "2": 0.7}}
    r = score_instance_dirs(tmp_path / "pred", tmp_path / "gt", num_classes=20)
    assert r["APp50"] == pytest.approx(1.0) and r["APpvol"] == pytest.approx(1.0) and r["PCP50"] == pytest.approx(1.0)
    swapped = dict(res, parts=np.where(res["parts"] == 13, 5, res["parts"]).astype(np.uint8))
    write_cihp_predictions([swapped], ["img"], tmp_path / "pred")
    assert score_instance_dirs(tmp_path / "pred", tmp_path / "gt", num_classes=20)["PCP50"] < 1.0


def test_from_checkpoint_round_trip(tmp_path, tiny_model):
    lip = get_label_space("lip")
    path = tmp_path / "model.safetensors"
    save_inference_checkpoint(path, tiny_model, recipe="uniparser", model_config=tiny_model.config,
                              label_spaces={"lip": lip.to_dict()})
    parser = MultiPersonParser.from_checkpoint(path, theta_ctr=0.0, batch_size=1, long_side=None)
    images = [np.random.default_rng(k).integers(0, 255, (40, 56, 3), dtype=np.uint8) for k in range(3)]
    direct = MultiPersonParser.from_model(tiny_model, lip, theta_ctr=0.0)(images)
    loaded = parser(images)
    assert len(loaded) == 3 and parser.label_space.name == "lip"
    for a, b in zip(direct, loaded):
        assert np.array_equal(a["person_ids"], b["person_ids"]) and np.array_equal(a["parts"], b["parts"])
    save_inference_checkpoint(tmp_path / "other.safetensors", torch.nn.Linear(2, 2), recipe="semantic",
                              model_config={"model_cfg": {}, "num_classes": {}}, label_spaces={})
    with pytest.raises(CheckpointError):
        MultiPersonParser.from_checkpoint(tmp_path / "other.safetensors")


def test_parse_files_multi_writes_three_files_per_image_and_reports_bad_ones(tmp_path, tiny_model):
    from humanparse.uniparser.predictor import parse_files_multi

    save_inference_checkpoint(tmp_path / "m.safetensors", tiny_model, recipe="uniparser",
                              model_config=tiny_model.config, label_spaces={"lip": get_label_space("lip").to_dict()})
    (tmp_path / "in").mkdir()
    for k in range(2):
        Image.fromarray(np.full((40, 30, 3), 60 * k, np.uint8)).save(tmp_path / "in" / f"im{k}.jpg")
    (tmp_path / "in" / "broken.png").write_bytes(b"not a png")
    report = parse_files_multi(tmp_path / "m.safetensors", [tmp_path / "in"], tmp_path / "out", device="cpu")
    assert sorted(p.name for p in report.written) == sorted(
        f"im{k}{s}" for k in range(2) for s in ("_persons.png", "_parts.png", ".json"))
    assert list(report.failed) == [str(tmp_path / "in" / "broken.png")]


def test_from_checkpoint_runs_at_the_stored_inference_size(tmp_path, tiny_model):
    lip = get_label_space("lip").to_dict()
    stored, plain = tmp_path / "stored.safetensors", tmp_path / "plain.safetensors"
    save_inference_checkpoint(stored, tiny_model, recipe="uniparser", model_config=tiny_model.config,
                              label_spaces={"lip": lip}, extra={"inference": {"long_side": 96}})
    save_inference_checkpoint(plain, tiny_model, recipe="uniparser", model_config=tiny_model.config,
                              label_spaces={"lip": lip})
    assert MultiPersonParser.from_checkpoint(stored).long_side == 96
    assert MultiPersonParser.from_checkpoint(stored, long_side=None).long_side is None  # each image's own size
    assert MultiPersonParser.from_checkpoint(stored, long_side=64).long_side == 64
    assert MultiPersonParser.from_checkpoint(plain).long_side == 512  # checkpoints that do not say


def test_recipe_stores_its_eval_size_for_inference():
    from humanparse.config import load_config
    from humanparse.uniparser.recipe import UniParserRecipe

    recipe = UniParserRecipe(load_config("configs/uniparser_tiny_cpu.yaml", ["eval.long_side=160"]))
    assert recipe.inference_settings() == {"long_side": 160}


def test_multi_overlay_outlines_each_person_in_its_colour_and_blends_parts():
    from humanparse.uniparser.predictor import _person_palette, multi_overlay

    res = hand_result()
    lip = np.asarray(get_label_space("lip").palette)
    image = np.full((30, 40, 3), 200, np.uint8)
    out = multi_overlay(image, res["parts"], res["person_ids"], lip, alpha=0.5, outline=1)
    persons = _person_palette()
    assert (out[0, 0] == 200).all() and (out[29, 0] == 200).all()  # background untouched
    assert (out[2, 3] == persons[1]).all() and (out[19, 14] == persons[1]).all()  # person 1's border, both corners
    assert (out[5, 20] == persons[2]).all() and (out[27, 37] == persons[2]).all()
    inside = (image[10, 8].astype(float) + lip[5]) / 2  # upper-clothes blended at alpha 0.5
    assert np.abs(out[10, 8].astype(float) - inside).max() <= 1
    assert np.abs(out[4, 8].astype(float) - (image[4, 8].astype(float) + lip[13]) / 2).max() <= 1  # face
    ring = np.zeros((30, 40), bool)  # exactly the border pixels of the two rectangles are outlined
    for k, (r0, r1, c0, c1) in {1: (2, 20, 3, 15), 2: (5, 28, 20, 38)}.items():
        box = np.zeros_like(ring)
        box[r0:r1, c0:c1] = True
        inner = np.zeros_like(ring)
        inner[r0 + 1:r1 - 1, c0 + 1:c1 - 1] = True
        ring |= box & ~inner
    outlined = np.zeros((30, 40), bool)
    for k in (1, 2):
        outlined |= (out == persons[k]).all(-1) & (res["person_ids"] == k)
    assert np.array_equal(outlined, ring)


def test_parse_files_multi_overlay(tmp_path, tiny_model):
    from humanparse.uniparser.predictor import parse_files_multi

    save_inference_checkpoint(tmp_path / "m.safetensors", tiny_model, recipe="uniparser",
                              model_config=tiny_model.config, label_spaces={"lip": get_label_space("lip").to_dict()})
    Image.fromarray(np.full((40, 30, 3), 90, np.uint8)).save(tmp_path / "a.png")
    report = parse_files_multi(tmp_path / "m.safetensors", [tmp_path / "a.png"], tmp_path / "out", overlay=True)
    assert (tmp_path / "out" / "a_overlay.jpg") in report.written
    with Image.open(tmp_path / "out" / "a_overlay.jpg") as im:
        assert im.size == (30, 40)
