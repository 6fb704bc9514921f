"""Multi-human parsing metrics: AP^p (AP^p_50, AP^p_vol) and PCP, as the MHP-v2 ``eval_mhp.py``
script and its descendants (UniParser, M2FP) compute them (``/work/shared/notes/metrics.md``).

Per-person part IoU
    For a predicted person P and a ground-truth person G of one image, P's map holds P's part labels
    on P's pixels and background (0) elsewhere; G's map likewise. Images come either as one map per
    person (the MHPv2 layout; persons may overlap) or as a part map + a person-id map (the CIHP
    layout; person k's map = the part map on the pixels of id k, 0 elsewhere). Ignore is PER PERSON,
    as in ``eval_mhp.py`` (``fast_hist`` keeps the pixels where the ground-truth person's own map is
    in ``[0, C)``): pixels where G's map is outside ``[0, C)`` (e.g. 255) are dropped from the pair
    (P, G) only; for another ground-truth person they are ordinary background. The C x C histogram
    of the two maps gives an IoU per class, background included; a class absent from both maps is
    NaN and the person score is the ``nanmean``. (Computed from per-person counts, without a P x G
    loop over full images; a test checks it against the literal histogram.)

AP^p at threshold t
    All predicted persons of the split are sorted by descending score (a stable sort of
    ``-score``; ties keep input order: images in the order given, persons by ascending id). Each
    prediction takes the ground-truth person of its image with the highest mean IoU among ALL
    ground-truth persons of that image (first one on ties, NaN never wins). It is a true positive
    when that IoU is > t and that person is not yet matched, else a false positive; there is no
    fallback to the second best. recall = cumTP / number of ground-truth persons, precision =
    cumTP / (cumTP + cumFP), and AP is VOC continuous AP (area under the monotone precision
    envelope, ``use_07_metric=False``). AP^p_50 is t = 0.5, AP^p_vol the mean over t = 0.1 ... 0.9.

Which ground-truth persons count (``gt_persons``)
    ``"foreground"`` (default; UniParser, MHP-v2): persons with no pixel of a foreground part
    (1 .. C-1) are removed entirely -- from the recall denominator and from the candidates a
    prediction can match. ``"all"`` (M2FP): every non-zero id in the person map counts.

Score floor (``min_score``)
    Predictions with score < ``min_score`` are dropped before sorting. Default 0.0 (UniParser and
    MHP-v2 keep every score; scores are expected to be >= 0); M2FP uses 0.01.

PCP_t
    For each true positive at t: (foreground classes with per-class IoU > t) / (distinct foreground
    classes present in the ground-truth person), 0 when that person has none; unmatched
    ground-truth persons count 0; mean over all counted ground-truth persons. PCP_50 uses t = 0.5.

All outputs are fractions in [0, 1]; AP and PCP are ``None`` when the split has no ground-truth
person. ``score_instance_dirs`` is the backend of ``humanparse score --task instance``; each side is
in the CIHP layout: ``<dir>/Category_ids/<stem>.png`` + ``<dir>/Human_ids/<stem>.png``, or in the MHPv2
layout: ``<dir>/parsing_annos/<stem>_<NN>_<KK>.png`` (one part map per person, KK = 1..NN);
``<pred>/scores.json`` = ``{"<stem>": {"<person id or KK>": score, ...}, ...}``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Iterable, Mapping

import numpy as np

from ..errors import ConfigError, DataError
from .io import check_same_size, format_list, list_pngs, read_json, read_label_png

__all__ = ["InstanceEvaluator", "evaluate_instances", "score_instance_dirs", "voc_ap", "person_part_iou",
           "person_maps_iou", "maps_from_ids"]

THRESHOLDS = tuple(k / 10 for k in range(1, 10))
_GT_PERSONS = ("foreground", "all")


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC continuous AP: area under the monotone (right-to-left max) precision envelope."""
    mrec = np.concatenate(([0.0], np.asarray(recall, float), [1.0]))
    mpre = np.concatenate(([0.0], np.asarray(precision, float), [0.0]))
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    steps = np.nonzero(mrec[1:] != mrec[:-1])[0]
    return float(np.sum((mrec[steps + 1] - mrec[steps]) * mpre[steps + 1]))


