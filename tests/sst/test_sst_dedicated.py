"""The ``sst_dedicated`` method (step 2) on fake networks: frozen source, terms, initialisation."""

import numpy as np
import pytest
import torch

from humanparse.errors import CheckpointError, ConfigError
from humanparse.sst import FrozenSource, SSTDedicated, init_from_step1
from humanparse.sst.msa import MultiScaleSemanticAggregation
from humanparse.sst.mse import MultiScaleSemanticEnhancement

SOURCE = {"src": 3}
TARGET = {"tgt": 5}


@pytest.fixture
def parts(fake_net_cls, batch_factory):
    torch.manual_seed(0)
    source_net = fake_net_cls(SOURCE)
    source = FrozenSource(source_net, {"src": MultiScaleSemanticAggregation(8, 3)},
                          {"src": MultiScaleSemanticEnhancement(8, 3, adjacency=np.eye(3))})
    model = fake_net_cls(TARGET)
    method = SSTDedicated(source=source, target_domain="tgt", target_num_classes=5, feature_dim=8,
                          target_adjacency=np.ones((5, 5)), static_priors={"src": np.full((5, 3), 0.5)})
    return source, model, method, batch_factory(["tgt", "tgt", "tgt"], TARGET)


def test_frozen_source_is_not_optimised_nor_saved(parts):
    source, model, method, batch = parts
    frozen = {id(p) for p in source.parameters()}
    assert frozen and not frozen & {id(p) for p in method.parameters()}
    assert not any(k.startswith(("_source", "source", "network")) for k in method.state_dict())
    assert all(not p.requires_grad for p in source.parameters())
    terms = method.training_step(model, batch)
    assert set(terms) == {"seg/tgt", "aux/tgt", "scr_dataset/src-tgt", "scr_img/src-tgt"}
    assert all(torch.isfinite(t) for t in terms.values())
    before = {k: v.clone() for k, v in source.state_dict().items()}
    encoded = source.encode(batch["image"], batch["label"])["src"]
    optimizer = torch.optim.SGD([*model.parameters(), *method.parameters()], lr=0.5)
    sum(terms.values()).backward()
    assert all(p.grad is not None for p in method.parameters())   # target MSA/MSE, MST
    optimizer.step()
    # after a step on the trainable side the frozen pipeline is bit-identical, and so is what it encodes
    assert all(torch.equal(before[k], v) for k, v in source.state_dict().items())
    again = source.encode(batch["image"], batch["label"])["src"]
    assert all(torch.equal(a, b) for a, b in zip(encoded.mse.representations[1:], again.mse.representations[1:]))
    mst = method.mst["src-tgt"]  # (an untrained source may predict one class: a single key, so check V and W)
    assert mst.dynamic_one_to_two[0].value.weight.grad.abs().sum() > 0
    assert mst.prior_proj_2[0].weight.grad.abs().sum() > 0


def test_frozen_source_stays_in_eval_and_follows_to(parts):
    source, _, method, _ = parts
    method.train()
    source.train()
    assert not source.training and not source.network.training
    method.to(torch.float64)
    assert next(source.parameters()).dtype == torch.float64
    method.to(torch.float32)


def test_source_masks_are_the_frozen_argmax(parts):
    """S_l by hand: masks = the frozen network's argmax at 1/4 (target ignore pixels stay ignored),
    taken at each cell's centre for H_1 / H_2; per class: mean and max of the features, then W_s."""
    source, _, _, batch = parts
    with torch.no_grad():
        out = source.network(batch["image"], ["src"])
    pseudo = out["logits"]["src"].argmax(1)
    size, full = pseudo.shape[1], batch["label"].shape[1]
    centre = ((torch.arange(size) + 0.5) * full / size).long()  # the target label at each 1/4 cell's centre
    pseudo[batch["label"][:, centre][:, :, centre] == 255] = 255  # target ignore pixels stay ignored
    got = source.encode(batch["image"], batch["label"])["src"].semantics
    w_s = source.msa["src"].proj.weight
    for key, scale in zip(("H1", "H2", "H3"), got):
        feat = out["features"][key]
        h, w = feat.shape[-2:]
        rows = ((torch.arange(h) + 0.5) * pseudo.shape[1] / h).long()
        cols = ((torch.arange(w) + 0.5) * pseudo.shape[2] / w).long()
        mask = pseudo[:, rows][:, :, cols]
        for b in range(mask.shape[0]):
            for z in range(3):
                pixels = feat[b][:, mask[b] == z]  # [D, n]
                if pixels.shape[1] == 0:
                    assert scale.presence[b, z] == 0 and torch.equal(scale.features[b, z], torch.zeros(8))
                    continue
                expected = torch.cat([pixels.mean(1), pixels.max(1).values]) @ w_s.T
                assert scale.presence[b, z] == 1
                torch.testing.assert_close(scale.features[b, z], expected, rtol=1e-5, atol=1e-6)


def test_ablation_keys_and_wrong_domain(parts):
    source, model, _, batch = parts
    method = SSTDedicated(source=source, target_domain="tgt", target_num_classes=5, feature_dim=8,
                          use_scr_dataset=False, use_scr_img=False)
    assert set(method.training_step(model, batch)) == {"seg/tgt", "aux/tgt"}
    with pytest.raises(ConfigError, match="only"):
        method.training_step(model, {**batch, "domain": ["tgt", "src", "tgt"]})
    with pytest.raises(ConfigError, match="source domain"):
        SSTDedicated(source=source, target_domain="src", target_num_classes=3, feature_dim=8)


def test_initialize_model_copies_everything_but_heads(parts, fake_net_cls):
    source, model, method, _ = parts
    head_before = model.heads.heads["tgt"].weight.detach().clone()
    stem = model.stem.weight  # same Parameter object afterwards (the optimiser keeps it)
    method.initialize_model(model)
    assert model.stem.weight is stem
    assert torch.equal(model.stem.weight, source.network.stem.weight)
    assert torch.equal(model.mix.bias, source.network.mix.bias)
    assert torch.equal(model.heads.heads["tgt"].weight, head_before)


def test_init_from_step1_reports_mismatched_keys(fake_net_cls):
    model = fake_net_cls(TARGET)
    other = fake_net_cls(SOURCE, dim=4)
    with pytest.raises(CheckpointError, match="shape-mismatched"):
        init_from_step1(model, {"model": other.state_dict()})
    with pytest.raises(CheckpointError, match="'model'"):
        init_from_step1(model, {})
