"""The SST claims re-tested with the starter recipe (docs/results.md, "The SST claims"): single-dataset vs
Multi-datasets vs SST universal vs SST dedicated on the small domain, same per-run budget (steps, batch),
several seeds, the whole held-out split. Dedicated parsing is two runs: step 1 universal SST over the
source domains, step 2 distillation into the target (``--step2-steps``). Writes OUT/results.json (a re-run
skips finished runs and resumes an interrupted one from its last.pt) and prints a markdown table.

    python scripts/sst_experiment.py --steps 300 --step2-steps 150 --seeds 0 1 2 --out /work/runs/sst_claims
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from humanparse.config import load_config, merge
from humanparse.engine.trainer import train

BASE = "configs/starter/universal_lite2.yaml"
MULTI = {"name": "supervised", "lovasz_weight": 1.0}  # configs/starter/multi_lite2.yaml's method


def variants(base: dict, target: str) -> dict[str, list[dict]]:
    """name -> the configs run in sequence (dedicated parsing has two steps)."""
    doms = base["domains"]
    if target not in doms:
        raise SystemExit(f"--target {target!r} is not a domain of {BASE} ({sorted(doms)})")

    def only(names, method):
        cfg = merge(base, {})
        cfg["method"] = dict(method)
        cfg["domains"] = {n: doms[n] for n in names}
        return cfg

    sources = [d for d in doms if d != target]
    dedicated = {"name": "sst_dedicated", "target_domain": target, "source_checkpoint": "<step1>",
                 "lovasz_weight": base["method"].get("lovasz_weight", 0.0)}
    return {
        f"single:{target}": [only([target], MULTI)],
        "multi": [only(doms, MULTI)],
        "sst_universal": [only(doms, base["method"])],
        f"sst_dedicated:{target}": [only(sources, base["method"]), only([target], dedicated)],
    }


def run_stage(cfg: dict, run_dir: Path) -> dict:
    """Train one stage; finished stages are read back, interrupted ones resumed."""
    done = run_dir / "result.json"
    if done.is_file():
        return json.loads(done.read_text())
    resume = (run_dir / "last.pt").is_file()
    t0 = time.time()
    result = train(cfg, output_dir=run_dir, resume=resume, overwrite=not resume, progress=False)
    out = {"eval": {k: v for k, v in result["eval"].items() if not isinstance(v, list)},
           "final_loss": result["losses"][-1] if result["losses"] else None, "minutes": (time.time() - t0) / 60}
    done.write_text(json.dumps(out, indent=2))
    return out


# Table 6 of the SST paper (docs/sst.md, "Table 6 (ablation) rows"): universal SST over every domain with
# the loss terms switched on one at a time. Row 1 is the sst method with every term off (= Multi-datasets).
TABLE6 = {
    "t6_row1_multi": {"use_aux": False, "use_scr_dataset": False, "use_scr_img": False},
    "t6_row2_aux_none": {"use_aux": True, "use_intra_prior": False, "use_scr_dataset": False, "use_scr_img": False},
    "t6_row3_aux_intra": {"use_aux": True, "use_intra_prior": True, "use_scr_dataset": False, "use_scr_img": False},
    "t6_row4_scr_dataset": {"use_aux": True, "use_intra_prior": True, "use_scr_dataset": True, "use_scr_img": False},
    "t6_row5_scr_img": {"use_aux": True, "use_intra_prior": True, "use_scr_dataset": False, "use_scr_img": True},
    "t6_row6_full": {"use_aux": True, "use_intra_prior": True, "use_scr_dataset": True, "use_scr_img": True},
}


def table6_variants(base: dict) -> dict[str, list[dict]]:
    return {name: [merge(base, {"method": flags})] for name, flags in TABLE6.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=300, help="steps of every run (and of dedicated step 1)")
    ap.add_argument("--step2-steps", type=int, default=150, help="steps of dedicated step 2")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--target", default="pascal", help="the small domain of single / dedicated parsing")
    ap.add_argument("--only", nargs="*", help="run only these variants")
    ap.add_argument("--grid", choices=["claims", "table6"], default="claims",
                    help="claims: single / Multi / universal / dedicated; table6: the paper's ablation rows")
    ap.add_argument("--out", default="runs/sst_claims", help="run folders (checkpoints)")
    ap.add_argument("--reuse", help="a claims results JSON whose runs are Table 6 rows: sst_universal is row 6 (the "
                    "same config), multi is row 1 (the supervised loss = the sst loss with every term off, up to "
                    "the factor 10 on L_seg that AdamW does not see)")
    ap.add_argument("--results", help="results JSON (default OUT/results.json): keep it where it outlives OUT")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    results_path = Path(args.results) if args.results else out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    if args.grid == "table6" and args.reuse:
        same = {"sst_universal": "t6_row6_full", "multi": "t6_row1_multi"}
        for key, value in json.loads(Path(args.reuse).read_text()).items():
            name, seed = key.split("@")
            if name in same:
                results.setdefault(f"{same[name]}@{seed}", {**value, "reused_from": key})
    base = load_config(BASE, [f"train.steps={args.steps}", "train.eval_every=0", "train.checkpoint_every=50",
                                "train.eval_max_images=null"])
    for seed in args.seeds:
        grid = variants(base, args.target) if args.grid == "claims" else table6_variants(base)
        for name, chain in grid.items():
            if (args.only and name not in args.only) or f"{name}@seed{seed}" in results:
                continue
            minutes, prev, steps = 0.0, None, []
            for i, cfg in enumerate(chain):
                cfg = merge(cfg, {"seed": seed})
                if cfg["method"].get("source_checkpoint") == "<step1>":
                    cfg["method"]["source_checkpoint"] = str(prev / "last.pt")
                    cfg["train"]["steps"] = args.step2_steps
                run_dir = out / f"{name.replace(':', '_')}_seed{seed}" / f"step{i + 1}"
                print(f"== {name} seed {seed} step {i + 1}/{len(chain)} -> {run_dir}", flush=True)
                steps.append(cfg["train"]["steps"])
                stage = run_stage(cfg, run_dir)
                minutes += stage["minutes"]
                prev = run_dir
            results[f"{name}@seed{seed}"] = {**stage, "minutes": minutes, "stages": len(chain),
                                             "steps": steps}
            results_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = results_path.with_suffix(".tmp")
            tmp.write_text(json.dumps(results, indent=2))
            tmp.replace(results_path)
            print(json.dumps({name: stage["eval"], "seed": seed, "minutes": round(minutes, 1)}), flush=True)
    print(table(results))


def table(results: dict) -> str:
    """Per variant and domain: mean +- standard deviation of mIoU (%) over the seeds, and the seeds' values."""
    names = list(dict.fromkeys(k.split("@")[0] for k in results))
    doms = ["ccp", "lip", "cihp", "pascal"]
    lines = ["| variant | seeds | minutes/run | " + " | ".join(f"{d} mIoU" for d in doms) + " |",
             "|---|---|---|" + "---|" * len(doms)]
    for n in names:
        runs = [v for k, v in results.items() if k.split("@")[0] == n]
        cells = []
        for d in doms:
            vals = [100 * r["eval"][f"{d}/mIoU"] for r in runs if f"{d}/mIoU" in r["eval"]]
            if not vals:
                cells.append("-")
            else:
                sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
                cells.append(f"{statistics.mean(vals):.1f} ± {sd:.1f} ({', '.join(f'{v:.1f}' for v in vals)})")
        mins = statistics.mean(r["minutes"] for r in runs)
        lines.append(f"| {n} | {len(runs)} | {mins:.1f} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
