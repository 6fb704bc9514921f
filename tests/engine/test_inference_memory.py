"""Labels at full resolution without full-resolution [C, H, W] arrays: the banded path equals the full one."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from humanparse.engine.inference import labels_from_views, predict_labels, predict_probabilities, to_tensor, upsample_rows


@pytest.mark.parametrize("src,dst", [((13, 9), (97, 75)), ((40, 31), (41, 200)), ((24, 32), (7, 10))])
def test_upsample_rows_equals_rows_of_the_full_interpolation(src, dst):
    torch.manual_seed(0)
    crop = torch.randn(1, 5, *src)
    full = F.interpolate(crop, size=dst, mode="bilinear", align_corners=False)[0]
    h = dst[0]
    for r0, r1 in [(0, 1), (0, 5), (3, 17), (h - 4, h), (h // 2, h)]:
        r1 = min(r1, h)
        # float32 rounding only (values are N(0, 1), differences of neighbours up to ~6)
        assert torch.allclose(upsample_rows(crop, dst, (r0, r1)), full[:, r0:r1], atol=5e-5, rtol=0)
    assert torch.equal(upsample_rows(crop, dst, (0, h)), full)  # one band: the full call itself


def test_banded_labels_equal_the_arg_max_of_the_averaged_probabilities():
    torch.manual_seed(1)
    views = [torch.randn(1, 6, 30, 22), torch.randn(1, 6, 45, 33)]  # two scales of one image
    size = (301, 219)
    # each view's softmax at its own resolution, up-sampled, averaged
    probs = sum(F.interpolate(v.softmax(1), size=size, mode="bilinear", align_corners=False)[0] for v in views) / 2
    expected = probs.argmax(0).numpy()
    banded = labels_from_views(views, size, band_bytes=4 * 6 * 219 * 16)  # 16 rows per band: 19 bands
    top2 = probs.topk(2, dim=0).values
    clear = (top2[0] - top2[1] > 1e-5).numpy()  # pixels whose arg-max is not a float tie
    assert clear.mean() > 0.99
    assert np.array_equal(banded[clear], expected[clear])
    assert np.array_equal(labels_from_views(views, size), expected)  # default budget: one band, exact


def test_same_size_views_are_averaged_before_up_sampling_with_the_same_result():
    """A flip pair (two views of one size) is averaged at its own resolution and up-sampled once; because
    bilinear up-sampling is linear this must equal up-sampling each view's probabilities and averaging,
    and it must weigh each view once when mixed with a view of another size."""
    torch.manual_seed(3)
    pair = [torch.randn(1, 5, 20, 14), torch.randn(1, 5, 20, 14)]
    other = torch.randn(1, 5, 31, 22)
    size = (157, 110)

    def up(p):
        return F.interpolate(p, size=size, mode="bilinear", align_corners=False)[0]

    views = pair + [other]
    expected = sum(up(v.softmax(1)) for v in views) / 3
    model_probs = (2 * up((pair[0].softmax(1) + pair[1].softmax(1)) / 2) + up(other.softmax(1))) / 3
    assert torch.allclose(model_probs, expected, atol=1e-6)
    labels = labels_from_views(views, size)
    top2 = expected.topk(2, dim=0).values
    clear = (top2[0] - top2[1] > 1e-5).numpy()
    assert np.array_equal(labels[clear], expected.argmax(0).numpy()[clear])
    # weighing the pair as one view (a plain mean over groups) would change some labels
    wrong = ((up((pair[0].softmax(1) + pair[1].softmax(1)) / 2) + up(other.softmax(1))) / 2).argmax(0).numpy()
    assert (wrong != expected.argmax(0).numpy()).any()
    pair_only = labels_from_views(pair, size)
    mean_pair = sum(up(v.softmax(1)) for v in pair) / 2
    top2 = mean_pair.topk(2, dim=0).values
    clear = (top2[0] - top2[1] > 1e-5).numpy()
    assert np.array_equal(pair_only[clear], mean_pair.argmax(0).numpy()[clear])


class _Tiny(torch.nn.Module):
    """A fixed random conv net with the parsing-network interface (logits at 1/4 resolution)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(2)
        self.conv = torch.nn.Conv2d(3, 7, 4, stride=4)

    def forward(self, x, domains):
        return {"logits": {domains[0]: self.conv(x)}}


def test_predict_labels_equals_predict_probabilities_arg_max_with_tta():
    model = _Tiny().eval()
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 255, (97, 75, 3), dtype=np.uint8), rng.integers(0, 255, (64, 130, 3), dtype=np.uint8)]
    kw = dict(long_side=64, scales=(0.5, 1.0, 1.5), flip=True, flip_permutation=[0, 2, 1, 3, 4, 6, 5])
    probs = predict_probabilities(model, images, "d", **kw)
    labels = predict_labels(model, images, "d", **kw)
    for p, lab, im in zip(probs, labels, images):
        assert lab.shape == im.shape[:2] and lab.dtype == np.uint8
        assert np.array_equal(lab, p.argmax(0).numpy())


def test_to_tensor_never_writes_to_its_input():
    image = np.random.default_rng(0).integers(0, 255, (5, 4, 3), dtype=np.uint8)
    copy = image.copy()
    t = to_tensor(image)
    assert np.array_equal(image, copy)
    mean, std = np.array([0.485, 0.456, 0.406]), np.array([0.229, 0.224, 0.225])
    assert np.allclose(t.permute(1, 2, 0).numpy(), (image / 255.0 - mean) / std, atol=1e-6)
    image.setflags(write=False)
    assert torch.equal(to_tensor(image), t)