def _counts_per_row(labels: np.ndarray, c: int) -> np.ndarray:
    """``labels`` [R, n] ints in [0, c) -> per-row histograms [R, c] (float64)."""
    r = labels.shape[0]
    offset = (np.arange(r, dtype=np.int64) * c)[:, None]
    return np.bincount((labels.astype(np.int64) + offset).ravel(), minlength=r * c).reshape(r, c).astype(np.float64)


def person_maps_iou(gt_maps: np.ndarray, pred_maps: np.ndarray, num_classes: int) -> np.ndarray:
    """Per-class IoU for every (predicted person, ground-truth person) pair: float64 [P, G, C].

    ``gt_maps`` [G, H, W] and ``pred_maps`` [P, H, W]: one full-image part map per person (0 off
    the person), as MHPv2 stores them; persons may overlap. For pair (P, G) the pixels where G's
    own map is outside ``[0, C)`` (e.g. 255) are dropped from both maps: ignore is per person, as
    in ``eval_mhp.py`` (``fast_hist(gt, pred)`` keeps ``0 <= gt < C``), so an ignore pixel of one
    person is an ordinary background pixel for another. NaN where a class is absent from both maps.
    Predicted values must lie in ``[0, C)``. Cost: O(P x pixels) per ground-truth person, no P x G
    full-image loop.
    """
    c = int(num_classes)
    gt_maps, pred_maps = np.asarray(gt_maps), np.asarray(pred_maps)
    n_g, n_p = len(gt_maps), len(pred_maps)
    out = np.full((n_p, n_g, c), np.nan)
    if n_g == 0 or n_p == 0:
        return out
    pred = pred_maps.reshape(n_p, -1)
    n_pix = pred.shape[1]
    pred_total = _counts_per_row(pred, c)                      # [P, C] over all pixels
    for g, gmap in enumerate(gt_maps):
        gm = gmap.ravel().astype(np.int64)
        fg_idx = np.flatnonzero((gm > 0) & (gm < c))
        ig_idx = np.flatnonzero((gm < 0) | (gm >= c))
        n_valid = n_pix - ig_idx.size
        labels = gm[fg_idx]
        gt_cnt = np.bincount(labels, minlength=c).astype(np.float64)
        gt_cnt[0] = n_valid - fg_idx.size
        pr_cnt = pred_total - _counts_per_row(pred[:, ig_idx], c)   # P's counts on G's valid pixels
        pr_fg = pr_cnt[:, 1:].sum(1)
        pr_cnt[:, 0] = n_valid - pr_fg
        on_g = pred[:, fg_idx]                                      # P's labels on G's foreground
        inter = _counts_per_row(np.where(on_g == labels[None], labels[None], 0), c)
        both_fg = (on_g > 0).sum(1)
        # both maps background = valid - fg(G) - fg(P) + fg(both)
        inter[:, 0] = n_valid - fg_idx.size - pr_fg + both_fg
        union = gt_cnt[None, :] + pr_cnt - inter
        with np.errstate(divide="ignore", invalid="ignore"):
            out[:, g] = np.where(union > 0, inter / np.where(union > 0, union, 1.0), np.nan)
    return out


def maps_from_ids(parts: np.ndarray, person_ids: np.ndarray, ids) -> np.ndarray:
    """One part map per listed person id from an id map (CIHP layout): ``[len(ids), H, W]`` with the
    part values (ignore values included) on that person's pixels and 0 elsewhere."""
    ids = np.asarray(ids, np.int64)
    parts, person_ids = np.asarray(parts), np.asarray(person_ids)
    dtype = np.int32 if parts.dtype.kind == "i" or parts.max(initial=0) > 255 else np.uint8
    if ids.size == 0:
        return np.zeros((0, *parts.shape), dtype)
    return np.where(person_ids[None] == ids[:, None, None], parts[None], 0).astype(dtype)


