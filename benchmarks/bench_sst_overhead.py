"""Training-time cost of the SST modules (not a test): forward+backward+optimiser step time of the same
network and batch with the plain Multi-datasets loss vs universal SST (MSA+MSE+MST+SCR).

    python benchmarks/bench_sst_overhead.py --config configs/sst_demo.yaml --steps 8
    python benchmarks/bench_sst_overhead.py --config configs/sst_r50.yaml --crop 256 --batch 3 --steps 4 \
        --domains-from configs/sst_demo.yaml

Also checks "nothing extra at inference": parameter counts of the inference network for both.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

import torch

from humanparse.config import load_config, merge
from humanparse.engine.bench import environment
from humanparse.engine.recipes import build_recipe


def step_times(cfg: dict, steps: int, warmup: int, device: str) -> dict:
    torch.manual_seed(0)
    recipe = build_recipe(cfg)
    model = recipe.build_model().to(device)
    method = recipe.build_method(model).to(device)
    ds = recipe.build_train_dataset()
    bs = int(cfg["train"]["batch_size"])
    idx = recipe.build_batch_sampler(ds, batch_size=bs, seed=0).batches_for_epoch(0)[0]
    batch = recipe.collate([ds[i] for i in idx])
    batch = {k: (v.to(device) if torch.is_tensor(v) else v) for k, v in batch.items()}
    params = [p for p in list(model.parameters()) + list(method.parameters()) if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=1e-4)
    times = []
    for i in range(warmup + steps):
        t0 = time.perf_counter()
        loss = sum(method.training_step(model, batch).values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if i >= warmup:
            times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times),
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
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    cfg = load_config(args.config)
    if args.domains_from:
        cfg["domains"] = load_config(args.domains_from)["domains"]
    if args.crop:
        cfg = merge(cfg, {"data": {"transforms": {"crop_size": args.crop}}})
    if args.batch:
        cfg = merge(cfg, {"train": {"batch_size": args.batch}})
    plain = merge(cfg, {"method": {"use_aux": False, "use_scr_dataset": False, "use_scr_img": False}})
    sst = merge(cfg, {"method": {"use_aux": True, "use_scr_dataset": True, "use_scr_img": True}})
    # interleave to share the machine's drift between both
    a = step_times(plain, args.steps, args.warmup, args.device)
    b = step_times(sst, args.steps, args.warmup, args.device)
    a2 = step_times(plain, args.steps, args.warmup, args.device)
    base = min(a["median_s"], a2["median_s"])
    report = {"env": environment(), "config": args.config, "device": args.device,
              "batch": cfg["train"]["batch_size"], "crop": cfg["data"]["transforms"]["crop_size"],
              "domains": list(cfg["domains"]), "pairing": cfg["method"].get("pairing", "full"),
              "multi_datasets_step_s": base, "sst_step_s": b["median_s"], "overhead": b["median_s"] / base - 1,
              "inference_params_multi": a["inference_params"], "inference_params_sst": b["inference_params"],
              "sst_training_only_params": b["method_params"]}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
