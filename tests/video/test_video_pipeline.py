"""``humanparse parse CLIP`` end to end on synthetic clips made from the sample photos."""

import json

import numpy as np
import pytest
from PIL import Image

from humanparse.api import Parser
from humanparse.cli.main import main
from humanparse.video.io import VideoReader
from humanparse.video.pipeline import parse_video

from _video_clips import pan_frames, sample_photo, write_clip


def read_pngs(folder):
    return [np.array(Image.open(p)) for p in sorted(folder.glob("*.png"))]


def test_unsmoothed_labels_are_the_per_frame_parse_and_videos_keep_rate_and_length(checkpoint, tmp_path, capsys):
    frames = pan_frames(sample_photo(0), 6)
    clip = write_clip(tmp_path / "pan.mkv", frames, fps=12.0)
    code = main(["parse", str(checkpoint), str(clip), "--domain", "lip", "--out", str(tmp_path / "out"),
                 "--device", "cpu", "--video-labels", "png"])
    err = capsys.readouterr().err
    assert code == 0 and "6 frames" in err and "frames/s" in err
    labels = read_pngs(tmp_path / "out" / "pan_labels")
    parser = Parser.from_checkpoint(checkpoint, device="cpu")
    with VideoReader(clip) as reader:
        decoded = list(reader)  # the lossless clip gives back the frames exactly
    assert all(np.array_equal(a, b) for a, b in zip(decoded, frames))
    expected = parser.predict(decoded, "lip")
    assert len(labels) == 6 and all(np.array_equal(a, b) for a, b in zip(labels, expected))
    assert len(np.unique(expected[0])) > 2
    with VideoReader(tmp_path / "out" / "pan_overlay.mp4") as overlay:
        assert overlay.fps == pytest.approx(12.0) and overlay.size == (64, 96) and len(list(overlay)) == 6


def test_lossless_label_video_decodes_to_the_class_ids(checkpoint, tmp_path):
    frames = pan_frames(sample_photo(0), 4)
    clip = write_clip(tmp_path / "pan.mkv", frames)
    parser = Parser.from_checkpoint(checkpoint, device="cpu")
    report = parse_video(parser, clip, tmp_path / "out", domain="lip", labels="video", overlay=False)
    palette = parser.label_spaces["lip"].palette.astype(np.int64)
    key = {tuple(c): i for i, c in enumerate(palette.tolist())}
    assert len(key) == len(palette)  # colours are unique, so a colour is a class
    with VideoReader(report.written[0]) as video:
        ids = [np.vectorize(lambda r, g, b: key[(r, g, b)])(*np.moveaxis(f.astype(np.int64), -1, 0)) for f in video]
    expected = parser.predict(frames, "lip")
    assert all(np.array_equal(a, b) for a, b in zip(ids, expected))


def test_smoothing_lowers_flicker_on_a_pan_and_restarts_at_a_cut(checkpoint, tmp_path):
    parser = Parser.from_checkpoint(checkpoint, device="cpu")
    pan = write_clip(tmp_path / "pan.mkv", pan_frames(sample_photo(0), 16, step=1, noise=4.0))
    raw = parse_video(parser, pan, tmp_path / "raw", domain="lip", labels="png", overlay=False)
    smooth = parse_video(parser, pan, tmp_path / "smooth", domain="lip", labels="png", overlay=False, smooth=0.7)
    assert raw.flicker > 0.005 and smooth.flicker < 0.8 * raw.flicker
    assert raw.scene_cuts == [] == smooth.scene_cuts

    first, second = pan_frames(sample_photo(0), 4), pan_frames(sample_photo(3), 3, seed=2)
    cut = write_clip(tmp_path / "cut.mkv", first + second)
    report = parse_video(parser, cut, tmp_path / "cut", domain="lip", labels="png", overlay=False, smooth=0.9)
    assert report.scene_cuts == [4]
    labels = read_pngs(tmp_path / "cut" / "cut_labels")
    probs = parser.predict_proba(first + second, "lip")
    # frame 4 starts a new shot: exactly its own parse, nothing of the last shot
    assert np.array_equal(labels[4], probs[4].argmax(0).numpy())
    # frame 5: the average restarted at frame 4
    assert np.array_equal(labels[5], (0.9 * probs[4] + 0.1 * probs[5]).argmax(0).numpy())


def test_multi_person_video_keeps_ids_on_a_still_clip(tmp_path):
    import torch

    from humanparse.engine.checkpoint import save_inference_checkpoint
    from humanparse.labels import get_label_space
    from humanparse.uniparser.model import build_uniparser
    from humanparse.uniparser.predictor import MultiPersonParser
    from humanparse.video.pipeline import parse_video_multi

    torch.manual_seed(0)
    model = build_uniparser({"backbone": {"name": "test_resnet"}, "num_classes": 20, "fpn_dim": 16, "feat_dim": 16,
                             "S": 8, "gn_groups": 4})
    path = tmp_path / "multi.safetensors"
    save_inference_checkpoint(path, model, recipe="uniparser", model_config=model.config,
                              label_spaces={"lip": get_label_space("lip").to_dict()})
    parser = MultiPersonParser.from_checkpoint(path, theta_ctr=0.0, max_persons=3, batch_size=2)
    frame = pan_frames(sample_photo(0), 1, noise=0.0)[0]
    clip = write_clip(tmp_path / "still.mkv", [frame] * 4)
    report = parse_video_multi(parser, clip, tmp_path / "out", labels="png", overlay=True)
    meta = json.loads((tmp_path / "out" / "still_persons.json").read_text())
    ids = [[p["id"] for p in f["persons"]] for f in meta["frames"]]
    assert len(ids) == 4 and ids[0] and all(sorted(i) == sorted(ids[0]) for i in ids)
    maps = read_pngs(tmp_path / "out" / "still_persons")
    assert all(np.array_equal(m, maps[0]) for m in maps)
    assert report.frames == 4 and (tmp_path / "out" / "still_overlay.mp4").is_file()
