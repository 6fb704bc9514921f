#!/usr/bin/env python
"""Build the embedded sample sets (humanparse/data/samples/) from the project's shared data.

    python scripts/make_sample_data.py --source /work/shared/data --out humanparse/data/samples

Images are down-scaled so the long side is at most 320 px (Lanczos; never up-scaled) and saved as
JPEG quality 90; label, flipped-label and instance maps get the same size with nearest neighbour and
are saved as PNG (mode L). Each source file is checked against the source folder's MANIFEST.sha1 and
listed with its sha1 in SOURCES.txt. Each output folder is rebuilt from scratch. CCP ids above 0900
are withheld for independent evaluation and are refused.
"""

from __future__ import annotations

import argparse
import hashlib
import shutil
import sys
from pathlib import Path

import numpy as np
from PIL import Image

LONG_SIDE = 320
JPEG_QUALITY = 90
CCP_MAX_ID = 900

# output folder -> (source folder, {output map folder: source map folder}, how the stems are chosen, domain)
DATASETS = {
    "ccp": ("ccp", {"labels": "labels"}, "ccp_spread_240", "ccp"),
    "lip": ("lip", {"labels": "labels"}, "all", "lip"),
    "cihp": ("cihp", {"labels": "labels", "labels_rev": "labels_rev"}, "all", "cihp"),
    "pascal_person_part": ("pascal_person_part", {"labels": "labels_7", "instances": "instances"}, "all", "pascal"),
    "cihp_lowres": ("cihp_lowres_derived", {"labels": "labels"}, "spread_16", "cihp"),
}

LICENCE_NOTE = (
    "The images and labels are research-use data: the underlying datasets (LIP, CIHP, CCP photos,\n"
    "PASCAL VOC / PASCAL-Part) are distributed by their authors for non-commercial research use. The\n"
    "licences of the repositories they were taken from cover those repositories, not the data.\n"
    "humanparse's own licence does not extend to these files."
)


def sha1(path: Path) -> str:
    return hashlib.sha1(path.read_bytes()).hexdigest()


def read_manifest(folder: Path) -> dict[str, str]:
    manifest = folder / "MANIFEST.sha1"
    out = {}
    if manifest.is_file():
        for line in manifest.read_text().splitlines():
            digest, _, rel = line.strip().partition("  ")
            if rel:
                out[rel.removeprefix("./")] = digest
    return out


def choose_stems(stems: list[str], rule: str) -> list[str]:
    if rule == "all":
        return stems
    if rule == "ccp_spread_240":
        allowed = [s for s in stems if int(s) <= CCP_MAX_ID]
        picks = sorted({int(round(v)) for v in np.linspace(1, CCP_MAX_ID, 240)})
        chosen = [f"{i:04d}" for i in picks]
        missing = sorted(set(chosen) - set(allowed))
        if missing or len(chosen) != 240:
            raise SystemExit(f"CCP source lacks ids {missing[:5]} (or picked {len(chosen)} != 240)")
        return chosen
    if rule == "spread_16":
        idx = sorted({int(round(v)) for v in np.linspace(0, len(stems) - 1, 16)})
        return [stems[i] for i in idx]
    raise ValueError(rule)


def demote_headings(markdown: str) -> str:
    """Nest a copied Markdown text under our headings: '# x' -> '### x'."""
    return "\n".join("##" + line if line.startswith("#") else line for line in markdown.splitlines()) + "\n"


