"""The output folder of a training run, guarded: nothing of an earlier run is lost or mixed in silently.

- ``prepare_output_dir``: writable, and an earlier run is replaced only on request (``overwrite``);
- ``truncate_log``: after a resume, ``metrics.jsonl`` keeps the rows up to the checkpoint's step only;
- ``SigintLatch``: Ctrl-C ends the run after a complete step, so its checkpoint is consistent
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


class SigintLatch:
    """While active, Ctrl-C (SIGINT) only sets ``requested``: the loop finishes its step, checkpoints a
    consistent state and stops. A second Ctrl-C raises KeyboardInterrupt at once (no checkpoint then)."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("interrupted: finishing the current step, then saving a checkpoint (Ctrl-C again to stop at once)",
              file=sys.stderr, flush=True)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False


__all__ = ["RUN_FILES", "ensure_writable_dir", "prepare_output_dir", "truncate_log", "SigintLatch"]
