import pytest

from humanparse.config import apply_override, load_config, merge
from humanparse.errors import ConfigError, DataError


def test_base_inheritance_and_overrides(tmp_path):
    (tmp_path / "base.yaml").write_text("seed: 1\ntrain: {steps: 10, lr: 0.001}\nmodel: {backbone: {name: resnet18}}\n")
    (tmp_path / "exp.yaml").write_text("_base_: base.yaml\ntrain: {steps: 20}\n")
    cfg = load_config(tmp_path / "exp.yaml", ["train.batch_size=4", "model.backbone.name=resnet50", "method.use_aux=false"])
    assert cfg["train"] == {"steps": 20, "lr": 0.001, "batch_size": 4}
    assert cfg["model"]["backbone"]["name"] == "resnet50"
    assert cfg["method"]["use_aux"] is False
    assert cfg["seed"] == 1


def test_bad_override_and_unknown_top_level_key(tmp_path):
    (tmp_path / "c.yaml").write_text("trian: {steps: 1}\n")
    with pytest.raises(ConfigError, match="did you mean 'train'"):
        load_config(tmp_path / "c.yaml")
    with pytest.raises(ConfigError, match="key=value"):
        apply_override({}, "train.steps")
    with pytest.raises(DataError, match="missing.yaml"):
        load_config(tmp_path / "missing.yaml")


def test_merge_does_not_modify_inputs():
    a = {"x": {"y": 1}}
    b = {"x": {"z": 2}}
    m = merge(a, b)
    assert m == {"x": {"y": 1, "z": 2}} and a == {"x": {"y": 1}}
