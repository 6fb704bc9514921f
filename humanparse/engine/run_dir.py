"""The output folder of a training run, guarded: nothing of an earlier run is lost or mixed in silently.

- ``prepare_output_dir``: writable, and an earlier run is replaced only on request (``overwrite``);
- ``truncate_log``: after a resume, ``metrics.jsonl`` keeps the rows up to the checkpoint's step only;
- ``StopSignalLatch``: Ctrl-C or SIGTERM ends the run after a complete step, so its checkpoint is consistent
  (BatchNorm statistics and ``num_batches_tracked`` included).
"""

from __future__ import annotations

import json
import shutil
import signal
import sys
import threading
from pathlib import Path

from ..errors import ConfigError, DataError
from .checkpoint import atomic_write

RUN_FILES = ("last.pt", "model.safetensors", "eval.json", "metrics.jsonl")


def ensure_writable_dir(path: str | Path, what: str = "output folder") -> Path:
    """Create ``path`` if needed and prove it writable (a temporary file is created and removed), so a
    command fails at once with ``DataError(path, ...)``, before any work, instead of after it."""
    import tempfile

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise DataError(path, f"{what} is an existing file, not a folder; choose a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=path):
            pass
    except OSError as exc:
        raise DataError(path, f"{what} is not writable ({exc.strerror or exc}); choose another folder") from None
    return path


def prepare_output_dir(out: Path, *, resume: bool, overwrite: bool, is_main: bool = True) -> None:
    """Check ``out`` before any work: writable, and holding no earlier run unless ``resume`` / ``overwrite``.

    ``overwrite`` deletes the earlier run's files (checkpoints, logs, eval) so nothing of it is mixed in.
    """
    if resume and overwrite:
        raise ConfigError("--resume and --overwrite exclude each other: resume continues the run, overwrite replaces it")
    ensure_writable_dir(out, "--output-dir")
    if resume:
        return
    found = [name for name in RUN_FILES if (out / name).exists()]
    if found and not overwrite:
        raise ConfigError(f"{out} already holds a training run ({', '.join(found)}); continue it with --resume, "
                          "choose a new --output-dir, or replace it with --overwrite")
    if found and is_main:
        for name in found:
            (out / name).unlink()
        shutil.rmtree(out / "tb", ignore_errors=True)


def truncate_log(path: Path, last_step: int) -> None:
    """Keep the log rows up to ``last_step`` (the checkpoint resumed from): the steps after it run again.
    A half-written last row (kill -9) is dropped too."""
    if not path.is_file():
        return
    keep = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict) and int(row.get("step", 0)) <= last_step:
            keep.append(line + "\n")
    atomic_write(path, lambda tmp: Path(tmp).write_text("".join(keep)))


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by a signal after its last complete step was checkpointed. ``signum`` says which:
    SIGINT (Ctrl-C) or SIGTERM (``kill``, a scheduler's pre-emption, ``docker stop``)."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class StopSignalLatch:
    """While active, Ctrl-C (SIGINT) and SIGTERM only set ``requested``: the loop finishes its step,
    checkpoints a consistent state and stops. A second signal raises KeyboardInterrupt at once (no
    checkpoint then, the previous one stays)."""

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self):
        self.requested = False
        self.signum: int | None = None
        self.previous: dict = {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = {sig: signal.signal(sig, self._handle) for sig in self.SIGNALS}
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested, self.signum = True, signum
        name = "interrupted" if signum == signal.SIGINT else f"{signal.Signals(signum).name} received"
        print(f"{name}: finishing the current step, then saving a checkpoint (signal again to stop at once)",
              file=sys.stderr, flush=True)

    def interrupted(self) -> RunInterrupted:
        return RunInterrupted(self.signum if self.signum is not None else signal.SIGINT)

    def __exit__(self, *exc):
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)
        self.previous = {}
        return False


__all__ = ["RUN_FILES", "ensure_writable_dir", "prepare_output_dir", "truncate_log", "StopSignalLatch", "RunInterrupted"]
