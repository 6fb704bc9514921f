"""Optimiser and learning-rate schedule from the ``train`` config section."""

from __future__ import annotations

import torch

from ..errors import ConfigError


def _param_groups(model: torch.nn.Module, method: torch.nn.Module, lr: float, backbone_lr_mult: float):
    backbone, rest = [], []
    for name, p in model.named_parameters():
        if p.requires_grad:
            (backbone if name.startswith("backbone.") else rest).append(p)
    rest += [p for p in method.parameters() if p.requires_grad]
    groups = [{"params": rest, "lr": lr}]
    if backbone:
        groups.append({"params": backbone, "lr": lr * backbone_lr_mult})
    return groups


def build_optimizer(model, method, tcfg: dict) -> torch.optim.Optimizer:
    lr = float(tcfg.get("lr", 1e-4))
    wd = float(tcfg.get("weight_decay", 0.05))
    groups = _param_groups(model, method, lr, float(tcfg.get("backbone_lr_mult", 1.0)))
    name = str(tcfg.get("optimizer", "adamw")).lower()
    if name == "adamw":
        betas = tuple(float(b) for b in tcfg.get("betas", (0.9, 0.999)))
        return torch.optim.AdamW(groups, lr=lr, weight_decay=wd, betas=betas)
    if name == "sgd":
        return torch.optim.SGD(groups, lr=lr, weight_decay=wd, momentum=float(tcfg.get("momentum", 0.9)))
    raise ConfigError(f"train.optimizer must be 'adamw' or 'sgd' (got {name!r})")


def build_scheduler(optimizer, tcfg: dict, steps: int):
    """``schedule``: {type: step, milestones: [fractions or steps], gamma} (the paper: x0.1 at 125/150)
    | {type: poly, power} | {type: cosine} | {type: constant}; optional ``warmup_steps`` (linear)."""
    sched = dict(tcfg.get("schedule") or {"type": "step", "milestones": [125 / 150], "gamma": 0.1})
    kind = sched.pop("type", "step")
    warmup = int(tcfg.get("warmup_steps", 0))

    def milestone(m):
        m = float(m)
        return int(round(m * steps)) if m <= 1.0 else int(m)

    if kind == "step":
        ms = [milestone(m) for m in sched.pop("milestones", [125 / 150])]
        gamma = float(sched.pop("gamma", 0.1))
        base = lambda s: gamma ** sum(s >= m for m in ms)  # noqa: E731
    elif kind == "poly":
        power = float(sched.pop("power", 0.9))
        base = lambda s: max(0.0, 1 - s / max(1, steps)) ** power  # noqa: E731
    elif kind == "cosine":
        import math

        base = lambda s: 0.5 * (1 + math.cos(math.pi * min(s, steps) / max(1, steps)))  # noqa: E731
    elif kind == "constant":
        base = lambda s: 1.0  # noqa: E731
    else:
        raise ConfigError(f"train.schedule.type must be step, poly, cosine or constant (got {kind!r})")
    if sched:
        raise ConfigError(f"unknown key(s) in train.schedule for type {kind!r}: {sorted(sched)}")

    def factor(s: int) -> float:
        w = min(1.0, (s + 1) / warmup) if warmup else 1.0
        return w * base(s)

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
