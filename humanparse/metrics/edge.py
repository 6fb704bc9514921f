"""Edge ground truth from parsing labels, and ODS / OIS / AP by the BSDS boundary benchmark.

Edges from labels (``edges_from_labels``)
    A pixel is an edge when at least one of its neighbours (4- or 8-connected, the caller's stated
    choice) holds a *different* part label. Both sides of a label border are marked, so a border
    is a band two pixels wide; part/background borders count. Pixels labelled ``ignore_index`` are
    excluded: they are never edges, and a border against them does not make their neighbour an
    edge (as CorrPM's target generation treats the 255 padding). The image border is not an edge.

Benchmark (``EdgeEvaluator``, ``score_edge_dirs``), following BSDS500 ``evaluation_bdry_image.m``
and ``collect_eval_bdry.m``:

- Thresholds: ``linspace(1/(n+1), 1 - 1/(n+1), n)``, n = 99 by default; the binary map at threshold
  t is ``prob >= t``, thinned to one pixel (``skimage.morphology.thin``, the same algorithm as
  MATLAB's ``bwmorph(..., 'thin', inf)``). Ground-truth edges are used as given (not thinned).
- Matching: predicted and ground-truth edge pixels are matched one-to-one, a pair allowed when
  their Euclidean distance is <= ``max_dist`` x image diagonal (0.0075). We take a maximum-
  cardinality bipartite matching (``scipy.sparse.csgraph.maximum_bipartite_matching``, Hopcroft-
  Karp) over all pairs within tolerance. BSDS ``correspondPixels`` solves a min-cost assignment
  (CSA) in which leaving a pixel unmatched costs 100 x the tolerance, so it too maximises the
  number of matches and only then the total distance; the counts agree except where BSDS's sparse
  outlier graph makes its assignment fall short of the maximum. We do not minimise distance among
  maximum matchings, since no count depends on it.
- Per image and threshold we keep ``(cntP, sumP, cntR, sumR)`` = (matched predicted pixels,
  predicted pixels, matched GT pixels, GT pixels). ``P = cntP / sumP`` and ``R = cntR / sumR``
  (0 when the denominator is 0), ``F = 2PR / (P + R)`` (0 when P + R = 0).
- ODS: counts summed over the dataset per threshold; best F over the thresholds, where, as BSDS's
  ``maxF`` does, R and P are also linearly interpolated at 100 points between adjacent thresholds.
- OIS: for each image the first threshold with its best F (no interpolation); those counts are
  summed over the images and give one P, R, F (BSDS's ``F_max``).
- AP: BSDS's ``Area_PR``: dataset P sampled by linear interpolation at recall 0, 0.01, ..., 1
  over the unique recall values (first occurrence kept), 0 outside the recall range, summed x 0.01.
  When recall takes a single value over all thresholds (e.g. a binary prediction) the curve is one
  point: BSDS prints 0, we return ``None``.

Prediction PNGs hold edge probabilities: 8-bit (value / 255, as BSDS reads them) or 16-bit
(value / 65535). Ground-truth PNGs hold 0/1 or 0/255 and should be thin (one pixel wide, as BSDS's
human boundaries are): ``edges_from_labels(..., thin=True)``, ``humanparse pseudo-label edge``.

Edge NMS (``edge_nms``), the step HED / BDCN / RCF run on a network's raw edge map before the
benchmark (their ``nms_process.m``, i.e. Dollar's ``edgesNmsMex`` with the SE toolbox settings)::

    E = convTri(E, 1)                                      # triangle smoothing, radius 1
    Oy, Ox = gradient(convTri(E, 4)); Oxx = d/dx Ox; Oyy, Oxy = gradient(Oy) (rows, cols)
    O = mod(atan(Oyy * sign(-Oxy) / (Oxx + 1e-5)), pi)     # edge normal
    E(p) = 0 where 1.01 * E(p) < E(p +- cos/sin(O(p)))    # bilinear samples, radius 1
    E *= min(1, dist to image border / 5)                  # soft suppression near the border

A raw probability map (blurred, several pixels wide) must go through it first (``score --task
edge --nms``, and the HTCorrM evaluator always applies it); a map that is already thin, such as a
perfect prediction, must not, since the border suppression would remove its outermost pixels.
The matching tolerance is ``max_dist`` = 0.0075 x the image diagonal at the resolution scored,
which should be the original image resolution (1.6 px for a 160 x 120 image, 4.2 px at 481 x 321).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import maximum_bipartite_matching

from ..errors import ConfigError, DataError
from .io import check_same_size, pair_by_stem, read_label_png

__all__ = [
    "edges_from_labels",
    "edge_nms",
    "bsds_thresholds",
    "match_edges",
    "edge_counts",
    "EdgeEvaluator",
    "score_edge_dirs",
]

_OFFSETS = {4: ((0, 1), (1, 0)), 8: ((0, 1), (1, 0), (1, 1), (1, -1))}


def edges_from_labels(
    label: np.ndarray, connectivity: int = 4, ignore_index: int | None = 255, thin: bool = False
) -> np.ndarray:
    """uint8 0/1 edge map of a 2-D label map (see the module docstring for the rule).

    ``thin=True`` thins the two-pixel band to one pixel (``skimage.morphology.thin``), which is what
    BSDS-style ground truth looks like; use it for ODS/OIS ground truth (see the module docstring)."""
    if connectivity not in _OFFSETS:
        raise ConfigError(f"connectivity must be 4 or 8, got {connectivity!r}")
    label = np.asarray(label)
    if label.ndim != 2:
        raise ValueError(f"label must be a 2-D map, got shape {label.shape}")
    h, w = label.shape
    valid = label != ignore_index if ignore_index is not None else np.ones(label.shape, bool)
    edge = np.zeros(label.shape, bool)
    for dy, dx in _OFFSETS[connectivity]:  # each unordered neighbour pair once; mark both ends
        ys_a, ys_b = slice(0, h - dy), slice(dy, h)
        xs_a = slice(max(0, -dx), w - max(0, dx))
        xs_b = slice(max(0, dx), w - max(0, -dx))
        a, b = label[ys_a, xs_a], label[ys_b, xs_b]
        diff = (a != b) & valid[ys_a, xs_a] & valid[ys_b, xs_b]
        edge[ys_a, xs_a] |= diff
        edge[ys_b, xs_b] |= diff
    if thin:
        from skimage.morphology import thin as _thin

        edge = _thin(edge)
    return edge.astype(np.uint8)


def _conv_tri(img: np.ndarray, r: int) -> np.ndarray:
    """Dollar's ``convTri``: separable triangle filter of radius ``r``, symmetric padding."""
    from scipy.ndimage import convolve1d

    if r == 1:
        f = np.array([1.0, 2.0, 1.0]) / 4.0  # p = 12 / r / (r + 2) - 2 = 2
    else:
        f = np.concatenate([np.arange(1, r + 2), np.arange(r, 0, -1)]).astype(np.float64) / (r + 1) ** 2
    out = convolve1d(img, f, axis=0, mode="reflect")  # scipy 'reflect' = MATLAB 'symmetric'
    return convolve1d(out, f, axis=1, mode="reflect")


