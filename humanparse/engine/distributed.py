"""Process-group helpers for ``torchrun``: rank/world from the environment, gradient and buffer averaging.

The trainer keeps every rank's model identical without DistributedDataParallel: rank 0's initial
weights are broadcast, gradients are averaged after each backward (``average_gradients``), and the
floating-point buffers (BatchNorm running statistics) are averaged after each step (``average_buffers``),
so any rank's ``state_dict`` is the model, and a checkpoint written by rank 0 resumes every rank.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(backend: str | None = None) -> DistInfo:
    """Initialise the default process group when launched by torchrun (WORLD_SIZE > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if not dist.is_initialized():
        if backend is None:
            backend = "nccl" if torch.cuda.is_available() else "gloo"
        if backend == "nccl":
            torch.cuda.set_device(local_rank)
        dist.init_process_group(backend=backend)
    return DistInfo(rank=rank, local_rank=local_rank, world_size=world)


def _all_reduce_mean(tensors: list[torch.Tensor], world_size: int) -> None:
    """Average ``tensors`` in place over the ranks: one flattened all-reduce per (dtype, device) group."""
    groups: dict[tuple, list[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault((t.dtype, t.device), []).append(t)
    for members in groups.values():
        flat = torch.cat([t.reshape(-1) for t in members])
        dist.all_reduce(flat, op=dist.ReduceOp.SUM)
        flat /= world_size
        offset = 0
        for t in members:
            n = t.numel()
            t.copy_(flat[offset : offset + n].view_as(t))
            offset += n


def average_gradients(parameters, info: DistInfo) -> None:
    """All-reduce and average the gradients of ``parameters`` over all ranks.

    A parameter that got no gradient on some ranks (a domain head absent from their batches) takes part
    with zeros there, so every rank applies the same update and the weights stay identical. One that got
    no gradient on any rank keeps ``grad = None``, as in a single process, so the optimiser skips it
    (no weight decay or momentum step for a head that no rank used).
    """
    if not info.enabled:
        return
    params = [p for p in parameters if p.requires_grad]
    if not params:
        return
    # which ranks had a gradient, averaged in the same call as the gradients (same dtype and device)
    used = torch.tensor([p.grad is not None for p in params], dtype=params[0].dtype, device=params[0].device)
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    _all_reduce_mean([p.grad for p in params] + [used], info.world_size)
    for p, fraction in zip(params, used.tolist()):
        if fraction == 0:
            p.grad = None


def average_buffers(module: torch.nn.Module, info: DistInfo) -> None:
    """Average the floating-point buffers (BatchNorm running mean/var) of ``module`` over all ranks.

    Each rank updates them from its own batches; averaging after every step makes them the statistics
    of the global batch and keeps every rank's state identical (integer buffers such as
    ``num_batches_tracked`` advance identically on every rank and are left alone).
    """
    if not info.enabled:
        return
    buffers = [b for b in module.buffers() if b.is_floating_point()]
    if buffers:
        _all_reduce_mean(buffers, info.world_size)


def broadcast_parameters(module: torch.nn.Module, info: DistInfo) -> None:
    """Make every rank start from rank 0's weights and buffers."""
    if not info.enabled:
        return
    for t in list(module.parameters()) + list(module.buffers()):
        dist.broadcast(t.data, src=0)


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()
