"""Several label domains in one loader: a concatenated dataset, a batch sampler whose batches mix
domains, and the batch collate function of docs/contracts.md."""

from __future__ import annotations

import bisect
import sys
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from humanparse.errors import ConfigError

from .dataset import ParsingDataset

__all__ = ["DOMAIN_MIXES", "MultiDomainDataset", "MixedDomainBatchSampler", "collate_parsing", "resolve_domain_mix"]

#: Named values of ``data.domain_weights`` (a mapping {domain: weight} is the third kind).
DOMAIN_MIXES = ("at_least_one", "proportional", "balanced")


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


def resolve_domain_mix(
    value: str | Mapping[str, float] | None, domains: Sequence[str]
) -> tuple[list[float] | None, int]:
    """``data.domain_weights`` -> ``(domain_weights, min_per_domain)`` for ``MixedDomainBatchSampler``.

    ``None`` / ``"at_least_one"``: at least one image of every domain per batch, the rest in proportion
        to the domain sizes (the behaviour of configs that do not choose; with 4-image batches over
        PASCAL / ATR / CIHP it samples 26 / 34 / 40 %, so an "epoch" is 7 passes over PASCAL);
    ``"proportional"``: every image of the union equally likely (shares = sizes / total, no minimum):
        one epoch is one pass over every domain, what "150 epochs over the union" means (paper configs);
    ``"balanced"``: equal shares per domain, no minimum (small domains are cycled);
    ``{domain: weight}``: explicit shares by domain name (missing domains get 0), no minimum.
    """
    if value is None or value == "at_least_one":
        return None, 1
    if value == "proportional":
        return None, 0
    if value == "balanced":
        return [1.0] * len(domains), 0
    if isinstance(value, Mapping):
        unknown = sorted(set(value) - set(domains))
        if unknown:
            raise ConfigError(f"data.domain_weights names {unknown}, which are not training domains ({list(domains)})")
        return [float(value.get(d, 0.0)) for d in domains], 0
    raise ConfigError(
        f"data.domain_weights must be one of {', '.join(DOMAIN_MIXES)} or a mapping {{domain: weight}}, got {value!r}"
    )


class MixedDomainBatchSampler(Sampler[list[int]]):
    """Batches of global indices that mix the domains.

    Every batch takes from each domain (weight > 0) at least ``min_per_domain`` samples (default 1)
    when ``batch_size`` allows it; the rest of the batch is shared in proportion to ``domain_weights``
    (default: the domain sizes), with the rounding remainders carried from batch to batch so the
    long-run shares are exact. A domain whose share exceeds its size is cycled (reshuffled each pass).
    ``min_per_domain=0`` gives exactly the weights' shares. ``from_config`` reads ``data.domain_weights``
    (``resolve_domain_mix``) and reports the passes over each domain per epoch (``passes_per_epoch``).

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
        min_per_domain: int = 1,
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
        if min_per_domain not in (0, 1):
            raise ConfigError(f"min_per_domain must be 0 or 1, got {min_per_domain}")
        self.min_per_domain = int(min_per_domain)
        self.batch_size = int(batch_size)
        self.seed, self.rank, self.world_size = int(seed), int(rank), int(world_size)
        self.drop_last = bool(drop_last)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.epoch = 0

    @classmethod
    def from_config(
        cls, domains: Sequence[str], sizes: Sequence[int], domain_weights, batch_size: int, *, seed: int,
        rank: int = 0, world_size: int = 1, report: bool = True,
    ) -> "MixedDomainBatchSampler":
        """The sampler for ``data.domain_weights`` (see ``resolve_domain_mix``); with ``report`` (and on
        rank 0) one line on stderr gives each domain's share of the images and passes per epoch."""
        weights, minimum = resolve_domain_mix(domain_weights, domains)
        sampler = cls(sizes, batch_size, seed=seed, domain_weights=weights, min_per_domain=minimum,
                      rank=rank, world_size=world_size)
        sampler.domains = list(domains)
        if report and rank == 0:
            print(sampler.describe(domain_weights if isinstance(domain_weights, str) else
                                   ("at_least_one" if domain_weights is None else "weights")), file=sys.stderr)
        return sampler

    def shares(self) -> list[float]:
        """Long-run fraction of the images of a batch that each domain supplies (exact: from the quotas of
        one epoch's batches)."""
        credit = np.zeros(len(self.sizes))
        counts = np.zeros(len(self.sizes))
        for _ in range(len(self)):
            counts += self._quotas(self.batch_size, credit)
        return (counts / counts.sum()).tolist()

    def passes_per_epoch(self) -> list[float]:
        """Passes over each domain's images in one epoch (``len(self)`` batches on every rank)."""
        drawn = len(self) * self.batch_size * self.world_size
        return [drawn * share / size for share, size in zip(self.shares(), self.sizes)]

    def describe(self, mix: str = "") -> str:
        names = getattr(self, "domains", [str(d) for d in range(len(self.sizes))])
        parts = ", ".join(f"{n} {100 * s:.1f}% of images = {p:.2f} passes"
                          for n, s, p in zip(names, self.shares(), self.passes_per_epoch()))
        return (f"domain mix {mix or 'weights'}: one epoch = {len(self)} batches of {self.batch_size}"
                f" x {self.world_size} process(es); per epoch: {parts}")

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
        if self.min_per_domain and batch_size >= active.sum():
            base = active.astype(np.int64)
        else:
            base = np.zeros(len(self.sizes), np.int64)
        rest = batch_size - int(base.sum())
        credit += rest * self.weights
        # a domain that got an extra image earlier can carry a credit below -1: never a negative count
        # (with the one-per-domain minimum the floor is >= -1 = -base, so that mode is unchanged)
        extra = np.maximum(np.floor(credit).astype(np.int64), -base)
        short = rest - int(extra.sum())
        if short > 0:  # largest remaining credit first; ties to the lower domain index
            order = np.lexsort((np.arange(len(credit)), -(credit - extra)))
            extra[order[:short]] += 1
        while short < 0:  # clipping added images: take them back where the remaining credit is lowest
            candidates = np.flatnonzero(base + extra > 0)
            d = candidates[np.argmin((credit - extra)[candidates])]
            extra[d] -= 1
            short += 1
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
