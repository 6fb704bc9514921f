"""Every shipped config loads, builds its network and training method on the meta device (no weights,
no data, no network), and the paper configs' epochs -> steps arithmetic is the paper's schedule."""

from pathlib import Path

import pytest
import torch

from humanparse.config import load_config, resolve_epochs, steps_per_epoch
from humanparse.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted(p for p in (ROOT / "configs").rglob("*.yaml") if not p.name.startswith("base_"))
PAPER = sorted((ROOT / "configs" / "sst_paper").glob("*.yaml"))
PAPER_RUNS = [p for p in PAPER if not p.name.startswith("base_")]
SIZES = {"pascal": 1716, "atr": 16000, "cihp": 28280}  # official training splits


def _build(cfg):
    from humanparse.engine.methods import build_method
    from humanparse.engine.recipes import build_recipe

    cfg.setdefault("model", {}).setdefault("backbone", {})["pretrained"] = None  # never download in a test
    recipe = build_recipe(cfg, root=ROOT)
    with torch.device("meta"):
        model = recipe.build_model()
        method_cfg = dict(cfg.get("method") or {})
        name = method_cfg.pop("name", "supervised")
        if name == "sst_dedicated":  # needs its step-1 checkpoint: checked against the shipped configs below
            return model, None
        method = build_method(name, method_cfg, model=model, label_spaces=recipe.label_spaces)
    return model, method


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT / "configs")))
def test_shipped_config_builds_on_meta(path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "1")
    cfg = load_config(path)
    if cfg.get("recipe", "semantic") != "semantic":
        pytest.skip("UniParser / HTCorrM configs are built by their own recipe tests")
    model, method = _build(cfg)
    assert next(model.parameters()).is_meta
    assert set(model.num_classes) == set(cfg["domains"])
    if method is not None and any(True for _ in method.parameters()):
        assert next(method.parameters()).is_meta


@pytest.mark.parametrize("path", PAPER_RUNS, ids=lambda p: p.stem)
def test_paper_config_schedule_is_150_epochs_with_the_drop_at_125(path, monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "8")
    cfg = load_config(path)
    sizes = cfg["epochs"]["train_sizes"]
    train_domains = sorted(d for d, dc in cfg["domains"].items() if "train" in dc)
    assert sorted(sizes) == train_domains
    for d, n in sizes.items():  # the official sizes, or the Table-5 fraction of PASCAL given as limit
        limit = cfg["domains"][d]["train"].get("limit")
        assert n == (limit if limit else SIZES[d]), d
    per_epoch = (sum(sizes.values()) // 8) // 4  # by hand: images per process // batch 4
    assert cfg["train"]["steps"] == 150 * per_epoch
    assert cfg["train"]["schedule"] == {"type": "step", "milestones": [125 * per_epoch], "gamma": 0.1}
    assert cfg["train"]["batch_size"] == 4 and cfg["train"]["lr"] == 1e-4 and cfg["train"]["grad_clip"]
    assert cfg["data"]["domain_weights"] == "proportional"  # one epoch = one pass over the union
    assert cfg["model"]["backbone"]["pretrained"] is True and cfg["eval"]["tta"] is True
    method = cfg["method"]
    if method["name"] == "sst_dedicated":  # step 2 reads the last.pt of a shipped step-1 config
        source = method["source_checkpoint"]
        producers = [p for p in PAPER_RUNS if f"runs/sst_paper/{p.stem}/last.pt" == source]
        assert producers, source
        step1 = load_config(producers[0])
        assert step1["method"]["name"] == "sst" and method["target_domain"] not in step1["domains"]
        assert step1["model"] == cfg["model"]
    if method["name"] in ("sst", "sst_dedicated") and method.get("use_scr_dataset", True):
        assert method["static_prior"] == "graphonomy"  # the paper's GloVe prior (Graphonomy's matrices)


def test_the_three_sets_universal_run_by_hand():
    """PASCAL + ATR + CIHP = 45,996 images; 8 GPUs x 4 = 32 per step: 1,437 steps per epoch, 215,550 steps,
    lr x0.1 at step 179,625."""
    assert steps_per_epoch(SIZES, 4, 8) == 1437
    cfg = {"domains": {d: {"train": {}} for d in SIZES}, "train": {"batch_size": 4},
           "epochs": {"total": 150, "lr_drops": [125], "train_sizes": SIZES}}
    resolve_epochs(cfg, world_size=8)
    assert cfg["train"]["steps"] == 215_550 and cfg["train"]["schedule"]["milestones"] == [179_625]
    cfg1 = {"train": {"batch_size": 4}, "epochs": {"total": 150, "lr_drops": [125], "train_sizes": SIZES}}
    assert resolve_epochs(cfg1, world_size=1)["train"]["steps"] == 150 * 11_499


def test_epochs_errors(tmp_path):
    good = {"domains": {"pascal": {"train": {}}}, "train": {"batch_size": 4},
            "epochs": {"total": 2, "train_sizes": {"pascal": 10}}}
    with pytest.raises(ConfigError, match="not both"):
        resolve_epochs({**good, "train": {"batch_size": 4, "steps": 5}})
    with pytest.raises(ConfigError, match="training domains"):
        resolve_epochs({**good, "epochs": {"total": 2, "train_sizes": {"atr": 10}}})
    with pytest.raises(ConfigError, match="lr_drops"):
        resolve_epochs({**good, "epochs": {"total": 2, "lr_drops": [2], "train_sizes": {"pascal": 10}}})
    (tmp_path / "c.yaml").write_text("epochs: {total: 2, train_sizes: {pascal: 10}, total_epochs: 3}\n")
    with pytest.raises(ConfigError, match="c.yaml"):
        load_config(tmp_path / "c.yaml")