def person_part_iou(
    gt_parts: np.ndarray,
    gt_person_ids: np.ndarray,
    gt_ids: np.ndarray,
    pred_parts: np.ndarray,
    pred_person_ids: np.ndarray,
    pred_ids: np.ndarray,
    num_classes: int,
) -> np.ndarray:
    """:func:`person_maps_iou` for id maps (CIHP layout): person k's map is the part map on the
    pixels of id k, 0 elsewhere. ``gt_ids`` / ``pred_ids`` list the person ids to compare."""
    return person_maps_iou(maps_from_ids(gt_parts, gt_person_ids, gt_ids),
                           maps_from_ids(pred_parts, pred_person_ids, pred_ids), num_classes)


def _index_of(ids: np.ndarray, wanted: np.ndarray) -> np.ndarray:
    """Map each id to 1 + its position in sorted ``wanted``; ids not in ``wanted`` map to 0."""
    ids = ids.astype(np.int64).ravel()
    wanted = np.asarray(wanted, np.int64)
    if wanted.size == 0:
        return np.zeros(ids.shape, np.int64)
    pos = np.clip(np.searchsorted(wanted, ids), 0, wanted.size - 1)
    return np.where(wanted[pos] == ids, pos + 1, 0)


def _nanmean_last(x: np.ndarray) -> np.ndarray:
    finite = ~np.isnan(x)
    count = finite.sum(-1)
    total = np.where(finite, x, 0.0).sum(-1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)


