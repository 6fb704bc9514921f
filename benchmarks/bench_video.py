"""Video parsing speed and flicker (not a test of the suite): a synthetic clip panning across a sample photo,
frames of ``--size`` px on the long side, parsed without and with temporal smoothing. Reports frames/s of
the whole loop (decode, parse, smoothing, writing the label and overlay videos) and the label flicker (the
mean fraction of pixels whose label changes between consecutive frames). JSON to stdout (and --out).

    python benchmarks/bench_video.py                            # the starter model, 512 px, 2 threads
    python benchmarks/bench_video.py --checkpoint runs/x/model.safetensors --out benchmarks/results/video.json
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import cv2
import numpy as np
import torch


def pan_clip(photo: np.ndarray, path: Path, *, frames: int, long_side: int, step: int, noise: float, fps: float) -> Path:
    """A portrait window (3:4) sliding right by ``step`` px per frame over the up-scaled photo, plus noise."""
    from humanparse.video.io import VideoWriter

    h = long_side
    w = (long_side * 3 // 4) // 2 * 2
    scale = max(h / photo.shape[0], (w + step * frames) / photo.shape[1]) * 1.02
    big = cv2.resize(photo, (int(photo.shape[1] * scale) + 1, int(photo.shape[0] * scale) + 1),
                     interpolation=cv2.INTER_CUBIC)
    rng = np.random.default_rng(0)
    with VideoWriter(path, fps, (w, h)) as out:
        for t in range(frames):
            crop = big[:h, t * step: t * step + w].astype(np.float32)
            out.write(np.clip(crop + rng.normal(0, noise, crop.shape), 0, 255).astype(np.uint8))
    return path


def main() -> None:
    from humanparse.data.io import read_image
    from humanparse.data.sample_data import sample_data_root
    from humanparse.serve.service import load_semantic_parser
    from humanparse.video.pipeline import parse_video

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="model (default: the bundled starter model)")
    ap.add_argument("--domain", default=None)
    ap.add_argument("--size", type=int, default=512, help="frame long side, px (the network runs at its own size)")
    ap.add_argument("--frames", type=int, default=48)
    ap.add_argument("--step", type=int, default=2, help="pan speed, px per frame")
    ap.add_argument("--noise", type=float, default=3.0, help="per-frame camera noise (std of 0..255 values)")
    ap.add_argument("--smooth", type=float, nargs="+", default=[0.0, 0.6])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--long-side", type=int, default=None, help="network input long side (default: the checkpoint's)")
    ap.add_argument("--out", default=None)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    parser = load_semantic_parser(args.checkpoint, device="cpu", batch_size=args.batch_size,
                                  long_side="auto" if args.long_side is None else args.long_side)
    domain = parser._domain(args.domain) if args.domain or len(parser.domains) == 1 else parser.domains[0]
    photo = read_image(sorted((sample_data_root() / "lip" / "images").iterdir())[0])
    runs = []
    with tempfile.TemporaryDirectory(prefix="hp_bench_video_") as tmp:
        clip = pan_clip(photo, Path(tmp) / "pan.mkv", frames=args.frames, long_side=args.size, step=args.step,
                        noise=args.noise, fps=25.0)
        parser.predict([photo], domain)  # warm-up
        for alpha in args.smooth:
            report = parse_video(parser, clip, Path(tmp) / f"out_{alpha}", domain=domain, smooth=alpha,
                                 labels="video", overlay=True)
            runs.append({"smooth": alpha, "frames": report.frames, "seconds": report.seconds, "fps": report.fps,
                         "flicker": report.flicker, "scene_cuts": len(report.scene_cuts)})
    out = {
        "date_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "cpu": platform.processor() or platform.machine(), "cpu_count": os.cpu_count(),
        "load_average_at_end": os.getloadavg(), "threads": torch.get_num_threads(),
        "model": args.checkpoint or "starter", "domain": domain, "network_long_side": parser.long_side,
        "frame_size": [args.size, (args.size * 3 // 4) // 2 * 2], "pan_px_per_frame": args.step,
        "noise": args.noise, "runs": runs,
    }
    text = json.dumps(out, indent=1)
    print(text)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
