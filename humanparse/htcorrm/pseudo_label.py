"""Pose pseudo-labels for parsing datasets: MediaPipe BlazePose -> the 16 MPII / LIP joints.

The backend of ``humanparse pseudo-label pose``. HTCorrM needs keypoints for every training image,
and parsing sets (CIHP, ATR, our LIP samples) have none; the paper runs a COCO-trained estimator
(SimpleBaseline / AlphaPose). We run BlazePose ("full" landmark model, shipped inside the
``mediapipe==0.10.21`` wheel, so it works offline) and map its 33 landmarks to the MPII order:

    MPII joint        from BlazePose landmark(s)                   score
    0 r_ankle         28 right_ankle                               vis(28)
    1 r_knee          26 right_knee                                vis(26)
    2 r_hip           24 right_hip                                 vis(24)
    3 l_hip           23 left_hip                                  vis(23)
    4 l_knee          25 left_knee                                 vis(25)
    5 l_ankle         27 left_ankle                                vis(27)
    6 pelvis          midpoint of the hips (23, 24)                mean vis(23, 24)
    7 thorax          midpoint of the shoulders (11, 12) = T       mean vis(11, 12)
    8 upper_neck      T + 0.2 (E - T), E = midpoint of the ears    mean vis(11, 12, 7, 8)
    9 head_top        T + 1.8 (E - T)  (= E + (E - upper_neck))    mean vis(11, 12, 7, 8)
    10 r_wrist        16 right_wrist                               vis(16)
    11 r_elbow        14 right_elbow                               vis(14)
    12 r_shoulder     12 right_shoulder                            vis(12)
    13 l_shoulder     11 left_shoulder                             vis(11)
    14 l_elbow        13 left_elbow                                vis(13)
    15 l_wrist        15 left_wrist                                vis(15)

Head geometry: both head joints lie on the thorax -> ears axis (the neck direction; the nose is
not used, it points where the face looks), with the ears half-way between them, as the ears sit
about half-way up the head. The distances were set from the 39 upright, detected people of the
LIP samples: the top of their hair/face labels lies at a median 1.84 (IQR 1.47-2.21) thorax-to-ears
lengths above the thorax, and the bottom of the face label at 0.15 (IQR -0.06-0.42); hence head
top 1.8 and upper neck (MPII: top of the neck, under the chin) 0.2. BlazePose, like MPII and LIP's
left-arm / right-arm classes, names left and right from the person's view (on the samples, 59 of 62
arm joints that touch an arm label touch the arm class of their own side).

A joint is visible (v = 1) when its score >= ``min_visibility`` (default 0.5) and it lies inside
the image; otherwise v = 0 (the coordinates are still written). An image where BlazePose finds no
person gets 16 x [0, 0, 0] and ``"detected": false``. Output: the keypoint JSON of
``humanparse.metrics.pose`` keyed by image stem, plus ``scores`` and ``detected`` per image.

mediapipe pins an old protobuf, so install it in its own venv and point us at that Python::

    python -m venv /tmp/mpvenv && /tmp/mpvenv/bin/pip install mediapipe==0.10.21
    python -m humanparse.htcorrm.pseudo_label IMAGES_DIR -o keypoints.json --mediapipe-python /tmp/mpvenv/bin/python

(or set ``HUMANPARSE_MEDIAPIPE_PYTHON``). This module needs only numpy; BlazePose runs in a subprocess
(``blazepose_worker.py``) under that Python.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError

__all__ = ["BLAZEPOSE_NAMES", "MIN_VISIBILITY", "blazepose_to_mpii", "main", "pseudo_label_pose", "run_blazepose"]

BLAZEPOSE_NAMES = (
    "nose", "left_eye_inner", "left_eye", "left_eye_outer", "right_eye_inner", "right_eye", "right_eye_outer",
    "left_ear", "right_ear", "mouth_left", "mouth_right", "left_shoulder", "right_shoulder", "left_elbow",
    "right_elbow", "left_wrist", "right_wrist", "left_pinky", "right_pinky", "left_index", "right_index",
    "left_thumb", "right_thumb", "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
    "left_heel", "right_heel", "left_foot_index", "right_foot_index",
)  # fmt: skip
MIN_VISIBILITY = 0.5
UPPER_NECK_FACTOR, HEAD_TOP_FACTOR = 0.2, 1.8  # positions on the thorax -> ears axis (see the docstring)
_DIRECT = {0: 28, 1: 26, 2: 24, 3: 23, 4: 25, 5: 27, 10: 16, 11: 14, 12: 12, 13: 11, 14: 13, 15: 15}
_IMAGE_EXTS = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def blazepose_to_mpii(landmarks: np.ndarray, image_size: tuple[int, int] | None = None, *,
                      min_visibility: float = MIN_VISIBILITY) -> tuple[np.ndarray, np.ndarray]:
    """``landmarks`` [33, 3] (x_px, y_px, visibility) -> (keypoints [16, 3] (x, y, v), scores [16]).

    ``image_size`` (h, w): joints outside the image get v = 0 (no check when None).
    """
    lm = np.asarray(landmarks, np.float64)
    if lm.shape != (33, 3):
        raise ValueError(f"BlazePose landmarks must be [33, 3] (x, y, visibility), got {lm.shape}")
    xy, vis = lm[:, :2], lm[:, 2]
    kp = np.zeros((16, 3))
    score = np.zeros(16)
    for j, b in _DIRECT.items():
        kp[j, :2], score[j] = xy[b], vis[b]
    kp[6, :2], score[6] = (xy[23] + xy[24]) / 2, (vis[23] + vis[24]) / 2
    thorax = (xy[11] + xy[12]) / 2
    ears = (xy[7] + xy[8]) / 2
    kp[7, :2], score[7] = thorax, (vis[11] + vis[12]) / 2
    head_score = (vis[11] + vis[12] + vis[7] + vis[8]) / 4
    kp[8, :2], score[8] = thorax + UPPER_NECK_FACTOR * (ears - thorax), head_score
    kp[9, :2], score[9] = thorax + HEAD_TOP_FACTOR * (ears - thorax), head_score
    visible = score >= min_visibility
    if image_size is not None:
        h, w = image_size
        visible &= (kp[:, 0] >= -0.5) & (kp[:, 0] <= w - 0.5) & (kp[:, 1] >= -0.5) & (kp[:, 1] <= h - 0.5)
    kp[:, 2] = visible.astype(np.float64)
    return kp, score


def _mediapipe_python(python: str | None) -> str:
    python = python or os.environ.get("HUMANPARSE_MEDIAPIPE_PYTHON")
    if python:
        if not Path(python).is_file():
            raise ConfigError(f"--mediapipe-python {python!r} is not a file; give the python of the venv with mediapipe")
        return python
    if importlib.util.find_spec("mediapipe") is not None:
        return sys.executable
    raise ConfigError("mediapipe is not installed here. Install it in its own venv (it pins an old protobuf): "
                      "python -m venv /tmp/mpvenv && /tmp/mpvenv/bin/pip install mediapipe==0.10.21, then pass "
                      "--mediapipe-python /tmp/mpvenv/bin/python (or set HUMANPARSE_MEDIAPIPE_PYTHON)")


def run_blazepose(images: Sequence[str | Path], *, python: str | None = None) -> dict[str, np.ndarray | None]:
    """Raw BlazePose landmarks [33, 3] (or None: no person) per image path, run under ``python``."""
    exe = _mediapipe_python(python)
    paths = [str(Path(p).resolve()) for p in images]
    worker = Path(__file__).with_name("blazepose_worker.py")
    proc = subprocess.run([exe, str(worker)], input=json.dumps(paths), capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise DataError(worker, f"BlazePose worker failed under {exe} (exit {proc.returncode}): "
                        f"{proc.stderr.strip().splitlines()[-1] if proc.stderr.strip() else 'no message'}")
    raw = json.loads(proc.stdout)
    return {p: (None if raw[p] is None else np.asarray(raw[p], np.float64)) for p in paths}


def _image_size(path: str) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as im:
        return im.height, im.width


def pseudo_label_pose(images: str | Path | Sequence[str | Path], output: str | Path, *, python: str | None = None,
                      min_visibility: float = MIN_VISIBILITY) -> dict:
    """Pseudo-label every image (a folder, or a list of files) and write the keypoint JSON to ``output``.

    Returns a summary ``{"images", "detected", "visible_joints", "output"}``.
    """
    if isinstance(images, (str, Path)):
        folder = Path(images)
        if not folder.is_dir():
            raise DataError(folder, "image folder not found")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in _IMAGE_EXTS)
    else:
        files = [Path(p) for p in images]
    if not files:
        raise DataError(str(images), "no images to pseudo-label")
    stems = [f.stem for f in files]
    if len(set(stems)) != len(stems):
        raise DataError(str(images), "two images share a file stem; keypoint files are keyed by stem")
    raw = run_blazepose(files, python=python)
    table, detected, visible = {}, 0, 0
    for f in files:
        lm = raw[str(f.resolve())]
        if lm is None:
            table[f.stem] = {"keypoints": [[0.0, 0.0, 0] for _ in range(16)], "scores": [0.0] * 16, "detected": False}
            continue
        kp, score = blazepose_to_mpii(lm, _image_size(str(f)), min_visibility=min_visibility)
        table[f.stem] = {"keypoints": [[round(float(x), 2), round(float(y), 2), int(v)] for x, y, v in kp],
                         "scores": [round(float(s), 4) for s in score], "detected": True}
        detected += 1
        visible += int(kp[:, 2].sum())
    output = Path(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    lines = [f"{json.dumps(stem)}: {json.dumps(table[stem])}" for stem in sorted(table)]
    output.write_text("{\n" + ",\n".join(lines) + "\n}\n")  # one image per line: diff-friendly
    return {"images": len(files), "detected": detected, "visible_joints": visible, "output": str(output)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="humanparse pseudo-label pose", description=__doc__.split("\n")[0])
    parser.add_argument("images", help="folder of images (keypoints are keyed by file stem)")
    parser.add_argument("-o", "--output", required=True, help="keypoint JSON to write")
    parser.add_argument("--mediapipe-python", default=None, help="python of a venv with mediapipe==0.10.21")
    parser.add_argument("--min-visibility", type=float, default=MIN_VISIBILITY)
    args = parser.parse_args(argv)
    summary = pseudo_label_pose(args.images, args.output, python=args.mediapipe_python,
                                min_visibility=args.min_visibility)
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
