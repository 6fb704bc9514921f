"""SST leaves no cost at inference: the saved model is exactly the plain network."""

import subprocess
import sys

from safetensors.torch import load_file

from humanparse.api import Parser
from humanparse.data.sample_data import sample_data_root
from humanparse.engine.checkpoint import load_training_checkpoint
from humanparse.engine.trainer import train

from _tiny import tiny_config


def test_sst_inference_checkpoint_equals_the_plain_network(tmp_path):
    sst = train(tiny_config(method={"name": "sst", "pairing": "full"}, steps=1), output_dir=tmp_path / "sst", progress=False)
    plain = train(tiny_config(steps=1), output_dir=tmp_path / "plain", progress=False)
    sst_weights = load_file(tmp_path / "sst" / "model.safetensors")
    plain_weights = load_file(tmp_path / "plain" / "model.safetensors")
    assert sorted(sst_weights) == sorted(plain_weights)
    assert sum(t.numel() for t in sst_weights.values()) == sum(t.numel() for t in plain_weights.values())
    # the SST modules were trained (they are in the training checkpoint), but not saved for inference
    training_state = load_training_checkpoint(tmp_path / "sst" / "last.pt")
    method_keys = set(training_state["method"])
    for domain in ("lip", "pascal"):  # per-domain MSA projection and MSE embedding
        assert {f"msa.{domain}.proj.weight", f"mse.{domain}.embedding"} <= method_keys
    assert any(k.startswith("mst.") for k in method_keys)
    assert not any("msa" in k or "mse" in k or "mst" in k for k in sst_weights)
    # parse/eval use it unchanged
    parser = Parser.from_checkpoint(tmp_path / "sst" / "model.safetensors")
    image = sorted((sample_data_root() / "lip" / "images").iterdir())[0]
    assert parser(image, domain="pascal").max() < 7
    assert sst["losses"] and plain["losses"]


def test_inference_path_never_imports_training_modules(tmp_path):
    train(tiny_config(method={"name": "sst"}, steps=1), output_dir=tmp_path, progress=False)
    code = (
        "import sys, humanparse\n"
        f"p = humanparse.Parser.from_checkpoint(r'{tmp_path / 'model.safetensors'}')\n"
        "import numpy as np\n"
        "p.predict([np.zeros((64, 64, 3), np.uint8)], domain='lip')\n"
        "bad = [m for m in sys.modules if m.startswith(('humanparse.sst', 'humanparse.engine.trainer', 'humanparse.engine.methods'))]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
