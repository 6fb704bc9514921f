"""Peak memory of ``humanparse parse`` on one large synthetic photo (docs/benchmarks.md, "Memory per megapixel").

Two steps, so that each runs in its own process under ``/usr/bin/time -v`` (maximum resident set size):

    python benchmarks/bench_parse_memory.py setup OUT_DIR --megapixels 12 48   # tiny random-weight model + photos
    /usr/bin/time -v humanparse parse OUT_DIR/model.safetensors OUT_DIR/photo_12mp.jpg --out OUT_DIR/parsed --long-side 512

The network runs at ``--long-side`` whatever the photo's size; the weights do not matter for memory,
so the model is a tiny random one (no download, no training).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

TINY_MODEL = {
    "backbone": {"name": "resnet18"},
    "encoder": {"dim": 32, "num_layers": 1, "num_heads": 4, "num_points": 2, "ffn_dim": 64},
    "decoder": {"dim": 32, "depths": [1, 1, 1], "num_heads": 2, "window_size": 4},
}


def make_model(path: Path) -> None:
    import torch

    from humanparse.engine.checkpoint import save_inference_checkpoint
    from humanparse.engine.recipes import build_recipe

    torch.manual_seed(0)
    cfg = {"recipe": "semantic", "seed": 0, "model": TINY_MODEL, "method": {"name": "supervised"},
           "domains": {"lip": {"train": {"reader": "folder", "root": "samples://lip", "split": "train"}}}}
    recipe = build_recipe(cfg)
    model = recipe.inference_model(recipe.build_model()).eval()
    save_inference_checkpoint(path, model, recipe=recipe.name, model_config=getattr(model, "config", {}),
                              label_spaces=recipe.label_space_dicts())


def make_photo(path: Path, megapixels: float) -> tuple[int, int]:
    """A 4:3 photo of smooth colour gradients and noise (JPEG, quality 90)."""
    from PIL import Image

    w = int(round((megapixels * 1e6 * 4 / 3) ** 0.5))
    h = int(round(w * 3 / 4))
    rng = np.random.default_rng(0)
    rows = []
    for r0 in range(0, h, 512):  # built in bands: the generator itself stays small
        y = np.arange(r0, min(h, r0 + 512))[:, None]
        x = np.arange(w)[None, :]
        band = np.stack([(x * 255 // w) + 0 * y, (y * 255 // h) + 0 * x, ((x + y) * 255 // (w + h))], axis=-1)
        band = band + rng.integers(-20, 21, band.shape)
        rows.append(np.clip(band, 0, 255).astype(np.uint8))
    Image.fromarray(np.concatenate(rows)).save(path, quality=90)
    return h, w


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("step", choices=["setup"])
    parser.add_argument("out", type=Path)
    parser.add_argument("--megapixels", type=float, nargs="+", default=[12.0, 48.0])
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    make_model(args.out / "model.safetensors")
    for mp in args.megapixels:
        h, w = make_photo(args.out / f"photo_{mp:g}mp.jpg", mp)
        print(f"{args.out / f'photo_{mp:g}mp.jpg'}: {w}x{h}")


if __name__ == "__main__":
    main()
