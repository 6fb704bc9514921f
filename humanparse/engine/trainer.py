"""The generic training loop: any recipe (semantic/SST, UniParser, HTCorrM), one or many processes.

What it guarantees:
- seeded and reproducible: the same config and seed give the same loss sequence, and ``resume``
  continues an interrupted run with exactly the losses the uninterrupted run would have had
  (model, method, optimiser, scheduler, RNG and data-order state are all checkpointed);
- checkpoints are written atomically (``last.pt``); Ctrl-C finishes the current step, then checkpoints
  (a second Ctrl-C stops at once, keeping the last checkpoint); kill -9 leaves the last good one;
- a fresh run never replaces an earlier run in its output folder: that needs ``resume`` or ``overwrite``;
- every training label is checked once before the first step (all bad files reported together);
- a NaN/inf loss stops the run with a clear message, the last good checkpoint intact;
- logs: JSON lines (``metrics.jsonl``, no step twice after a resume) and TensorBoard (``tb/``), a progress
  bar on a terminal, else a line per ``log_every`` steps on stderr;
- at the end an inference checkpoint (``model.safetensors``) without any training-only module.
"""

from __future__ import annotations

import json
import random
import sys
import time
from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, HumanparseError, check_keys
from .loading import resolve_device
from .checkpoint import (load_initial_weights, load_training_checkpoint, save_inference_checkpoint,
                         save_training_checkpoint)
from .run_dir import StopSignalLatch, prepare_output_dir, truncate_log
from .distributed import DistInfo, average_buffers, average_gradients, barrier, broadcast_parameters, init_distributed
from .recipes import build_recipe
from .schedule import build_optimizer, build_scheduler

TRAIN_KEYS = {
    "steps", "batch_size", "lr", "weight_decay", "optimizer", "schedule", "warmup_steps", "eval_every",
    "checkpoint_every", "log_every", "num_workers", "amp", "grad_clip", "device", "backbone_lr_mult",
    "channels_last", "compile", "eval_max_images", "betas", "momentum", "tensorboard", "init_weights", "init_prefix",
}


class TrainingError(HumanparseError):
    """Training cannot go on (non-finite loss, out of memory ...)."""


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": random.getstate(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _channels_last(value) -> bool:
    """``auto`` (default) is on: convolutions train 1.2-1.5x faster in channels-last on CPUs and GPUs alike
    (measured in docs/benchmarks.md); ``false`` turns it off."""
    if value in ("auto", None):
        return True
    if isinstance(value, bool):
        return value
    raise ConfigError(f"train.channels_last must be auto, true or false (got {value!r})")


def _autocast(amp: str, device: torch.device):
    # auto: bf16 on CUDA GPUs that have it. On CPUs fp32, even with AMX: for the project's networks (depthwise
    # backbones, deformable attention) bf16 autocast measured no faster (docs/benchmarks.md, "Training loop").
    if amp == "auto":
        amp = "bf16" if device.type == "cuda" and torch.cuda.is_bf16_supported() else "off"
    if amp == "off":
        return torch.autocast(device_type=device.type, enabled=False), "off"
    if amp not in ("bf16", "fp16"):
        raise ConfigError(f"train.amp must be auto, bf16, fp16 or off (got {amp!r})")
    dtype = torch.bfloat16 if amp == "bf16" else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype), amp


class _Logger:
    def __init__(self, out: Path, enabled: bool, tensorboard: bool = True, resumed_at: int | None = None):
        self.enabled = enabled
        self.file = None
        self.tb = None
        if not enabled:
            return
        out.mkdir(parents=True, exist_ok=True)
        if resumed_at is not None:
            truncate_log(out / "metrics.jsonl", resumed_at)
        self.file = open(out / "metrics.jsonl", "a", buffering=1)
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(out / "tb"), purge_step=None if resumed_at is None else resumed_at + 1)
            except ImportError:  # tensorboard is a declared dependency; a broken install only loses the TB log
                self.tb = None

    def log(self, record: dict) -> None:
        if not self.enabled:
            return
        self.file.write(json.dumps(record) + "\n")
        if self.tb is not None:
            for k, v in record.items():
                if isinstance(v, (int, float)) and k != "step":
                    self.tb.add_scalar(k, v, record["step"])

    def close(self) -> None:
        if self.file:
            self.file.close()
        if self.tb:
            self.tb.close()


