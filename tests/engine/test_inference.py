"""Inference and TTA: padding/cropping, and left/right-correct flip TTA."""

import numpy as np
import torch
import torch.nn.functional as F

from humanparse.engine.inference import flip_logits_back, predict_labels, predict_probabilities


class MirrorSymmetricNet(torch.nn.Module):
    """Logits that are mirror-equivariant up to swapping two channels ("left" 1 and "right" 2).

    Channel 0 and the shared part g are per-pixel functions of the image (mirror-equivariant);
    left = g + u and right = g - u with u the centred column coordinate, which a mirror negates.
    So mirroring the input and swapping left/right gives back exactly the original prediction.
    """

    def __init__(self):
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 2, 1)

    def forward(self, images, domains=None):
        x = F.avg_pool2d(images, 4)
        base = self.conv(x)
        w = x.shape[-1]
        u = (torch.arange(w, dtype=x.dtype) - (w - 1) / 2).view(1, 1, 1, w) / w
        g = base[:, 1:2]
        logits = torch.cat([base[:, 0:1], g + u, g - u], 1)
        return {"logits": {"toy": logits}}


def _image(h, w, seed=0):
    return np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)


def test_flip_logits_back_swaps_channels_and_mirrors():
    logits = torch.arange(2 * 3 * 1 * 4, dtype=torch.float32).view(2, 3, 1, 4)
    back = flip_logits_back(logits, [0, 2, 1])
    assert torch.equal(back[:, 0], logits[:, 0].flip(-1))
    assert torch.equal(back[:, 1], logits[:, 2].flip(-1))
    assert torch.equal(back[:, 2], logits[:, 1].flip(-1))


def test_flip_tta_is_equivariant_on_a_symmetric_model():
    torch.manual_seed(0)
    model = MirrorSymmetricNet().eval()
    images = [_image(64, 96)]
    plain = predict_probabilities(model, images, "toy")[0]
    tta = predict_probabilities(model, images, "toy", flip=True, flip_permutation=[0, 2, 1])[0]
    # the mirrored view, once flipped back with the channel swap, agrees exactly with the plain one
    assert torch.allclose(plain, tta, atol=1e-5)
    # without the swap the flip view would disagree: TTA then changes the probabilities
    wrong = predict_probabilities(model, images, "toy", flip=True, flip_permutation=[0, 1, 2])[0]
    assert (plain - wrong).abs().max() > 1e-3


def test_prediction_has_input_size_for_sizes_not_multiple_of_32_in_one_batch():
    model = MirrorSymmetricNet().eval()
    images = [_image(50, 70, 1), _image(33, 100, 2)]
    labels = predict_labels(model, images, "toy", long_side=None)
    assert [l.shape for l in labels] == [(50, 70), (33, 100)]
    probs = predict_probabilities(model, images, "toy", long_side=64, scales=(0.5, 1.0))
    assert probs[0].shape == (3, 50, 70)
    assert torch.allclose(probs[0].sum(0), torch.ones(50, 70), atol=1e-5)


def test_batching_does_not_change_the_prediction_of_an_image():
    model = MirrorSymmetricNet().eval()
    a, b = _image(64, 64, 3), _image(96, 128, 4)
    alone = predict_probabilities(model, [a], "toy")[0]
    together = predict_probabilities(model, [a, b], "toy")[0]
    assert torch.equal(alone, together)  # the other image of the call changes nothing
