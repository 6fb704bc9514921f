"""The catalogue of bad inputs and faults (issue 13), one case per test, through the real command.

Each error case asserts: exit code 1, one line on stderr naming the file and the problem, no traceback,
and that no earlier output or checkpoint changed. The cases that always behaved well are here too, so
that none regresses.
"""

import json
import os
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from humanparse.cli.main import main

from _tiny import tiny_config


def _cli(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str, *needles: str) -> str:
    assert "Traceback" not in err
    lines = [line for line in err.strip().splitlines() if "error:" in line]
    assert len(lines) == 1, err
    for needle in needles:
        assert str(needle) in lines[0], (needle, lines[0])
    return lines[0]


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """One finished 2-step run through ``humanparse train`` (stderr captured: not a terminal)."""
    import contextlib
    import io

    base = tmp_path_factory.mktemp("run")
    config = _write_config(base / "tiny.yaml", tiny_config(steps=2, checkpoint_every=2, log_every=1))
    out = base / "out"
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = main(["train", str(config), "--output-dir", str(out), "--device", "cpu"])
    assert code == 0
    return {"config": config, "out": out, "stderr": err.getvalue(), "model": out / "model.safetensors"}


def _photos(folder: Path, n: int = 2, size=(40, 56)) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        p = folder / f"p{i}.png"
        Image.fromarray(rng.integers(0, 255, (*size, 3), dtype=np.uint8)).save(p)
        paths.append(p)
    return paths


# -- train ---------------------------------------------------------------------------------------------
def test_train_logs_a_line_per_log_every_when_not_on_a_terminal(run):
    lines = [line for line in run["stderr"].splitlines() if line.startswith("step ")]
    assert [line.split()[1] for line in lines] == ["1/2", "2/2"]


def test_train_again_into_a_finished_run_is_refused_and_changes_nothing(run, capsys):
    before = _snapshot(run["out"])
    code, _, err = _cli(capsys, "train", run["config"], "--output-dir", run["out"], "--device", "cpu")
    assert code == 1
    _one_line_error(err, run["out"], "already holds a training run", "--resume", "--overwrite")
    assert _snapshot(run["out"]) == before


def test_train_resume_and_overwrite_together_is_refused(run, capsys):
    before = _snapshot(run["out"])
    code, _, err = _cli(capsys, "train", run["config"], "--output-dir", run["out"], "--resume", "--overwrite")
    assert code == 1
    _one_line_error(err, "--resume and --overwrite exclude each other")
    assert _snapshot(run["out"]) == before


def test_train_into_an_unwritable_output_dir(run, tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    code, _, err = _cli(capsys, "train", run["config"], "--output-dir", blocker / "sub")
    assert code == 1
    _one_line_error(err, blocker / "sub", "--output-dir is not writable")
    assert blocker.read_text() == "x"


def _labelled_folder(root: Path, n: int = 6, bad: tuple[int, ...] = ()) -> Path:
    rng = np.random.default_rng(1)
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8)).save(root / "images" / f"s{i}.png")
        label = rng.integers(0, 20, (48, 40)).astype(np.uint8)
        if i in bad:
            label[3, 3] = 57  # lip has 20 classes
        Image.fromarray(label, mode="L").save(root / "labels" / f"s{i}.png")
    return root


def _folder_config(root: Path, **train) -> dict:
    cfg = tiny_config(steps=12, domains=("lip",), **train)
    cfg["domains"]["lip"] = {"train": {"reader": "folder", "root": str(root), "split": "all"}}
    return cfg


def test_train_with_bad_labels_reports_all_of_them_before_the_first_step(tmp_path, capsys):
    root = _labelled_folder(tmp_path / "data", bad=(2, 4))
    config = _write_config(tmp_path / "c.yaml", _folder_config(root))
    out = tmp_path / "out"
    code, _, err = _cli(capsys, "train", config, "--output-dir", out, "--device", "cpu")
    assert code == 1
    line = _one_line_error(err, root / "labels" / "s2.png", "57", "1 more bad training file", "s4.png", "data.skip_bad")
    assert "outside 0..19" in line
    assert not (out / "last.pt").exists() and not (out / "metrics.jsonl").exists()  # no step ran


