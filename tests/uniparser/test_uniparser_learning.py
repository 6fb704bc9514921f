"""The UniParser recipe learns: on composed scenes of 6 real LIP photos (the embedded samples, as
``configs/uniparser_tiny_cpu.yaml`` composes them), the training loss falls by half and the
person-level AP^p_50 on held-out composed scenes of those same 6 photos rises past a bar within a
fixed number of steps, from random weights. (The held-out scenes are new arrangements of the same
photos: a different seed from every training scene.)

This is the test that fails when learning is broken. ``detached``: the loss terms are cut from the
network (``training_step`` returns detached copies), so no gradient reaches a weight; the Center
Locator then stays at its 0.01 prior, below ``theta_ctr`` = 0.1, so no person is found (AP 0), and
the loss only wanders with the scenes. Targets mis-aligned with the image (a flip applied to one and
not the other, person ids swapped between the heatmap and the masks) give targets no network fits in
the budget.

Bars: the loss mean over the last 10 steps < 0.75 x the mean over the first 10 (the documented tiny
CPU run fell from about 9.9 to 6.4 over 100 steps, x0.65), and person-level AP^p_50 > 0.25 (that run
reached 0.335 on UNSEEN persons at 128 px after 100 steps). NOT YET CALIBRATED on this exact setting:
the CPUs were taken by another training run when it was written (issue 11 report); the detached
case is robust (no weight moves, so no heatmap cell reaches theta_ctr and AP^p_50 is 0).
"""

import pytest

from humanparse.engine.trainer import train

STEPS = 200
LOSS_RATIO = 0.75  # last-10 mean / first-10 mean of the total training loss must fall below this
BAR = 0.25  # person-level AP^p_50 on the 8 held-out composed scenes after STEPS steps


def _config():
    src = {"reader": "shared", "root": "samples://lip", "split": "all", "limit": 6}
    return {
        "recipe": "uniparser", "seed": 0,
        "model": {"backbone": {"name": "test_resnet", "pretrained": None}, "fpn_dim": 32, "feat_dim": 16, "S": 8,
                  "gn_groups": 4},
        "data": {"label_space": "lip", "sources": [src], "val_sources": [src], "canvas": [64, 64], "persons": [1, 2],
                 "height_range": [0.7, 0.95], "max_outside": 0.0, "scenes_per_epoch": 8, "val_scenes": 8,
                 "flip_prob": 0.5},
        "eval": {"theta_ctr": 0.1, "peak_kernel": 3, "max_persons": 10, "batch_size": 8},
        "train": {"steps": STEPS, "batch_size": 8, "optimizer": "adamw", "lr": 0.003, "weight_decay": 0.0,
                  "log_every": 10, "checkpoint_every": 0, "eval_every": 0, "schedule": {"type": "constant"},
                  "warmup_steps": 10, "grad_clip": 35, "tensorboard": False, "device": "cpu", "amp": "off",
                  "num_workers": 0},
    }


@pytest.mark.slow
@pytest.mark.parametrize("broken", [False, True], ids=["learns", "detached"])
def test_uniparser_fits_composed_scenes_of_six_real_photos(tmp_path, monkeypatch, broken):
    if broken:
        from humanparse.uniparser.recipe import UniParserMethod

        step = UniParserMethod.training_step
        monkeypatch.setattr(UniParserMethod, "training_step", lambda self, model, batch: {
            k: v.detach().requires_grad_() for k, v in step(self, model, batch).items()})
    result = train(_config(), output_dir=tmp_path, progress=False)
    losses = result["losses"]
    first, last = sum(losses[:10]) / 10, sum(losses[-10:]) / 10
    ap = result["eval"]["composed_persons/APp50"]
    learned = last < LOSS_RATIO * first and ap > BAR
    assert learned != broken, (first, last, ap)
