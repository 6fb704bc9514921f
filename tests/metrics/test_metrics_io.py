"""Label PNG reading: modes kept as ids, multi-channel refused, folder pairing errors."""

import numpy as np
import pytest
from PIL import Image

from humanparse.errors import DataError
from humanparse.metrics.io import pair_by_stem, read_label_png


def test_read_modes(tmp_path):
    ids = np.array([[0, 1], [2, 19]], np.uint8)
    pal = Image.fromarray(ids, mode="L").convert("P")
    pal.putpalette([v for k in range(256) for v in (k * 7 % 256, k, 255 - k)])
    Image.fromarray(ids).save(tmp_path / "l.png")
    pal.save(tmp_path / "p.png")
    wide = np.array([[0, 1000], [65535, 7]], np.uint16)
    Image.fromarray(wide).save(tmp_path / "w.png")
    assert np.array_equal(read_label_png(tmp_path / "l.png"), ids)
    assert np.array_equal(read_label_png(tmp_path / "p.png"), ids)  # palette indices, not colours
    got = read_label_png(tmp_path / "w.png")
    assert got.dtype == np.uint16 and np.array_equal(got, wide)


def test_rgb_and_missing_files_are_data_errors(tmp_path):
    Image.fromarray(np.zeros((2, 2, 3), np.uint8)).save(tmp_path / "rgb.png")
    with pytest.raises(DataError, match=r"rgb\.png.*single-channel"):
        read_label_png(tmp_path / "rgb.png")
    with pytest.raises(DataError, match="file not found"):
        read_label_png(tmp_path / "nope.png")
    (tmp_path / "pred").mkdir()
    (tmp_path / "gt").mkdir()
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "pred" / "extra.png")
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "gt" / "a.png")
    with pytest.raises(DataError, match=r"no prediction: a\.png"):
        pair_by_stem(tmp_path / "pred", tmp_path / "gt")
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / "pred" / "a.png")
    with pytest.raises(DataError, match=r"no ground truth.*extra\.png"):
        pair_by_stem(tmp_path / "pred", tmp_path / "gt")
    with pytest.raises(DataError, match="folder not found"):
        pair_by_stem(tmp_path / "missing", tmp_path / "gt")
