"""Interrupted runs lose nothing: kill -9 in the middle of a step or of a checkpoint write, or Ctrl-C, then
``resume`` gives the losses, the weights and the BatchNorm statistics of an uninterrupted run, and
``metrics.jsonl`` holds every step exactly once. A fresh run never replaces an earlier one silently."""

import json
import os
import signal
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from humanparse.engine.checkpoint import load_training_checkpoint, read_inference_checkpoint
from humanparse.engine.trainer import train
from humanparse.errors import ConfigError

from _tiny import tiny_config

TESTS = Path(__file__).resolve().parents[1]
STEPS = 4


def _cfg():
    return tiny_config(steps=STEPS, checkpoint_every=2, log_every=1)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("full")
    result = train(_cfg(), output_dir=out, progress=False)
    return out, result


def _assert_same_run(out: Path, ref: Path, ref_result: dict, result: dict) -> None:
    assert result["losses"] == ref_result["losses"]  # bit-identical
    a, b = load_training_checkpoint(out / "last.pt"), load_training_checkpoint(ref / "last.pt")
    assert a["step"] == b["step"] == STEPS
    bn = [k for k in b["model"] if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert bn and all(torch.equal(a["model"][k], b["model"][k]) for k in bn)  # BatchNorm statistics included
    assert int(a["model"][next(k for k in bn if k.endswith("num_batches_tracked"))]) == STEPS
    assert all(torch.equal(a["model"][k], b["model"][k]) for k in b["model"])
    _, wa = read_inference_checkpoint(out / "model.safetensors")
    _, wb = read_inference_checkpoint(ref / "model.safetensors")
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wb)
    steps = [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()
             if "loss" in json.loads(line)]
    assert steps == list(range(1, STEPS + 1))  # no step twice, none missing


# The child trains like `humanparse train` and kills itself with SIGKILL at a chosen point.
CHILD = r"""
import os, signal, sys
sys.path.insert(0, {tests!r})
import torch
torch.set_num_threads({threads})  # as the parent: another thread count rounds differently
from _tiny import tiny_config
from humanparse.engine import checkpoint
from humanparse.engine.supervised import SupervisedMethod
from humanparse.engine.trainer import train

where = {where!r}
calls = []
if where == "step":  # after the forward of step 4 (BatchNorm statistics already updated), before its update
    original = SupervisedMethod.training_step
    def training_step(self, model, batch):
        terms = original(self, model, batch)
        calls.append(1)
        if len(calls) == 4:
            os.kill(os.getpid(), signal.SIGKILL)
        return terms
    SupervisedMethod.training_step = training_step
else:  # half-way through writing the second checkpoint (step 4)
    original_save = checkpoint.torch.save
    def save(obj, path):
        calls.append(1)
        if len(calls) == 2:
            with open(path, "wb") as fh:
                fh.write(b"PK half a checkpoint")
                fh.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        original_save(obj, path)
    checkpoint.torch.save = save
cfg = tiny_config(steps={steps}, checkpoint_every=2, log_every=1)
train(cfg, output_dir={out!r}, progress=False)
"""


def _run_child(out: Path, where: str) -> None:
    code = CHILD.format(tests=str(TESTS), where=where, steps=STEPS, out=str(out), threads=torch.get_num_threads())
    env = dict(os.environ)
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL, proc.stderr.decode()[-3000:]


@pytest.mark.parametrize("where", ["step", "checkpoint_write"])
def test_kill_9_then_resume_equals_the_uninterrupted_run(tmp_path, uninterrupted, where):
    ref, ref_result = uninterrupted
    out = tmp_path / "run"
    _run_child(out, where)
    state = load_training_checkpoint(out / "last.pt")  # whole: the kill never leaves a torn last.pt
    assert state["step"] == 2
    assert not (out / "model.safetensors").exists()
    if where == "checkpoint_write":
        assert list(out.glob(".last.pt.*.tmp"))  # what the kill left behind
    result = train(_cfg(), output_dir=out, resume=True, progress=False)
    assert not list(out.glob(".last.pt.*.tmp"))
    _assert_same_run(out, ref, ref_result, result)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_stop_signal_mid_step_checkpoints_a_consistent_state(tmp_path, uninterrupted, monkeypatch, signum):
    """Ctrl-C or SIGTERM (kill, pre-emption) during step 3's forward: the step completes, is checkpointed,
    and resume does not repeat it (before the fix BatchNorm's num_batches_tracked counted the interrupted
    step twice, and SIGTERM killed the run with no checkpoint of its last steps)."""
    from humanparse.engine.run_dir import RunInterrupted
    from humanparse.engine.supervised import SupervisedMethod

    ref, ref_result = uninterrupted
    original = SupervisedMethod.training_step
    calls = []

    def interrupted_at_3(self, model, batch):
        terms = original(self, model, batch)
        calls.append(1)
        if len(calls) == 3:
            signal.raise_signal(signum)
        return terms

    monkeypatch.setattr(SupervisedMethod, "training_step", interrupted_at_3)
    out = tmp_path / "run"
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(RunInterrupted) as stopped:
        train(_cfg(), output_dir=out, progress=False)
    assert stopped.value.signum == signum
    assert {s: signal.getsignal(s) for s in handlers} == handlers  # restored
    assert load_training_checkpoint(out / "last.pt")["step"] == 3
    monkeypatch.setattr(SupervisedMethod, "training_step", original)
    result = train(_cfg(), output_dir=out, resume=True, progress=False)
    _assert_same_run(out, ref, ref_result, result)


def test_cli_reports_the_stop_signal_with_its_exit_code(monkeypatch, capsys):
    from humanparse.cli import main as cli
    from humanparse.engine.run_dir import RunInterrupted

    def stopped(args):
        raise RunInterrupted(signal.SIGTERM)

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    monkeypatch.setattr(parser, "parse_args", lambda argv: SimpleNamespace(run=stopped, command="train"))
    assert cli.main(["train"]) == 128 + signal.SIGTERM
    err = capsys.readouterr().err
    assert "SIGTERM" in err and "--resume" in err


def test_a_fresh_run_refuses_a_folder_holding_a_run_and_overwrite_replaces_it(tmp_path, uninterrupted):
    ref, _ = uninterrupted
    out = tmp_path / "run"
    out.mkdir()
    for name in ("last.pt", "model.safetensors", "metrics.jsonl", "eval.json"):
        (out / name).write_bytes((ref / name).read_bytes())
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    cfg = tiny_config(steps=1, checkpoint_every=1)
    with pytest.raises(ConfigError, match=r"already holds a training run .*--resume.*--output-dir.*--overwrite"):
        train(cfg, output_dir=out, progress=False)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before  # nothing touched
    with pytest.raises(ConfigError, match="exclude each other"):
        train(cfg, output_dir=out, resume=True, overwrite=True, progress=False)
    result = train(cfg, output_dir=out, overwrite=True, progress=False)
    assert load_training_checkpoint(out / "last.pt")["step"] == 1
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows if "loss" in r] == [1]  # no row of the replaced run
    assert result["losses"] == [pytest.approx(rows[0]["loss"])]
