"""HTCorrM with parsing as the main task (docs/htcorrm.md, "Experiment"): does correlating edge and pose help
parsing? Table 7's rows baseline, MTL (2), HNL + edge (6), HNL + pose (7), HNL + both (11), each over several
seeds at the same budget, on the CPU recipe (configs/htcorrm_lite2_cpu.yaml: ImageNet Lite2, real LIP photos,
held-out split). Only ``model.fusion`` / ``model.aux_tasks`` change between rows; the seed changes the
initialisation of the new layers, the data order and the augmentation. Writes ``--results`` (a re-run skips
finished runs and resumes an interrupted one from its last.pt) and prints a markdown table (mean and standard
deviation over the seeds).

    python scripts/htcorrm_experiment.py --seeds 0 1 2 --out /work/runs/htcorrm_grid \\
        --results docs/experiments/htcorrm_parsing_main.json
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from humanparse.config import load_config, merge
from sst_experiment import run_stage  # scripts/ is on sys.path when a script in it runs

BASE = "configs/htcorrm_lite2_cpu.yaml"
ROWS = {  # name -> (Table 7 row, fusion, aux_tasks)
    "baseline": ("baseline", "none", []),
    "mtl": ("2", "none", ["edge", "pose"]),
    "hnl_edge": ("6", "hnl", ["edge"]),
    "hnl_pose": ("7", "hnl", ["pose"]),
    "hnl_both": ("11", "hnl", ["edge", "pose"]),
}


def table(results: dict) -> str:
    lines = ["| run (Table 7 row) | fusion | aux_tasks | seeds | mIoU % mean ± sd | per seed | pixel acc % | minutes / run |",
             "|---|---|---|---|---|---|---|---|"]
    for name, (row, fusion, aux) in ROWS.items():
        runs = results.get(name, {})
        if not runs:
            continue
        seeds = sorted(runs, key=int)
        miou = [100 * runs[s]["eval"]["lip/mIoU"] for s in seeds]
        acc = [100 * runs[s]["eval"]["lip/pixel_acc"] for s in seeds]
        sd = statistics.stdev(miou) if len(miou) > 1 else 0.0
        minutes = statistics.mean(runs[s]["minutes"] for s in seeds)
        lines.append(f"| {name} ({row}) | {fusion} | [{', '.join(aux)}] | {', '.join(seeds)} | "
                     f"{statistics.mean(miou):.1f} ± {sd:.1f} | {' / '.join(f'{m:.1f}' for m in miou)} | "
                     f"{statistics.mean(acc):.1f} | {minutes:.1f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", default=BASE)
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--steps", type=int, default=None, help="override train.steps of the config")
    ap.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    ap.add_argument("--out", type=Path, default=Path("runs/htcorrm_grid"))
    ap.add_argument("--results", type=Path, default=None, help="results JSON (default OUT/results.json)")
    args = ap.parse_args()
    results_path = args.results or args.out / "results.json"
    results = json.loads(results_path.read_text()) if results_path.is_file() else {}
    base = load_config(args.config)
    for seed in args.seeds:  # seeds outermost: a cut-short grid still has every row for the first seeds
        for name in args.rows:
            _, fusion, aux = ROWS[name]
            train_over = {"checkpoint_every": 50}
            if args.steps:
                train_over["steps"] = args.steps
            cfg = merge(base, {"seed": seed, "model": {"fusion": fusion, "aux_tasks": aux}, "train": train_over})
            out = run_stage(cfg, args.out / f"{name}_s{seed}")
            results.setdefault(name, {})[str(seed)] = out
            results_path.parent.mkdir(parents=True, exist_ok=True)
            tmp = results_path.with_suffix(".tmp")
            tmp.write_text(json.dumps({"config": args.config, **results}, indent=2))
            tmp.replace(results_path)
            print(f"{name} seed {seed}: mIoU {100 * out['eval']['lip/mIoU']:.1f} ({out['minutes']:.1f} min)", flush=True)
    results.pop("config", None)
    print(table(results))


if __name__ == "__main__":
    main()
