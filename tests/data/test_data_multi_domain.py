"""Multi-domain concat, mixed batches, rank sharding and collate."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from humanparse.data import (
    MixedDomainBatchSampler,
    MultiDomainDataset,
    ParsingDataset,
    build_train_transforms,
    collate_parsing,
    read_dataset,
)
from humanparse.errors import ConfigError
from humanparse.labels import get_label_space


def _domain_of(index, sizes):
    offsets = np.cumsum([0] + list(sizes))
    return int(np.searchsorted(offsets, index, side="right") - 1)


def test_batches_mix_domains_in_proportion():
    sizes = [60, 30, 10]
    sampler = MixedDomainBatchSampler(sizes, 10, seed=0)
    batches = list(sampler)
    assert len(batches) == len(sampler) == 10
    counts = Counter()
    for b in batches:
        assert len(b) == 10
        doms = Counter(_domain_of(i, sizes) for i in b)
        assert set(doms) == {0, 1, 2}  # every batch has every domain
        counts.update(doms)
    # 1 guaranteed each + 7 shared 0.6 / 0.3 / 0.1 per batch -> 52 / 31 / 17 over 10 batches
    assert counts == {0: 52, 1: 31, 2: 17}
    # each domain's indices stay inside that domain's range and do not repeat within a pass
    d0 = [i for b in batches for i in b if _domain_of(i, sizes) == 0]
    assert len(set(d0)) == len(d0) and all(0 <= i < 60 for i in d0)


def test_sampler_deterministic_per_epoch():
    a = MixedDomainBatchSampler([20, 20], 4, seed=7)
    b = MixedDomainBatchSampler([20, 20], 4, seed=7)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first
    assert list(MixedDomainBatchSampler([20, 20], 4, seed=8)) != first


def test_domain_weights_override_sizes():
    sizes = {"lip": 100, "ccp": 10}
    sampler = MixedDomainBatchSampler(sizes, 8, seed=0, domain_weights={"lip": 1, "ccp": 1})
    counts = Counter(_domain_of(i, [100, 10]) for b in sampler for i in b)
    assert counts[0] == counts[1]  # equal weights: the small domain is cycled
    only = MixedDomainBatchSampler([10, 10], 4, seed=0, domain_weights=[1, 0])
    assert all(i < 10 for b in only for i in b)
    with pytest.raises(ConfigError):
        MixedDomainBatchSampler([10, 10], 4, seed=0, domain_weights=[1])


def test_rank_shards_are_disjoint():
    sizes = [23, 11, 7]
    for world in (2, 3):
        shards = [MixedDomainBatchSampler(sizes, 3, seed=1, rank=r, world_size=world) for r in range(world)]
        lengths = {len(s) for s in shards}
        assert len(lengths) == 1  # same number of steps on every rank
        seen = [{i for b in s for i in b} for s in shards]
        for r in range(world):
            for q in range(r + 1, world):
                assert not seen[r] & seen[q]
    with pytest.raises(ConfigError, match="rank"):
        MixedDomainBatchSampler(sizes, 3, seed=1, rank=2, world_size=2)


def test_drop_last_false_keeps_the_tail():
    sampler = MixedDomainBatchSampler([7, 4], 4, seed=0, drop_last=False)
    batches = list(sampler)
    assert [len(b) for b in batches] == [4, 4, 3]


def test_loader_items_tagged_with_their_source_domain(tmp_path, writer):
    lip, pascal = get_label_space("lip"), get_label_space("pascal")
    roots = {}
    for name, n, ncls in (("lipset", 4, 20), ("pascalset", 3, 7)):
        root = tmp_path / name
        for i in range(n):
            writer.pair(root / "images" / f"{name}{i}.png", root / "labels" / f"{name}{i}.png", num_classes=ncls)
        roots[name] = root
    cfg = {"crop_size": 8}
    datasets = {
        "lip": ParsingDataset(read_dataset("folder", roots["lipset"], "all", domain="lip"), lip, build_train_transforms(cfg, lip)),
        "pascal": ParsingDataset(read_dataset("folder", roots["pascalset"], "all", domain="pascal"), pascal, build_train_transforms(cfg, pascal)),
    }
    multi = MultiDomainDataset(datasets)
    assert multi.sizes == [4, 3] and multi.locate(5) == ("pascal", 1)
    sampler = MixedDomainBatchSampler(multi.sizes, 3, seed=0)
    loader = DataLoader(multi, batch_sampler=sampler, collate_fn=collate_parsing)
    n_batches = 0
    for batch in loader:
        n_batches += 1
        assert batch["image"].shape == (3, 3, 8, 8) and batch["label"].dtype == torch.int64
        assert set(batch["domain"]) == {"lip", "pascal"}
        for dom, meta, label in zip(batch["domain"], batch["meta"], batch["label"], strict=True):
            assert ("lipset" if dom == "lip" else "pascalset") in meta["image_path"]
            valid = label[label != 255]
            assert valid.max() < (20 if dom == "lip" else 7)
    assert n_batches == len(sampler) == 2


def test_collate_refuses_mixed_sizes():
    item = lambda h: {"image": torch.zeros(3, h, 8), "label": torch.zeros(h, 8, dtype=torch.int64), "domain": "lip", "meta": {"image_path": f"x{h}"}}
    batch = collate_parsing([item(8), item(8)])
    assert batch["image"].shape == (2, 3, 8, 8) and batch["domain"] == ["lip", "lip"] and len(batch["meta"]) == 2
    with pytest.raises(ValueError, match="x9"):
        collate_parsing([item(8), item(9)])


def _domain_counts(sampler, sizes):
    return Counter(_domain_of(i, sizes) for b in sampler for i in b)


def test_proportional_mix_is_one_pass_over_every_domain():
    """PASCAL / ATR / CIHP-like sizes, 4-image batches: ``proportional`` draws each domain in proportion
    to its size (one epoch = one pass over each), where the default forces one image per domain per
    batch (the issue's 26 / 34 / 40 %, 7 passes over the small domain)."""
    from humanparse.data.multi_domain import resolve_domain_mix

    sizes = [170, 1600, 2828]
    weights, minimum = resolve_domain_mix("proportional", ["pascal", "atr", "cihp"])
    prop = MixedDomainBatchSampler(sizes, 4, seed=0, domain_weights=weights, min_per_domain=minimum)
    counts = _domain_counts(prop, sizes)
    drawn = len(prop) * 4
    for d, n in enumerate(sizes):  # exact shares up to the rounding carry (a couple of images of 4,596)
        assert abs(counts[d] - drawn * n / sum(sizes)) < 2.0
    np.testing.assert_allclose(prop.passes_per_epoch(), [1.0] * 3, atol=1e-3)  # one pass over each domain
    legacy = MixedDomainBatchSampler(sizes, 4, seed=0)  # the default: at least one per domain
    legacy_counts = _domain_counts(legacy, sizes)
    shares = [legacy_counts[d] / (len(legacy) * 4) for d in range(3)]
    np.testing.assert_allclose(shares, [0.25 + 0.25 * n / sum(sizes) for n in sizes], atol=0.002)  # 26 / 34 / 40 %
    assert legacy.passes_per_epoch()[0] > 7.0
    np.testing.assert_allclose(legacy.shares(), shares, atol=1e-3)


def test_domain_mix_from_config_values():
    from humanparse.data.multi_domain import resolve_domain_mix

    domains = ["pascal", "atr", "cihp"]
    assert resolve_domain_mix(None, domains) == (None, 1)            # unchanged default for old configs
    assert resolve_domain_mix("at_least_one", domains) == (None, 1)
    assert resolve_domain_mix("proportional", domains) == (None, 0)
    assert resolve_domain_mix("balanced", domains) == ([1.0, 1.0, 1.0], 0)
    assert resolve_domain_mix({"cihp": 2, "pascal": 1}, domains) == ([1.0, 0.0, 2.0], 0)  # by name, not order
    with pytest.raises(ConfigError, match="not training domains"):
        resolve_domain_mix({"lip": 1}, domains)
    with pytest.raises(ConfigError, match="proportional"):
        resolve_domain_mix("uniform", domains)
    balanced = MixedDomainBatchSampler.from_config(domains, [10, 40, 50], "balanced", 3, seed=0, report=False)
    counts = _domain_counts(balanced, [10, 40, 50])
    assert counts[0] == counts[1] == counts[2] == len(balanced)
    default = MixedDomainBatchSampler.from_config(domains, [10, 40, 50], None, 3, seed=0, report=False)
    assert list(default) == list(MixedDomainBatchSampler([10, 40, 50], 3, seed=0))  # same batches as before


def test_from_config_reports_passes_per_epoch(capsys):
    MixedDomainBatchSampler.from_config(["a", "b"], [30, 10], "proportional", 4, seed=0)
    line = capsys.readouterr().err.strip()
    assert line.startswith("domain mix proportional: one epoch = 10 batches of 4")
    assert "a 75.0% of images = 1.00 passes" in line and "b 25.0% of images = 1.00 passes" in line
    MixedDomainBatchSampler.from_config(["a", "b"], [30, 10], "proportional", 4, seed=0, rank=1, world_size=2)
    assert capsys.readouterr().err == ""  # rank 0 only
