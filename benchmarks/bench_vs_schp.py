"""humanparse's default parse path against SCHP, in one process, on this CPU (not a test).

1. Latency, 512x512, batch 1, same threads, interleaved (SCHP, humanparse, SCHP, ...) so that load drift hits
   both: SCHP (``../shared/anchors/schp``: ResNet-101 AugmentCE2P, random weights, its CPU stand-in for
   InPlaceABN) = normalise + forward + bilinear up-sampling + arg-max, as its ``simple_extractor.py``;
   humanparse = ``Parser.predict`` on a uint8 image (normalise, forward, resize, softmax, arg-max) on the default
   path (``humanparse.export.fast_path``), and the same with the old default (fp32, ``attn_impl: pytorch``).
   Prints the ratio humanparse / SCHP.
2. Folder throughput: ``Parser.parse_files`` on a folder of sample images (read, resize, forward, arg-max,
   PNG write) with reading/writing overlapped (the default), against the sequential loop, images/s.
3. Cold start: ``python -m humanparse parse CKPT IMAGE --out DIR`` in a fresh process, seconds until the first
   PNG exists.

    python benchmarks/bench_vs_schp.py --threads 2 --out benchmarks/results/vs_schp.json
    python benchmarks/bench_vs_schp.py --size 128 --runs 1 --folder-images 2 --config configs/sst_demo.yaml  # smoke
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ANCHORS = Path(__file__).resolve().parents[2] / "shared" / "anchors"


def load_schp(anchors: Path, torch):
    sys.path.insert(0, str(anchors / "schp"))
    import modules  # noqa: F401  (the pure-PyTorch InPlaceABN stand-in)
    import networks

    if not issubclass(modules.InPlaceABNSync, torch.nn.BatchNorm2d):
        sys.exit(f"{anchors}/schp/modules is not the CPU stand-in (see {anchors}/schp_cpu.py)")
    return networks.init_model("resnet101", num_classes=20, pretrained=None).eval()


def schp_parse(model, image, torch):
    """SCHP's simple_extractor: normalise, forward, upsample the fusion logits (align_corners=True), arg-max."""
    from humanparse.engine.inference import to_tensor

    size = image.shape[:2]
    with torch.inference_mode():
        fusion = model(to_tensor(image)[None])[0][-1]
        up = torch.nn.functional.interpolate(fusion, size=size, mode="bilinear", align_corners=True)
        return up[0].argmax(0).to(torch.uint8).numpy()


