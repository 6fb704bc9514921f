"""Training items for UniParser: composed multi-person scenes and real instance-labelled images.

An item is a dict: ``image`` float32 [3, H, W] (ImageNet-normalised), ``part`` int64 [H, W]
(target label space, 255 = ignore), ``person`` int64 [H, W] (0 = nobody), ``domain`` (str),
``meta`` (``stem``, ``orig_size``). :func:`collate_instances` pads a list of items to a common
size that is a multiple of 32 (part 255, person 0 in the padding).

- :class:`ComposedScenes`: scenes of a :class:`~humanparse.uniparser.compose.SceneComposer`.
  Training: scene index = ``epoch * length + i`` (``set_epoch``), so every epoch sees new scenes
  and a run is reproducible. Held-out: ``fixed=True`` always gives the same ``length`` scenes.
- :class:`InstanceParsingDataset`: real records with a person-id map (CIHP ``Human_ids``,
  PASCAL-Person-Part ``instances/``) or with one part map per person (MHPv2 ``parsing_annos``),
  labels mapped into the target space, resized so that the longer side is ``long_side`` (times a
  random factor in ``scale_range`` when training) or, as the paper, so that the shorter side is one
  of ``short_sides`` (drawn uniformly when training, the largest otherwise) with the longer side at
  most ``max_long_side``; with a left/right-correct random flip. MHPv2 items also carry
  ``person_parts`` uint8 [P, H, W] (one map per person, persons kept apart where they overlap);
  their ``part`` / ``person`` maps are the first-wins merge, for display only.
- :class:`PersonCutouts`: lazy, cached person cut-outs from single-person records (for the composer).
"""

from __future__ import annotations

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..data.io import check_pair, load_label, read_image, read_id_map, read_person_maps
from ..engine.inference import to_tensor
from ..errors import DataError
from .compose import PersonCutout, SceneComposer, cutout_from_sample

__all__ = ["PersonCutouts", "ComposedScenes", "InstanceParsingDataset", "collate_instances", "EpochBatches", "ConcatScenes"]

IGNORE = 255


def make_item(image: np.ndarray, parts: np.ndarray, persons: np.ndarray, *, domain: str, stem: str) -> dict:
    return {
        "image": to_tensor(image),
        "part": torch.from_numpy(np.ascontiguousarray(parts).astype(np.int64)),
        "person": torch.from_numpy(np.ascontiguousarray(persons).astype(np.int64)),
        "domain": domain,
        "meta": {"stem": stem, "orig_size": tuple(int(s) for s in parts.shape)},
    }


def _read_sample(rec, label_spaces: dict):
    """A record's photo and label map (source ids), checked to match."""
    ls = label_spaces[rec.domain]
    image = read_image(rec.image, apply_exif=False)
    label, _ = load_label(rec, ls.num_classes, ls.ignore_index)
    check_pair(image, label, (rec.image, rec.label))
    return image, label


class BackgroundPhotos:
    """``backgrounds(i)`` -> record ``i``'s photo with its people in-painted away (``person_free_background``;
    computed on first use, then cached)."""

    def __init__(self, records, label_spaces: dict, *, max_side: int = 320):
        self.records = list(records)
        self.label_spaces = label_spaces
        self.max_side = int(max_side)
        self._cache: dict[int, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self.records)

    def __call__(self, index: int) -> np.ndarray:
        from .compose import person_free_background

        if index not in self._cache:
            image, label = _read_sample(self.records[index], self.label_spaces)
            self._cache[index] = person_free_background(image, label, max_side=self.max_side)
        return self._cache[index]


class PersonCutouts:
    """``cutouts(i) -> PersonCutout`` of record ``i`` (read, mapped and cropped on first use, then cached).

    ``label_maps`` maps each record's domain to its source -> target id table.
    """

    def __init__(self, records, label_spaces: dict, label_maps: dict, *, max_height: int | None = None):
        self.records = list(records)
        self.label_spaces = label_spaces
        self.label_maps = label_maps
        self.max_height = max_height
        self._cache: dict[int, PersonCutout] = {}

    def __len__(self) -> int:
        return len(self.records)

    def __call__(self, index: int) -> PersonCutout:
        if index not in self._cache:
            rec = self.records[index]
            image, label = _read_sample(rec, self.label_spaces)
            cut = cutout_from_sample(image, label, label_map=self.label_maps[rec.domain],
                                     max_height=self.max_height, source=f"{rec.domain}/{rec.stem}")
            if cut is None:
                raise DataError(rec.label, "no person pixel (every label is background); remove it from the sources")
            self._cache[index] = cut
        return self._cache[index]


