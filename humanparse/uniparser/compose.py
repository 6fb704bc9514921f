"""Copy-paste composer: multi-person training scenes from single-person parsing data (LIP, CCP ...).

A *person* of a single-person sample is every pixel whose source label is not background (0) and
not the ignore value. Its part labels are first mapped into the target label space with
``LabelSpace.mapping_to`` (identity when the source already is the target; a class the mapping
sends to null becomes the ignore value 255, still a pixel of that person).

Decision (see ``docs/uniparser.md``): scenes are composed in ONE target label space. The default is
the source's own space (LIP -> LIP 20 classes, exact). Other sources are mapped into it only
through a mapping their label-space file declares, never through a guessed table; CCP has no
left/right classes, so CCP -> LIP is not declared and CCP is composed in its own 59-class space.

A scene (``compose(index)``), fully determined by ``(seed, index)``:

1. background: a smooth random colour field plus mild noise (contains no person, so nothing in
   it is an unlabelled human), or, with ``backgrounds`` and probability ``background_prob``, a real
   photo whose people were removed (``person_free_background``: the labelled person pixels, dilated,
   in-painted) scaled to cover the canvas, randomly cropped and flipped: without real clutter in
   training, a model parses rock faces and kitchens in real photos as clothes;
2. ``n`` persons (uniform in ``persons``), each: a random cut-out, scale jitter (person height =
   canvas height x U(``height_range``), narrowed to fit the canvas width), a horizontal flip with
   probability ``flip_prob`` (part labels swapped by the target space's flip permutation), a
   random position (at most ``max_outside`` of the person outside the canvas);
3. pasted in order: a later person occludes earlier ones, its part and id labels overwrite theirs;
4. persons with fewer than ``min_visible`` visible pixels are dropped (default 1: fully occluded
   ones); a dropped person's remaining visible pixels become ignore (255, person 0), never
   background; ids are renumbered 1..N in paste order, so a higher id is in front.

Labels are exact: every pixel with person id k carries the (mapped) source part label of the
pixel of person k that is painted there.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import cv2
import numpy as np

__all__ = ["PersonCutout", "Scene", "SceneComposer", "cutout_from_sample", "person_free_background"]

IGNORE = 255


@dataclass(frozen=True)
class PersonCutout:
    """One person cropped to its bounding box: ``image`` uint8 [h, w, 3], ``parts`` uint8 [h, w]
    (target-space labels; 0 outside the person, 255 = person pixel with no target class)."""

    image: np.ndarray
    parts: np.ndarray
    source: str = ""

    @property
    def mask(self) -> np.ndarray:
        return self.parts != 0


@dataclass
class Scene:
    image: np.ndarray          # uint8 [H, W, 3]
    parts: np.ndarray          # uint8 [H, W], target space, 255 = ignore
    person_ids: np.ndarray     # uint8 [H, W], 0 = nobody, 1..N in paste (front-most last) order
    persons: list[dict] = field(default_factory=list)  # the kept persons, by id (see ``pasted``)
    pasted: list[dict] = field(default_factory=list)   # every pasted person in paste order: source,
    # cutout index, flipped, offset (x, y) and size (w, h) of the resized cut-out, box (clipped),
    # visible pixels, final id (0 = dropped)


def cutout_from_sample(
    image: np.ndarray, label: np.ndarray, *, label_map: np.ndarray | None = None,
    max_height: int | None = None, source: str = "",
) -> PersonCutout | None:
    """The person of a single-person sample (every non-background, non-ignore source pixel), cropped.

    ``label_map`` maps source ids to target ids (``LabelSpace.mapping_to``); ``max_height`` shrinks
    large cut-outs once, up front (labels with nearest neighbour). None when there is no person.
    """
    label = np.asarray(label)
    person = (label != 0) & (label != IGNORE)
    if not person.any():
        return None
    ys, xs = np.nonzero(person)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    src = label[y0:y1, x0:x1].astype(np.int64)
    inside = person[y0:y1, x0:x1]
    if label_map is not None:
        table = np.asarray(label_map, dtype=np.int64)
        if src[inside].max() >= len(table):
            raise ValueError(f"source label {int(src[inside].max())} is outside the mapping's {len(table)} classes")
        src = table[np.where(inside, src, 0)]
    parts = np.where(inside, src, 0)
    parts = np.where(inside & (parts == 0), IGNORE, parts).astype(np.uint8)  # a person pixel never becomes background
    crop = np.ascontiguousarray(image[y0:y1, x0:x1])
    if max_height is not None and crop.shape[0] > max_height:
        f = max_height / crop.shape[0]
        size = (max(1, round(crop.shape[1] * f)), max_height)
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        parts = cv2.resize(parts, size, interpolation=cv2.INTER_NEAREST)
    return PersonCutout(image=crop, parts=parts, source=source)


def person_free_background(image: np.ndarray, label: np.ndarray, *, max_side: int = 320) -> np.ndarray:
    """A photo without its people: every labelled pixel (any non-background label, ignore included)
    dilated by 3 % of the image side and in-painted (OpenCV Telea), at a long side of at most ``max_side``."""
    h, w = label.shape
    f = min(1.0, max_side / max(h, w))
    size = (max(1, round(w * f)), max(1, round(h * f)))
    small = cv2.resize(np.ascontiguousarray(image[..., :3]), size, interpolation=cv2.INTER_AREA)
    mask = cv2.resize((label != 0).astype(np.uint8), size, interpolation=cv2.INTER_NEAREST)
    k = max(3, int(round(0.03 * max(size))) | 1)
    mask = cv2.dilate(mask, np.ones((k, k), np.uint8))
    return cv2.inpaint(small, mask, 5, cv2.INPAINT_TELEA) if mask.any() else small


def _photo_background(rng: np.random.Generator, photo: np.ndarray, height: int, width: int) -> np.ndarray:
    ph, pw = photo.shape[:2]
    f = max(height / ph, width / pw) * rng.uniform(1.0, 1.5)  # cover the canvas, then a random crop
    size = (max(width, int(np.ceil(pw * f))), max(height, int(np.ceil(ph * f))))
    big = cv2.resize(photo, size, interpolation=cv2.INTER_LINEAR)
    y = int(rng.integers(0, size[1] - height + 1))
    x = int(rng.integers(0, size[0] - width + 1))
    crop = big[y:y + height, x:x + width]
    return np.ascontiguousarray(crop[:, ::-1] if rng.random() < 0.5 else crop)


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    cells = int(rng.integers(2, 7))
    coarse = rng.uniform(0, 255, size=(cells, cells, 3)).astype(np.float32)
    field_ = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    field_ += rng.normal(0, 8, size=field_.shape).astype(np.float32)
    return np.clip(field_, 0, 255).astype(np.uint8)


def _loader(items, count: int | None, name: str):
    """(index -> item, number of items) of a sequence, or of a loader function with its ``count``."""
    if callable(items):
        if count is None:
            raise ValueError(f"num_{name} is needed when {name} is a loader function")
        return items, int(count)
    items = list(items)
    return items.__getitem__, len(items)


class SceneComposer:
    """Builds reproducible multi-person scenes from person cut-outs.

    ``cutouts`` is a sequence of :class:`PersonCutout` or a callable ``(index) -> PersonCutout``
    with ``num_cutouts`` given (lazy loading); ``backgrounds`` likewise: person-free RGB photos
    (``person_free_background``), used with probability ``background_prob``.
    """

    def __init__(
        self,
        cutouts: Sequence[PersonCutout] | Callable[[int], PersonCutout],
        *,
        num_cutouts: int | None = None,
        canvas: tuple[int, int] = (256, 256),
        persons: tuple[int, int] = (1, 4),
        height_range: tuple[float, float] = (0.45, 0.95),
        flip_prob: float = 0.5,
        flip_permutation: np.ndarray | None = None,
        max_outside: float = 0.15,
        min_visible: int = 1,
        seed: int = 0,
        backgrounds: Sequence[np.ndarray] | Callable[[int], np.ndarray] | None = None,
        num_backgrounds: int | None = None,
        background_prob: float = 0.5,
    ):
        self._get, self.num_cutouts = _loader(cutouts, num_cutouts, "cutouts")
        if self.num_cutouts == 0:
            raise ValueError("the composer needs at least one person cut-out")
        lo, hi = persons
        if not 1 <= lo <= hi:
            raise ValueError(f"persons must be (min, max) with 1 <= min <= max, got {persons}")
        if not 0 < height_range[0] <= height_range[1]:
            raise ValueError(f"height_range must be (lo, hi) with 0 < lo <= hi, got {height_range}")
        if flip_prob > 0 and flip_permutation is None:
            raise ValueError("flipping needs the target label space's flip_permutation (left/right swap)")
        self.canvas = (int(canvas[0]), int(canvas[1]))
        self.persons = (int(lo), int(hi))
        self.height_range = (float(height_range[0]), float(height_range[1]))
        self.flip_prob = float(flip_prob)
        self.flip_lut = None
        if flip_permutation is not None:
            lut = np.arange(256, dtype=np.uint8)
            perm = np.asarray(flip_permutation)
            lut[: len(perm)] = perm
            self.flip_lut = lut
        self.max_outside = float(max_outside)
        self.min_visible = int(min_visible)
        self.seed = int(seed)
        self._background, self.num_backgrounds = (None, 0) if backgrounds is None else \
            _loader(backgrounds, num_backgrounds, "backgrounds")
        if not 0 <= background_prob <= 1:
            raise ValueError(f"background_prob must be in [0, 1], got {background_prob}")
        self.background_prob = float(background_prob)

    def _place(self, rng: np.random.Generator, cut: PersonCutout) -> tuple[np.ndarray, np.ndarray, bool]:
        H, W = self.canvas
        h0, w0 = cut.parts.shape
        target_h = H * rng.uniform(*self.height_range)
        f = min(target_h / h0, W * (1 - 1e-6) / w0)
        size = (max(1, int(round(w0 * f))), max(1, int(round(h0 * f))))
        image = cv2.resize(cut.image, size, interpolation=cv2.INTER_LINEAR)
        parts = cv2.resize(cut.parts, size, interpolation=cv2.INTER_NEAREST)
        flipped = bool(rng.random() < self.flip_prob)
        if flipped:
            image, parts = image[:, ::-1], self.flip_lut[parts[:, ::-1]]
        return np.ascontiguousarray(image), np.ascontiguousarray(parts), flipped

    def compose(self, index: int) -> Scene:
        rng = np.random.default_rng([self.seed, int(index)])
        H, W = self.canvas
        # the photo draws happen only when photos are given: scenes without them stay as they were
        if self.num_backgrounds and rng.random() < self.background_prob:
            image = _photo_background(rng, self._background(int(rng.integers(self.num_backgrounds))), H, W)
        else:
            image = _background(rng, H, W)
        parts = np.zeros((H, W), np.uint8)
        ids = np.zeros((H, W), np.int32)
        n = int(rng.integers(self.persons[0], self.persons[1] + 1))
        info = []
        for k in range(1, n + 1):
            c = int(rng.integers(self.num_cutouts))
            cut = self._get(c)
            pimg, pparts, flipped = self._place(rng, cut)
            h, w = pparts.shape
            mo = self.max_outside
            y = int(rng.integers(int(-mo * h), max(int(-mo * h), H - h + int(mo * h)) + 1))
            x = int(rng.integers(int(-mo * w), max(int(-mo * w), W - w + int(mo * w)) + 1))
            cy0, cx0, cy1, cx1 = max(y, 0), max(x, 0), min(y + h, H), min(x + w, W)
            entry = {"source": cut.source, "cutout": c, "flipped": flipped, "offset": [x, y], "size": [w, h],
                     "box": None}
            info.append(entry)
            if cy1 <= cy0 or cx1 <= cx0:
                continue
            sub = (slice(cy0 - y, cy1 - y), slice(cx0 - x, cx1 - x))
            m = pparts[sub] != 0
            region = (slice(cy0, cy1), slice(cx0, cx1))
            image[region][m] = pimg[sub][m]
            parts[region][m] = pparts[sub][m]
            ids[region][m] = k
            entry["box"] = [cx0, cy0, cx1, cy1]
        visible = np.bincount(ids.ravel(), minlength=n + 1)
        new_ids = np.zeros(n + 1, np.int32)
        persons = []
        for k in range(1, n + 1):
            info[k - 1]["visible"] = int(visible[k])
            info[k - 1]["id"] = 0
            if visible[k] >= self.min_visible and visible[k] > 0:
                new_ids[k] = info[k - 1]["id"] = len(persons) + 1
                persons.append(info[k - 1])
        dropped = (ids > 0) & (new_ids[ids] == 0)
        parts[dropped] = IGNORE
        person_ids = new_ids[ids].astype(np.uint8 if len(persons) < 256 else np.int32)
        return Scene(image=image, parts=parts, person_ids=person_ids, persons=persons, pasted=info)