def test_skip_bad_marks_the_bad_samples_once_and_warns(tmp_path):
    from humanparse.data.validate import validate_training_data
    from humanparse.engine.recipes import build_recipe

    root = _labelled_folder(tmp_path / "data", bad=(1,))
    cfg = _folder_config(root)
    cfg["data"]["skip_bad"] = True
    dataset = build_recipe(cfg).build_train_dataset()
    cache = tmp_path / "data_check.json"
    with pytest.warns(RuntimeWarning, match=r"skipping 1 bad training sample.*s1\.png"):
        found = validate_training_data(dataset, cache=cache)
    lip = dataset.datasets["lip"]
    assert set(found["lip"]) == {1} and lip.bad == {1}
    assert lip[1]["meta"]["stem"] == "s2"  # the bad sample is replaced by the next good one
    assert len(json.loads(cache.read_text())["ok"]) == 5  # the good ones are cached ...
    calls = []
    original = type(lip).load
    type(lip).load = lambda self, i: (calls.append(i), original(self, i))[1]
    try:
        with pytest.warns(RuntimeWarning):
            validate_training_data(dataset, cache=cache)
    finally:
        type(lip).load = original
    assert calls == [1]  # ... so a second check re-reads only the bad one


def test_domain_inside_a_split_entry_is_a_config_error(tmp_path, capsys):
    cfg = tiny_config(steps=1, domains=("lip",))
    cfg["domains"]["lip"]["train"]["domain"] = "lip"
    config = _write_config(tmp_path / "c.yaml", cfg)
    code, _, err = _cli(capsys, "train", config, "--output-dir", tmp_path / "out")
    assert code == 1
    _one_line_error(err, "domain")


def test_non_finite_first_step_does_not_name_a_checkpoint_that_does_not_exist(tmp_path, monkeypatch):
    from humanparse.engine.supervised import SupervisedMethod
    from humanparse.engine.trainer import TrainingError, train

    original = SupervisedMethod.training_step

    def nan(self, model, batch):
        terms = original(self, model, batch)
        return {k: v * float("nan") for k, v in terms.items()}

    monkeypatch.setattr(SupervisedMethod, "training_step", nan)
    with pytest.raises(TrainingError, match=r"not finite at step 0 .*no checkpoint was written yet \(the first is at step 2\)"):
        train(tiny_config(steps=4, checkpoint_every=2), output_dir=tmp_path, progress=False)
    assert not (tmp_path / "last.pt").exists()


# -- parse ---------------------------------------------------------------------------------------------
@pytest.fixture
def no_inference(monkeypatch):
    """Fail the test if the network runs (an output check must come before the inference)."""
    from humanparse.engine import inference

    def forbidden(*args, **kwargs):
        raise AssertionError("inference ran before the output folder was checked")

    monkeypatch.setattr(inference, "_view_logits", forbidden)


def test_parse_out_is_an_existing_file(run, tmp_path, capsys, no_inference):
    photos = _photos(tmp_path / "in")
    target = tmp_path / "out.png"
    target.write_bytes(b"keep me")
    code, _, err = _cli(capsys, "parse", run["model"], photos[0], "--out", target)
    assert code == 1
    _one_line_error(err, target, "is an existing file")
    assert target.read_bytes() == b"keep me"


def test_parse_out_unwritable_fails_before_inference(run, tmp_path, capsys, no_inference):
    photos = _photos(tmp_path / "in")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = _cli(capsys, "parse", run["model"], photos[0], "--out", blocker / "parsed")
    assert code == 1
    _one_line_error(err, blocker / "parsed", "--out is not writable")


def test_parse_same_stem_different_extension_keeps_both_results(run, tmp_path, capsys):
    from humanparse.api import Parser

    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(3)
    a = rng.integers(0, 255, (40, 56, 3), dtype=np.uint8)
    b = rng.integers(0, 255, (56, 40, 3), dtype=np.uint8)
    Image.fromarray(a).save(folder / "a.png")
    Image.fromarray(b).save(folder / "a.bmp")
    out = tmp_path / "parsed"
    code, _, err = _cli(capsys, "parse", run["model"], folder, "--out", out, "--domain", "lip")
    assert code == 0
    files = sorted(p.name for p in out.iterdir())
    assert files == ["in_a_bmp.png", "in_a_png.png"]
    assert "wrote 2 files" in err
    parser = Parser.from_checkpoint(run["model"])
    assert np.array_equal(np.asarray(Image.open(out / "in_a_png.png")), parser(a, domain="lip"))
    assert np.array_equal(np.asarray(Image.open(out / "in_a_bmp.png")), parser(b, domain="lip"))


def test_output_stems_are_unique_and_stable():
    from humanparse.api import _output_stems

    paths = [Path("x/a.jpg"), Path("x/a.png"), Path("y/a.jpg"), Path("z/x/a.jpg"), Path("x/b.jpg"), Path("x/x_a_jpg.png")]
    stems = _output_stems(paths)
    assert len(set(stems)) == len(stems)
    assert stems[4] == "b" and stems[2] == "y_a"
    assert _output_stems(paths) == stems  # stable


