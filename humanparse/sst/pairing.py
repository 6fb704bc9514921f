"""Which label domains MST connects, and which images of a mixed batch are paired (SST Sec. 4.2).

Domain pairs: ``"full"`` connects every two domains; ``"progressive"`` is the chain from the
coarsest to the finest domain by number of classes (7, 20, 59 -> (7, 20), (20, 59)). Ties in the
number of classes are broken by domain name. Every pair is ordered (coarser, finer).

Image pairs: within a batch, every image of domain 1 is paired with one image of domain 2 and every
image of domain 2 with one of domain 1: the pair count is max(n_1, n_2) and the shorter list is
cycled. A batch lacking one of the two domains yields no image pair.
"""

from __future__ import annotations

from itertools import combinations
from typing import Mapping, Sequence

from ..errors import ConfigError, unknown_key_message

__all__ = ["PAIRING_STRATEGIES", "order_by_granularity", "domain_pairs", "pair_images"]

PAIRING_STRATEGIES = ("full", "progressive")


def order_by_granularity(num_classes: Mapping[str, int]) -> list[str]:
    """Domains from coarsest to finest (number of classes, then name)."""
    return sorted(num_classes, key=lambda domain: (num_classes[domain], domain))


def domain_pairs(num_classes: Mapping[str, int], strategy: str = "full") -> list[tuple[str, str]]:
    """The (coarser, finer) domain pairs that MST connects under ``strategy``."""
    if strategy not in PAIRING_STRATEGIES:
        raise ConfigError(unknown_key_message("SST pairing strategy", str(strategy), PAIRING_STRATEGIES))
    ordered = order_by_granularity(num_classes)
    if strategy == "full":
        return list(combinations(ordered, 2))
    return list(zip(ordered[:-1], ordered[1:]))


def pair_images(domains: Sequence[str], domain_1: str, domain_2: str) -> tuple[list[int], list[int]]:
    """Batch indices ``(first, second)`` of the image pairs (domain_1 image, domain_2 image).

    >>> pair_images(["a", "b", "a", "a"], "a", "b")
    ([0, 2, 3], [1, 1, 1])
    """
    first = [i for i, d in enumerate(domains) if d == domain_1]
    second = [i for i, d in enumerate(domains) if d == domain_2]
    if not first or not second:
        return [], []
    count = max(len(first), len(second))
    return [first[k % len(first)] for k in range(count)], [second[k % len(second)] for k in range(count)]
