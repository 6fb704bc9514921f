"""Training-time cost of the SST modules (not a test): forward+backward+optimiser step time of the same
network and batch with the plain Multi-datasets loss vs universal SST (MSA+MSE+MST+SCR).

    python benchmarks/bench_sst_overhead.py --config configs/sst_demo.yaml --steps 8
    python benchmarks/bench_sst_overhead.py --config configs/sst_r50.yaml --crop 256 --batch 3 --steps 4 \
        --domains-from configs/sst_demo.yaml

Also checks "nothing extra at inference": parameter counts of the inference network for both.
On a GPU (``--device cuda --precision bf16 --channels-last``) it also reports the achieved fraction of the
device's dense peak (``humanparse.engine.bench.PEAK_TFLOPS``) of the SST training step: the network's FLOPs
(forward x 3, as ``humanparse bench``) over the step time; the SST modules' own FLOPs are not counted, so the
fraction is a lower bound.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from humanparse.config import load_config, merge
from humanparse.engine.bench import count_flops, device_peak, environment, inference_forward
from humanparse.engine.recipes import build_recipe


def step_times(cfg: dict, steps: int, warmup: int, device: str, precision: str = "fp32",
               channels_last: bool = False) -> dict:
    torch.manual_seed(0)
    recipe = build_recipe(cfg)
    model = recipe.build_model().to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    method = recipe.build_method(model).to(device)
    ds = recipe.build_train_dataset()
    bs = int(cfg["train"]["batch_size"])
    idx = recipe.build_batch_sampler(ds, batch_size=bs, seed=0).batches_for_epoch(0)[0]
    batch = recipe.collate([ds[i] for i in idx])
    batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
    if channels_last:
        batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
    autocast = torch.autocast(device_type=torch.device(device).type, dtype=torch.bfloat16,
                              enabled=precision == "bf16")
    params = [p for p in list(model.parameters()) + list(method.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        with autocast:
            loss = sum(v.float() for v in method.training_step(model, batch).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    size = batch["image"].shape[-2:]
    flops = count_flops(inference_forward(model.eval()), torch.zeros(1, 3, *size, device=device))
    return {"median_s": statistics.median(times), "min_s": min(times),
            "network_train_TFLOP_per_step": 3 * flops * len(idx) / 1e12,
            "inference_params": sum(p.numel() for p in model.parameters()),
            "method_params": sum(p.numel() for p in method.parameters())}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--config", default="configs/sst_demo.yaml")
    ap.add_argument("--domains-from", help="take the 'domains' section from this config (e.g. the sample data)")
    ap.add_argument("--crop", type=int)
    ap.add_argument("--batch", type=int)
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32", help="bf16 = autocast")
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--out", help="also write the JSON report here")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    cfg = merge(cfg, {"model": {"backbone": {"pretrained": None}}})  # speed does not depend on the weights (offline)
    if args.domains_from:
        cfg["domains"] = load_config(args.domains_from)["domains"]
        cfg["method"].pop("static_prior", None)  # Graphonomy's priors cover only PASCAL / ATR / CIHP: the default then
    if args.crop:
        cfg = merge(cfg, {"data": {"transforms": {"crop_size": args.crop}}})
    if args.batch:
        cfg = merge(cfg, {"train": {"batch_size": args.batch}})
    plain = merge(cfg, {"method": {"use_aux": False, "use_scr_dataset": False, "use_scr_img": False}})
    sst = merge(cfg, {"method": {"use_aux": True, "use_scr_dataset": True, "use_scr_img": True}})
    # interleave to share the machine's drift between both
    opts = dict(device=args.device, precision=args.precision, channels_last=args.channels_last)
    a = step_times(plain, args.steps, args.warmup, **opts)
    b = step_times(sst, args.steps, args.warmup, **opts)
    a2 = step_times(plain, args.steps, args.warmup, **opts)
    base = min(a["median_s"], a2["median_s"])
    report = {"env": environment(args.device), "config": args.config, "device": args.device,
              "precision": args.precision, "channels_last": args.channels_last,
              "batch": cfg["train"]["batch_size"], "crop": cfg["data"]["transforms"]["crop_size"],
              "domains": list(cfg["domains"]), "pairing": cfg["method"].get("pairing", "full"),
              "multi_datasets_step_s": base, "sst_step_s": b["median_s"], "overhead": b["median_s"] / base - 1,
              "inference_params_multi": a["inference_params"], "inference_params_sst": b["inference_params"],
              "sst_training_only_params": b["method_params"],
              "network_train_TFLOP_per_step": b["network_train_TFLOP_per_step"]}
    peak = device_peak(torch.cuda.get_device_name(args.device)) if args.device.startswith("cuda") else None
    for name, step_s in (("multi_datasets", base), ("sst", b["median_s"])):
        report[f"{name}_achieved_TFLOPs"] = b["network_train_TFLOP_per_step"] / step_s
        if peak is not None:
            kind = "bf16" if args.precision == "bf16" else "tf32"
            report[f"{name}_fraction_of_{kind}_peak"] = report[f"{name}_achieved_TFLOPs"] / peak[1][kind]
            report["peak_table_entry"] = peak[0]
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
