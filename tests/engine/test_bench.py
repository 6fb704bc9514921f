"""`humanparse bench` and engine/bench.py on a tiny config: every number is there, peaks come from the table."""

import json

import pytest
import torch
import yaml

from humanparse.cli.main import main
from humanparse.engine.bench import benchmark_model, device_peak, output_loss
from humanparse.models import build_network

from _tiny import TINY_MODEL, tiny_config


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny tensors: one intra-op thread is as fast, and cannot stall on a busy 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.parametrize("name,key,bf16", [
    ("NVIDIA H100 80GB HBM3", "H100", 989.5), ("NVIDIA H100 PCIe", "H100 PCIe", 756.5),
    ("NVIDIA H200", "H200", 989.5), ("NVIDIA H200 NVL", "H200 NVL", 835.5),
    ("NVIDIA A100-SXM4-80GB", "A100", 312.0), ("NVIDIA A100 80GB PCIe", "A100", 312.0),
])
def test_device_peak_table(name, key, bf16):
    found, peaks = device_peak(name)
    assert found == key and peaks["bf16"] == bf16 and peaks["fp32"] < peaks["tf32"] < peaks["bf16"]


def test_unknown_device_has_no_peak():
    assert device_peak("Tesla T4") is None


def test_output_loss_reaches_every_output():
    a, b = torch.ones(2, requires_grad=True), torch.ones(3, requires_grad=True)
    loss = output_loss({"logits": {"x": a}, "features": [b * 2, torch.zeros(1, dtype=torch.long)]})
    loss.backward()
    assert float(loss) == 3.0 and a.grad is not None and b.grad is not None


def test_benchmark_model_reports_flops_latency_training_and_ratio():
    torch.manual_seed(0)
    net = build_network(TINY_MODEL, {"lip": 20, "pascal": 7})
    entry = benchmark_model(net, size=64, batch=2, warmup=0, repeat=1, reference={"median_s": 0.5})
    assert entry["GFLOPs_per_image"] > 0 and 11 < entry["params_M"] < 13
    inf, tr = entry["inference"], entry["train"]
    assert inf["images_per_s"] == pytest.approx(2 / inf["latency_s"])
    assert inf["ratio_to_timm_resnet50"] == pytest.approx(inf["latency_s"] / 0.5)
    assert tr["images_per_s"] > 0 and "fraction_of_peak" not in tr  # CPU: no peak table


def test_cli_bench_json(tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    cfg = tiny_config()
    config.write_text(yaml.safe_dump(cfg))
    code = main(["bench", str(config), "--device", "cpu", "--size", "64", "--batch", "1", "--mode", "inference",
                 "--repeat", "1", "--warmup", "0", "--json", "--out", str(tmp_path / "bench.json")])
    out = capsys.readouterr().out
    report = json.loads(out)
    assert code == 0 and json.loads((tmp_path / "bench.json").read_text()) == report
    entry = report["models"]["tiny"]
    assert set(entry) == {"params_M", "GFLOPs_per_image", "inference"} and "ratio_to_timm_resnet50" in entry["inference"]
    assert report["options"]["precision"] == "fp32" and report["env"]["threads"] >= 1
    assert main(["bench", str(config), "--size", "100"]) == 1  # not a multiple of 32: one-line error