def train(cfg: dict, *, output_dir: str | Path | None = None, resume: bool = False, overwrite: bool = False,
          device: str | None = None, stop_after: int | None = None, progress: bool | None = None,
          root: str | Path = ".") -> dict:
    """Train from an experiment config. Returns ``{"losses": [...], "eval": {...}, "output_dir": ...}``.

    ``stop_after`` ends the run after that many steps (checkpointing first), as an interruption
    would; ``resume`` then continues from ``output_dir/last.pt``. An output folder holding an earlier
    run is refused unless ``resume`` (continue it) or ``overwrite`` (delete it first).
    ``progress``: None = a bar on a terminal, else a log line per ``log_every`` steps; False = silent.
    """
    tcfg = dict(cfg.get("train") or {})
    check_keys("key in 'train'", tcfg, TRAIN_KEYS)
    out = Path(output_dir or cfg.get("output_dir") or "runs/experiment")
    info = init_distributed(cfg.get("dist", {}).get("backend") if isinstance(cfg.get("dist"), dict) else None)
    prepare_output_dir(out, resume=resume, overwrite=overwrite, is_main=info.is_main)
    barrier(info)  # every process has checked the folder before any writes to it
    dev = resolve_device(device or tcfg.get("device"))
    if info.enabled and dev.type == "cuda":
        dev = torch.device("cuda", info.local_rank)
    seed = int(cfg.get("seed", 0))
    seed_everything(seed)

    recipe = build_recipe(cfg, root=root)
    model = recipe.build_model()
    method = recipe.build_method(model)
    if info.enabled and dev.type == "cuda":
        model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
    model.to(dev)
    method.to(dev)
    if _channels_last(tcfg.get("channels_last", "auto")):
        model.to(memory_format=torch.channels_last)

    steps = int(tcfg.get("steps", 1000))
    batch_size = int(tcfg.get("batch_size", 8))
    optimizer = build_optimizer(model, method, tcfg)
    scheduler = build_scheduler(optimizer, tcfg, steps)
    autocast, amp = _autocast(str(tcfg.get("amp", "auto")), dev)
    scaler = torch.amp.GradScaler(dev.type, enabled=(amp == "fp16"))

    # optional torch.compile of the network for the training steps; weights stay shared with ``model``
    step_model = torch.compile(model) if tcfg.get("compile") else model
    dataset = recipe.build_train_dataset()
    from ..data.validate import validate_training_data

    validate_training_data(dataset, cache=out / "data_check.json" if info.is_main else None)
    sampler = recipe.build_batch_sampler(dataset, batch_size=batch_size, seed=seed, rank=info.rank, world_size=info.world_size)

    start_step, epoch, offset, losses = 0, 0, 0, []
    ckpt_path = out / "last.pt"
    if resume:
        if info.is_main:  # a process killed while writing leaves its temporary file (last.pt itself is intact)
            for stale in out.glob(f".{ckpt_path.name}.*.tmp"):
                stale.unlink()
        state = load_training_checkpoint(ckpt_path, map_location=dev)
        model.load_state_dict(state["model"])
        method.load_state_dict(state["method"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        start_step, epoch, offset = int(state["step"]), int(state["epoch"]), int(state["offset"])
        losses = list(state.get("losses", []))
        _set_rng_state(state["rng"])
    else:
        if hasattr(method, "initialize_model"):
            method.initialize_model(model)
        if tcfg.get("init_weights"):  # a second stage starts from a trained network (the optimiser starts fresh)
            load_initial_weights(model, Path(root) / str(tcfg["init_weights"]), prefix=tcfg.get("init_prefix"))
        broadcast_parameters(model, info)
        broadcast_parameters(method, info)

    logger = _Logger(out, enabled=info.is_main, tensorboard=bool(cfg.get("train", {}).get("tensorboard", True)),
                     resumed_at=start_step if resume else None)
    params = [p for p in list(model.parameters()) + list(method.parameters()) if p.requires_grad]
    grad_clip = tcfg.get("grad_clip")
    log_every = int(tcfg.get("log_every", 10))
    eval_every = int(tcfg.get("eval_every", 0) or 0)
    ckpt_every = int(tcfg.get("checkpoint_every", 100) or 0)
    show_bar = (sys.stderr.isatty() if progress is None else progress) and info.is_main
    log_lines = progress is None and not show_bar and info.is_main  # not on a terminal: a line per log_every
    bar = None
    if show_bar:
        from tqdm import tqdm

        bar = tqdm(total=steps, initial=start_step, desc="train", dynamic_ncols=True)

    def save(step: int) -> None:
        if not info.is_main:
            return
        save_training_checkpoint(ckpt_path, {
            "model": model.state_dict(), "method": method.state_dict(), "optimizer": optimizer.state_dict(),
            "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict() if amp == "fp16" else None,
            "step": step, "epoch": epoch, "offset": offset, "rng": _rng_state(), "losses": losses,
            "config": cfg, "recipe": recipe.name, "model_config": getattr(model, "config", {}),
            "method_name": (cfg.get("method") or {}).get("name", "supervised"),
            "method_config": cfg.get("method") or {}, "label_spaces": recipe.label_space_dicts(),
        })

    eval_results: dict = {}
    step = start_step
    model.train()
    method.train()
    t0 = time.time()
    latch = StopSignalLatch()
    try:
        latch.__enter__()
        while step < steps:
            batches = sampler.batches_for_epoch(epoch)
            if not batches:
                raise ConfigError(f"the training set yields no batch of {batch_size} per process; lower train.batch_size")
            if hasattr(dataset, "set_epoch"):
                dataset.set_epoch(epoch)
            loader = torch.utils.data.DataLoader(
                dataset, batch_sampler=batches[offset:], collate_fn=recipe.collate,
                num_workers=int(tcfg.get("num_workers", 0)), persistent_workers=False,
            )
            for batch in loader:
                batch = _to_device(batch, dev)
                try:  # forward, backward and the optimiser step (its first one allocates the moments) can run out of memory
                    with autocast:
                        terms = method.training_step(step_model, batch)
                    total = sum(terms.values())
                    if not torch.isfinite(total.detach()):
                        bad = {k: float(v.detach()) for k, v in terms.items()}
                        kept = (f"the last good checkpoint is {ckpt_path}" if ckpt_path.is_file() else
                                "no checkpoint was written yet" + (f" (the first is at step {ckpt_every})" if ckpt_every else ""))
                        raise TrainingError(f"loss is not finite at step {step} ({bad}); {kept}"
                                            " — lower train.lr or set train.grad_clip")
                    optimizer.zero_grad(set_to_none=True)
                    scaler.scale(total).backward()
                    average_gradients(params, info)
                    if grad_clip:
                        scaler.unscale_(optimizer)
                        torch.nn.utils.clip_grad_norm_(params, float(grad_clip))
                    scaler.step(optimizer)
                except torch.cuda.OutOfMemoryError:
                    raise TrainingError(_out_of_memory_message(batch_size, info, step)) from None
                scaler.update()
                scheduler.step()
                average_buffers(model, info)  # BatchNorm statistics: the same on every rank
                step += 1
                offset += 1
                loss_value = float(total.detach())
                losses.append(loss_value)
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss_value:.4f}")
                if step % log_every == 0 or step == steps:
                    logger.log({"step": step, "loss": loss_value, "lr": optimizer.param_groups[0]["lr"],
                                "time": round(time.time() - t0, 3), **{k: float(v.detach()) for k, v in terms.items()}})
                    if log_lines:
                        print(f"step {step}/{steps} loss {loss_value:.4f} lr {optimizer.param_groups[0]['lr']:.3g} "
                              f"{time.time() - t0:.1f} s", file=sys.stderr, flush=True)
                if ckpt_every and step % ckpt_every == 0:
                    save(step)
                if eval_every and step % eval_every == 0 and step < steps:
                    eval_results = _evaluate(recipe, model, method, tcfg, info, logger, step)
                if latch.requested:  # Ctrl-C / SIGTERM: the step is complete, so the checkpoint is consistent
                    save(step)
                    raise latch.interrupted()
                if step >= steps or (stop_after is not None and step >= stop_after):
                    break
            else:
                epoch += 1
                offset = 0
                continue
            if offset >= len(batches):
                epoch, offset = epoch + 1, 0
            if stop_after is not None and step >= stop_after and step < steps:
                save(step)
                return {"losses": losses, "eval": eval_results, "output_dir": str(out), "stopped_at": step}
    except KeyboardInterrupt:  # saved above after a complete step; a second signal keeps the last checkpoint
        logger.close()
        raise
    finally:
        latch.__exit__()
        if bar is not None:
            bar.close()

    save(step)
    eval_results = _evaluate(recipe, model, method, tcfg, info, logger, step)
    if info.is_main:
        inference = recipe.inference_model(model)
        save_inference_checkpoint(out / "model.safetensors", inference, recipe=recipe.name,
                                  model_config=getattr(inference, "config", {}), label_spaces=recipe.label_space_dicts(),
                                  extra={"inference": recipe.inference_settings()})
        (out / "eval.json").write_text(json.dumps(eval_results, indent=2))
    logger.close()
    barrier(info)
    return {"losses": losses, "eval": eval_results, "output_dir": str(out), "seconds": time.time() - t0}


def _out_of_memory_message(batch_size: int, info: DistInfo, step: int) -> str:
    per = " per process" if info.enabled else ""
    where = f"CUDA ran out of memory at step {step} with train.batch_size={batch_size}{per}"
    if batch_size > 1:
        advice = f"try train.batch_size={batch_size // 2} (or a smaller data.crop_size, or train.amp=bf16)"
    else:
        advice = "batch size 1 does not fit: try a smaller data.crop_size or train.amp=bf16"
    return f"{where}; {advice}"


def _evaluate(recipe, model, method, tcfg, info: DistInfo, logger: _Logger, step: int) -> dict:
    if not info.is_main:
        return {}
    model.eval()
    try:
        results = recipe.evaluate(model, max_images=tcfg.get("eval_max_images"))
    finally:
        model.train()
        method.train()
    logger.log({"step": step, **{f"eval/{k}": v for k, v in results.items() if isinstance(v, (int, float))}})
    return results


def _to_device(batch, device):
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, list) and batch and isinstance(batch[0], torch.Tensor):
        return [_to_device(v, device) for v in batch]
    return batch


__all__ = ["train", "TrainingError", "seed_everything", "resolve_device"]