class InstanceEvaluator:
    """Accumulate images, then ``compute()``. Keeps only small per-pair summaries per image."""

    def __init__(self, num_classes: int, gt_persons: str = "foreground", min_score: float = 0.0):
        if gt_persons not in _GT_PERSONS:
            raise ConfigError(f"gt_persons must be one of {_GT_PERSONS}, got {gt_persons!r}")
        if int(num_classes) < 2:
            raise ConfigError(f"num_classes must be >= 2 (background + parts), got {num_classes}")
        self.num_classes = int(num_classes)
        self.gt_persons = gt_persons
        self.min_score = float(min_score)
        self.reset()

    def reset(self) -> None:
        self._images: list[dict] = []

    def add(
        self,
        gt_parts: np.ndarray,
        gt_person_ids: np.ndarray,
        pred_parts: np.ndarray,
        pred_person_ids: np.ndarray,
        pred_scores: Mapping[int, float],
    ) -> None:
        """Add one image. Person id 0 means nobody; ``pred_scores`` must hold exactly the non-zero
        ids of ``pred_person_ids`` (ValueError naming the ids otherwise)."""
        arrays = [np.asarray(a) for a in (gt_parts, gt_person_ids, pred_parts, pred_person_ids)]
        shapes = {a.shape for a in arrays}
        if len(shapes) != 1 or arrays[0].ndim != 2:
            raise ValueError(
                "gt_parts, gt_person_ids, pred_parts, pred_person_ids must be 2-D maps of one shape, "
                f"got {[a.shape for a in arrays]}"
            )
        gt_parts, gt_person_ids, pred_parts, pred_person_ids = arrays
        c = self.num_classes
        bad = np.unique(pred_parts[(pred_parts < 0) | (pred_parts >= c)])
        if bad.size:
            raise ValueError(f"predicted part values {bad[:10].tolist()} are outside [0, {c})")
        map_ids = set(np.unique(pred_person_ids).tolist()) - {0}
        scores = {int(k): float(v) for k, v in pred_scores.items()}
        not_in_map = sorted(set(scores) - map_ids)
        if not_in_map:
            raise ValueError(f"scores given for person ids {not_in_map} that have no pixel in the person map")
        no_score = sorted(map_ids - set(scores))
        if no_score:
            raise ValueError(f"person ids {no_score} in the person map have no score")
        pred_ids = np.array(sorted(scores), np.int64)
        gt_ids = np.unique(gt_person_ids)
        gt_ids = gt_ids[gt_ids != 0].astype(np.int64)
        self.add_persons(maps_from_ids(gt_parts, gt_person_ids, gt_ids),
                         maps_from_ids(pred_parts, pred_person_ids, pred_ids), [scores[int(i)] for i in pred_ids])

    def add_persons(self, gt_maps: np.ndarray, pred_maps: np.ndarray, pred_scores) -> None:
        """Add one image given as one part map per person (MHPv2 layout; persons may overlap).

        ``gt_maps`` [G, H, W], ``pred_maps`` [P, H, W] (0 off the person), ``pred_scores`` P numbers.
        Ignore is per ground-truth person (see :func:`person_maps_iou`).
        """
        gt_maps, pred_maps = np.asarray(gt_maps), np.asarray(pred_maps)
        scores = np.asarray(pred_scores, np.float64).reshape(-1)
        if gt_maps.ndim != 3 or pred_maps.ndim != 3 or gt_maps.shape[1:] != pred_maps.shape[1:]:
            raise ValueError(f"gt_maps and pred_maps must be [N, H, W] stacks of one image size, "
                             f"got {gt_maps.shape} and {pred_maps.shape}")
        if len(scores) != len(pred_maps):
            raise ValueError(f"{len(pred_maps)} predicted persons but {len(scores)} scores")
        if not np.isfinite(scores).all():
            raise ValueError("scores must be finite numbers")
        c = self.num_classes
        bad = np.unique(pred_maps[(pred_maps < 0) | (pred_maps >= c)])
        if bad.size:
            raise ValueError(f"predicted part values {bad[:10].tolist()} are outside [0, {c})")
        kept = scores >= self.min_score
        pred_maps, scores = pred_maps[kept], scores[kept]
        iou = person_maps_iou(gt_maps, pred_maps, c)
        # foreground classes present per GT person (classes 1..C-1 with pixels in its own map)
        flat = gt_maps.reshape(gt_maps.shape[0], int(np.prod(gt_maps.shape[1:]))).astype(np.int64)
        present = _counts_per_row(np.where((flat > 0) & (flat < c), flat, 0), c)[:, :] > 0
        present[:, 0] = False
        if self.gt_persons == "foreground":
            keep = present.any(1)
            iou, present = iou[:, keep], present[keep]
        mean_iou = _nanmean_last(iou)  # [P, G]
        fg_iou = np.nan_to_num(iou[:, :, 1:], nan=-1.0)
        above = np.stack([(fg_iou > t).sum(-1) for t in THRESHOLDS], -1) if fg_iou.size else \
            np.zeros((*fg_iou.shape[:2], len(THRESHOLDS)), np.int64)
        self._images.append(
            {
                "scores": scores,
                "mean_iou": mean_iou,
                "above": above.astype(np.int32),
                "n_gt_parts": present.sum(1).astype(np.int32),
            }
        )

    def compute(self) -> dict:
        """``{"APp50", "APpvol", "PCP50", "APp": {"0.1": ..., ..., "0.9": ...}, "PCP": {...},
        "num_images", "num_gt_persons", "num_predictions", "gt_persons", "min_score"}``."""
        n_pos = sum(im["mean_iou"].shape[1] for im in self._images)
        img_of = np.concatenate([np.full(len(im["scores"]), k) for k, im in enumerate(self._images)] or [[]])
        local = np.concatenate([np.arange(len(im["scores"])) for im in self._images] or [[]])
        scores = np.concatenate([im["scores"] for im in self._images] or [[]])
        order = np.argsort(-scores, kind="stable")
        # best GT per prediction: first max, NaN never wins (as ovmax starts at -inf and uses '>')
        best = []
        for im in self._images:
            m = np.where(np.isnan(im["mean_iou"]), -np.inf, im["mean_iou"])
            if m.shape[1] == 0:
                best.append((np.full(m.shape[0], -1), np.full(m.shape[0], -np.inf)))
            else:
                j = m.argmax(1)
                best.append((j, m[np.arange(m.shape[0]), j]))
        ap, pcp = {}, {}
        for ti, t in enumerate(THRESHOLDS):
            matched = [np.zeros(im["mean_iou"].shape[1], bool) for im in self._images]
            tp = np.zeros(len(order))
            pcp_sum = 0.0
            for rank, d in enumerate(order):
                k, p = int(img_of[d]), int(local[d])
                j, ov = best[k][0][p], best[k][1][p]
                if ov > t and not matched[k][j]:
                    matched[k][j] = True
                    tp[rank] = 1.0
                    n_parts = self._images[k]["n_gt_parts"][j]
                    if n_parts > 0:
                        pcp_sum += self._images[k]["above"][p, j, ti] / n_parts
            key = f"{t:.1f}"
            if n_pos == 0:
                ap[key], pcp[key] = None, None
                continue
            ctp = np.cumsum(tp)
            cfp = np.cumsum(1.0 - tp)
            ap[key] = voc_ap(ctp / n_pos, ctp / np.maximum(ctp + cfp, np.finfo(float).eps))
            pcp[key] = pcp_sum / n_pos
        return {
            "APp50": ap["0.5"],
            "APpvol": None if n_pos == 0 else float(np.mean([ap[k] for k in ap])),
            "PCP50": pcp["0.5"],
            "APp": ap,
            "PCP": pcp,
            "num_images": len(self._images),
            "num_gt_persons": int(n_pos),
            "num_predictions": int(len(order)),
            "gt_persons": self.gt_persons,
            "min_score": self.min_score,
        }