def _interp(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    h, w = img.shape
    x = np.clip(x, 0.0, w - 1.001)
    y = np.clip(y, 0.0, h - 1.001)
    x0, y0 = x.astype(np.int64), y.astype(np.int64)
    dx, dy = x - x0, y - y0
    return (img[y0, x0] * (1 - dx) * (1 - dy) + img[y0, x0 + 1] * dx * (1 - dy)
            + img[y0 + 1, x0] * (1 - dx) * dy + img[y0 + 1, x0 + 1] * dx * dy)


def edge_nms(prob: np.ndarray, *, radius: int = 1, border: int = 5, multiplier: float = 1.01) -> np.ndarray:
    """Non-maximum suppression of an edge-probability map [H, W] (see the module docstring): the
    HED/BDCN evaluation step (``convTri`` smoothing, orientation from second derivatives,
    ``edgesNmsMex(E, O, 1, 5, 1.01)``). Returns float64 [H, W], suppressed pixels 0."""
    e = np.asarray(prob, np.float64)
    if e.ndim != 2:
        raise ValueError(f"edge map must be 2-D, got shape {e.shape}")
    h, w = e.shape
    if min(h, w) < 2:
        return e.copy()
    e = _conv_tri(e, 1)
    oy, ox = np.gradient(_conv_tri(e, 4))
    oxx = np.gradient(ox, axis=1)
    oyy, oxy = np.gradient(oy)
    o = np.mod(np.arctan(oyy * np.sign(-oxy) / (oxx + 1e-5)), np.pi)
    out = e.copy()
    ys, xs = np.nonzero(e)
    cos, sin = np.cos(o[ys, xs]), np.sin(o[ys, xs])
    strong = e[ys, xs] * multiplier
    keep = np.ones(ys.size, bool)
    for d in range(-int(radius), int(radius) + 1):
        if d:
            keep &= ~(strong < _interp(e, xs + d * cos, ys + d * sin))
    out[ys[~keep], xs[~keep]] = 0.0
    s = min(int(border), w // 2, h // 2)
    for k in range(s):  # soft suppression near the image border
        out[:, k] *= k / s
        out[:, w - 1 - k] *= k / s
        out[k, :] *= k / s
        out[h - 1 - k, :] *= k / s
    return out


def bsds_thresholds(n: int = 99) -> np.ndarray:
    """BSDS thresholds: ``linspace(1/(n+1), 1 - 1/(n+1), n)``."""
    if int(n) < 1:
        raise ConfigError(f"the number of thresholds must be >= 1, got {n}")
    n = int(n)
    return np.linspace(1.0 / (n + 1), 1.0 - 1.0 / (n + 1), n)


def _disc_offsets(radius: float) -> np.ndarray:
    r = int(np.floor(radius))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    keep = dy * dy + dx * dx <= radius * radius + 1e-9
    return np.stack([dy[keep], dx[keep]], 1)


def match_edges(pred: np.ndarray, gt: np.ndarray, max_dist: float = 0.0075) -> int:
    """Size of a maximum one-to-one matching between the pixels of two binary maps, pairs allowed
    within ``max_dist`` x image diagonal (Euclidean, inclusive). Equals the number of matched
    predicted pixels and of matched ground-truth pixels."""
    pred, gt = np.asarray(pred, bool), np.asarray(gt, bool)
    if pred.shape != gt.shape or pred.ndim != 2:
        raise ValueError(f"pred and gt must be 2-D maps of one shape, got {pred.shape} and {gt.shape}")
    py, px = np.nonzero(pred)
    n_gt = int(gt.sum())
    if py.size == 0 or n_gt == 0:
        return 0
    h, w = gt.shape
    gt_index = np.full(gt.shape, -1, np.int64)
    gt_index[gt] = np.arange(n_gt)
    rows, cols = [], []
    for dy, dx in _disc_offsets(max_dist * float(np.hypot(h, w))):
        y, x = py + dy, px + dx
        inside = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        j = np.full(py.shape, -1, np.int64)
        j[inside] = gt_index[y[inside], x[inside]]
        hit = j >= 0
        rows.append(np.nonzero(hit)[0])
        cols.append(j[hit])
    r, c = np.concatenate(rows), np.concatenate(cols)
    if r.size == 0:
        return 0
    graph = csr_matrix((np.ones(r.size, np.int8), (r, c)), shape=(py.size, n_gt))
    match = maximum_bipartite_matching(graph, perm_type="column")
    return int((match >= 0).sum())


def edge_counts(
    prob: np.ndarray,
    gt: np.ndarray,
    thresholds: int | np.ndarray = 99,
    max_dist: float = 0.0075,
    thin: bool = True,
) -> np.ndarray:
    """int64 [T, 4] = (cntP, sumP, cntR, sumR) per threshold for one image.

    ``prob``: edge probabilities in [0, 1]; ``gt``: binary ground-truth edges of the same shape."""
    from skimage.morphology import thin as _thin  # imported here: scikit-image is slow to import

    prob = np.asarray(prob, np.float64)
    gt = np.asarray(gt, bool)
    if prob.shape != gt.shape or prob.ndim != 2:
        raise ValueError(f"prob and gt must be 2-D maps of one shape, got {prob.shape} and {gt.shape}")
    thr = bsds_thresholds(thresholds) if np.isscalar(thresholds) else np.asarray(thresholds, np.float64)
    out = np.zeros((thr.size, 4), np.int64)
    n_gt = int(gt.sum())
    previous, prev_row = None, None
    for k, t in enumerate(thr):
        bmap = prob >= t
        if previous is not None and np.array_equal(bmap, previous):
            out[k] = prev_row
            continue
        previous = bmap
        b = _thin(bmap) if thin else bmap
        m = match_edges(b, gt, max_dist)
        out[k] = prev_row = (m, int(b.sum()), m, n_gt)
    return out


def _prf(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    cnt_p, sum_p, cnt_r, sum_r = (counts[..., i].astype(np.float64) for i in range(4))
    p = cnt_p / np.where(sum_p == 0, 1.0, sum_p)
    r = cnt_r / np.where(sum_r == 0, 1.0, sum_r)
    f = 2 * p * r / np.where(p + r == 0, 1.0, p + r)
    return p, r, f


def _area_pr(r: np.ndarray, p: np.ndarray) -> float | None:
    ru, first = np.unique(r, return_index=True)
    if ru.size < 2:
        return None  # BSDS prints 0 here; the curve is a single point, so AP is undefined
    ri = np.linspace(0.0, 1.0, 101)
    inside = (ri >= ru[0]) & (ri <= ru[-1])
    pi = np.where(inside, np.interp(ri, ru, p[first]), 0.0)
    return float(pi.sum() * 0.01)


class EdgeEvaluator:
    """Accumulate per-image counts with ``add(prob, gt)``, then ``compute()``."""

    def __init__(self, thresholds: int | np.ndarray = 99, max_dist: float = 0.0075, thin: bool = True):
        self.thresholds = bsds_thresholds(thresholds) if np.isscalar(thresholds) else np.asarray(thresholds, float)
        if self.thresholds.ndim != 1 or self.thresholds.size == 0:
            raise ConfigError("thresholds must be a count or a non-empty 1-D sequence")
        self.max_dist = float(max_dist)
        self.thin = bool(thin)
        self.counts: list[np.ndarray] = []

    def reset(self) -> None:
        self.counts = []

    def add(self, prob: np.ndarray, gt: np.ndarray) -> None:
        self.counts.append(edge_counts(prob, gt, self.thresholds, self.max_dist, self.thin))

    def compute(self) -> dict:
        """``{"ODS", "OIS", "AP", "ODS_threshold", "ODS_precision", "ODS_recall", "num_images"}``."""
        if not self.counts:
            raise ValueError("no image was added")
        per_image = np.stack(self.counts)  # [N, T, 4]
        total = per_image.sum(0)
        p, r, f = _prf(total)
        best = (float(f[0]), float(self.thresholds[0]), float(p[0]), float(r[0]))
        d = np.linspace(0.0, 1.0, 100)
        for i in range(1, len(self.thresholds)):  # BSDS maxF: interpolate between thresholds
            ri = r[i] * d + r[i - 1] * (1 - d)
            pi = p[i] * d + p[i - 1] * (1 - d)
            fi = 2 * pi * ri / np.where(pi + ri == 0, 1.0, pi + ri)
            k = int(fi.argmax())
            if fi[k] > best[0] + 1e-12:  # strictly better, ignoring rounding noise
                t = self.thresholds[i] * d[k] + self.thresholds[i - 1] * (1 - d[k])
                best = (float(fi[k]), float(t), float(pi[k]), float(ri[k]))
        _, _, f_img = _prf(per_image)  # [N, T]
        pick = f_img.argmax(1)  # first best threshold per image
        ois_counts = per_image[np.arange(len(pick)), pick].sum(0)
        _, _, f_ois = _prf(ois_counts)
        return {
            "ODS": best[0],
            "OIS": float(f_ois),
            "AP": _area_pr(r, p),
            "ODS_threshold": best[1],
            "ODS_precision": best[2],
            "ODS_recall": best[3],
            "num_images": len(self.counts),
        }


def _read_prob(path: Path) -> np.ndarray:
    a = read_label_png(path)
    if a.dtype == np.uint8:
        return a / 255.0
    if a.dtype == np.uint16:
        return a / 65535.0
    raise DataError(path, f"edge probabilities must be an 8-bit or 16-bit PNG, got {a.dtype}")


def _read_gt_edges(path: Path) -> np.ndarray:
    a = read_label_png(path)
    values = set(np.unique(a).tolist())
    if not (values <= {0, 1} or values <= {0, 255}):
        raise DataError(path, f"ground-truth edges must be 0/1 or 0/255, found values {sorted(values)[:10]}")
    return a > 0


def score_edge_dirs(
    pred_dir: str | Path,
    gt_dir: str | Path,
    thresholds: int = 99,
    max_dist: float = 0.0075,
    thin: bool = True,
    nms: bool = False,
) -> dict:
    """ODS / OIS / AP of a folder of edge-probability PNGs against a folder of binary GT PNGs.

    ``nms=True`` runs ``edge_nms`` on each prediction first (for raw network outputs; see the
    module docstring). Paired by stem; missing stems and size mismatches are DataErrors naming the files."""
    pairs = pair_by_stem(pred_dir, gt_dir)
    check_same_size([(p, g) for _, p, g in pairs])
    ev = EdgeEvaluator(thresholds, max_dist, thin)
    for _, pred_path, gt_path in pairs:
        prob = _read_prob(pred_path)
        ev.add(edge_nms(prob) if nms else prob, _read_gt_edges(gt_path))
    return ev.compute()
