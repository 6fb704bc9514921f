"""The models behind ``humanparse serve`` and the single worker that runs them.

Models load once. Every request becomes a job on one bounded queue; one worker thread takes the
waiting jobs of the same kind (task, domain), up to ``max_batch`` of them, and parses them in one call
(images of one padded size share a forward pass), so two copies of a model never run at once and the
cores are not oversubscribed. A full queue is refused (503) rather than left to grow.
"""

from __future__ import annotations

import json
import queue
import threading
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import ConfigError, unknown_key_message

__all__ = ["ParseService", "ServiceError", "TASKS"]

TASKS = ("semantic", "multi")


class ServiceError(Exception):
    """A request the service refuses: ``status`` is the HTTP status, the message says why."""

    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


@dataclass(eq=False)  # jobs are compared by identity (they hold arrays)
class _Job:
    image: np.ndarray
    task: str
    domain: str | None
    future: Future = field(default_factory=Future)

    @property
    def key(self) -> tuple[str, str | None]:
        return self.task, self.domain


def _recipe_of(path: Path) -> str:
    """The recipe a checkpoint file was trained with ("semantic", "uniparser" ...), read without building it."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        from ..errors import CheckpointError

        try:
            with safe_open(str(path), framework="pt") as fh:
                raw = (fh.metadata() or {}).get("humanparse")
        except Exception as exc:  # not a safetensors file: say which
            raise CheckpointError(f"{path}: not a readable safetensors file ({type(exc).__name__}: {exc})") from None
        return json.loads(raw).get("recipe", "semantic") if raw else "semantic"
    if path.suffix in (".pt", ".pth"):
        from ..engine.checkpoint import load_training_checkpoint

        return load_training_checkpoint(path).get("recipe", "semantic")
    return "semantic"


def load_semantic_parser(checkpoint: str | None, **kwargs):
    """``Parser.from_pretrained(checkpoint)`` (None = the bundled starter model) where this humanparse has it."""
    from ..api import Parser

    if hasattr(Parser, "from_pretrained"):
        return Parser.from_pretrained(checkpoint, **kwargs)
    if checkpoint is None:
        raise ConfigError("no CHECKPOINT given and this humanparse has no bundled starter model "
                          "(Parser.from_pretrained); pass a model.safetensors path")
    return Parser.from_checkpoint(checkpoint, **kwargs)


class ParseService:
    """A semantic ``Parser`` and/or a ``MultiPersonParser``, behind one queue and one worker thread."""

    def __init__(self, semantic=None, multi=None, *, max_batch: int = 4, max_queue: int = 64, name: str = ""):
        if semantic is None and multi is None:
            raise ConfigError("the service needs a semantic or a multi-person model")
        if multi is not None and multi.label_space is None:
            raise ConfigError("the multi-person model has no label space (class names and colours); "
                              "load it from a checkpoint saved by humanparse train")
        if max_batch < 1 or max_queue < 1:
            raise ConfigError(f"max_batch and max_queue must be >= 1, got {max_batch}, {max_queue}")
        self.semantic, self.multi = semantic, multi
        self.max_batch, self.name = max_batch, name
        self._queue: queue.Queue[_Job | None] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self.batches_run = 0  # forward calls so far (how well requests were batched)
        self.jobs_done = 0

    @classmethod
    def from_checkpoints(cls, checkpoint: str | Path | None = None, *, multi: str | Path | None = None,
                         device: str = "auto", long_side: int | None | str = "auto", batch_size: int = 4,
                         max_queue: int = 64) -> "ParseService":
        """``checkpoint``: a semantic model (None = the starter model) or a UniParser one; ``multi``: a
        UniParser checkpoint as well."""
        from ..engine.loading import resolve_device

        semantic = multi_parser = None
        dev = resolve_device(device)
        if checkpoint is not None and Path(checkpoint).is_file() and _recipe_of(Path(checkpoint)) == "uniparser":
            multi, checkpoint = checkpoint, None
        else:
            semantic = load_semantic_parser(None if checkpoint is None else str(checkpoint), device=dev,
                                            long_side=long_side, batch_size=batch_size)
        if multi is not None:
            from ..uniparser.predictor import MultiPersonParser

            multi_parser = MultiPersonParser.from_checkpoint(multi, device=dev, batch_size=batch_size,
                                                             long_side=long_side)
        name = Path(str(checkpoint or multi)).name if (checkpoint or multi) else "starter"
        return cls(semantic, multi_parser, max_batch=batch_size, max_queue=max_queue, name=name)

    # ------------------------------------------------------------------ what it offers
    @property
    def tasks(self) -> list[str]:
        return [t for t, m in (("semantic", self.semantic), ("multi", self.multi)) if m is not None]

    def check(self, task: str, domain: str | None) -> str | None:
        """Validate a request's task and domain (ServiceError 400); return the domain to use."""
        if task not in TASKS:
            raise ServiceError(400, unknown_key_message("task", task, TASKS))
        if task not in self.tasks:
            raise ServiceError(400, f"this server has no {task} model (it offers: {', '.join(self.tasks)}); "
                                    + ("start it with --multi CHECKPOINT" if task == "multi" else "give a semantic CHECKPOINT"))
        if task == "multi":
            return None
        try:
            return self.semantic._domain(domain)
        except ConfigError as exc:
            raise ServiceError(400, str(exc)) from None

    def label_space(self, task: str, domain: str | None):
        return self.multi.label_space if task == "multi" else self.semantic.label_spaces[domain]

    # ------------------------------------------------------------------ the queue and the worker
    def start(self) -> "ParseService":
        if self._thread is None:
            self._thread = threading.Thread(target=self._work, name="humanparse-serve-worker", daemon=True)
            self._thread.start()
        return self

    def close(self, timeout: float = 10.0) -> None:
        if self._thread is not None:
            self._queue.put(None, timeout=timeout)
            self._thread.join(timeout)
            self._thread = None

    def submit(self, image: np.ndarray, task: str = "semantic", domain: str | None = None) -> Future:
        """Queue one RGB uint8 image; the future gives ``{"label"}`` (semantic) or the multi-person dict."""
        domain = self.check(task, domain)
        if self._thread is None:
            raise ServiceError(503, "the service is not running (call start())")
        job = _Job(image, task, domain)
        try:
            self._queue.put_nowait(job)
        except queue.Full:
            raise ServiceError(503, f"the server is busy ({self._queue.maxsize} requests waiting); retry later") from None
        return job.future

    def parse(self, image: np.ndarray, task: str = "semantic", domain: str | None = None, timeout: float | None = None):
        return self.submit(image, task, domain).result(timeout)

    def _work(self) -> None:
        pending: deque[_Job] = deque()
        stop = False
        while not (stop and not pending):
            if not pending:
                job = self._queue.get()
                if job is None:
                    break
                pending.append(job)
            while True:  # everything already waiting joins the pool this batch is chosen from
                try:
                    job = self._queue.get_nowait()
                except queue.Empty:
                    break
                if job is None:
                    stop = True
                    break
                pending.append(job)
            key = pending[0].key
            batch = [j for j in pending if j.key == key][: self.max_batch]
            pending = deque(j for j in pending if all(j is not b for b in batch))
            self._run(batch)

    def _run(self, batch: list[_Job]) -> None:
        live = [j for j in batch if j.future.set_running_or_notify_cancel()]
        if not live:
            return
        task, domain = live[0].key
        try:
            images = [j.image for j in live]
            if task == "multi":
                results = self.multi(images)
            else:
                results = [{"label": label} for label in self.semantic.predict(images, domain)]
            if len(results) != len(live):
                raise RuntimeError(f"the model gave {len(results)} results for {len(live)} images")
        except Exception as exc:  # hand the failure to every waiting request; the worker goes on
            for j in live:
                j.future.set_exception(exc)
            return
        self.batches_run += 1
        self.jobs_done += len(live)
        for j, r in zip(live, results):
            j.future.set_result(r)