def evaluate_instances(
    images: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, Mapping[int, float]]],
    num_classes: int,
    gt_persons: str = "foreground",
    min_score: float = 0.0,
) -> dict:
    """AP^p / PCP over ``(gt_parts, gt_person_ids, pred_parts, pred_person_ids, pred_scores)``
    tuples, one per image. Returns :meth:`InstanceEvaluator.compute`'s dict."""
    ev = InstanceEvaluator(num_classes, gt_persons=gt_persons, min_score=min_score)
    for image in images:
        ev.add(*image)
    return ev.compute()


def _load_scores(path: Path, stems: list[str]) -> dict[str, dict[int, float]]:
    raw = read_json(path)
    if not isinstance(raw, dict):
        raise DataError(path, 'expected an object {"<stem>": {"<person id>": score, ...}, ...}')
    unknown = sorted(set(raw) - set(stems))
    if unknown:
        raise DataError(path, f"entries for images with no ground truth: {format_list(unknown)}")
    out: dict[str, dict[int, float]] = {}
    for stem, entry in raw.items():
        if not isinstance(entry, dict):
            raise DataError(path, f'entry {stem!r} must be an object {{"<person id>": score}}')
        scores = {}
        for pid, s in entry.items():
            try:
                key = int(pid)
            except ValueError:
                raise DataError(path, f"image {stem!r}: person id {pid!r} is not an integer") from None
            if isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s):
                raise DataError(path, f"image {stem!r}, person {pid}: score {s!r} is not a finite number")
            if key == 0:
                raise DataError(path, f"image {stem!r}: person id 0 means 'nobody' and cannot have a score")
            scores[key] = float(s)
        out[stem] = scores
    return out


def _mhp_folder(folder: Path) -> Path | None:
    """The per-person map folder of an MHPv2-layout directory (``parsing_annos/`` or ``annotations/``)."""
    return next((folder / d for d in ("parsing_annos", "annotations") if (folder / d).is_dir()), None)


def _mhp_side(folder: Path) -> dict[str, list[Path]]:
    """``{stem: [person files in KK order]}`` of an MHPv2-layout folder (``<stem>_<NN>_<KK>.png``)."""
    from ..data.readers.mhpv2 import group_person_files

    return group_person_files(_mhp_folder(folder))


