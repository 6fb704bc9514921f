"""The segmentation loss: cross-entropy per domain, plus the optional Lovasz-Softmax term."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from humanparse.engine.supervised import lovasz_softmax, per_domain_cross_entropy


def _one_hot_logits(pred: torch.Tensor, num_classes: int, scale: float = 60.0) -> torch.Tensor:
    """Logits whose softmax is (to float precision) the one-hot map of ``pred``."""
    return F.one_hot(pred, num_classes).permute(0, 3, 1, 2).float() * scale


def _mean_jaccard_loss_numpy(pred: np.ndarray, target: np.ndarray, ignore: int) -> float:
    """1 - IoU per class present in the target, averaged: what Lovasz-Softmax equals at one-hot predictions."""
    valid = target != ignore
    losses = []
    for c in np.unique(target[valid]):
        p, t = (pred == c) & valid, (target == c) & valid
        losses.append(1.0 - (p & t).sum() / (p | t).sum())
    return float(np.mean(losses))


def test_lovasz_equals_mean_jaccard_loss_at_hard_predictions():
    # The Lovasz extension agrees with the set function on vertices: with one-hot probabilities the loss is
    # exactly the mean over present classes of 1 - IoU, computed here independently.
    rng = np.random.default_rng(0)
    target = rng.integers(0, 5, size=(2, 12, 10))
    pred = np.where(rng.random(target.shape) < 0.7, target, rng.integers(0, 6, size=target.shape))
    target[0, :2] = 255
    loss = lovasz_softmax(_one_hot_logits(torch.from_numpy(pred), 6), torch.from_numpy(target), ignore_index=255)
    assert float(loss) == pytest.approx(_mean_jaccard_loss_numpy(pred, target, 255), abs=1e-5)


def test_lovasz_weighs_a_rare_class_like_a_common_one():
    # Missing a 4-pixel class costs the same as missing a 96-pixel class under Lovasz, but ~24x less under CE.
    target = torch.zeros(1, 10, 10, dtype=torch.long)
    target[0, :2, :2] = 1
    miss_rare = target.clone()
    miss_rare[target == 1] = 0
    miss_common = target.clone()
    miss_common[target == 0] = 1
    rare = float(lovasz_softmax(_one_hot_logits(miss_rare, 2), target))
    common = float(lovasz_softmax(_one_hot_logits(miss_common, 2), target))
    assert rare == pytest.approx(0.5 * (1 - 96 / 100) + 0.5 * 1.0, abs=1e-5)  # background IoU 96/100, class 1 IoU 0
    assert common == pytest.approx(0.5 * 1.0 + 0.5 * (1 - 4 / 100), abs=1e-5)


def test_lovasz_term_is_added_at_the_logits_resolution_and_moves_the_rare_class():
    torch.manual_seed(0)
    target = torch.zeros(2, 32, 32, dtype=torch.long)
    target[:, 4:12, 4:12] = 2  # a small class
    target[:, 20:, :] = 1
    logits = torch.zeros(2, 3, 8, 8, requires_grad=True)  # 1/4 resolution, as the network's heads
    ce = per_domain_cross_entropy({"d": logits}, target, ["d", "d"])["d"]
    both = per_domain_cross_entropy({"d": logits}, target, ["d", "d"], lovasz_weight=1.0)["d"]
    small_target = F.interpolate(target[:, None].float(), size=(8, 8), mode="nearest-exact")[:, 0].long()
    assert float(both - ce) == pytest.approx(float(lovasz_softmax(logits, small_target)), abs=1e-6)
    # The extra term's gradient raises the small class's logit inside its region.
    (grad_ce,) = torch.autograd.grad(ce, logits)
    (grad_both,) = torch.autograd.grad(both, logits)
    region = small_target == 2
    assert float((grad_both - grad_ce)[:, 2][region].mean()) < 0


def test_lovasz_weight_zero_is_plain_cross_entropy():
    torch.manual_seed(1)
    logits = torch.randn(3, 4, 6, 6)
    target = torch.randint(0, 4, (3, 24, 24))
    got = per_domain_cross_entropy({"d": logits}, target, ["d"] * 3, lovasz_weight=0.0)["d"]
    want = F.cross_entropy(F.interpolate(logits, size=(24, 24), mode="bilinear", align_corners=False), target)
    assert float(got) == pytest.approx(float(want), rel=1e-6)
