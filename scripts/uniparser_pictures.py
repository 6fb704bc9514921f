"""Pictures of a trained UniParser (docs/uniparser.md): held-out composed scenes and real group photos.

One JPEG per set, one row per image: the photo, the ground-truth parts with each person outlined, and the
prediction drawn the same way (``humanparse.uniparser.predictor.multi_overlay``).

    python scripts/uniparser_pictures.py configs/uniparser_lite2_cpu.yaml runs/uniparser_lite2/model.safetensors \
        --out docs/pictures --scenes 6
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from humanparse.config import load_config
from humanparse.engine.recipes import build_recipe
from humanparse.uniparser.predictor import MultiPersonParser, multi_overlay


def montage(rows: list[list[np.ndarray]], height: int = 224) -> Image.Image:
    def fit(a):
        im = Image.fromarray(a)
        return np.asarray(im.resize((max(1, round(im.width * height / im.height)), height), Image.NEAREST))

    lines = [np.concatenate([fit(a) for a in row], axis=1) for row in rows]
    width = max(line.shape[1] for line in lines)
    lines = [np.pad(line, ((0, 4), (0, width - line.shape[1]), (0, 0)), constant_values=255) for line in lines]
    return Image.fromarray(np.concatenate(lines, axis=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("checkpoint")
    ap.add_argument("--out", default="docs/pictures")
    ap.add_argument("--scenes", type=int, default=6, help="held-out composed scenes to draw")
    ap.add_argument("--prefix", default="uniparser")
    args = ap.parse_args()
    recipe = build_recipe(load_config(args.config))
    parser = MultiPersonParser.from_checkpoint(args.checkpoint)
    palette = parser.palette
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    scenes = recipe.held_out_scenes()
    data = [scenes.composer.compose(scenes.scene_index(i)) for i in range(min(args.scenes, len(scenes)))]
    preds = MultiPersonParser.from_model(parser.model, parser.label_space, long_side=None)([s.image for s in data])
    rows = [[s.image, multi_overlay(s.image, np.where(s.parts == 255, 0, s.parts), s.person_ids, palette),
             multi_overlay(s.image, p["parts"], p["person_ids"], palette)] for s, p in zip(data, preds)]
    montage(rows).save(out / f"{args.prefix}_heldout_scenes.jpg", quality=88)

    real = recipe._real("real_val", train=False, mapped=False)
    rows = []
    for i in range(len(real)):
        image, persons = real.load_persons(i)
        ids = np.zeros(image.shape[:2], np.int32)
        for k, person in enumerate(persons, 1):
            ids[(person > 0) & (person != 255)] = k
        [p] = parser([image])
        rows.append([image, multi_overlay(image, np.zeros_like(ids, np.uint8), ids, palette),
                     multi_overlay(image, p["parts"], p["person_ids"], palette)])
    montage(rows, height=192).save(out / f"{args.prefix}_real_photos.jpg", quality=88)
    print(f"wrote {out / (args.prefix + '_heldout_scenes.jpg')} and {out / (args.prefix + '_real_photos.jpg')}")


if __name__ == "__main__":
    main()
