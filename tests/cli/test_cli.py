"""The `humanparse` command end to end, in-process, on the shipped sample data."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image

from humanparse.cli.main import main
from humanparse.data.sample_data import sample_data_root
from humanparse.engine.trainer import train

from _tiny import tiny_config


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    train(tiny_config(steps=2), output_dir=out, progress=False)
    return out


def run(capsys, *argv):
    code = main(list(argv))
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_labels_show_json_and_list(capsys):
    code, out, _ = run(capsys, "labels", "show", "lip", "--json")
    d = json.loads(out)
    assert code == 0 and len(d["names"]) == 20 and len(d["palette"]) == 20
    adj = np.array(d["adjacency"])
    assert (adj == adj.T).all() and (np.diag(adj) == 1).all()
    assert ["left-arm", "right-arm"] in [sorted(p) for p in d["flip_pairs"]] or ["left-arm", "right-arm"] in d["flip_pairs"]
    code, out, _ = run(capsys, "labels", "list")
    assert code == 0 and "ccp" in out and "59" in out


def test_unknown_label_space_is_one_line_and_exit_1(capsys):
    code, _, err = run(capsys, "labels", "show", "lipp")
    assert code == 1 and "did you mean 'lip'" in err and "Traceback" not in err


def test_score_semantic_json(tmp_path, capsys):
    gt_dir, pred_dir = tmp_path / "gt", tmp_path / "pred"
    gt_dir.mkdir(), pred_dir.mkdir()
    gt = np.array([[0, 1], [1, 2]], np.uint8)
    pred = np.array([[0, 1], [2, 2]], np.uint8)
    Image.fromarray(gt).save(gt_dir / "a.png")
    Image.fromarray(pred).save(pred_dir / "a.png")
    code, out, _ = run(capsys, "score", "--task", "semantic", "--pred", str(pred_dir), "--gt", str(gt_dir),
                       "--num-classes", "3", "--json")
    r = json.loads(out)
    # class 0: 1/1, class 1: 1/2, class 2: 1/2 -> mIoU 2/3; pixel acc 3/4
    assert code == 0 and r["mIoU"] == pytest.approx(2 / 3) and r["pixel_acc"] == pytest.approx(0.75)
    assert set(r) >= {"mIoU", "mean_acc", "pixel_acc", "per_class_iou"}
    Image.fromarray(gt).save(gt_dir / "b.png")
    code, _, err = run(capsys, "score", "--task", "semantic", "--pred", str(pred_dir), "--gt", str(gt_dir),
                       "--num-classes", "3")
    assert code == 1 and "b" in err


def test_parse_writes_palette_pngs_overlays_probs_and_reports_bad_files(trained, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    images = sorted((sample_data_root() / "lip" / "images").iterdir())[:3]
    for p in images:
        shutil.copy(p, src / p.name)
    (src / "broken.jpg").write_bytes(b"not an image")
    out = tmp_path / "out"
    code, _, err = run(capsys, "parse", str(trained / "model.safetensors"), str(src), "--domain", "lip",
                       "--out", str(out), "--overlay", "--probs", "--device", "cpu", "--batch-size", "2")
    assert code == 1 and "broken.jpg" in err  # reported by name, the others still written
    for p in images:
        label = Image.open(out / f"{p.stem}.png")
        assert label.mode == "P" and label.size == Image.open(p).size
        assert np.array(label).max() < 20
        assert (out / f"{p.stem}_overlay.jpg").is_file()
        probs = np.load(out / f"{p.stem}_probs.npy")
        assert probs.dtype == np.float16 and probs.shape == (20, label.size[1], label.size[0])
        assert (probs.astype(np.float32).argmax(0) == np.array(label)).mean() > 0.99


def test_eval_json_matches_the_training_evaluation(trained, capsys):
    code, out, _ = run(capsys, "eval", str(trained / "model.safetensors"), "--data", "pascal=samples://pascal_person_part",
                       "--split", "val", "--long-side", "96", "--json", "--device", "cpu", "--max-images", "2")
    r = json.loads(out)
    assert code == 0 and 0 <= r["pascal"]["mIoU"] <= 1 and len(r["pascal"]["per_class_iou"]) == 7
    saved = json.loads((trained / "eval.json").read_text())
    assert r["pascal"]["mIoU"] == pytest.approx(saved["pascal/mIoU"], abs=1e-6)


def test_python_api_matches_cli_output(trained, tmp_path):
    import humanparse

    parser = humanparse.Parser.from_checkpoint(trained / "model.safetensors")
    image = sorted((sample_data_root() / "lip" / "images").iterdir())[0]
    label = parser(image, domain="lip")
    assert label.shape == np.array(Image.open(image)).shape[:2]
    again = parser(image, domain="lip")
    assert np.array_equal(label, again)  # same input, same output


def test_pseudo_label_parts_relabels_ccp_into_lip_and_never_overwrites(tmp_path, capsys):
    """CCP samples -> LIP labels with the bundled starter: decided classes follow the CCP ground truth exactly,
    open ones (skin) become one of their LIP candidates, and a second run refuses to overwrite."""
    from humanparse.data.io import read_label
    from humanparse.labels import get_label_space
    from humanparse.labels.relabel import RelabelTable

    src = tmp_path / "ccp"
    for sub in ("images", "labels"):
        (src / sub).mkdir(parents=True)
    root = sample_data_root() / "ccp"
    stems = sorted(p.stem for p in (root / "labels").glob("*.png"))[:2]
    for stem in stems:
        shutil.copy(next((root / "images").glob(f"{stem}.*")), src / "images")
        shutil.copy(root / "labels" / f"{stem}.png", src / "labels")
    # a photo whose only labelled thing is a bag: no LIP person pixel, so it is skipped, not written empty
    image_file = next((root / "images").glob(f"{stems[0]}.*"))
    shutil.copy(image_file, src / "images" / f"bagonly{image_file.suffix}")
    w, h = Image.open(image_file).size
    bag = np.zeros((h, w), dtype=np.uint8)
    bag[h // 3: h // 2, w // 3: w // 2] = get_label_space("ccp").names.index("bag")
    Image.fromarray(bag).save(src / "labels" / "bagonly.png")
    out = tmp_path / "as_lip"
    code, text, err = run(capsys, "pseudo-label", "parts", "--data", str(src), "--source", "ccp", "--domain", "lip",
                          "--out", str(out))
    assert code == 0, err
    assert "wrote 2 lip labels" in text and "skipped 1 with no lip person pixel: bagonly" in text
    assert not (out / "labels" / "bagonly.png").exists() and not list((out / "images").glob("bagonly.*"))
    ccp, lip = get_label_space("ccp"), get_label_space("lip")
    table = RelabelTable.builtin("ccp", "lip")
    for stem in stems:
        gt = read_label(src / "labels" / f"{stem}.png", ccp.num_classes)
        new = read_label(out / "labels" / f"{stem}.png", lip.num_classes)
        assert new.shape == gt.shape and (out / "images").is_dir()
        known = gt != 255
        # every pixel took one of its CCP class's candidates
        assert table.candidates[gt[known], new[known]].all()
        decided = known & table.decided[np.where(known, gt, 0)]
        assert decided.any()
        assert (new[decided] == table.candidates[gt[decided]].argmax(1)).all()
        skin = gt == ccp.names.index("skin")
        if skin.any():  # the starter splits bare skin into face / arms / legs
            assert len(np.unique(new[skin])) >= 2
    before = (out / "labels" / f"{stems[0]}.png").read_bytes()
    code, _, err = run(capsys, "pseudo-label", "parts", "--data", str(src), "--source", "ccp", "--domain", "lip",
                       "--out", str(out))
    assert code == 1 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert (out / "labels" / f"{stems[0]}.png").read_bytes() == before
