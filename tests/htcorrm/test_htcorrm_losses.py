"""Eq. 4 loss terms with hand-computed values."""

import math

import pytest
import torch
import torch.nn.functional as F

from humanparse.errors import ConfigError
from humanparse.htcorrm.losses import PAPER_LOSS_WEIGHTS, HTCorrMLoss, edge_loss, parsing_loss, pose_loss


def test_balanced_edge_loss_is_the_mean_of_the_two_class_means():
    logits = torch.zeros(1, 2, 2, 2)
    logits[0, 1] = torch.tensor([[2.0, 0.0], [0.0, 0.0]])  # edge logit
    target = torch.tensor([[[1, 0], [0, 255]]])  # one edge, two non-edge, one ignored pixel
    p_edge = torch.sigmoid(torch.tensor(2.0))  # softmax over (0, 2) for the first pixel
    mean_pos = -math.log(p_edge)
    mean_neg = -math.log(0.5)
    assert edge_loss(logits, target) == pytest.approx(0.5 * (mean_pos + mean_neg), rel=1e-6)
    # the CorrPM/CE2P weighted CE gives the same number
    w = torch.tensor([1 / 3, 2 / 3])  # non-edge weight N_pos/N, edge weight N_neg/N over the 3 valid pixels
    ref = F.cross_entropy(logits, target, weight=w, ignore_index=255)
    assert edge_loss(logits, target) == pytest.approx(float(ref), rel=1e-6)
    assert edge_loss(logits, target, balance=False) == pytest.approx((mean_pos + 2 * mean_neg) / 3, rel=1e-6)


def test_edge_loss_without_edges_falls_back_to_plain_mean():
    logits = torch.zeros(1, 2, 2, 2)
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    assert edge_loss(logits, target) == pytest.approx(math.log(2), rel=1e-6)


def test_parsing_loss_upsamples_and_ignores():
    logits = torch.zeros(1, 3, 2, 2)
    label = torch.full((1, 4, 4), 255)
    label[0, 0, 0] = 1
    assert parsing_loss(logits, label) == pytest.approx(math.log(3), rel=1e-6)
    assert parsing_loss(logits, torch.full((1, 4, 4), 255)) == 0


def test_pose_loss_masks_missing_joints():
    pred = torch.zeros(1, 2, 2, 2)
    target = torch.zeros(1, 2, 2, 2)
    target[0, 0] = 1.0  # joint 0: error 1 everywhere
    target[0, 1] = 3.0  # joint 1: error 9, but missing
    weight = torch.tensor([[1.0, 0.0]])
    assert pose_loss(pred, target, weight) == pytest.approx(1.0)
    assert pose_loss(pred, target, weight, mask_missing=False) == pytest.approx(5.0)
    assert pose_loss(pred, target, torch.zeros(1, 2)) == 0


def test_loss_weights_default_to_the_paper_and_validate():
    loss = HTCorrMLoss(main_task="pose", tasks=["pose", "parsing", "edge"], fused=True)
    assert loss.weights == PAPER_LOSS_WEIGHTS["pose"] == {"parsing": 0.001, "pose": 1.0, "edge": 0.0025}
    assert HTCorrMLoss(main_task="parsing", tasks=["parsing"], fused=True, weights={"pose": 70}).weights["pose"] == 70
    with pytest.raises(ConfigError, match="unknown key"):
        HTCorrMLoss(main_task="parsing", tasks=["parsing"], fused=True, weights={"depth": 1})
    with pytest.raises(ConfigError, match=">= 0"):
        HTCorrMLoss(main_task="parsing", tasks=["parsing"], fused=True, weights={"edge": -1})


def test_terms_are_weighted_encoder_losses(make_batch):
    batch = make_batch()
    g = torch.Generator().manual_seed(1)
    out = {"main": torch.randn(2, 20, 16, 16, generator=g),
           "encoders": {"parsing": torch.randn(2, 20, 16, 16, generator=g), "edge": torch.randn(2, 2, 16, 16, generator=g),
                        "pose": torch.randn(2, 16, 16, 16, generator=g)}}
    loss = HTCorrMLoss(main_task="parsing", tasks=["parsing", "edge", "pose"], fused=True)
    terms = loss(out, batch)
    torch.testing.assert_close(terms["main/parsing"], parsing_loss(out["main"], batch["label"]))
    torch.testing.assert_close(terms["parsing"], parsing_loss(out["encoders"]["parsing"], batch["label"]))
    torch.testing.assert_close(terms["edge"], 2.0 * edge_loss(out["encoders"]["edge"], batch["edge"]))
    torch.testing.assert_close(terms["pose"], 50.0 * pose_loss(out["encoders"]["pose"], batch["pose_heatmap"],
                                                               batch["pose_weight"]))
