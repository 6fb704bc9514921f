"""SST experiment on the real shared data: single-dataset vs Multi-datasets vs SST universal vs SST
dedicated, same per-run budget (steps, batch) and seed. Writes runs/sst_experiment/results.json and a
markdown table (paste into docs/results.md).

    python scripts/sst_experiment.py --steps 200 --seeds 0 1
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from humanparse.config import load_config, merge
from humanparse.engine.trainer import train

BASE = "configs/experiments/sst_real_base.yaml"
OFF = {"use_aux": False, "use_scr_dataset": False, "use_scr_img": False}


def variants(base: dict) -> dict[str, list[dict]]:
    """name -> list of configs run in sequence (dedicated parsing has two steps)."""
    doms = base["domains"]

    def only(*names, method):
        cfg = merge(base, {"method": method})
        cfg["domains"] = {n: doms[n] for n in names}
        return cfg

    out = {
        "single:lip": [only("lip", method=OFF)],
        "single:pascal": [only("pascal", method=OFF)],
        "multi": [only("ccp", "lip", "pascal", method=OFF)],
        "sst_universal": [only("ccp", "lip", "pascal", method={})],
    }
    for target, sources in (("lip", ("ccp", "pascal")), ("pascal", ("ccp", "lip"))):
        step1 = only(*sources, method={"use_scr_dataset": False, "use_scr_img": False})
        step2 = only(target, method={"name": "sst_dedicated", "target_domain": target, "pairing": None})
        step2["method"] = {"name": "sst_dedicated", "target_domain": target, "source_checkpoint": "<step1>/last.pt"}
        out[f"sst_dedicated:{target}"] = [step1, step2]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--only", nargs="*", help="run only these variants")
    ap.add_argument("--out", default="runs/sst_experiment")
    args = ap.parse_args()
    out = Path(args.out)
    results_path = out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    base = load_config(BASE, [f"train.steps={args.steps}"])
    for seed in args.seeds:
        for name, chain in variants(base).items():
            if args.only and name not in args.only:
                continue
            key = f"{name}@seed{seed}"
            if key in results:
                continue
            t0 = time.time()
            prev = None
            for i, cfg in enumerate(chain):
                cfg = merge(cfg, {"seed": seed})
                if cfg["method"].get("source_checkpoint") == "<step1>/last.pt":
                    cfg["method"]["source_checkpoint"] = str(prev / "last.pt")
                run_dir = out / f"{name.replace(':', '_')}_seed{seed}" / f"step{i + 1}"
                print(f"== {key} step {i + 1}/{len(chain)} -> {run_dir}", flush=True)
                result = train(cfg, output_dir=run_dir, overwrite=True, progress=False)  # a re-run replaces its run
                prev = run_dir
            results[key] = {"eval": {k: v for k, v in result["eval"].items() if not isinstance(v, list)},
                            "per_class_iou": {k: v for k, v in result["eval"].items() if isinstance(v, list)},
                            "steps_per_stage": args.steps, "stages": len(chain), "minutes": (time.time() - t0) / 60,
                            "final_loss": result["losses"][-1]}
            out.mkdir(parents=True, exist_ok=True)
            results_path.write_text(json.dumps(results, indent=2))
            print(json.dumps({key: results[key]["eval"]}), flush=True)
    print(table(results))


def table(results: dict) -> str:
    names = sorted({k.split("@")[0] for k in results})
    seeds = sorted({k.split("@")[1] for k in results})
    doms = ["pascal", "lip", "ccp"]
    lines = ["| variant | " + " | ".join(f"{d} mIoU ({', '.join(seeds)})" for d in doms) + " |",
             "|---|" + "---|" * len(doms)]
    for n in names:
        cells = []
        for d in doms:
            vals = [results[f"{n}@{s}"]["eval"].get(f"{d}/mIoU") for s in seeds if f"{n}@{s}" in results]
            vals = [v for v in vals if v is not None]
            cells.append("-" if not vals else " / ".join(f"{100 * v:.2f}" for v in vals)
                         + (f" (mean {100 * sum(vals) / len(vals):.2f})" if len(vals) > 1 else ""))
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
