"""Training across processes: two gloo ranks under torchrun, and a run killed with SIGKILL then resumed."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
import torch
import yaml

from humanparse.engine.checkpoint import load_training_checkpoint
from humanparse.engine.trainer import TrainingError, train

from _tiny import tiny_config

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch.distributed is not built in")


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is as fast, and cannot stall on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)

# Runs `humanparse train` (the CLI, in-process) on one rank and records what that rank did: the final
# model state (the model object is caught when the recipe builds it), its losses, and which files it wrote.
WORKER = textwrap.dedent("""
    import json, os, sys
    import torch
    import humanparse.engine.trainer as trainer
    from humanparse.cli.main import main

    config, out, record = sys.argv[1:4]
    rank = int(os.environ["RANK"])
    seen = {"writes": []}
    build_recipe = trainer.build_recipe

    def recording_recipe(cfg, **kwargs):
        recipe = build_recipe(cfg, **kwargs)
        build_model = recipe.build_model
        def build():
            seen["model"] = build_model()
            return seen["model"]
        recipe.build_model = build
        return recipe

    def recording(name):
        original = getattr(trainer, name)
        def write(path, *args, **kwargs):
            seen["writes"].append(name)
            return original(path, *args, **kwargs)
        return write

    run = trainer.train
    def recording_train(*args, **kwargs):
        seen["result"] = run(*args, **kwargs)
        return seen["result"]

    trainer.build_recipe = recording_recipe
    trainer.train = recording_train
    for name in ("save_training_checkpoint", "save_inference_checkpoint"):
        setattr(trainer, name, recording(name))
    code = main(["train", config, "--output-dir", out, "--device", "cpu"])
    torch.save(seen["model"].state_dict(), f"{record}/rank{rank}.pt")
    with open(f"{record}/rank{rank}.json", "w") as fh:
        json.dump({"code": code, "losses": seen["result"]["losses"], "writes": seen["writes"]}, fh)
""")


def _small(cfg):
    """The tiny config with timm's smallest backbone: a 1 MB model, so checkpoints are quick to write."""
    cfg["model"]["backbone"]["name"] = "test_resnet"
    return cfg


def _child_env():
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONUNBUFFERED="1")
    env.pop("WORLD_SIZE", None)
    return env


def test_two_gloo_ranks_stay_identical_learn_and_only_rank0_writes(tmp_path):
    # a small fixed set: 2 images per domain, one each per rank; batch 2 per rank, constant LR; the
    # images are scaled to about the crop size, so every epoch shows nearly the same pixels
    cfg = _small(tiny_config(steps=6, batch_size=2, checkpoint_every=3, eval_max_images=1, lr=3e-3))
    for domain in cfg["domains"].values():
        domain["train"]["limit"] = 2
        domain["val"]["limit"] = 1
    cfg["data"]["transforms"]["scale_range"] = [0.3, 0.3]
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out, record = tmp_path / "run", tmp_path / "record"
    record.mkdir()
    worker = tmp_path / "worker.py"
    worker.write_text(WORKER)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           str(worker), str(config), str(out), str(record)]
    proc = subprocess.run(cmd, env=_child_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]

    ranks = [json.loads((record / f"rank{r}.json").read_text()) for r in (0, 1)]
    states = [torch.load(record / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    # (a) identical weights AND buffers (BatchNorm statistics are averaged too)
    assert states[0].keys() == states[1].keys()
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), key
    assert any("running_mean" in k for k in states[0])
    # the checkpoint rank 0 wrote is that model
    saved = load_training_checkpoint(out / "last.pt")
    assert saved["step"] == 6 and all(torch.equal(saved["model"][k], v) for k, v in states[0].items())
    # the ranks trained on different shards of the data: their losses differ
    assert ranks[0]["losses"] != ranks[1]["losses"] and all(len(r["losses"]) == 6 for r in ranks)
    # (b) the loss over both ranks falls
    mean = [(a + b) / 2 for a, b in zip(ranks[0]["losses"], ranks[1]["losses"])]
    assert mean[-1] < 0.9 * mean[0] and sum(mean[-2:]) < sum(mean[:2]), mean
    # (c) only rank 0 writes checkpoints and logs
    assert ranks[1]["writes"] == []
    assert ranks[0]["writes"].count("save_training_checkpoint") == 3  # steps 3 and 6, then the final one
    assert ranks[0]["writes"].count("save_inference_checkpoint") == 1
    lines = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in lines if "loss" in r] == [1, 2, 3, 4, 5, 6]  # one writer: no duplicate lines
    assert [r["loss"] for r in lines if "loss" in r] == pytest.approx(ranks[0]["losses"])
    assert len(list((out / "tb").iterdir())) == 1


def test_sigkill_mid_epoch_loses_only_steps_since_the_checkpoint_and_resume_finishes(tmp_path):
    # 12 training images, batch 2: 6 batches an epoch, so the checkpoint at step 2 is mid-epoch; 10 steps
    # leave the child plenty to do when it is killed, and the resumed run crosses epoch boundaries
    cfg = _small(tiny_config(steps=10, batch_size=2, checkpoint_every=2, eval_max_images=1))
    for domain in cfg["domains"].values():
        domain["val"]["limit"] = 1
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump(cfg))
    out = tmp_path / "run"
    child = subprocess.Popen([sys.executable, "-m", "humanparse", "train", str(config), "--output-dir", str(out),
                              "--device", "cpu"], env=_child_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 180
        while not (out / "last.pt").exists():
            assert child.poll() is None, child.stderr.read().decode()[-3000:]
            assert time.monotonic() < deadline, "no checkpoint within 180 s"
            time.sleep(0.02)
        child.send_signal(signal.SIGKILL)
        assert child.wait(timeout=30) == -signal.SIGKILL  # killed, not finished
    finally:
        if child.poll() is None:
            child.kill()
        child.stderr.close()
    assert not (out / "model.safetensors").exists()

    state = load_training_checkpoint(out / "last.pt")  # the file is whole: written atomically
    done = state["step"]
    assert done % 2 == 0 and 2 <= done < 10 and len(state["losses"]) == done
    assert state["epoch"] * 6 + state["offset"] == done  # where in the data order to go on
    assert all(torch.isfinite(v).all() for v in state["model"].values() if v.is_floating_point())
    logged = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    logged = {r["step"]: r["loss"] for r in logged if "loss" in r}
    assert max(logged) - done <= 2  # lost: at most the steps since the last checkpoint (checkpoint_every)
    (out / ".last.pt.stale.tmp").write_bytes(b"half a checkpoint")  # what a kill during a write leaves

    result = train(cfg, output_dir=out, resume=True, progress=False)
    assert len(result["losses"]) == 10 and result["losses"][:done] == state["losses"]
    assert [result["losses"][s - 1] for s in range(1, done + 1)] == pytest.approx([logged[s] for s in range(1, done + 1)])
    assert load_training_checkpoint(out / "last.pt")["step"] == 10 and (out / "model.safetensors").is_file()
    assert not (out / ".last.pt.stale.tmp").exists()


def test_out_of_memory_names_the_batch_size_to_try(tmp_path, monkeypatch):
    from humanparse.engine.supervised import SupervisedMethod

    def out_of_memory(self, model, batch):
        raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")

    monkeypatch.setattr(SupervisedMethod, "training_step", out_of_memory)
    with pytest.raises(TrainingError, match=r"train.batch_size=4; try train.batch_size=2"):
        train(tiny_config(steps=2), output_dir=tmp_path, progress=False)