def target_size(width: int, height: int) -> tuple[int, int]:
    scale = min(1.0, LONG_SIDE / max(width, height))
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def build_one(name: str, source_root: Path, out_root: Path) -> list[tuple[str, str, str]]:
    src_name, maps, rule, domain = DATASETS[name]
    src = source_root / src_name
    manifest = read_manifest(src)
    images = {p.stem: p for p in sorted((src / "images").iterdir()) if p.suffix.lower() in (".jpg", ".png")}
    stems = choose_stems(sorted(images), rule)
    if name == "ccp" and any(int(s) > CCP_MAX_ID for s in stems):
        raise SystemExit("refusing to include CCP ids above 0900 (withheld for evaluation)")
    out = out_root / name
    # keypoints.json (pose pseudo-labels, humanparse pseudo-label pose) is made from these images,
    # not from ../shared: keep it across rebuilds.
    kept = (out / "keypoints.json").read_bytes() if (out / "keypoints.json").is_file() else None
    if out.exists():
        shutil.rmtree(out)
    (out / "images").mkdir(parents=True)
    if kept is not None:
        (out / "keypoints.json").write_bytes(kept)
    for sub in maps:
        (out / sub).mkdir()
    sources: list[tuple[str, str, str]] = []

    def record(path: Path, written: Path) -> None:
        rel = path.relative_to(src).as_posix()
        digest = sha1(path)
        if rel in manifest and manifest[rel] != digest:
            raise SystemExit(f"{path}: sha1 {digest} differs from MANIFEST.sha1 ({manifest[rel]})")
        sources.append((digest, f"{src_name}/{rel}", written.relative_to(out).as_posix()))

    for stem in stems:
        img = Image.open(images[stem])
        img.load()
        if img.mode not in ("RGB", "L"):
            img = img.convert("RGB")
        size = target_size(*img.size)
        dst = out / "images" / f"{stem}.jpg"
        img.resize(size, Image.LANCZOS).save(dst, format="JPEG", quality=JPEG_QUALITY)
        record(images[stem], dst)
        for sub, src_sub in maps.items():
            path = src / src_sub / f"{stem}.png"
            lab = Image.open(path)
            lab.load()
            if lab.mode not in ("L", "P"):
                raise SystemExit(f"{path}: expected a mode L/P map, got {lab.mode}")
            if lab.size != img.size:
                raise SystemExit(f"{path}: size {lab.size} differs from image {img.size}")
            arr = np.asarray(lab)
            small = Image.fromarray(arr).resize(size, Image.NEAREST)
            dst_map = out / sub / f"{stem}.png"
            small.save(dst_map, format="PNG", optimize=True)
            record(path, dst_map)

    provenance = (src / "README-provenance.md").read_text()
    sources.append((sha1(src / "README-provenance.md"), f"{src_name}/README-provenance.md", "README.md (appended)"))
    lines = [
        f"# sha1 of each source file in the shared data ({src_name}/), and the file made from it here.",
        "# sha1  source  output",
    ] + [f"{d}  {s}  {o}" for d, s, o in sources]
    (out / "SOURCES.txt").write_text("\n".join(lines) + "\n")
    map_text = ", ".join(f"`{sub}/` (from `{src_sub}/`)" for sub, src_sub in maps.items())
    (out / "README.md").write_text(
        f"# humanparse sample set `{name}` (label domain `{domain}`)\n\n"
        f"{len(stems)} image/label pairs taken from the project's shared data folder `{src_name}/`.\n"
        f"Made by `scripts/make_sample_data.py`: images down-scaled so the long side is at most {LONG_SIDE} px\n"
        f"(Lanczos, never up-scaled) and saved as JPEG quality {JPEG_QUALITY}; maps {map_text} resized to the same\n"
        "size with nearest neighbour and saved as PNG (mode L, pixel value = id). `SOURCES.txt` gives the\n"
        "sha1 of every source file.\n\n"
        f"## Licence\n\n{LICENCE_NOTE}\n\n"
        "## Provenance of the source files (copied from the shared data's README-provenance.md)\n\n"
        + demote_headings(provenance)
    )
    return sources


def write_index(out_root: Path, counts: dict[str, int]) -> None:
    rows = "\n".join(
        f"| `{name}/` | `{DATASETS[name][3]}` | {counts[name]} | `{DATASETS[name][0]}` |" for name in DATASETS
    )
    (out_root / "README.md").write_text(
        "# Embedded sample data\n\n"
        "Small sets of real photographs with real, human-drawn part labels, shipped with humanparse for\n"
        "tests, examples and smoke-training. Read them with `humanparse.data.sample_records(name)` or\n"
        "`read_dataset(\"shared\", sample_data_root() / name, split)`. They are far too small for\n"
        "benchmarking. Rebuild with `python scripts/make_sample_data.py`.\n\n"
        "| folder | label domain | pairs | built from (shared data) |\n|---|---|---|---|\n"
        f"{rows}\n\n"
        "Layout: `<name>/images/<stem>.jpg`, `<name>/labels/<stem>.png` (mode L, value = class id,\n"
        "255 = ignore where present), `pascal_person_part/instances/` (person index, 0 = none),\n"
        "`cihp/labels_rev/` (labels of the horizontally flipped image). Long side <= 320 px.\n\n"
        "## Provenance\n\n"
        "- ccp: github.com/bearpaw/clothing-co-parsing @ fe34fb77 (Apache-2.0 repository; photos from\n"
        "  chictopia.com, third-party copyright). 240 ids spread over 0001-0900; ids 0901-1004 are\n"
        "  withheld for independent evaluation and never included.\n"
        "- lip: github.com/lihqi/mmsegmentation @ b21df463 (2 official LIP samples, Apache-2.0 repository)\n"
        "  and github.com/ZhecanJamesWang/Human_Parsing_Annotation @ 0a027cae (60 annotation-tool samples).\n"
        "- cihp: github.com/Engineering-Course/CIHP_PGN @ 0cf1cbe5 and github.com/Gaoyiminggithub/Graphonomy\n"
        "  @ 09e5dd4f (MIT repositories).\n"
        "- pascal_person_part: github.com/twuilliam/pascal-part-py @ 0957ba32 (no licence file); the\n"
        "  7-class maps and instance maps were derived from the PASCAL-Part .mat annotations.\n"
        "- cihp_lowres: github.com/nikhilroxtomar/Multiclass-Segmentation-on-Crowd-Instance-level-Human-\n"
        "  Parsing-CHIP-Dataset-using-UNET @ 253b44a8 (no licence stated): panels cut from result figures,\n"
        "  aspect-distorted, blended boundary pixels set to 255 = ignore. Smoke tests and pictures only.\n\n"
        "Each folder's README.md carries the full provenance note and SOURCES.txt the sha1 of every source file.\n\n"
        f"## Licence\n\n{LICENCE_NOTE}\n"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=Path("/work/shared/data"), help="shared data folder")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).resolve().parents[1] / "humanparse" / "data" / "samples"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name in DATASETS:
        sources = build_one(name, args.source, args.out)
        counts[name] = sum(1 for _, _, o in sources if o.startswith("images/"))
        print(f"{name}: {counts[name]} pairs")
    write_index(args.out, counts)
    total = sum(p.stat().st_size for p in args.out.rglob("*") if p.is_file())
    print(f"total {total / 1e6:.2f} MB in {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
