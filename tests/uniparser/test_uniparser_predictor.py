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
    parser = MultiPersonParser.from_checkpoint(path, theta_ctr=0.0, batch_size=1)
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
