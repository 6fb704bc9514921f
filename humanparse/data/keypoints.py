"""Pose annotations of the public releases -> the keypoint JSON of ``humanparse.metrics.pose``.

One table type: ``{image stem: [person, ...]}``, a person being ``{"keypoints": float64 [16, 3],
"head_box": [x1, y1, x2, y2] | None}`` in the 16-joint MPII order (which LIP uses too; see
``metrics.pose.JOINT_NAMES``), ``v`` = 0 for a joint that is not annotated, > 0 otherwise.

Readers (``read_pose_annotations(path, fmt)``):

- ``lip-csv``: the LIP release's ``lip_train_set.csv`` / ``lip_val_set.csv`` (the val file is the
  ground truth of the LIP PCKh protocol): one row per image, ``name, x_0, y_0, f_0, ..., x_15, y_15,
  f_15``; ``nan`` (or an empty field) marks an unannotated joint. The flag ``f`` is an occlusion flag,
  which the LIP protocol ignores (MuLA: "unreliable"), so an annotated joint gets ``v = 1``.
  One person per image; no head box (the LIP head rule applies).
- ``corrpm-json``: CorrPM's / MuLA's ``LIP_SP_*_annotations.json``: ``{"root": [{"im_name",
  "joint_self" (or "joints"): 16 x [x, y, flag]}]}``; a joint stored as (0, 0) is missing.
- ``mpii-mat``: MPII's ``mpii_human_pose_v1_u12_1.mat`` (``RELEASE``), read with scipy: for every
  image of the chosen split (``img_train`` 1 = train, 0 = test) each annotated person
  (``annorect`` with ``annopoints``) with its head box (``x1, y1, x2, y2``: the MPII head rule);
  ``point.id`` is the MPII joint index; ``v = 2`` if ``is_visible`` is 1, else 1 (annotated but
  occluded). Persons without annotated points (the test split's, and group-only rectangles) are left
  out, and so are images left with none.

``write_pose_json(table, path)`` writes the JSON ``score --task pose`` and the HTCorrM recipe read
(one person: ``{"keypoints", "head_box"?}``; several: ``{"persons": [...]}``), atomically, one image a
line. ``humanparse keypoints convert --format lip-csv lip_val_set.csv --out val_keypoints.json``.
"""

from __future__ import annotations

import csv
import json
import math
import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError

__all__ = ["POSE_FORMATS", "read_pose_annotations", "read_lip_csv", "read_corrpm_json", "read_mpii_mat",
           "write_pose_json"]

NUM_JOINTS = 16
POSE_FORMATS = ("lip-csv", "corrpm-json", "mpii-mat")


def _stem(name: str) -> str:
    return Path(str(name)).stem


def _person(kp: np.ndarray, head_box=None) -> dict:
    return {"keypoints": kp, "head_box": None if head_box is None else [float(v) for v in head_box]}


def read_lip_csv(path: str | Path) -> dict[str, list[dict]]:
    """LIP pose CSV -> ``{stem: [person]}`` (see the module docstring)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(path, "LIP pose CSV not found (lip_train_set.csv / lip_val_set.csv of the LIP release)")
    table: dict[str, list[dict]] = {}
    with path.open(newline="") as fh:
        for line_no, row in enumerate(csv.reader(fh), 1):
            if not row or not "".join(row).strip():
                continue
            if len(row) != 1 + 3 * NUM_JOINTS:
                raise DataError(path, f"line {line_no}: expected an image name and {3 * NUM_JOINTS} numbers "
                                f"(16 x x, y, flag), got {len(row) - 1} values")
            try:
                values = np.array([float(v) if v.strip() else math.nan for v in row[1:]], np.float64)
            except ValueError:
                raise DataError(path, f"line {line_no}: a joint value is not a number") from None
            xyf = values.reshape(NUM_JOINTS, 3)
            kp = np.zeros((NUM_JOINTS, 3))
            ok = np.isfinite(xyf[:, 0]) & np.isfinite(xyf[:, 1])
            kp[ok, :2] = xyf[ok, :2]
            kp[ok, 2] = 1.0
            stem = _stem(row[0])
            if stem in table:
                raise DataError(path, f"line {line_no}: image {row[0]!r} appears twice")
            table[stem] = [_person(kp)]
    if not table:
        raise DataError(path, "no annotation rows")
    return table


def read_corrpm_json(path: str | Path) -> dict[str, list[dict]]:
    """CorrPM/MuLA ``LIP_SP_*_annotations.json`` -> ``{stem: [person]}``; (0, 0) = missing joint."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise DataError(path, "annotation JSON not found") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DataError(path, f"not valid JSON ({exc})") from None
    if not isinstance(data, dict) or not isinstance(data.get("root"), list):
        raise DataError(path, 'expected {"root": [{"im_name": ..., "joint_self": 16 x [x, y, flag]}, ...]}')
    table: dict[str, list[dict]] = {}
    for k, entry in enumerate(data["root"]):
        joints = entry.get("joint_self", entry.get("joints")) if isinstance(entry, dict) else None
        try:
            xyf = np.asarray(joints, np.float64)
        except (TypeError, ValueError):
            xyf = np.zeros(0)
        if not isinstance(entry, dict) or "im_name" not in entry or xyf.shape not in ((NUM_JOINTS, 3), (NUM_JOINTS, 2)):
            raise DataError(path, f"root[{k}]: needs im_name and joint_self as 16 x [x, y, flag]")
        kp = np.zeros((NUM_JOINTS, 3))
        ok = np.isfinite(xyf[:, :2]).all(1) & (xyf[:, 0] + xyf[:, 1] != 0)  # CorrPM: present iff x + y != 0
        kp[ok, :2] = xyf[ok, :2]
        kp[ok, 2] = 1.0
        table.setdefault(_stem(entry["im_name"]), []).append(_person(kp))
    return table


