"""Optimiser and learning-rate schedule from the ``train`` config section."""

from __future__ import annotations

import torch

from ..errors import ConfigError


#: Parameter names (last component) that are embeddings or tables, never decayed: X_0 of MSE, the Swin
#: relative-position bias tables, the encoder's level embedding.
NO_DECAY_NAMES = ("embedding", "bias_table", "level_embed")


def no_weight_decay(name: str, param: torch.Tensor, module: torch.nn.Module | None) -> bool:
    """True for biases, normalisation weights (any 1-D parameter of a norm layer) and ``NO_DECAY_NAMES``
    (detectron2's / timm's rule: decay shrinks a LayerNorm gain or an embedding towards 0, not a weight
    matrix towards simplicity)."""
    leaf = name.rsplit(".", 1)[-1]
    if leaf == "bias" or leaf in NO_DECAY_NAMES:
        return True
    norms = (torch.nn.modules.batchnorm._NormBase, torch.nn.LayerNorm, torch.nn.GroupNorm)
    return param.dim() <= 1 and (module is None or isinstance(module, norms) or leaf == "weight")


def _named_with_modules(root: torch.nn.Module, prefix: str):
    for module_name, module in root.named_modules():
        for leaf, p in module.named_parameters(recurse=False):
            yield f"{prefix}{module_name}.{leaf}" if module_name else f"{prefix}{leaf}", p, module


def _param_groups(model: torch.nn.Module, method: torch.nn.Module, lr: float, backbone_lr_mult: float,
                  weight_decay: float = 0.0, decay_all: bool = False):
    """Groups by (backbone or not) x (decayed or not); ``decay_all`` decays every parameter (the old rule)."""
    buckets: dict[tuple[bool, bool], list] = {}
    seen: set[int] = set()
    named = [*_named_with_modules(model, ""), *_named_with_modules(method, "method.")]
    for name, p, module in named:
        if not p.requires_grad or id(p) in seen:
            continue
        seen.add(id(p))
        decay = decay_all or not no_weight_decay(name, p, module)
        buckets.setdefault((name.startswith("backbone."), decay), []).append(p)
    groups = []
    for (is_backbone, decay), params in sorted(buckets.items()):
        groups.append({"params": params, "lr": lr * (backbone_lr_mult if is_backbone else 1.0),
                       "weight_decay": weight_decay if decay else 0.0})
    return groups


def weight_decay_setting(value) -> tuple[float, bool]:
    """``train.weight_decay`` -> (decay, decay_all). A number decays every parameter (the behaviour of
    configs written before the paper recipes, kept so their runs reproduce and resume); the mapping
    ``{value: 0.05, decay_norms_biases_embeddings: false}`` (paper configs) exempts biases, norm weights,
    X_0 and relative-position tables (``no_weight_decay``)."""
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"value", "decay_norms_biases_embeddings"})
        if unknown or "value" not in value:
            raise ConfigError("train.weight_decay must be a number or {value: <number>, "
                              f"decay_norms_biases_embeddings: true|false}} (got {value!r})")
        flag = value.get("decay_norms_biases_embeddings", False)
        if not isinstance(flag, bool):
            raise ConfigError(f"train.weight_decay.decay_norms_biases_embeddings must be true or false, got {flag!r}")
        return float(value["value"]), flag
    return float(value), True


def build_optimizer(model, method, tcfg: dict) -> torch.optim.Optimizer:
    """AdamW (default) or SGD, with the weight-decay rule of ``weight_decay_setting``."""
    lr = float(tcfg.get("lr", 1e-4))
    wd, decay_all = weight_decay_setting(tcfg.get("weight_decay", 0.05))
    groups = _param_groups(model, method, lr, float(tcfg.get("backbone_lr_mult", 1.0)), wd, decay_all=decay_all)
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
