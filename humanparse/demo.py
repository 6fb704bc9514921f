"""The README's main command.

``run_showcase`` (``humanparse demo``): the starter model shipped in the package parses photos it was never
trained on (the held-out split of the embedded sample data, and scikit-image's astronaut) with every domain
head side by side, as the SST paper's Fig. 4, and prints its held-out mIoU per domain.

``run_demo`` (``humanparse demo --compare``): universal SST vs the Multi-datasets baseline trained on the
embedded sample data. Both runs use the same config, budget (steps) and seed; the baseline is the same recipe
with every SST term switched off (Table 6, row 1). Prints per-domain mIoU side by side and writes, for each
sample image, one picture with the parse of every domain head.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np

from .config import load_config, merge

BASELINE_OVERRIDES = {"method": {"use_aux": False, "use_scr_dataset": False, "use_scr_img": False}}


def run_demo(config: str | Path = "configs/sst_demo.yaml", out: str | Path = "runs/demo", *, overrides=(),
             device: str = "cpu", figures_per_domain: int = 4, progress: bool | None = None) -> dict:
    from .engine.trainer import train

    cfg = load_config(config, overrides)
    out = Path(out)
    runs = {"Multi-datasets": merge(cfg, BASELINE_OVERRIDES), "SST (universal)": cfg}
    results = {}
    for name, run_cfg in runs.items():
        run_dir = out / ("multi_datasets" if name == "Multi-datasets" else "sst_universal")
        print(f"== training {name}: {run_cfg['train'].get('steps')} steps, seed {run_cfg.get('seed', 0)} -> {run_dir}",
              file=sys.stderr)
        t0 = time.time()
        result = train(run_cfg, output_dir=run_dir, overwrite=True, device=device, progress=progress)  # a demo re-run replaces the last
        result["minutes"] = (time.time() - t0) / 60
        results[name] = result
    table = _table(results, list(cfg["domains"]))
    print(table)
    (out / "results.md").write_text(table + "\n")
    (out / "results.json").write_text(json.dumps({k: {"eval": {m: v for m, v in r["eval"].items() if not isinstance(v, list)},
                                                      "minutes": r["minutes"]} for k, r in results.items()}, indent=2))
    written = write_figures(out / "sst_universal" / "model.safetensors", cfg, out / "figures",
                            per_domain=figures_per_domain, device=device)
    print(f"wrote {len(written)} pictures to {out / 'figures'} (image | ground truth | every head)", file=sys.stderr)
    return {"results": results, "figures": written}


# the embedded samples of each head's domain; their 'val' split (a stable hash of the file stem, the same rule
# as for ../shared/data) holds photos that the starter model never saw in training
SHOWCASE_DATA = {
    "ccp": [("folder", "ccp")],
    "lip": [("folder", "lip")],
    "cihp": [("folder", "cihp"), ("folder", "cihp_lowres")],
    "pascal": [("folder", "pascal_person_part")],
}


def _held_out_records(domain: str):
    from .data.readers import read_dataset
    from .data.sample_data import sample_data_root

    records = []
    for reader, folder in SHOWCASE_DATA.get(domain, []):
        records += read_dataset(reader, Path(sample_data_root()) / folder, "val", domain=domain)
    return records


def run_showcase(out: str | Path = "runs/demo", *, model: str | None = None, device: str = "cpu",
                 per_domain: int = 3) -> dict:
    """Held-out mIoU per domain head of a pretrained model (default: the starter) and Fig. 4-style pictures."""
    from .api import Parser
    from .engine.evaluator import evaluate_domain
    from .engine.semantic_recipe import labelled_samples

    t0 = time.time()
    parser = Parser.from_pretrained(model, device=device)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    print(f"== model: {model or 'starter (bundled)'}, heads {', '.join(parser.domains)}, input long side "
          f"{parser.long_side}{', flip averaging' if parser.flip else ''}", file=sys.stderr)
    rows, results = [], {}
    for domain in parser.domains:
        records = _held_out_records(domain)
        if not records:
            continue
        ls = parser.label_spaces[domain]
        r = evaluate_domain(parser.model, labelled_samples(records, ls), domain, ls, long_side=parser.long_side,
                            flip=parser.flip, batch_size=4, device=parser.device)
        results[domain] = {"mIoU": r["mIoU"], "pixel_acc": r["pixel_acc"], "images": len(records)}
        rows.append(f"| {domain} | {ls.num_classes} | {len(records)} | {100 * r['mIoU']:.1f} | {100 * r['pixel_acc']:.1f} |")
    table = "\n".join(["| domain head | classes | held-out photos | mIoU % | pixel acc % |", "|---|---|---|---|---|", *rows])
    print(table)
    written = write_showcase_figures(parser, out / "figures", per_domain=per_domain)
    (out / "results.md").write_text(table + "\n")
    (out / "results.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {len(written)} pictures to {out / 'figures'} (photo | ground truth | every head) "
          f"in {time.time() - t0:.0f} s", file=sys.stderr)
    return {"results": results, "figures": written}


def write_showcase_figures(parser, out_dir: Path, *, per_domain: int = 3) -> list[Path]:
    """Photo | ground truth (where there is one) | the parse of every head: held-out photos and the astronaut."""
    from .data.io import load_label, read_image
    from .engine.checkpoint import atomic_write

    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = []
    for domain in parser.domains:
        for rec in _held_out_records(domain)[:per_domain]:
            jobs.append((f"{domain}_{rec.stem}", read_image(rec.image), domain, rec))
    try:
        import skimage.data

        jobs.append(("astronaut", np.ascontiguousarray(skimage.data.astronaut()[:, :, :3]), None, None))
    except Exception as exc:  # scikit-image without its bundled data
        print(f"skipped the astronaut picture: {exc}", file=sys.stderr)
    written = []
    for name, image, domain, rec in jobs:
        panels = [("photo (held out)" if rec else "photo (skimage astronaut)", image)]
        if rec is not None:
            ls = parser.label_spaces[domain]
            gt, _ = load_label(rec, ls.num_classes, ls.ignore_index)
            panels.append((f"ground truth ({domain})", _colour(gt, ls.palette)))
        for head in parser.domains:
            ls = parser.label_spaces[head]
            panels.append((f"{head} head ({ls.num_classes} classes)", _colour(parser.predict([image], head)[0], ls.palette)))
        canvas = _side_by_side(panels)
        target = out_dir / f"{name}.png"
        atomic_write(target, lambda tmp, c=canvas: c.save(tmp, format="PNG"))
        written.append(target)
    return written


def _table(results: dict, domains: list[str]) -> str:
    names = list(results)
    lines = ["| domain | classes | " + " | ".join(f"{n} mIoU" for n in names) + " |",
             "|---|---|" + "---|" * len(names)]
    from .labels import get_label_space

    for d in domains:
        cells = []
        for n in names:
            v = results[n]["eval"].get(f"{d}/mIoU")
            cells.append("-" if v is None else f"{100 * v:.2f}")
        lines.append(f"| {d} | {get_label_space(d).num_classes if _builtin(d) else '?'} | " + " | ".join(cells) + " |")
    minutes = " | ".join(f"{results[n]['minutes']:.1f} min" for n in names)
    lines.append(f"| training time | | {minutes} |")
    return "\n".join(lines)


def _builtin(name: str) -> bool:
    from .labels import list_label_spaces

    return name in list_label_spaces()


def write_figures(checkpoint: Path, cfg: dict, out_dir: Path, *, per_domain: int = 4, device: str = "cpu") -> list[Path]:
    """One picture per val image: image | ground truth | the parse of every head, labelled."""
    from .api import Parser
    from .data.io import load_label, read_image
    from .engine.checkpoint import atomic_write
    from .engine.semantic_recipe import read_split

    parser = Parser.from_checkpoint(checkpoint, device=device, long_side=None)
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for domain, dcfg in cfg["domains"].items():
        if "val" not in dcfg:
            continue
        records = read_split(dcfg["val"], domain, Path("."))[:per_domain]
        for rec in records:
            image = read_image(rec.image)
            ls = parser.label_spaces[domain]
            gt, _ = load_label(rec, ls.num_classes, ls.ignore_index)
            panels = [("image", image), (f"ground truth ({domain})", _colour(gt, ls.palette))]
            for head in parser.domains:
                pred = parser.predict([image], head)[0]
                panels.append((f"{head} head ({parser.label_spaces[head].num_classes})", _colour(pred, parser.label_spaces[head].palette)))
            canvas = _side_by_side(panels)
            target = out_dir / f"{domain}_{rec.stem}.png"
            atomic_write(target, lambda tmp, c=canvas: c.save(tmp, format="PNG"))
            written.append(target)
    return written


def _side_by_side(panels: list[tuple[str, np.ndarray]], height: int = 256, title_h: int = 16):
    """Panels scaled to one height (labels by nearest neighbour), each titled, on one canvas."""
    from PIL import Image, ImageDraw

    h, w = panels[0][1].shape[:2]
    pw = max(150, int(round(w * height / h)))
    canvas = Image.new("RGB", (pw * len(panels), height + title_h), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for i, (title, arr) in enumerate(panels):
        resample = Image.BILINEAR if i == 0 else Image.NEAREST
        canvas.paste(Image.fromarray(arr).resize((pw, height), resample), (i * pw, title_h))
        draw.text((i * pw + 3, 2), title, fill=(0, 0, 0))
    return canvas


def _colour(label: np.ndarray, palette: np.ndarray) -> np.ndarray:
    safe = np.where(label < len(palette), label, 0)
    out = palette[safe].copy()
    out[label >= len(palette)] = (255, 255, 255)  # ignore pixels white
    return out