def _items(x) -> list:
    """A MATLAB struct array / cell as read by scipy (squeeze_me) -> a Python list."""
    if x is None:
        return []
    if isinstance(x, np.ndarray):
        return list(x.ravel())
    return [x]


def _scalar(x) -> float | None:
    arr = np.asarray(x).ravel()
    if arr.size == 0:
        return None
    try:
        return float(arr[0])
    except (TypeError, ValueError):
        return None


def read_mpii_mat(path: str | Path, split: str = "train") -> dict[str, list[dict]]:
    """MPII ``RELEASE`` .mat -> ``{stem: [person]}`` for ``split`` in train | test | all."""
    from scipy.io import loadmat

    path = Path(path)
    if split not in ("train", "test", "all"):
        raise ConfigError(f"MPII split must be train, test or all, got {split!r}")
    if not path.is_file():
        raise DataError(path, "MPII annotation file not found (mpii_human_pose_v1_u12_1.mat)")
    try:
        mat = loadmat(str(path), struct_as_record=False, squeeze_me=True)
    except (ValueError, TypeError, OSError, NotImplementedError) as exc:
        raise DataError(path, f"cannot read as a MATLAB file ({exc})") from None
    release = mat.get("RELEASE")
    if release is None or not hasattr(release, "annolist") or not hasattr(release, "img_train"):
        raise DataError(path, "no RELEASE struct with annolist and img_train: not the MPII annotation file")
    annolist = _items(release.annolist)
    is_train = np.asarray(release.img_train).ravel()
    if is_train.size != len(annolist):
        raise DataError(path, f"img_train has {is_train.size} entries for {len(annolist)} images")
    table: dict[str, list[dict]] = {}
    for anno, train in zip(annolist, is_train):
        if (split == "train" and not train) or (split == "test" and train):
            continue
        persons = []
        for rect in _items(getattr(anno, "annorect", None)):
            points = _items(getattr(getattr(rect, "annopoints", None), "point", None))
            if not points:
                continue
            kp = np.zeros((NUM_JOINTS, 3))
            for pt in points:
                j, x, y = _scalar(getattr(pt, "id", None)), _scalar(getattr(pt, "x", None)), _scalar(getattr(pt, "y", None))
                if j is None or x is None or y is None or not 0 <= int(j) < NUM_JOINTS:
                    raise DataError(path, f"image {anno.image.name!r}: a point lacks a valid id, x or y")
                visible = _scalar(getattr(pt, "is_visible", None))
                kp[int(j)] = (x, y, 2.0 if visible == 1 else 1.0)
            box = [_scalar(getattr(rect, k, None)) for k in ("x1", "y1", "x2", "y2")]
            persons.append(_person(kp, None if None in box else box))
        if persons:
            table[_stem(anno.image.name)] = persons
    if not table:
        raise DataError(path, f"no annotated person in the {split} split")
    return table


def read_pose_annotations(path: str | Path, fmt: str, *, split: str = "train") -> dict[str, list[dict]]:
    """Dispatch on ``fmt`` (one of ``POSE_FORMATS``); ``split`` is used by ``mpii-mat`` only."""
    if fmt == "lip-csv":
        return read_lip_csv(path)
    if fmt == "corrpm-json":
        return read_corrpm_json(path)
    if fmt == "mpii-mat":
        return read_mpii_mat(path, split)
    from ..errors import unknown_key_message

    raise ConfigError(unknown_key_message("pose annotation format", fmt, POSE_FORMATS))


def _person_json(person: dict) -> dict:
    out: dict = {"keypoints": [[round(float(x), 2), round(float(y), 2), int(v)] for x, y, v in person["keypoints"]]}
    if person.get("head_box") is not None:
        out["head_box"] = [round(float(v), 2) for v in person["head_box"]]
    return out


def write_pose_json(table: dict[str, list[dict]], path: str | Path) -> Path:
    """Write ``table`` as the keypoint JSON (see the module docstring); atomic (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = []
    for stem in sorted(table):
        persons = table[stem]
        entry = _person_json(persons[0]) if len(persons) == 1 else {"persons": [_person_json(p) for p in persons]}
        lines.append(f"{json.dumps(stem)}: {json.dumps(entry)}")
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text("{\n" + ",\n".join(lines) + "\n}\n")
    tmp.replace(path)
    return path
