"""``ParsingDataset``: records -> transformed tensors, reproducibly."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from humanparse.errors import DataError

from .io import check_pair, load_label, read_image
from .records import Record

__all__ = ["ParsingDataset", "item_rng"]


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The generator for one item: fixed by (seed, epoch, index), whatever worker or process reads it."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(epoch), int(index)]))


class ParsingDataset(Dataset):
    """Semantic-parsing samples of one label domain.

    An item is ``{"image": float32 [3,H,W], "label": int64 [H,W], "domain": str, "meta": {...}}``
    (plus ``"human_ids"`` int64 [H,W] when the record has a person map). ``meta`` holds
    ``image_path``, ``label_path``, ``orig_size`` (h, w) and ``stem``, and whatever the transforms
    record (``resized_size``, ``valid_size``, ``pad``). Unlabelled records get a label of
    ``ignore_index`` everywhere.

    Randomness: item ``i`` of epoch ``e`` uses ``item_rng(seed, e, i)``; call ``set_epoch(e)`` each
    epoch (in every worker process: the sampler or trainer does). Same (seed, epoch, index) -> same item.

    ``eval_mode=True`` adds ``"orig_label"``: the label at the image's original size, untransformed.
    ``skip_bad=True`` turns an unreadable or inconsistent sample into a warning naming the file, and
    the next good sample (index + 1, + 2, ...) is returned instead; otherwise the DataError propagates.
    """

    def __init__(
        self,
        records: Sequence[Record],
        label_space,
        transforms: Callable[[dict, np.random.Generator], dict],
        *,
        seed: int = 0,
        skip_bad: bool = False,
        eval_mode: bool = False,
    ):
        self.records = list(records)
        self.label_space = label_space
        self.transforms = transforms
        self.seed = int(seed)
        self.skip_bad = bool(skip_bad)
        self.eval_mode = bool(eval_mode)
        self.epoch = 0
        self.bad: set[int] = set()  # indices found bad in this process (skipped without re-reading)

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def load(self, index: int) -> dict[str, Any]:
        """The untransformed sample (numpy arrays) of ``index``; raises DataError for bad files."""
        rec = self.records[index]
        ls = self.label_space
        image = read_image(rec.image, apply_exif=rec.label is None)
        label, humans = load_label(rec, ls.num_classes, ls.ignore_index)
        if label is not None:
            check_pair(image, label, (rec.image, rec.label))
        if humans is not None:
            check_pair(image, humans, (rec.image, rec.human_ids or rec.label))
        meta = {
            "image_path": str(rec.image),
            "label_path": str(rec.label) if rec.label is not None else None,
            "orig_size": tuple(image.shape[:2]),
            "stem": rec.stem,
        }
        return {"image": image, "label": label, "human_ids": humans, "meta": meta}

    def _item(self, index: int) -> dict[str, Any]:
        rec = self.records[index]
        sample = self.load(index)
        if sample["label"] is None:
            sample["label"] = np.full(sample["image"].shape[:2], self.label_space.ignore_index, dtype=np.uint8)
        orig_label = sample["label"] if self.eval_mode else None
        out = self.transforms(sample, item_rng(self.seed, self.epoch, index))
        item = {"image": out["image"], "label": out["label"], "domain": rec.domain, "meta": out["meta"]}
        if out.get("human_ids") is not None:
            item["human_ids"] = out["human_ids"]
        if orig_label is not None:
            item["orig_label"] = torch.from_numpy(orig_label.astype(np.int64))
        return item

    def __getitem__(self, index: int) -> dict[str, Any]:
        if not -len(self) <= index < len(self):
            raise IndexError(f"index {index} out of range for {len(self)} samples")
        index %= len(self)
        if not self.skip_bad:
            return self._item(index)
        for step in range(len(self)):
            i = (index + step) % len(self)
            if i in self.bad:
                continue
            try:
                return self._item(i)
            except DataError as exc:
                self.bad.add(i)
                warnings.warn(f"skipping bad sample {i}: {exc}", RuntimeWarning, stacklevel=2)
        raise DataError(self.records[index].image, f"no readable sample in the dataset ({len(self)} tried)")