def test_parse_unreadable_and_unusual_images(run, tmp_path, capsys):
    """Well-behaved cases: a broken file is named and skipped (exit 1); CMYK, RGBA, 16-bit and
    EXIF-rotated photos are parsed at their (upright) size."""
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(4)
    rgb = rng.integers(0, 255, (30, 44, 3), dtype=np.uint8)
    Image.fromarray(rgb).convert("CMYK").save(folder / "cmyk.jpg")
    Image.fromarray(rgb).convert("RGBA").save(folder / "rgba.png")
    Image.fromarray((rng.integers(0, 65535, (30, 44))).astype(np.uint16)).save(folder / "gray16.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees: the upright photo is 44 x 30
    Image.fromarray(rgb).save(folder / "rotated.jpg", exif=exif)
    (folder / "broken.jpg").write_bytes(b"\xff\xd8 not a jpeg")
    out = tmp_path / "parsed"
    code, _, err = _cli(capsys, "parse", run["model"], folder, "--out", out, "--domain", "lip")
    assert code == 1
    assert "Traceback" not in err and str(folder / "broken.jpg") in err
    sizes = {p.stem: Image.open(p).size for p in out.glob("*.png")}
    assert sizes == {"cmyk": (44, 30), "rgba": (44, 30), "gray16": (44, 30), "rotated": (30, 44)}


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_malicious_pickle_checkpoint_is_refused_and_never_executed(tmp_path, capsys):
    marker = tmp_path / "pwned"
    ckpt = tmp_path / "last.pt"
    with open(ckpt, "wb") as fh:
        pickle.dump({"model": _Payload(marker), "model_config": {}}, fh)
    photos = _photos(tmp_path / "in")
    code, _, err = _cli(capsys, "parse", ckpt, photos[0], "--out", tmp_path / "parsed")
    assert code == 1
    _one_line_error(err, ckpt)
    assert not marker.exists()


def test_truncated_model_is_named(run, tmp_path, capsys):
    cut = tmp_path / "model.safetensors"
    cut.write_bytes(run["model"].read_bytes()[:1000])
    photos = _photos(tmp_path / "in")
    code, _, err = _cli(capsys, "parse", cut, photos[0], "--out", tmp_path / "parsed")
    assert code == 1
    _one_line_error(err, cut, "not a readable safetensors file")


# -- score / export / eval -----------------------------------------------------------------------------
@pytest.mark.parametrize("n", ["0", "-3"])
def test_score_num_classes_must_be_positive(tmp_path, capsys, n):
    (tmp_path / "p").mkdir()
    (tmp_path / "g").mkdir()
    code, _, err = _cli(capsys, "score", "--task", "semantic", "--pred", tmp_path / "p", "--gt", tmp_path / "g",
                        "--num-classes", n)
    assert code == 1
    _one_line_error(err, f"--num-classes must be a positive number of classes (got {n})")


def test_export_into_an_unwritable_folder_fails_before_exporting(run, tmp_path, capsys, monkeypatch):
    import humanparse.export as export

    monkeypatch.setattr(export, "export_model", lambda *a, **k: pytest.fail("exported before checking --out"))
    blocker = tmp_path / "file"
    blocker.write_text("x")
    code, _, err = _cli(capsys, "export", run["model"], "--domain", "lip", "--out", blocker / "lip.onnx")
    assert code == 1
    _one_line_error(err, blocker, "the folder of --out is an existing file")


def test_eval_max_images_negative_is_refused(run, capsys):
    code, _, err = _cli(capsys, "eval", run["model"], "--data", "lip=samples://lip", "--max-images", "-1", "--json")
    assert code == 1


# -- written files -------------------------------------------------------------------------------------
def test_written_files_follow_the_umask(tmp_path):
    from humanparse.engine.checkpoint import atomic_write

    old = os.umask(0o022)
    try:
        atomic_write(tmp_path / "f.json", lambda tmp: Path(tmp).write_text("{}"))
        os.umask(0o077)
        atomic_write(tmp_path / "g.json", lambda tmp: Path(tmp).write_text("{}"))
    finally:
        os.umask(old)
    assert (tmp_path / "f.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "g.json").stat().st_mode & 0o777 == 0o600


def test_flip_tta_gives_no_read_only_array_warning():
    """In a fresh process: torch prints this warning once per process, so an earlier test could hide it."""
    import subprocess
    import sys

    code = ("import numpy as np, torch\n"
            "from humanparse.engine.inference import flip_logits_back\n"
            "perm = np.array([0, 2, 1]); perm.setflags(write=False)  # as a label space's flip permutation is\n"
            "logits = torch.arange(12.0).view(1, 3, 2, 2)\n"
            "back = flip_logits_back(logits, perm)\n"
            "assert torch.equal(back[0, 1], logits[0, 2].flip(-1)) and torch.equal(back[0, 0], logits[0, 0].flip(-1))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert proc.returncode == 0 and "not writable" not in proc.stderr, proc.stderr[-2000:]
