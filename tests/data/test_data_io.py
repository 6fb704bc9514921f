"""Image / label reading, checks and atomic palette-PNG writing."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from humanparse.data import (
    check_pair,
    read_id_map,
    read_image,
    read_label,
    write_label_png,
)
from humanparse.errors import DataError


def test_read_image_converts_modes(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    Image.fromarray(gray).save(tmp_path / "g.png")
    out = read_image(tmp_path / "g.png")
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    assert all(np.array_equal(out[:, :, c], gray) for c in range(3))

    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 7
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    out = read_image(tmp_path / "a.png")
    assert out.shape == (2, 2, 3) and (out[..., 0] == 200).all() and (out[..., 1:] == 0).all()

    pal = Image.frombytes("P", (2, 1), bytes([0, 1]))
    pal.putpalette([10, 20, 30, 40, 50, 60] + [0] * 762)
    pal.save(tmp_path / "p.png")
    assert read_image(tmp_path / "p.png").tolist() == [[[10, 20, 30], [40, 50, 60]]]


def test_read_image_exif_orientation(tmp_path):
    arr = np.zeros((2, 6, 3), np.uint8)  # stored 2 high, 6 wide
    img = Image.fromarray(arr)
    exif = img.getexif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    img.save(tmp_path / "photo.jpg", exif=exif.tobytes())
    assert read_image(tmp_path / "photo.jpg").shape == (6, 2, 3)  # user photo: displayed orientation
    assert read_image(tmp_path / "photo.jpg", apply_exif=False).shape == (2, 6, 3)  # dataset pixel grid


@pytest.mark.parametrize("content", [b"not an image at all", "truncated"])
def test_corrupt_image_names_the_file(tmp_path, content):
    path = tmp_path / "broken.jpg"
    if content == "truncated":
        Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(path, quality=95)
        path.write_bytes(path.read_bytes()[:300])
    else:
        path.write_bytes(content)
    with pytest.raises(DataError) as err:
        read_image(path)
    assert str(err.value).startswith(str(path)) and err.value.path == str(path)
    with pytest.raises(DataError, match="not found"):
        read_image(tmp_path / "missing.jpg")


def test_read_label_index_values_mode_l_and_p(tmp_path):
    ids = np.array([[0, 5, 19], [255, 14, 15]], np.uint8)
    Image.fromarray(ids).save(tmp_path / "l.png")
    p = Image.frombytes("P", (3, 2), ids.tobytes())
    p.putpalette(list(range(256)) * 3)  # colours must not matter
    p.save(tmp_path / "p.png")
    for name in ("l.png", "p.png"):
        out = read_label(tmp_path / name, num_classes=20)
        assert np.array_equal(out, ids) and out.dtype == np.uint8


def test_read_label_out_of_range_names_file_and_ids(tmp_path):
    ids = np.array([[0, 7, 21], [40, 255, 1]], np.uint8)
    Image.fromarray(ids).save(tmp_path / "bad.png")
    with pytest.raises(DataError) as err:
        read_label(tmp_path / "bad.png", num_classes=20)
    msg = str(err.value)
    assert msg.startswith(str(tmp_path / "bad.png")) and "21, 40" in msg and "255" not in msg.split("and are")[0]
    # the same map is fine for a domain with more classes
    assert read_label(tmp_path / "bad.png", num_classes=59).max() == 255


def test_read_label_rejects_colour_png(tmp_path):
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match="mode RGB"):
        read_label(tmp_path / "rgb.png", num_classes=20)


def test_read_id_map(tmp_path):
    ids = np.array([[0, 1], [2, 0]], np.uint8)
    Image.fromarray(ids).save(tmp_path / "h.png")
    out = read_id_map(tmp_path / "h.png")
    assert out.dtype == np.int64 and np.array_equal(out, ids)


def test_check_pair_names_both_files():
    with pytest.raises(DataError) as err:
        check_pair(np.zeros((4, 5, 3)), np.zeros((4, 6)), ("/d/img/a.jpg", "/d/lab/a.png"))
    assert "/d/img/a.jpg" in str(err.value) and "/d/lab/a.png" in str(err.value)
    check_pair(np.zeros((4, 5, 3)), np.zeros((4, 5)), ("x", "y"))


def test_write_label_png_palette_roundtrip(tmp_path):
    label = np.array([[0, 1, 2], [19, 255, 3]], np.uint8)
    palette = np.arange(60, dtype=np.uint8).reshape(20, 3)
    path = tmp_path / "out" / "pred.png"
    write_label_png(path, label, palette)
    img = Image.open(path)
    assert img.mode == "P" and np.array_equal(np.asarray(img), label)
    assert img.getpalette()[:60] == palette.ravel().tolist()
    assert [p.name for p in path.parent.iterdir()] == ["pred.png"]  # no temporary left behind


def test_write_label_png_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "pred.png"
    write_label_png(path, np.zeros((2, 2), np.uint8), np.zeros((1, 3), np.uint8))
    before = path.read_bytes()

    def boom(self, fp, *args, **kwargs):
        fp.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(Image.Image, "save", boom)
    with pytest.raises(OSError, match="disk full"):
        write_label_png(path, np.ones((2, 2), np.uint8), np.zeros((2, 3), np.uint8))
    assert path.read_bytes() == before  # the old file is untouched
    assert [p.name for p in tmp_path.iterdir()] == ["pred.png"]
