"""SST with the real (tiny) ParsingNetwork and built-in label spaces: universal step, and the two
steps of dedicated parsing through a training checkpoint on disk."""

import torch

from humanparse.engine.checkpoint import save_training_checkpoint
from humanparse.engine.methods import build_method
from humanparse.labels import get_label_space
from humanparse.models import build_network
from humanparse.sst import SSTDedicated, SSTUniversal

from _sst_helpers import TINY_REAL_CFG, make_batch

SPACES = {"pascal": get_label_space("pascal"), "cihp": get_label_space("cihp")}
CLASSES = {d: s.num_classes for d, s in SPACES.items()}


def test_universal_step_on_real_network():
    torch.manual_seed(0)
    net = build_network(TINY_REAL_CFG, CLASSES)
    method = build_method("sst", {}, model=net, label_spaces=SPACES)
    assert isinstance(method, SSTUniversal)
    batch = make_batch(["pascal", "cihp", "cihp"], CLASSES, size=64)
    terms = method.training_step(net, batch)
    assert set(terms) == {"seg/pascal", "seg/cihp", "aux/pascal", "aux/cihp",
                          "scr_dataset/pascal-cihp", "scr_img/pascal-cihp"}
    sum(terms.values()).backward()
    assert all(torch.isfinite(t) for t in terms.values())
    assert all(p.grad is not None for p in method.parameters())
    # SST adds nothing to the network: its parameters are all in the method
    assert not {id(p) for p in method.parameters()} & {id(p) for p in net.parameters()}


def test_dedicated_two_steps_through_a_checkpoint(tmp_path):
    torch.manual_seed(0)
    # step 1: "sst" on the source domain without SCR
    step1_cfg = {"name": "sst", "use_scr_dataset": False, "use_scr_img": False}
    source_net = build_network(TINY_REAL_CFG, {"pascal": 7})
    step1 = build_method("sst", {k: v for k, v in step1_cfg.items() if k != "name"},
                         model=source_net, label_spaces={"pascal": SPACES["pascal"]})
    terms = step1.training_step(source_net, make_batch(["pascal", "pascal"], CLASSES, size=64))
    assert set(terms) == {"seg/pascal", "aux/pascal"}
    path = tmp_path / "last.pt"
    save_training_checkpoint(path, {
        "model": source_net.state_dict(), "method": step1.state_dict(), "model_config": source_net.config,
        "method_name": "sst", "method_config": step1_cfg, "label_spaces": {"pascal": SPACES["pascal"].to_dict()},
    })

    # step 2: target domain cihp with a new head
    model = build_network(TINY_REAL_CFG, {"cihp": 20})
    method = build_method("sst_dedicated", {"source_checkpoint": str(path), "target_domain": "cihp"},
                          model=model, label_spaces={"cihp": SPACES["cihp"]})
    assert isinstance(method, SSTDedicated) and method.source_domains == ["pascal"]
    frozen = method.source
    assert torch.equal(frozen.mse["pascal"].embedding, step1.mse["pascal"].embedding)
    method.initialize_model(model)
    for key, value in model.state_dict().items():
        if not key.startswith("heads."):
            assert torch.equal(value, source_net.state_dict()[key]), key

    terms = method.training_step(model, make_batch(["cihp", "cihp"], CLASSES, size=64))
    assert set(terms) == {"seg/cihp", "aux/cihp", "scr_dataset/pascal-cihp", "scr_img/pascal-cihp"}
    frozen_before = {k: v.clone() for k, v in frozen.state_dict().items()}
    sum(terms.values()).backward()
    assert all(torch.isfinite(t) for t in terms.values())
    torch.optim.SGD([*model.parameters(), *method.parameters()], lr=0.1).step()
    # the step moved the network initialised from step 1, never the frozen step-1 copy
    assert not torch.equal(model.backbone.state_dict()[next(iter(model.backbone.state_dict()))],
                           frozen.network.backbone.state_dict()[next(iter(frozen.network.backbone.state_dict()))])
    assert all(torch.equal(frozen_before[k], v) for k, v in frozen.state_dict().items())
    assert not {id(p) for p in frozen.parameters()} & {id(p) for p in method.parameters()}
    assert not any(k.startswith("network.") for k in method.state_dict())
    assert any(p.grad is not None for p in model.backbone.parameters())


def test_dedicated_rejects_unusable_step1_states():
    import pytest

    from humanparse.errors import CheckpointError, ConfigError

    torch.manual_seed(0)
    source_net = build_network(TINY_REAL_CFG, {"pascal": 7})
    model = build_network(TINY_REAL_CFG, {"cihp": 20})
    state = {"model": source_net.state_dict(), "model_config": source_net.config, "method_name": "supervised",
             "method_config": {}, "method": {}, "label_spaces": {"pascal": SPACES["pascal"].to_dict()}}
    spaces = {"cihp": SPACES["cihp"]}
    with pytest.raises(CheckpointError, match="method sst"):
        SSTDedicated.from_step1_state(state, model=model, label_spaces=spaces, target_domain="cihp")
    state["method_name"] = "sst"  # but no trained MSA/MSE (as with use_aux: false in step 1)
    with pytest.raises(CheckpointError, match="use_aux"):
        SSTDedicated.from_step1_state(state, model=model, label_spaces=spaces, target_domain="cihp")
    with pytest.raises(ConfigError, match="source domain"):
        SSTDedicated.from_step1_state(state, model=model, label_spaces=spaces, target_domain="cihp",
                                      source_domains=["lip"])
    with pytest.raises(ConfigError, match="target_domain"):
        build_method("sst_dedicated", {"source_checkpoint": "x.pt"}, model=model, label_spaces=spaces)
    with pytest.raises(ConfigError, match="source_checkpoint"):
        build_method("sst_dedicated", {"source_checkpoint": "x.pt", "target_domain": "cihp", "source_checkpont": 1},
                     model=model, label_spaces=spaces)
    with pytest.raises(CheckpointError, match="not found"):
        build_method("sst_dedicated", {"source_checkpoint": "missing.pt", "target_domain": "cihp"},
                     model=model, label_spaces=spaces)