class ComposedScenes(Dataset):
    """``length`` composed scenes per epoch (see module docstring)."""

    def __init__(self, composer: SceneComposer, length: int, *, fixed: bool = False, domain: str = "composed"):
        self.composer = composer
        self.length = int(length)
        self.fixed = fixed
        self.domain = domain
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.length

    def scene_index(self, i: int) -> int:
        return i if self.fixed else self.epoch * self.length + i

    def __getitem__(self, i: int) -> dict:
        index = self.scene_index(int(i))
        scene = self.composer.compose(index)
        return make_item(scene.image, scene.parts, scene.person_ids, domain=self.domain, stem=f"scene_{index:07d}")


class InstanceParsingDataset(Dataset):
    """Real images with instance labels: a person-id map (``human_ids``) or per-person part maps
    (``label_parts``, MHPv2)."""

    def __init__(self, records, label_spaces: dict, label_maps: dict, *, long_side: int | None = None,
                 scale_range: tuple[float, float] = (1.0, 1.0), short_sides: tuple[int, ...] | None = None,
                 max_long_side: int | None = None, flip_prob: float = 0.0,
                 flip_permutation: np.ndarray | None = None, seed: int = 0, train: bool = True):
        self.records = list(records)
        for rec in self.records:
            if rec.human_ids is None and not rec.label_parts:
                raise DataError(rec.image, "this record has no person-id map (human_ids) nor per-person part maps "
                                           "(MHPv2 parsing_annos); UniParser needs instance labels")
        if flip_prob > 0 and flip_permutation is None:
            raise ValueError("flipping needs the target label space's flip_permutation")
        if long_side is not None and short_sides:
            raise ValueError("give long_side or short_sides, not both")
        self.label_spaces, self.label_maps = label_spaces, label_maps
        self.long_side, self.scale_range = long_side, scale_range
        self.short_sides = tuple(int(v) for v in short_sides) if short_sides else None
        self.max_long_side = max_long_side
        self.flip_prob, self.flip_permutation = flip_prob, flip_permutation
        self.seed, self.train, self.epoch = seed, train, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.records)

    def _to_target(self, label: np.ndarray, domain: str) -> np.ndarray:
        table = np.asarray(self.label_maps[domain], dtype=np.int64)
        return np.where(label == IGNORE, IGNORE, table[np.minimum(label, len(table) - 1)]).astype(np.uint8)

    def load(self, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(image, parts in the target space, person ids) at the original size. For MHPv2 records
        these are the first-wins merge of the person maps (see :meth:`load_persons` for the exact ones)."""
        rec = self.records[i]
        ls = self.label_spaces[rec.domain]
        image = read_image(rec.image, apply_exif=False)
        label, persons = load_label(rec, ls.num_classes, ls.ignore_index)
        if not rec.label_parts:
            persons = read_id_map(rec.human_ids)
            check_pair(image, persons, (rec.image, rec.human_ids))
        check_pair(image, label, (rec.image, rec.label))
        return image, self._to_target(label, rec.domain), persons

    def load_persons(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(image, one part map per person ``uint8 [P, H, W]`` in the target space) at the original
        size; overlapping MHPv2 persons stay apart. For id-map records, person k's map is the part
        map on the pixels of the k-th id (ascending), 0 elsewhere."""
        rec = self.records[i]
        if not rec.label_parts:
            image, parts, persons = self.load(i)
            ids = np.unique(persons)
            ids = ids[ids > 0]
            return image, np.where(persons[None] == ids[:, None, None], parts[None], 0).astype(np.uint8)
        ls = self.label_spaces[rec.domain]
        image = read_image(rec.image, apply_exif=False)
        maps = read_person_maps(rec.label_parts, ls.num_classes, ls.ignore_index)
        check_pair(image, maps[0], (rec.image, rec.label_parts[0]))
        return image, np.stack([self._to_target(m, rec.domain) for m in maps])

    def _scale(self, shape: tuple[int, int], rng: np.random.Generator) -> float:
        if self.short_sides:
            short = rng.choice(self.short_sides) if self.train else max(self.short_sides)
            f = short / min(shape)
            if self.max_long_side is not None:
                f = min(f, self.max_long_side / max(shape))
            return f
        f = self.long_side / max(shape)
        return f * rng.uniform(*self.scale_range) if self.train else f

    def __getitem__(self, i: int) -> dict:
        i = int(i)
        rec = self.records[i]
        if rec.label_parts:  # read the person maps once; the merged maps (display only) come from them
            image, maps = self.load_persons(i)
            on = maps != 0
            first = on.argmax(0)
            anyone = on.any(0)
            parts = np.where(anyone, np.take_along_axis(maps, first[None], 0)[0], 0).astype(np.uint8)
            persons = np.where(anyone, first + 1, 0).astype(np.int64)
        else:
            (image, parts, persons), maps = self.load(i), None
        rng = np.random.default_rng([self.seed, self.epoch, i])
        if self.long_side is not None or self.short_sides:
            f = self._scale(parts.shape, rng)
            size = (max(1, round(parts.shape[1] * f)), max(1, round(parts.shape[0] * f)))
            image = cv2.resize(image, size, interpolation=cv2.INTER_LINEAR)
            parts = cv2.resize(parts, size, interpolation=cv2.INTER_NEAREST)
            persons = cv2.resize(persons.astype(np.int32), size, interpolation=cv2.INTER_NEAREST)
            if maps is not None:
                maps = np.stack([cv2.resize(m, size, interpolation=cv2.INTER_NEAREST) for m in maps])
        if self.train and rng.random() < self.flip_prob:
            lut = np.arange(256, dtype=np.uint8)
            lut[: len(self.flip_permutation)] = self.flip_permutation
            image, parts, persons = image[:, ::-1], lut[parts[:, ::-1]], persons[:, ::-1]
            if maps is not None:
                maps = lut[maps[:, :, ::-1]]
        item = make_item(image, parts, persons, domain=rec.domain, stem=rec.stem)
        if maps is not None:
            item["person_parts"] = torch.from_numpy(np.ascontiguousarray(maps))
        return item


def collate_instances(items: list[dict], size_divisor: int = 32) -> dict:
    """Pad to a common multiple of ``size_divisor``: image 0, part 255, person 0. When an item has
    ``person_parts`` the batch gets ``person_parts``: a list with one padded uint8 [P, H, W] tensor
    per item (None for items without, whose targets come from their id map)."""
    H = -(-max(it["part"].shape[0] for it in items) // size_divisor) * size_divisor
    W = -(-max(it["part"].shape[1] for it in items) // size_divisor) * size_divisor

    def pad(t: torch.Tensor, value: float) -> torch.Tensor:
        return F.pad(t, (0, W - t.shape[-1], 0, H - t.shape[-2]), value=value)

    batch = {
        "image": torch.stack([pad(it["image"], 0.0) for it in items]),
        "part": torch.stack([pad(it["part"], IGNORE) for it in items]),
        "person": torch.stack([pad(it["person"], 0) for it in items]),
        "domain": [it["domain"] for it in items],
        "meta": [it["meta"] for it in items],
    }
    if any("person_parts" in it for it in items):
        batch["person_parts"] = [pad(it["person_parts"], 0) if "person_parts" in it else None for it in items]
    return batch


class EpochBatches:
    """Shuffled batches per epoch, fixed by (seed, epoch); the last incomplete batch is dropped;
    with several processes each rank takes every ``world_size``-th batch."""

    def __init__(self, size: int, batch_size: int, *, seed: int = 0, rank: int = 0, world_size: int = 1):
        if size < batch_size:
            raise ValueError(f"the dataset has {size} items, fewer than one batch of {batch_size}")
        self.size, self.batch_size, self.seed = size, batch_size, seed
        self.rank, self.world_size = rank, world_size

    def batches_for_epoch(self, epoch: int) -> list[list[int]]:
        order = np.random.default_rng([self.seed, epoch]).permutation(self.size)
        n = self.size // self.batch_size
        batches = [order[k * self.batch_size:(k + 1) * self.batch_size].tolist() for k in range(n)]
        return batches[self.rank::self.world_size]


class ConcatScenes(torch.utils.data.ConcatDataset):
    """ConcatDataset that forwards ``set_epoch`` to its parts (composed + real training data)."""

    def set_epoch(self, epoch: int) -> None:
        for d in self.datasets:
            if hasattr(d, "set_epoch"):
                d.set_epoch(epoch)
