"""The training loop: loss goes down, resume reproduces the uninterrupted loss sequence, artefacts."""

import json

import pytest
import torch

from humanparse.engine.recipes import build_recipe
from humanparse.engine.trainer import TrainingError, train

from _tiny import tiny_config


def test_training_steps_on_a_fixed_batch_lower_the_loss():
    torch.manual_seed(0)
    cfg = tiny_config()
    recipe = build_recipe(cfg)
    model = recipe.build_model()
    method = recipe.build_method(model)
    ds = recipe.build_train_dataset()
    first = recipe.build_batch_sampler(ds, batch_size=4, seed=0).batches_for_epoch(0)[0]
    batch = recipe.collate([ds[i] for i in first])
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(6):
        terms = method.training_step(model, batch)
        loss = sum(terms.values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert set(terms) == {"seg/lip", "seg/pascal"}  # both domains of the mixed batch
    assert losses[-1] < losses[0] * 0.9


def test_resume_reproduces_the_uninterrupted_loss_sequence(tmp_path):
    cfg = tiny_config(steps=5, checkpoint_every=100)
    full = train(cfg, output_dir=tmp_path / "full", progress=False)
    part = train(cfg, output_dir=tmp_path / "part", stop_after=2, progress=False)
    assert part["stopped_at"] == 2 and (tmp_path / "part" / "last.pt").is_file()
    rest = train(cfg, output_dir=tmp_path / "part", resume=True, progress=False)
    assert len(full["losses"]) == 5
    assert rest["losses"] == full["losses"]  # bit-identical: same data order, augmentation, RNG, optimiser state
    # artefacts: logs, inference checkpoint, eval
    lines = [json.loads(l) for l in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == [1, 2, 3, 4, 5]
    assert (tmp_path / "full" / "model.safetensors").is_file()
    assert 0.0 <= full["eval"]["lip/mIoU"] <= 1.0


def test_non_finite_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path, monkeypatch):
    from humanparse.engine.supervised import SupervisedMethod

    original = SupervisedMethod.training_step
    calls = []

    def nan_at_step_3(self, model, batch):
        terms = original(self, model, batch)
        calls.append(1)
        if len(calls) == 3:
            terms["seg/lip"] = terms["seg/lip"] * float("nan")
        return terms

    monkeypatch.setattr(SupervisedMethod, "training_step", nan_at_step_3)
    cfg = tiny_config(steps=6, checkpoint_every=2)
    with pytest.raises(TrainingError, match="not finite"):
        train(cfg, output_dir=tmp_path, progress=False)
    state = torch.load(tmp_path / "last.pt", weights_only=True)
    assert state["step"] == 2  # the last good checkpoint, before the bad step
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())


def test_init_weights_starts_from_a_trained_network_and_refuses_one_that_does_not_fit(tmp_path):
    from safetensors.torch import load_file

    from humanparse.errors import CheckpointError

    first = train(tiny_config(steps=3), output_dir=tmp_path / "first", progress=False)
    trained = load_file(str(tmp_path / "first" / "model.safetensors"))
    # lr 0: a second stage that starts from the first network keeps every weight of it (buffers such as BN
    # statistics move with the forward passes, so weights only)
    cfg = tiny_config(steps=1, lr=0.0, init_weights=str(tmp_path / "first"))  # a model folder works too
    train(cfg, output_dir=tmp_path / "second", progress=False)
    second = load_file(str(tmp_path / "second" / "model.safetensors"))
    fresh = train(tiny_config(steps=1, lr=0.0), output_dir=tmp_path / "fresh", progress=False)
    fresh_w = load_file(str(tmp_path / "fresh" / "model.safetensors"))
    weights = [k for k in trained if k.endswith("weight") and "bn" not in k and "norm" not in k]
    assert weights and all(torch.equal(second[k], trained[k]) for k in weights)
    assert any(not torch.equal(fresh_w[k], trained[k]) for k in weights)  # without it: the random start
    other = tiny_config(steps=1, init_weights=str(tmp_path / "first" / "model.safetensors"))
    other["model"]["decoder"]["dim"] = 48  # another network: shapes differ
    with pytest.raises(CheckpointError, match=r"model.safetensors: train.init_weights does not fit this network"):
        train(other, output_dir=tmp_path / "other", progress=False)


def test_init_prefix_loads_only_the_named_part_and_keeps_the_rest_fresh(tmp_path):
    """train.init_prefix: another network's backbone starts this run (the starter's backbone under UniParser)."""
    from safetensors.torch import load_file

    from humanparse.errors import CheckpointError

    train(tiny_config(steps=3), output_dir=tmp_path / "first", progress=False)
    trained = load_file(str(tmp_path / "first" / "model.safetensors"))
    # a network whose decoder has another width: whole-network init refuses it, the backbone alone fits
    cfg = tiny_config(steps=1, lr=0.0, init_weights=str(tmp_path / "first"), init_prefix="backbone.")
    cfg["model"]["decoder"]["dim"] = 48
    train(cfg, output_dir=tmp_path / "second", progress=False)
    second = load_file(str(tmp_path / "second" / "model.safetensors"))
    weights = [k for k in trained if k.endswith("weight") and "bn" not in k and "norm" not in k]
    backbone = [k for k in weights if k.startswith("backbone.")]
    assert backbone and all(torch.equal(second[k], trained[k]) for k in backbone)
    bad = tiny_config(steps=1, init_weights=str(tmp_path / "first"), init_prefix="no_such_module.")
    with pytest.raises(CheckpointError, match="init_prefix 'no_such_module.' names no tensor"):
        train(bad, output_dir=tmp_path / "bad", progress=False)