def timed(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def build_parser(config: str, torch, path=None):
    from humanparse.api import Parser
    from humanparse.config import load_config
    from humanparse.labels import get_label_space
    from humanparse.models import build_network

    cfg = load_config(config)
    cfg["model"].setdefault("backbone", {})["pretrained"] = False  # random weights: speed does not depend on them
    domains = {d: get_label_space((v or {}).get("label_space", d)) for d, v in cfg["domains"].items()}
    torch.manual_seed(0)
    net = build_network(cfg["model"], {d: ls.num_classes for d, ls in domains.items()})
    return Parser(net, domains, long_side=None, batch_size=1, inference_path=path), cfg, net, domains


def sequential_parse(parser, folder: Path, out: Path, domain: str) -> int:
    """The loop parse_files ran before the overlap: read a batch, forward, write, in turn."""
    import torch

    from humanparse.api import ParseReport, iter_image_batches
    from humanparse.data.io import write_label_png

    report = ParseReport()
    n = 0
    for _, names, images in iter_image_batches([folder], parser.batch_size, report):
        for stem, p in zip(names, parser.predict_proba(images, domain)):
            write_label_png(out / f"{stem}.png", p.argmax(0).to(torch.uint8).numpy(), parser.label_spaces[domain].palette)
            n += 1
    return n


def cold_start(checkpoint: Path, image: Path, domain: str, threads: int, size: int) -> dict:
    out = Path(tempfile.mkdtemp(prefix="hp_cold_"))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "humanparse", "parse", str(checkpoint), str(image), "--out", str(out),
           "--domain", domain, "--long-side", str(size), "--batch-size", "1"]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    first = None
    while proc.poll() is None:
        if first is None and any(out.glob("*.png")):
            first = time.perf_counter() - t0
        time.sleep(0.01)
    total = time.perf_counter() - t0
    err = proc.stderr.read()
    if proc.returncode != 0:
        sys.exit(f"cold start run failed ({proc.returncode}): {err.strip()[-400:]}")
    if first is None and any(out.glob("*.png")):
        first = total
    shutil.rmtree(out, ignore_errors=True)
    return {"first_png_s": first, "process_s": total, "chosen": [ln for ln in err.splitlines() if "inference path" in ln]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--runs", type=int, default=5, help="timed runs of each network (interleaved), after 1 warm-up")
    ap.add_argument("--config", default="configs/sst_r50.yaml", help="humanparse network (random weights)")
    ap.add_argument("--anchors", default=str(ANCHORS), help="the folder holding schp/ (../shared/anchors)")
    ap.add_argument("--folder-images", type=int, default=16, help="sample images for the folder throughput")
    ap.add_argument("--skip-cold-start", action="store_true")
    ap.add_argument("--out", default=None, help="also write the results as JSON here")
    args = ap.parse_args()

    import numpy as np
    import torch

    torch.set_num_threads(args.threads)
    from humanparse.engine.bench import environment
    from humanparse.export.fast_path import InferencePath, choose_torch_path, cpu_features

    result = {"env": {**environment("cpu"), "cpu": cpu_features(), "load_avg": os.getloadavg()},
              "size": args.size, "threads": args.threads, "config": args.config}
    default_path = choose_torch_path("cpu")
    old_path = InferencePath(precision="fp32", attn_impl="pytorch", reason="old default")
    parser, cfg, net, domains = build_parser(args.config, torch, default_path)
    domain = next(iter(domains))
    schp = load_schp(Path(args.anchors), torch)
    image = np.random.default_rng(0).integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)

    # 1. latency, interleaved; the old default runs in the same loop (set on the same network)
    from humanparse.export.fast_path import apply_path

    def hp(path):
        apply_path(net, path)
        parser.inference_path = path
        return lambda: parser.predict([image], domain)

    runs = {"schp": [], "humanparse_default": [], "humanparse_old_default": []}
    for fn in (lambda: schp_parse(schp, image, torch), hp(default_path), hp(old_path)):
        fn()  # warm-up
    for _ in range(args.runs):
        runs["schp"] += timed(lambda: schp_parse(schp, image, torch), 1)
        runs["humanparse_default"] += timed(hp(default_path), 1)
        runs["humanparse_old_default"] += timed(hp(old_path), 1)
    med = {k: statistics.median(v) for k, v in runs.items()}
    result["latency"] = {"median_s": med, "all_s": runs, "default_path": default_path.describe(),
                         "ratio_default_over_schp": med["humanparse_default"] / med["schp"],
                         "ratio_old_default_over_schp": med["humanparse_old_default"] / med["schp"]}
    print(f"Latency at {args.size}x{args.size}, batch 1, {args.threads} threads (median of {args.runs}):")
    print(f"  SCHP (R101)                     {med['schp']:.3f} s")
    print(f"  humanparse default              {med['humanparse_default']:.3f} s  [{default_path.describe()}]")
    print(f"  humanparse old default          {med['humanparse_old_default']:.3f} s  [fp32, attention pytorch]")
    print(f"  ratio humanparse / SCHP: {result['latency']['ratio_default_over_schp']:.2f}x "
          f"(old default {result['latency']['ratio_old_default_over_schp']:.2f}x)")
    del schp

    # 2. folder throughput at the parse default long side (= --size), batch 1
    from humanparse.data.sample_data import sample_data_root

    hp(default_path)
    parser.long_side = args.size
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for p in sorted((sample_data_root() / "lip" / "images").iterdir())[:args.folder_images]:
            shutil.copy(p, folder / p.name)
        n = len(list(folder.iterdir()))
        parser.parse_files([folder], Path(tmp) / "warm", domain=domain)  # warm-up (page cache, allocator)
        t0 = time.perf_counter()
        parser.parse_files([folder], Path(tmp) / "overlapped", domain=domain)
        overlapped = n / (time.perf_counter() - t0)
        (Path(tmp) / "seq").mkdir()
        t0 = time.perf_counter()
        sequential_parse(parser, folder, Path(tmp) / "seq", domain)
        sequential = n / (time.perf_counter() - t0)
        hp(old_path)
        t0 = time.perf_counter()
        sequential_parse(parser, folder, Path(tmp) / "seq", domain)
        before = n / (time.perf_counter() - t0)
        result["folder"] = {"images": n, "long_side": args.size, "batch": 1, "overlapped_images_per_s": overlapped,
                            "sequential_images_per_s": sequential, "old_default_sequential_images_per_s": before}
        print(f"folder of {n} LIP sample images at long side {args.size}, batch 1: {overlapped:.2f} images/s "
              f"(sequential loop {sequential:.2f}; old default path, sequential: {before:.2f})")

        # 3. cold start of the command on a saved checkpoint of this network
        if not args.skip_cold_start:
            from humanparse.engine.checkpoint import save_inference_checkpoint

            ckpt = Path(tmp) / "model.safetensors"
            save_inference_checkpoint(ckpt, net, recipe="semantic", model_config=net.config,
                                      label_spaces={d: ls.to_dict() for d, ls in domains.items()})
            first_image = sorted(folder.iterdir())[0]
            result["cold_start"] = cold_start(ckpt, first_image, domain, args.threads, args.size)
            print(f"cold start (`humanparse parse` -> first PNG): {result['cold_start']['first_png_s']:.2f} s "
                  f"(process {result['cold_start']['process_s']:.2f} s)")
    print(json.dumps(result["env"]))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