def _cihp_maps(cat: Path, hum: Path, ids=None) -> tuple[np.ndarray, np.ndarray]:
    """(person ids, one part map per person) of a CIHP-layout image pair."""
    parts, persons = read_label_png(cat), read_label_png(hum)
    if parts.shape != persons.shape:
        raise DataError(hum, f"size {persons.shape} differs from {cat} {parts.shape}")
    if ids is None:
        ids = np.unique(persons)
        ids = ids[ids != 0]
    ids = np.asarray(sorted(int(i) for i in ids), np.int64)
    return ids, maps_from_ids(parts, persons, ids)


def _score_person_maps(pred_dir: Path, gt_dir: Path, ev: "InstanceEvaluator", ignore_index: int) -> dict:
    """Either side in the MHPv2 layout (one PNG per person; persons may overlap) or the CIHP layout."""
    from ..data.io import read_person_maps

    c = ev.num_classes
    if _mhp_folder(gt_dir) is not None:
        gt_files = _mhp_side(gt_dir)
        gt_stems = sorted(gt_files)

        def gt_maps(stem):
            return read_person_maps(gt_files[stem], c, ignore_index)
    else:
        gt_cat, gt_hum = list_pngs(gt_dir / "Category_ids"), list_pngs(gt_dir / "Human_ids")
        gt_stems = sorted(gt_cat)
        missing = sorted(set(gt_stems) - set(gt_hum))
        if missing:
            raise DataError(gt_dir / "Human_ids", f"missing {len(missing)} file(s): {format_list([s + '.png' for s in missing])}")

        def gt_maps(stem):
            return _cihp_maps(gt_cat[stem], gt_hum[stem])[1]
    if not gt_stems:
        raise DataError(gt_dir, "no ground-truth person maps found")
    scores_path = pred_dir / "scores.json"
    all_scores = _load_scores(scores_path, gt_stems)
    pred_mhp = _mhp_folder(pred_dir) is not None
    pred_files = _mhp_side(pred_dir) if pred_mhp else None
    if pred_mhp:
        extra = sorted(set(pred_files) - set(gt_stems))
        if extra:
            raise DataError(_mhp_folder(pred_dir), f"person maps of images with no ground truth: {format_list(extra)}")
    else:
        pr_cat, pr_hum = list_pngs(pred_dir / "Category_ids"), list_pngs(pred_dir / "Human_ids")
    for stem in gt_stems:
        g = gt_maps(stem)
        scores = all_scores.get(stem, {})
        if pred_mhp:
            files = pred_files.get(stem, [])
            ids = list(range(1, len(files) + 1))
            maps = (read_person_maps(files, 256, 256) if files else np.zeros((0, *g.shape[1:]), np.uint8))
            for k, m in enumerate(maps):
                bad = np.unique(m[m >= c])
                if bad.size:
                    raise DataError(files[k], f"predicted part values {bad[:10].tolist()} are outside [0, {c})")
            where = _mhp_folder(pred_dir) / f"{stem}_NN_KK.png"
        else:
            for folder, files in ((pred_dir / "Category_ids", pr_cat), (pred_dir / "Human_ids", pr_hum)):
                if stem not in files:
                    raise DataError(folder / f"{stem}.png", "prediction file missing")
            ids, maps = _cihp_maps(pr_cat[stem], pr_hum[stem])
            ids = ids.tolist()
            where = pr_hum[stem]
        if maps.shape[1:] != g.shape[1:]:
            raise DataError(where, f"prediction size {maps.shape[1:]} differs from the ground truth {g.shape[1:]}")
        absent = sorted(set(scores) - set(ids))
        if absent:
            raise DataError(scores_path, f"image {stem!r}: person ids {absent} have scores but no map in {where}")
        unscored = sorted(set(ids) - set(scores))
        if unscored:
            raise DataError(scores_path, f"image {stem!r}: person ids {unscored} of {where} have no score")
        ev.add_persons(g, maps, [scores[i] for i in ids])
    return ev.compute()


