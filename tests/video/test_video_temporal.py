"""Scene cuts, the moving average and the flicker measure, on known inputs."""

import numpy as np
import pytest
import torch

from humanparse.video.temporal import ProbabilityEMA, SceneCutDetector, label_flicker

from _video_clips import pan_frames, sample_photo


def test_ema_known_answer_and_reset():
    ema = ProbabilityEMA(0.75)
    a, b = torch.full((2, 1, 1), 0.2), torch.full((2, 1, 1), 0.6)
    assert torch.equal(ema.update(a), a)
    assert torch.allclose(ema.update(b), 0.75 * a + 0.25 * b)
    ema.reset()
    assert torch.equal(ema.update(b), b)
    assert torch.equal(ProbabilityEMA(0.0).update(a), a)
    with pytest.raises(ValueError):
        ProbabilityEMA(1.0)


def test_scene_cut_fires_on_a_change_of_shot_not_on_a_pan():
    pan = pan_frames(sample_photo(0), 6, step=2)
    other = pan_frames(sample_photo(3), 3, step=2, seed=1)
    detector = SceneCutDetector(0.5)
    cuts = [detector.update(f) for f in pan + other]
    assert cuts == [False] * 6 + [True, False, False]


def test_flicker_counts_changed_pixels():
    a = np.zeros((2, 5), np.uint8)
    b = a.copy()
    b[0, :2] = 1  # 2 of 10 pixels change
    assert label_flicker([a, b, b]) == pytest.approx((0.2 + 0.0) / 2)
