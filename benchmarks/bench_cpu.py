"""CPU benchmark (not a test): parse latency of the resnet50/resnet101 SST network at 512x512, batch 1,
against a timm resnet50 forward timed in the same run; ONNX Runtime latency; training throughput
of the small demo config. Writes JSON to stdout (and --out).

    python benchmarks/bench_cpu.py --threads 2 --out benchmarks/results/cpu.json
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import torch

from humanparse.config import load_config
from humanparse.engine.bench import count_flops, environment, parse_latency, timm_reference_latency
from humanparse.models import build_network

CONFIGS = {"resnet50": "configs/sst_r50.yaml", "resnet101": "configs/sst_r101.yaml"}


def network_from(config_path: str):
    cfg = load_config(config_path)
    from humanparse.labels import get_label_space

    return build_network(cfg["model"], {d: get_label_space((v or {}).get("label_space", d)).num_classes
                                        for d, v in cfg["domains"].items()})


def onnx_latency(network, domain: str, size: int, repeat: int, threads: int) -> dict:
    import numpy as np
    import onnxruntime as ort

    from humanparse.export.exporters import DomainLogits, _export_onnx
    from humanparse.engine.bench import time_call

    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "m.onnx")
        _export_onnx(DomainLogits(network.eval(), domain), torch.zeros(1, 3, size, size), path, 17, "{}")
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        sess = ort.InferenceSession(path, sess_options=opts, providers=["CPUExecutionProvider"])
        x = np.random.randn(1, 3, size, size).astype(np.float32)

        def step():
            logits = torch.from_numpy(sess.run(["logits"], {"images": x})[0])
            return torch.nn.functional.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False).argmax(1)

        return time_call(step, repeat=repeat)


def train_throughput(config_path: str, steps: int) -> dict:
    from humanparse.engine.trainer import train

    cfg = load_config(config_path, [f"train.steps={steps}", "train.eval_every=0", "train.checkpoint_every=0",
                                    "eval.max_images=1"])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = train(cfg, output_dir=tmp, progress=False)
        # the timing below is taken from the log: training steps only, not the final evaluation
        lines = [json.loads(l) for l in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    train_lines = [l for l in lines if "loss" in l]
    first, last = train_lines[0], train_lines[-1]
    seconds = last["time"] - first["time"]
    images = (last["step"] - first["step"]) * int(cfg["train"]["batch_size"])
    return {"config": config_path, "batch": cfg["train"]["batch_size"], "crop": cfg["data"]["transforms"]["crop_size"],
            "images_per_s": images / seconds, "step_s": seconds / (last["step"] - first["step"]),
            "total_s": time.perf_counter() - t0, "final_loss": result["losses"][-1]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--train-steps", type=int, default=20)
    ap.add_argument("--skip-onnx", action="store_true")
    ap.add_argument("--out")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    report = {"env": environment(), "size": args.size, "batch": 1, "precision": "fp32", "mode": "eager"}
    report["timm_resnet50_forward"] = timm_reference_latency("resnet50", size=args.size, repeat=args.repeat)
    for name, path in CONFIGS.items():
        net = network_from(path).eval()
        domain = net.domains[0]
        entry = {"params_M": sum(p.numel() for p in net.parameters()) / 1e6,
                 "GFLOPs": count_flops(net, torch.zeros(1, 3, args.size, args.size), domains=[domain]) / 1e9,
                 "parse_torch": parse_latency(net, domain, size=args.size, repeat=args.repeat)}
        if not args.skip_onnx:
            entry["parse_onnxruntime"] = onnx_latency(net, domain, args.size, args.repeat, args.threads)
        entry["ratio_to_timm_resnet50"] = entry["parse_torch"]["median_s"] / report["timm_resnet50_forward"]["median_s"]
        report[f"sst_{name}"] = entry
        if name == "resnet50":
            report["timm_resnet50_forward_after"] = timm_reference_latency("resnet50", size=args.size, repeat=args.repeat)
    report["train_small"] = train_throughput("configs/sst_demo.yaml", args.train_steps)
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