def score_instance_dirs(
    pred_dir: str | Path,
    gt_dir: str | Path,
    num_classes: int | None = None,
    gt_persons: str = "foreground",
    min_score: float = 0.0,
    ignore_index: int = 255,
) -> dict:
    """Score prediction folders against ground truth (module docstring), each side in the CIHP
    layout (``Category_ids/`` + ``Human_ids/``) or the MHPv2 layout (``parsing_annos/<stem>_<NN>_<KK>.png``,
    one part map per person, persons may overlap; prediction scores keyed by KK).

    ``num_classes`` defaults to 20 (CIHP). Ground-truth part values other than ``[0, C)`` and
    ``ignore_index`` are a DataError (a wrong ``num_classes`` shows up here). Missing files on
    either side, size mismatches, and ``scores.json`` entries that name a person id absent from
    the prediction's ``Human_ids`` map (or map ids with no score) are DataErrors naming the file.
    An image may be left out of ``scores.json`` only if its predicted ``Human_ids`` map is empty.
    """
    num_classes = 20 if num_classes is None else int(num_classes)
    pred_dir, gt_dir = Path(pred_dir), Path(gt_dir)
    if _mhp_folder(gt_dir) is not None or _mhp_folder(pred_dir) is not None:
        ev = InstanceEvaluator(num_classes, gt_persons=gt_persons, min_score=min_score)
        return _score_person_maps(pred_dir, gt_dir, ev, ignore_index)
    gt_cat, gt_hum = list_pngs(gt_dir / "Category_ids"), list_pngs(gt_dir / "Human_ids")
    pr_cat, pr_hum = list_pngs(pred_dir / "Category_ids"), list_pngs(pred_dir / "Human_ids")
    if not gt_cat:
        raise DataError(gt_dir / "Category_ids", "no .png files in the ground-truth folder")
    stems = sorted(gt_cat)
    for folder, files in (
        (gt_dir / "Human_ids", gt_hum),
        (pred_dir / "Category_ids", pr_cat),
        (pred_dir / "Human_ids", pr_hum),
    ):
        missing = sorted(set(stems) - set(files))
        extra = sorted(set(files) - set(stems))
        if missing:
            raise DataError(folder, f"missing {len(missing)} file(s): {format_list([s + '.png' for s in missing])}")
        if extra:
            raise DataError(
                folder,
                f"{len(extra)} file(s) have no ground truth in {gt_dir / 'Category_ids'}: "
                f"{format_list([s + '.png' for s in extra])}",
            )
    check_same_size([(f[s], gt_cat[s]) for s in stems for f in (gt_hum, pr_cat, pr_hum)])
    scores_path = pred_dir / "scores.json"
    all_scores = _load_scores(scores_path, stems)

    ev = InstanceEvaluator(num_classes, gt_persons=gt_persons, min_score=min_score)
    for stem in stems:
        gt_parts = read_label_png(gt_cat[stem])
        bad = [int(v) for v in np.unique(gt_parts) if v >= num_classes and v != ignore_index]
        if bad:
            raise DataError(
                gt_cat[stem],
                f"part values {bad[:10]} are outside [0, {num_classes}) and are not the ignore index "
                f"{ignore_index}; check num_classes",
            )
        pred_parts = read_label_png(pr_cat[stem])
        bad = [int(v) for v in np.unique(pred_parts) if v >= num_classes]
        if bad:
            raise DataError(pr_cat[stem], f"predicted part values {bad[:10]} are outside [0, {num_classes})")
        pred_ids = read_label_png(pr_hum[stem])
        scores = all_scores.get(stem, {})
        map_ids = set(np.unique(pred_ids).tolist()) - {0}
        absent = sorted(set(scores) - map_ids)
        if absent:
            raise DataError(
                scores_path,
                f"image {stem!r}: person ids {absent} have scores but no pixel in {pr_hum[stem]}",
            )
        unscored = sorted(map_ids - set(scores))
        if unscored:
            raise DataError(
                scores_path, f"image {stem!r}: person ids {unscored} of {pr_hum[stem]} have no score"
            )
        ev.add(gt_parts, read_label_png(gt_hum[stem]), pred_parts, pred_ids, scores)
    return ev.compute()
