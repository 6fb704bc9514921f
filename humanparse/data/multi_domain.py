"""Several label domains in one loader: a concatenated dataset, a batch sampler whose batches mix
domains, and the batch collate function of docs/contracts.md."""

from __future__ import annotations

import bisect
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from humanparse.errors import ConfigError

from .dataset import ParsingDataset

__all__ = ["MultiDomainDataset", "MixedDomainBatchSampler", "collate_parsing"]


class MultiDomainDataset(Dataset):
    """The datasets of several domains end to end; global index = offset of the domain + local index.

    Every item's ``domain`` is set to its dataset's key. ``sizes`` (in ``domains`` order) is what
    ``MixedDomainBatchSampler`` takes.
    """

    def __init__(self, datasets: Mapping[str, ParsingDataset]):
        if not datasets:
            raise ConfigError("MultiDomainDataset needs at least one domain")
        self.datasets = dict(datasets)
        self.domains = list(self.datasets)
        self.sizes = [len(ds) for ds in self.datasets.values()]
        for name, n in zip(self.domains, self.sizes, strict=True):
            if n == 0:
                raise ConfigError(f"domain {name!r} has no samples")
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).tolist()

    def __len__(self) -> int:
        return self.offsets[-1]

    def set_epoch(self, epoch: int) -> None:
        for ds in self.datasets.values():
            ds.set_epoch(epoch)

    def locate(self, index: int) -> tuple[str, int]:
        """(domain, local index) of a global index."""
        if not 0 <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        d = bisect.bisect_right(self.offsets, index) - 1
        return self.domains[d], index - self.offsets[d]

    def __getitem__(self, index: int) -> dict[str, Any]:
        domain, local = self.locate(index)
        item = self.datasets[domain][local]
        item["domain"] = domain
        return item


def _as_list(values: Sequence[float] | Mapping[str, float], n: int, what: str) -> list[float]:
    values = list(values.values()) if isinstance(values, Mapping) else list(values)
    if len(values) != n:
        raise ConfigError(f"{what} has {len(values)} entries for {n} domains")
    return [float(v) for v in values]


class MixedDomainBatchSampler(Sampler[list[int]]):
    """Batches of global indices that mix the domains.

    Every batch takes from each domain (weight > 0) at least one sample when ``batch_size`` is at least
    the number of such domains; the rest of the batch is shared in proportion to ``domain_weights``
    (default: the domain sizes), with the rounding remainders carried from batch to batch so the
    long-run shares are exact. A domain whose share exceeds its size is cycled (reshuffled each pass).

    Epoch ``e`` (``set_epoch``) is fully fixed by ``(seed, e, rank)``. With ``world_size > 1`` each
    domain's indices are shuffled identically on every rank and dealt out round-robin, so the ranks
    draw from disjoint sets; all ranks get the same number of batches.
    """

    def __init__(
        self,
        sizes: Sequence[int] | Mapping[str, int],
        batch_size: int,
        *,
        seed: int,
        domain_weights: Sequence[float] | Mapping[str, float] | None = None,
        drop_last: bool = True,
        rank: int = 0,
        world_size: int = 1,
    ):
        self.sizes = [int(s) for s in (sizes.values() if isinstance(sizes, Mapping) else sizes)]
        if not self.sizes or any(s <= 0 for s in self.sizes):
            raise ConfigError(f"domain sizes must be positive, got {self.sizes}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank must be in [0, world_size={world_size}), got {rank}")
        weights = self.sizes if domain_weights is None else _as_list(domain_weights, len(self.sizes), "domain_weights")
        w = np.asarray(weights, dtype=np.float64)
        if (w < 0).any() or w.sum() <= 0:
            raise ConfigError(f"domain_weights must be >= 0 with a positive sum, got {weights}")
        self.weights = w / w.sum()
        for d, n in enumerate(self.sizes):
            if self.weights[d] > 0 and n < world_size:
                raise ConfigError(f"domain {d} has {n} samples, fewer than world_size={world_size}")
        self.batch_size = int(batch_size)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.drop_last = bool(drop_last)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        per_rank = sum(self.sizes) // self.world_size
        if self.drop_last:  # at least one full batch: a set smaller than a batch is cycled
            return max(1, per_rank // self.batch_size)
        return -(-per_rank // self.batch_size)

    def _quotas(self, batch_size: int, credit: np.ndarray) -> np.ndarray:
        """Samples per domain for one batch; ``credit`` carries the fractional parts (updated in place)."""
        active = self.weights > 0
        base = active.astype(np.int64) if batch_size >= active.sum() else np.zeros(len(self.sizes), np.int64)
        rest = batch_size - int(base.sum())
        credit += rest * self.weights
        extra = np.floor(credit).astype(np.int64)
        short = rest - int(extra.sum())
        if short > 0:  # largest remaining credit first; ties to the lower domain index
            order = np.lexsort((np.arange(len(credit)), -(credit - extra)))
            extra[order[:short]] += 1
        credit -= extra
        return base + extra

    def _batches(self) -> list[list[int]]:
        shared = np.random.default_rng([self.seed, self.epoch])  # same draws on every rank
        shards = [shared.permutation(n)[self.rank :: self.world_size] for n in self.sizes]
        own = np.random.default_rng([self.seed, self.epoch, self.rank])
        pos = [0] * len(self.sizes)
        credit = np.zeros(len(self.sizes))
        per_rank = sum(self.sizes) // self.world_size
        batches = []
        for b in range(len(self)):
            size = self.batch_size if self.drop_last else min(self.batch_size, per_rank - b * self.batch_size)
            batch: list[int] = []
            for d, q in enumerate(self._quotas(size, credit)):
                for _ in range(int(q)):
                    if pos[d] == len(shards[d]):  # domain used up: start a new pass in a new order
                        shards[d] = own.permutation(shards[d])
                        pos[d] = 0
                    batch.append(int(self.offsets[d] + shards[d][pos[d]]))
                    pos[d] += 1
            batches.append(batch)
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        return iter(self._batches())


def collate_parsing(items: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Items of ``ParsingDataset`` -> the batch dict of docs/contracts.md.

    ``image`` float32 [B,3,H,W] and ``label`` int64 [B,H,W] are stacked (all items must share H, W:
    training crops guarantee it; evaluate at batch size 1 otherwise), ``domain`` and ``meta`` are
    lists. ``human_ids`` is stacked when every item has it; ``orig_label`` (eval mode) is a list.
    """
    if not items:
        raise ValueError("collate_parsing got an empty list of items")
    sizes = {tuple(it["image"].shape[-2:]) for it in items}
    if len(sizes) > 1:
        detail = ", ".join(f"{it['meta'].get('image_path')}: {tuple(it['image'].shape[-2:])}" for it in items)
        raise ValueError(
            f"items of one batch must share H, W; got {sorted(sizes)} ({detail}). "
            "Crop to a fixed size for training, or use batch size 1 for evaluation."
        )
    batch: dict[str, Any] = {
        "image": torch.stack([it["image"] for it in items]),
        "label": torch.stack([it["label"] for it in items]),
        "domain": [it["domain"] for it in items],
        "meta": [it["meta"] for it in items],
    }
    if all("human_ids" in it for it in items):
        batch["human_ids"] = torch.stack([it["human_ids"] for it in items])
    if any("orig_label" in it for it in items):
        batch["orig_label"] = [it.get("orig_label") for it in items]
    return batch
