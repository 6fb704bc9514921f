"""Pose metrics (PCKh) and heatmap targets for the 16 MPII / LIP joints.

Joints (MPII order, which is also LIP's): 0 r_ankle, 1 r_knee, 2 r_hip, 3 l_hip, 4 l_knee,
5 l_ankle, 6 pelvis, 7 thorax, 8 upper_neck, 9 head_top, 10 r_wrist, 11 r_elbow, 12 r_shoulder,
13 l_shoulder, 14 l_elbow, 15 l_wrist. Left/right pairs for flipping: (0,5), (1,4), (2,3),
(10,15), (11,14), (12,13) (``FLIP_PAIRS`` by name, ``FLIP_INDEX`` as a permutation).

PCKh@t (``pckh``)
    A visible ground-truth joint is correct when ``||pred - gt|| <= t * head_size`` (t = 0.5).
    Joints that are not visible in the ground truth are skipped. Reported per joint (``None`` for
    a joint never visible), ``pooled_14`` = correct / visible pooled over all joints except pelvis
    (6) and thorax (7) -- the "Avg." of LIP (MuLA ``calc_pckh.py``) and the "Mean" of MPII (HRNet),
    count-weighted: **the headline "PCKh"** of ``score_pose_files`` and the HTCorrM evaluator, the
    number the papers' tables compare -- and ``mean`` = the unweighted mean over the joints that
    have a value (reported as ``PCKh_joint_mean``; not comparable with published numbers).

Head size
    LIP (and any keypoints without head boxes): ``lip_head_size`` = distance(head_top, upper_neck) of
    the ground truth, no factor. MPII: ``mpii_head_size`` = 0.6 x the diagonal of the head box.

File format (``score_pose_files``), the same for predictions and ground truth::

    {"<image id>": {"keypoints": [[x, y, v], ... 16 entries], "head_size": 31.5}, ...}
    {"<image id>": {"persons": [{"keypoints": [...], "head_box": [x1, y1, x2, y2]}, ...]}, ...}

(the second form for images with several annotated people: MPII, CIHP).

``x, y`` in image pixels; ``v`` = 0 for an invisible / unannotated joint, > 0 otherwise (only the
ground truth's ``v`` is used; predictions may also give ``[x, y]`` pairs). Optional, ground truth
only, per person: ``"head_size"`` (pixels), or ``"head_box": [x1, y1, x2, y2]`` (MPII rule); without
either the LIP rule is used (``person_head_size``; ``head_rule="mpii"`` or ``"lip"`` forces one). As in
the LIP protocol, a person whose head size cannot be found (head_top or upper_neck not visible) is
left out; the result lists those images under ``skipped_images``.
Every ground-truth image needs a prediction and vice versa.

Heatmaps (training targets, ``encode_heatmaps`` / ``decode_heatmaps``)
    Joint (x, y) in input pixels sits at (x / stride, y / stride) on the heatmap grid, *not rounded*
    (HRNet and CorrPM round the centre to a cell; we keep the sub-cell position so targets carry no
    quantisation error). Each visible joint gets an unnormalised Gaussian of peak 1 and
    ``sigma`` heatmap cells (default 2, as in ``metrics.md``), not truncated; invisible joints get an
    all-zero map. Decoding is the common one (HRNet ``get_final_preds``): argmax, then a shift of a
    quarter cell towards the larger neighbour on each axis (when both neighbours exist), times
    ``stride``. The round trip is exact to within 0.25 cell, i.e. ``stride / 4`` input pixels.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from ..errors import DataError
from .io import format_list, read_json

__all__ = [
    "JOINT_NAMES",
    "FLIP_PAIRS",
    "FLIP_INDEX",
    "pckh",
    "lip_head_size",
    "mpii_head_size",
    "score_pose_files",
    "pose_persons",
    "person_head_size",
    "encode_heatmaps",
    "decode_heatmaps",
]

JOINT_NAMES = (
    "r_ankle", "r_knee", "r_hip", "l_hip", "l_knee", "l_ankle", "pelvis", "thorax",
    "upper_neck", "head_top", "r_wrist", "r_elbow", "r_shoulder", "l_shoulder", "l_elbow", "l_wrist",
)  # fmt: skip
NUM_JOINTS = len(JOINT_NAMES)
FLIP_PAIRS = (
    ("r_ankle", "l_ankle"), ("r_knee", "l_knee"), ("r_hip", "l_hip"),
    ("r_wrist", "l_wrist"), ("r_elbow", "l_elbow"), ("r_shoulder", "l_shoulder"),
)  # fmt: skip


def _flip_index() -> tuple[int, ...]:
    perm = list(range(NUM_JOINTS))
    for a, b in FLIP_PAIRS:
        i, j = JOINT_NAMES.index(a), JOINT_NAMES.index(b)
        perm[i], perm[j] = j, i
    return tuple(perm)


FLIP_INDEX = _flip_index()  # joint k becomes FLIP_INDEX[k] after a horizontal flip
_POOLED = tuple(k for k in range(NUM_JOINTS) if JOINT_NAMES[k] not in ("pelvis", "thorax"))
_HEAD_TOP, _UPPER_NECK = JOINT_NAMES.index("head_top"), JOINT_NAMES.index("upper_neck")


def pckh(
    pred: np.ndarray,
    gt: np.ndarray,
    visible: np.ndarray,
    head_size: np.ndarray,
    threshold: float = 0.5,
) -> dict:
    """PCKh for N persons: ``pred``/``gt`` [N, 16, 2], ``visible`` [N, 16] bool, ``head_size`` [N].

    Returns ``{"per_joint": {name: fraction | None}, "mean": ..., "pooled_14": ..., "threshold": t,
    "num_visible": int}``. A person with a visible joint needs a finite head size > 0 (ValueError).
    A non-finite predicted coordinate counts as wrong.
    """
    pred = np.asarray(pred, np.float64)
    gt = np.asarray(gt, np.float64)
    visible = np.asarray(visible, bool)
    head_size = np.asarray(head_size, np.float64).reshape(-1)
    n = gt.shape[0] if gt.ndim == 3 else -1
    if (
        gt.shape != (n, NUM_JOINTS, 2)
        or pred.shape != gt.shape
        or visible.shape != (n, NUM_JOINTS)
        or head_size.shape != (n,)
    ):
        raise ValueError(
            f"expected pred/gt [N,{NUM_JOINTS},2], visible [N,{NUM_JOINTS}], head_size [N]; got "
            f"{pred.shape}, {gt.shape}, {visible.shape}, {head_size.shape}"
        )
    used = visible.any(1)
    bad = np.nonzero(used & ~(np.isfinite(head_size) & (head_size > 0)))[0]
    if bad.size:
        raise ValueError(f"persons {bad[:10].tolist()} have visible joints but head size <= 0 or not finite")
    if not np.isfinite(gt[visible]).all():
        raise ValueError("visible ground-truth joints must have finite coordinates")
    safe = np.where(used, head_size, 1.0)
    dist = np.linalg.norm(pred - gt, axis=-1) / safe[:, None]
    correct = (dist <= threshold) & visible  # NaN distance compares False
    n_vis = visible.sum(0)
    n_ok = correct.sum(0)
    per_joint = {
        name: (float(n_ok[k] / n_vis[k]) if n_vis[k] > 0 else None) for k, name in enumerate(JOINT_NAMES)
    }
    values = [v for v in per_joint.values() if v is not None]
    pooled_vis = n_vis[list(_POOLED)].sum()
    return {
        "per_joint": per_joint,
        "mean": float(np.mean(values)) if values else None,
        "pooled_14": float(n_ok[list(_POOLED)].sum() / pooled_vis) if pooled_vis > 0 else None,
        "threshold": float(threshold),
        "num_visible": int(n_vis.sum()),
    }


def lip_head_size(gt_keypoints: np.ndarray, visible: np.ndarray | None = None) -> np.ndarray:
    """distance(head_top, upper_neck) per person; NaN where either joint is not visible.

    ``gt_keypoints`` [N, 16, 2] or [N, 16, 3] (then ``v > 0`` is the visibility unless ``visible``
    is given)."""
    kp = np.asarray(gt_keypoints, np.float64)
    if visible is None:
        visible = kp[..., 2] > 0 if kp.shape[-1] == 3 else np.ones(kp.shape[:2], bool)
    visible = np.asarray(visible, bool)
    size = np.linalg.norm(kp[:, _HEAD_TOP, :2] - kp[:, _UPPER_NECK, :2], axis=-1)
    return np.where(visible[:, _HEAD_TOP] & visible[:, _UPPER_NECK], size, np.nan)


def mpii_head_size(head_boxes: np.ndarray) -> np.ndarray:
    """MPII head size: 0.6 x the diagonal of each head box ``[x1, y1, x2, y2]`` ([N, 4] -> [N])."""
    boxes = np.asarray(head_boxes, np.float64).reshape(-1, 4)
    return 0.6 * np.hypot(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])


def _keypoints(path: Path, image_id: str, entry, need_v: bool) -> np.ndarray:
    if not isinstance(entry, dict) or "keypoints" not in entry:
        raise DataError(path, f'image {image_id!r}: expected an object with "keypoints" (or "persons")')
    try:
        kp = np.asarray(entry["keypoints"], np.float64)
    except (TypeError, ValueError):
        raise DataError(path, f"image {image_id!r}: keypoints must be numbers") from None
    widths = (3,) if need_v else (2, 3)
    if kp.ndim != 2 or kp.shape[0] != NUM_JOINTS or kp.shape[1] not in widths:
        raise DataError(
            path, f"image {image_id!r}: keypoints must be {NUM_JOINTS} x [x, y, v], got shape {kp.shape}"
        )
    return kp


def pose_persons(path: str | Path, image_id: str, entry, *, need_v: bool = True) -> list[dict]:
    """The persons of one entry of a keypoint file: ``[{"keypoints": [16, 2|3], "head_size", "head_box"}]``.

    An entry is one person (``{"keypoints": ..., "head_size"?: ..., "head_box"?: ...}``) or several
    (``{"persons": [<one person>, ...]}``, e.g. CIHP or MPII images with several annotated people).
    ``head_size`` / ``head_box`` are ``None`` when absent; a malformed one is a DataError."""
    path = Path(path)
    if isinstance(entry, dict) and "persons" in entry:
        persons = entry["persons"]
        if not isinstance(persons, list):
            raise DataError(path, f'image {image_id!r}: "persons" must be a list of {{"keypoints": ...}} objects')
        names = [f"{image_id} person {k}" for k in range(len(persons))]
    else:
        persons, names = [entry], [image_id]
    out = []
    for name, person in zip(names, persons):
        kp = _keypoints(path, name, person, need_v)
        head_size, head_box = person.get("head_size"), person.get("head_box")
        if head_size is not None and (isinstance(head_size, bool) or not isinstance(head_size, (int, float))
                                      or not (math.isfinite(head_size) and head_size > 0)):
            raise DataError(path, f"image {name!r}: head_size must be a number > 0, got {head_size!r}")
        if head_box is not None:
            try:
                head_box = np.asarray(head_box, np.float64)
            except (TypeError, ValueError):
                head_box = np.zeros(0)
            if head_box.shape != (4,) or not np.isfinite(head_box).all():
                raise DataError(path, f"image {name!r}: head_box must be [x1, y1, x2, y2]")
            if not mpii_head_size(head_box)[0] > 0:
                raise DataError(path, f"image {name!r}: head_box {head_box.tolist()} has zero size")
        out.append({"keypoints": kp, "head_size": head_size, "head_box": head_box})
    return out


def person_head_size(person: dict, rule: str = "auto") -> tuple[float, str]:
    """(head size, source) of one ground-truth person from ``pose_persons``.

    ``rule``: ``auto`` = the explicit ``head_size``, else the MPII rule when a ``head_box`` is given,
    else the LIP rule; ``mpii`` = the head box is required; ``lip`` = head-top to upper-neck always.
    NaN when the LIP rule cannot be applied (head-top or upper-neck missing): LIP drops such persons."""
    if rule not in ("auto", "lip", "mpii"):
        raise ValueError(f"head-size rule must be auto, lip or mpii, got {rule!r}")
    if rule == "auto" and person.get("head_size") is not None:
        return float(person["head_size"]), "head_size"
    if rule in ("auto", "mpii") and person.get("head_box") is not None:
        return float(mpii_head_size(person["head_box"])[0]), "head_box"
    if rule == "mpii":
        return float("nan"), "head_box"
    return float(lip_head_size(person["keypoints"][None])[0]), "joints"


def score_pose_files(pred_file: str | Path, gt_file: str | Path, threshold: float = 0.5, *,
                     head_rule: str = "auto") -> dict:
    """PCKh of a prediction JSON against a ground-truth JSON (format in the module docstring).

    Returns ``{"PCKh": community headline, "PCKh_joint_mean": unweighted mean over 16 joints,
    "per_joint": {name: value}, "threshold", "num_images", "num_persons", "head_size_source":
    {"head_size", "head_box", "joints"}, "skipped_images": [...]}``. The headline is the
    count-weighted PCKh over all joints but pelvis and thorax: MPII's "Mean" and LIP's "Avg.".
    With ``"persons"`` lists, the k-th predicted person is scored against the k-th ground-truth
    person (MPII's single-person protocol: persons are located by the annotation); the counts must agree.
    """
    pred_file, gt_file = Path(pred_file), Path(gt_file)
    preds, gts = read_json(pred_file), read_json(gt_file)
    for path, data in ((pred_file, preds), (gt_file, gts)):
        if not isinstance(data, dict):
            raise DataError(path, 'expected an object {"<image id>": {"keypoints": [[x, y, v], ...]}}')
    missing = sorted(set(gts) - set(preds))
    if missing:
        raise DataError(pred_file, f"{len(missing)} ground-truth image(s) have no prediction: {format_list(missing)}")
    extra = sorted(set(preds) - set(gts))
    if extra:
        raise DataError(
            pred_file, f"{len(extra)} prediction(s) have no ground truth in {gt_file}: {format_list(extra)}"
        )
    p_all, g_all, v_all, h_all, skipped, images = [], [], [], [], [], set()
    source = {"head_size": 0, "head_box": 0, "joints": 0}
    for image_id in sorted(gts):
        g_persons = pose_persons(gt_file, image_id, gts[image_id], need_v=True)
        p_persons = pose_persons(pred_file, image_id, preds[image_id], need_v=False)
        if len(p_persons) != len(g_persons):
            raise DataError(pred_file, f"image {image_id!r}: {len(p_persons)} predicted person(s) for "
                            f"{len(g_persons)} ground-truth person(s); give one per ground-truth person, in order")
        for g_person, p_person in zip(g_persons, p_persons):
            g = g_person["keypoints"]
            vis = g[:, 2] > 0
            if not np.isfinite(g[vis, :2]).all():
                raise DataError(gt_file, f"image {image_id!r}: a visible joint has a non-finite coordinate")
            h, kind = person_head_size(g_person, head_rule)
            if not h > 0:  # NaN (joint or box missing) or zero: the person is dropped, as LIP does
                skipped.append(image_id)
                continue
            source[kind] += 1
            images.add(image_id)
            p_all.append(p_person["keypoints"][:, :2])
            g_all.append(g[:, :2])
            v_all.append(vis)
            h_all.append(h)
    if not p_all:
        raise DataError(
            gt_file, "no person has a usable head size (head_size, head_box, or visible head_top and upper_neck)"
        )
    res = pckh(np.stack(p_all), np.stack(g_all), np.stack(v_all), np.asarray(h_all), threshold)
    return {
        "PCKh": res["pooled_14"],
        "PCKh_joint_mean": res["mean"],
        "per_joint": res["per_joint"],
        "threshold": res["threshold"],
        "num_images": len(images),
        "num_persons": len(p_all),
        "head_size_source": source,
        "skipped_images": sorted(set(skipped)),
    }


def encode_heatmaps(
    keypoints: np.ndarray, out_size: tuple[int, int], stride: float, sigma: float = 2.0
) -> np.ndarray:
    """Gaussian targets float32 [J, h, w] from ``keypoints`` [J, 3] (x, y, v) in input pixels."""
    kp = np.asarray(keypoints, np.float64)
    if kp.ndim != 2 or kp.shape[1] != 3:
        raise ValueError(f"keypoints must be [J, 3] (x, y, v), got {kp.shape}")
    h, w = int(out_size[0]), int(out_size[1])
    if stride <= 0 or sigma <= 0 or h < 1 or w < 1:
        raise ValueError(f"need stride > 0, sigma > 0 and a non-empty out_size; got {stride}, {sigma}, {out_size}")
    out = np.zeros((kp.shape[0], h, w), np.float32)
    ys = np.arange(h, dtype=np.float64)[:, None]
    xs = np.arange(w, dtype=np.float64)[None, :]
    for j, (x, y, v) in enumerate(kp):
        if v <= 0 or not (math.isfinite(x) and math.isfinite(y)):
            continue
        cx, cy = x / stride, y / stride
        out[j] = np.exp(-((xs - cx) ** 2 + (ys - cy) ** 2) / (2.0 * sigma * sigma))
    return out


def decode_heatmaps(heatmaps: np.ndarray, stride: float) -> np.ndarray:
    """[..., J, h, w] -> [..., J, 3] = (x, y, max value), x and y in input pixels (see module doc)."""
    hm = np.asarray(heatmaps, np.float64)
    if hm.ndim < 3:
        raise ValueError(f"heatmaps must be [..., J, h, w], got {hm.shape}")
    h, w = hm.shape[-2:]
    flat = hm.reshape(-1, h * w)
    idx = flat.argmax(1)
    maxval = flat[np.arange(flat.shape[0]), idx]
    py, px = np.divmod(idx, w)
    x, y = px.astype(np.float64), py.astype(np.float64)
    maps = hm.reshape(-1, h, w)
    rows = np.arange(flat.shape[0])
    okx = (px > 0) & (px < w - 1)
    dx = np.zeros_like(x)
    dx[okx] = maps[rows[okx], py[okx], px[okx] + 1] - maps[rows[okx], py[okx], px[okx] - 1]
    oky = (py > 0) & (py < h - 1)
    dy = np.zeros_like(y)
    dy[oky] = maps[rows[oky], py[oky] + 1, px[oky]] - maps[rows[oky], py[oky] - 1, px[oky]]
    x += 0.25 * np.sign(dx)
    y += 0.25 * np.sign(dy)
    out = np.stack([x * stride, y * stride, maxval], -1)
    return out.reshape(*hm.shape[:-2], 3).astype(np.float32)
