"""CPU benchmark (not a test): parse latency of the resnet50/resnet101 SST network at 512x512, batch 1,
against a timm resnet50 forward timed in the same run (before and after each network, to show drift);
ONNX Runtime latency of the exported model (exported at 256x192 like `humanparse export`, run at the
benchmark size: the file is size-generic); the same parse with the `embedding_bag` deformable-attention
impl, in fp32 and with bf16 autocast + channels-last; training throughput of the small demo config through the
real trainer (data loading, SST method, AdamW). Writes JSON to stdout (and --out).

    python benchmarks/bench_cpu.py --threads 2 --out benchmarks/results/cpu.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import torch

from humanparse.config import load_config
from humanparse.engine.bench import count_flops, environment, parse_latency, time_call, timm_reference_latency
from humanparse.models import build_network
from humanparse.models.encoders.ms_deform_attn import set_attn_impl

CONFIGS = {"resnet50": "configs/sst_r50.yaml", "resnet101": "configs/sst_r101.yaml"}


def network_from(config_path: str):
    cfg = load_config(config_path)
    from humanparse.labels import get_label_space

    return build_network(cfg["model"], {d: get_label_space((v or {}).get("label_space", d)).num_classes
                                        for d, v in cfg["domains"].items()})


def onnx_latency(network, domain: str, size: int, repeat: int, threads: int) -> dict:
    """Export (dynamic axes, traced at 256x192), then time ORT at ``size`` + resize + arg-max, as `parse` does."""
    import torch.nn.functional as F

    from humanparse.export.exporters import DomainLogits, export_onnx, load_exported

    wrapper = DomainLogits(network.eval(), domain).eval()
    with tempfile.TemporaryDirectory() as tmp:
        path = str(Path(tmp) / "m.onnx")
        t0 = time.perf_counter()
        export_onnx(wrapper, torch.zeros(1, 3, 256, 192), path)
        export_s = time.perf_counter() - t0
        run = load_exported(path, "onnx", threads=threads)
        x = torch.randn(1, 3, size, size)
        with torch.inference_mode():
            agreement = float((run(x).argmax(1) == wrapper(x).argmax(1)).float().mean())

        def step():
            logits = run(x)
            return F.interpolate(logits, size=(size, size), mode="bilinear", align_corners=False).argmax(1)

        result = time_call(step, repeat=repeat)
    return {**result, "export_s": export_s, "argmax_agreement_with_torch": agreement, "exported_at": [256, 192]}


def train_throughput(config_path: str, steps: int) -> dict:
    from humanparse.engine.trainer import train

    cfg = load_config(config_path, [f"train.steps={steps}", "train.eval_every=0", "train.checkpoint_every=0",
                                    "train.log_every=1", "eval.max_images=1"])
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        result = train(cfg, output_dir=tmp, progress=False)
        # the timing below is taken from the log: training steps only, not the final evaluation
        lines = [json.loads(line) for line in (Path(tmp) / "metrics.jsonl").read_text().splitlines()]
    train_lines = [line for line in lines if "loss" in line]
    first, last = train_lines[0], train_lines[-1]  # from the end of step 1: start-up excluded
    seconds = last["time"] - first["time"]
    images = (last["step"] - first["step"]) * int(cfg["train"]["batch_size"])
    return {"config": config_path, "batch": cfg["train"]["batch_size"], "crop": cfg["data"]["transforms"]["crop_size"],
            "method": (cfg.get("method") or {}).get("name"), "steps_timed": last["step"] - first["step"],
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
    report = {"env": environment("cpu"), "size": args.size, "batch": 1, "precision": "fp32", "mode": "eager",
              "load_average_at_start": os.getloadavg()}
    for name, path in CONFIGS.items():
        before = timm_reference_latency("resnet50", size=args.size, repeat=args.repeat)
        net = network_from(path).eval()
        domain = net.domains[0]
        entry = {"params_M": sum(p.numel() for p in net.parameters()) / 1e6,
                 "GFLOPs": count_flops(net, torch.zeros(1, 3, args.size, args.size), domains=[domain]) / 1e9,
                 "parse_torch": parse_latency(net, domain, size=args.size, repeat=args.repeat)}
        if not args.skip_onnx:
            entry["parse_onnxruntime"] = onnx_latency(net, domain, args.size, args.repeat, args.threads)
        # the faster CPU settings: the gather formulation of deformable attention, then also bf16 autocast
        # (AMX/AVX512-BF16 where the CPU has them) with channels-last convolutions
        set_attn_impl(net, "embedding_bag")
        entry["parse_torch_embedding_bag"] = parse_latency(net, domain, size=args.size, repeat=args.repeat)
        entry["parse_torch_embedding_bag_bf16_channels_last"] = parse_latency(
            net, domain, size=args.size, repeat=args.repeat, precision="bf16", channels_last=True)
        after = timm_reference_latency("resnet50", size=args.size, repeat=args.repeat)
        reference = (before["median_s"] + after["median_s"]) / 2
        entry["timm_resnet50_forward"] = {"before": before, "after": after}
        entry["ratio_to_timm_resnet50"] = entry["parse_torch"]["median_s"] / reference
        if "parse_onnxruntime" in entry:
            entry["onnxruntime_speedup"] = entry["parse_torch"]["median_s"] / entry["parse_onnxruntime"]["median_s"]
        report[f"sst_{name}"] = entry
        del net
    report["train_small"] = train_throughput("configs/sst_demo.yaml", args.train_steps)
    report["load_average_at_end"] = os.getloadavg()
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text)


if __name__ == "__main__":
    main()
