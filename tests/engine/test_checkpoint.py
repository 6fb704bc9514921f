import os

import pytest
import torch

from humanparse.engine.checkpoint import (atomic_write, load_training_checkpoint, read_inference_checkpoint,
                                          save_inference_checkpoint, save_training_checkpoint)
from humanparse.errors import CheckpointError


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "last.pt"
    save_training_checkpoint(target, {"model": {"w": torch.ones(2)}, "model_config": {}, "step": 1})

    def broken(tmp):
        with open(tmp, "wb") as fh:
            fh.write(b"half")
        raise KeyboardInterrupt  # a Ctrl-C in the middle of writing

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, broken)
    assert load_training_checkpoint(target)["step"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temp file left behind


def test_corrupt_and_foreign_checkpoints_are_named(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="bad.pt"):
        load_training_checkpoint(bad)
    with pytest.raises(CheckpointError, match="not found"):
        load_training_checkpoint(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="bad.pt"):
        read_inference_checkpoint(bad)


def test_inference_checkpoint_round_trip(tmp_path):
    model = torch.nn.Conv2d(3, 4, 1)
    save_inference_checkpoint(tmp_path / "m.safetensors", model, recipe="semantic", model_config={"a": 1},
                              label_spaces={"lip": {"name": "lip"}})
    meta, state = read_inference_checkpoint(tmp_path / "m.safetensors")
    assert meta["recipe"] == "semantic" and meta["model_config"] == {"a": 1}
    assert torch.equal(state["weight"], model.weight.detach())
    assert os.listdir(tmp_path) == ["m.safetensors"]
