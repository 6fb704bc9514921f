"""The ``uniparser`` recipe (multi-person parsing) and its training method.

Config sections it reads (every key is checked; unknown keys raise ConfigError with close matches)::

    recipe: uniparser
    model:  {backbone: {name, pretrained}, fpn_dim, feat_dim, num_classes, S, light, neck_kernel,
             num_convs, gn_groups}                      # num_classes defaults to the label space's
    loss:   {center_weight, aux_weight, aux_ins_weight, aux_cate_weight, aux_neg_weight, par_weight,
             metric_weight, sigma, center_radius, focal_alpha, focal_gamma}
            # aux_ins_weight / aux_cate_weight default to aux_weight (Table 4(b) rows set them apart)
    data:   {label_space,                               # target space, e.g. lip
             sources: [{reader, root, split, ...}],     # single-person data -> composed scenes
             val_sources: [...],                        # held-out persons -> held-out scenes
             canvas: [H, W], persons: [min, max], height_range: [lo, hi], flip_prob, max_outside,
             min_visible, cutout_max_height, scenes_per_epoch, val_scenes,
             real_train: [...],                         # real instance data (CIHP Human_ids ...)
             real_val: [...],                           # e.g. PASCAL-Person-Part instances/
             real_long_side, real_scale_range,           # longer side x a random factor, or
             real_short_sides, real_max_long_side}      # the paper: short side drawn from the list
                                                        # (largest at eval), long side capped
    eval:   {theta_ctr, theta_mask, peak_kernel, max_persons, long_side, batch_size, real_mode}
    method: {name: uniparser}                           # optional
    train:  {...}                                       # the trainer's keys

A source entry: ``{reader, root, split, label_space, limit, val_fraction, split_seed}``; ``root``
accepts ``samples://NAME`` and ``shared://NAME``; ``label_space`` defaults to the reader's domain.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import Tensor, nn

from ..config import section
from ..engine.methods import TrainingMethod, register_method
from ..engine.recipes import Recipe, register_recipe
from ..errors import ConfigError, check_keys
from .losses import UniParserLoss

__all__ = ["UniParserMethod", "UniParserRecipe"]

LOSS_KEYS = ("center_weight", "aux_weight", "aux_ins_weight", "aux_cate_weight", "aux_neg_weight", "par_weight", "metric_weight", "sigma",
             "center_radius", "focal_alpha", "focal_gamma")
DATA_KEYS = ("label_space", "sources", "val_sources", "canvas", "persons", "height_range", "flip_prob",
             "max_outside", "min_visible", "cutout_max_height", "scenes_per_epoch", "val_scenes",
             "real_train", "real_val", "real_long_side", "real_scale_range", "real_short_sides", "real_max_long_side",
             "backgrounds", "val_backgrounds", "background_prob")
SOURCE_KEYS = ("reader", "root", "split", "label_space", "limit", "val_fraction", "split_seed")
EVAL_KEYS = ("theta_ctr", "theta_mask", "peak_kernel", "max_persons", "long_side", "batch_size", "real_mode")
METHOD_KEYS = ("name",)
VAL_SEED_OFFSET = 1_000_003  # held-out scenes use a seed no training scene uses


@register_method("uniparser")
class UniParserMethod(TrainingMethod):
    """Forward the network, build the targets from the batch's ``person``/``part`` maps, return the
    weighted loss terms (``center``, ``aux_ins``, ``aux_cate``, ``aux_neg``, ``par``, ``metric``)."""

    def __init__(self, *, num_classes: int, grid: int = 40, **loss_kwargs):
        super().__init__()
        self.loss = UniParserLoss(num_classes=num_classes, grid=grid, **loss_kwargs)

    @classmethod
    def from_config(cls, cfg: dict, *, model: nn.Module, label_spaces: dict | None = None) -> "UniParserMethod":
        check_keys("key in 'loss'", cfg, LOSS_KEYS)
        return cls(num_classes=model.num_classes, grid=model.S, **cfg)

    def training_step(self, model: nn.Module, batch: dict) -> dict[str, Tensor]:
        outputs = model(batch["image"])
        # built on the batch's device (the model's): no per-image CPU work in the training step
        targets = self.loss.targets(batch["person"], batch["part"], batch.get("person_parts"))
        return self.loss(outputs, targets)


def _pair(value, name: str, cast=float) -> tuple:
    if not isinstance(value, (list, tuple)) or len(value) != 2:
        raise ConfigError(f"data.{name} must be a list of two numbers, got {value!r}")
    return cast(value[0]), cast(value[1])


@register_recipe("uniparser")
class UniParserRecipe(Recipe):
    def __init__(self, cfg: dict, *, root: Path | str = "."):
        super().__init__(cfg, root=root)
        from ..labels import get_label_space

        self.model_cfg = dict(cfg.get("model") or {})
        self.loss_cfg = section(cfg, "loss", LOSS_KEYS)
        self.data_cfg = section(cfg, "data", DATA_KEYS)
        self.eval_cfg = section(cfg, "eval", EVAL_KEYS)
        method_cfg = section(cfg, "method", METHOD_KEYS)
        if method_cfg.get("name", "uniparser") != "uniparser":
            raise ConfigError(f"recipe 'uniparser' trains with method 'uniparser', not {method_cfg['name']!r}")
        self.label_space = get_label_space(self.data_cfg.get("label_space", "lip"))
        n = self.model_cfg.setdefault("num_classes", self.label_space.num_classes)
        if n != self.label_space.num_classes:
            raise ConfigError(f"model.num_classes is {n} but label space {self.label_space.name!r} has "
                              f"{self.label_space.num_classes} classes; remove model.num_classes or make them agree")
        self.seed = int(cfg.get("seed", 0))

    # -- model and method ------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        from .model import build_uniparser

        return build_uniparser(self.model_cfg)

    def build_method(self, model: nn.Module) -> TrainingMethod:
        return UniParserMethod.from_config(dict(self.loss_cfg), model=model)

    def label_space_dicts(self) -> dict[str, dict]:
        return {self.label_space.name: self.label_space.to_dict()}

    # -- data ------------------------------------------------------------------------------
    def _records(self, key: str, *, mapped: bool = True):
        """(records, {domain: LabelSpace}, {domain: source -> target id table}) of data.<key>.

        ``mapped=False`` keeps the source ids (identity tables): for scoring person masks only.
        """
        from ..engine.semantic_recipe import resolve_root
        from ..data.readers import read_dataset
        from ..labels import get_label_space

        entries = self.data_cfg.get(key) or []
        if not isinstance(entries, list):
            raise ConfigError(f"data.{key} must be a list of sources ({{reader, root, split}})")
        records, spaces, maps = [], {}, {}
        for i, entry in enumerate(entries):
            entry = dict(entry or {})
            check_keys(f"key in data.{key}[{i}]", entry, SOURCE_KEYS)
            if "root" not in entry:
                raise ConfigError(f"data.{key}[{i}] needs 'root' (a folder, samples://NAME or shared://NAME)")
            reader = entry.pop("reader", "shared")
            root = resolve_root(entry.pop("root"), self.root)
            split = entry.pop("split", "all")
            limit = entry.pop("limit", None)
            space_name = entry.pop("label_space", None)
            recs = read_dataset(reader, root, split, domain=space_name, **entry)
            recs = recs[: int(limit)] if limit else recs
            for rec in recs:
                if rec.domain not in spaces:
                    spaces[rec.domain] = get_label_space(rec.domain)
                    maps[rec.domain] = (spaces[rec.domain].mapping_to(self.label_space) if mapped
                                        else np.arange(spaces[rec.domain].num_classes))
            records += recs
        return records, spaces, maps

    def composer(self, key: str, seed: int):
        from .compose import SceneComposer
        from .dataset import PersonCutouts

        records, spaces, maps = self._records(key)
        if not records:
            raise ConfigError(f"data.{key} lists no single-person data to compose scenes from")
        d = self.data_cfg
        canvas = _pair(d.get("canvas", [256, 256]), "canvas", int)
        cutouts = PersonCutouts(records, spaces, maps, max_height=int(d.get("cutout_max_height", canvas[0])))
        # person-free real photos behind the persons: data.backgrounds for training, data.val_backgrounds for
        # the held-out scenes (photos of the held-out split, so no training photo shows up in evaluation)
        bg_key = {"sources": "backgrounds", "val_sources": "val_backgrounds"}.get(key)
        backgrounds = None
        if bg_key and d.get(bg_key):
            from .dataset import BackgroundPhotos

            bg_records, bg_spaces, _ = self._records(bg_key, mapped=False)
            backgrounds = BackgroundPhotos(bg_records, bg_spaces, max_side=2 * max(canvas)) if bg_records else None
        return SceneComposer(
            cutouts, num_cutouts=len(cutouts), canvas=canvas,
            backgrounds=backgrounds, num_backgrounds=len(backgrounds) if backgrounds else None,
            background_prob=float(d.get("background_prob", 0.5)),
            persons=_pair(d.get("persons", [1, 4]), "persons", int),
            height_range=_pair(d.get("height_range", [0.45, 0.95]), "height_range"),
            flip_prob=float(d.get("flip_prob", 0.5)), flip_permutation=self.label_space.flip_permutation,
            max_outside=float(d.get("max_outside", 0.15)), min_visible=int(d.get("min_visible", 1)), seed=seed,
        )

    def _real(self, key: str, *, train: bool, mapped: bool = True):
        from .dataset import InstanceParsingDataset

        records, spaces, maps = self._records(key, mapped=mapped)
        if not records:
            return None
        d = self.data_cfg
        shorts = d.get("real_short_sides")
        if shorts is not None and (not isinstance(shorts, list) or not shorts):
            raise ConfigError(f"data.real_short_sides must be a non-empty list of sizes, got {shorts!r}")
        if shorts and d.get("real_long_side") is not None:
            raise ConfigError("give data.real_long_side or data.real_short_sides, not both")
        return InstanceParsingDataset(
            records, spaces, maps, long_side=d.get("real_long_side"),
            scale_range=_pair(d.get("real_scale_range", [1.0, 1.0]), "real_scale_range"),
            short_sides=tuple(int(v) for v in shorts) if shorts else None,
            max_long_side=d.get("real_max_long_side"),
            flip_prob=float(d.get("flip_prob", 0.5)) if train else 0.0,
            flip_permutation=self.label_space.flip_permutation, seed=self.seed, train=train,
        )

    def build_train_dataset(self):
        from .dataset import ComposedScenes, ConcatScenes

        parts = []
        if self.data_cfg.get("sources"):
            parts.append(ComposedScenes(self.composer("sources", self.seed), int(self.data_cfg.get("scenes_per_epoch", 1000))))
        real = self._real("real_train", train=True) if self.data_cfg.get("real_train") else None
        if real is not None:
            parts.append(real)
        if not parts:
            raise ConfigError("nothing to train on: give data.sources (composed scenes) and/or data.real_train")
        return parts[0] if len(parts) == 1 else ConcatScenes(parts)

    def held_out_scenes(self):
        """The fixed held-out composed scenes (persons of data.val_sources, a seed no training scene uses)."""
        from .dataset import ComposedScenes

        if getattr(self, "_held_out", None) is None:
            self._held_out = ComposedScenes(self.composer("val_sources", self.seed + VAL_SEED_OFFSET),
                                            int(self.data_cfg.get("val_scenes", 50)), fixed=True)
        return self._held_out

    def build_batch_sampler(self, dataset, *, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        from .dataset import EpochBatches

        return EpochBatches(len(dataset), batch_size, seed=seed, rank=rank, world_size=world_size)

    def collate(self, items):
        from .dataset import collate_instances

        return collate_instances(items)

    # -- evaluation ------------------------------------------------------------------------
    def _thresholds(self) -> dict:
        e = self.eval_cfg
        return {"theta_ctr": float(e.get("theta_ctr", 0.1)), "theta_mask": float(e.get("theta_mask", 0.5)),
                "peak_kernel": int(e.get("peak_kernel", 3)), "max_persons": int(e.get("max_persons", 100))}

    def _predict_all(self, model, images, long_side):
        from .inference import predict

        bs = int(self.eval_cfg.get("batch_size", 4))
        device = next(model.parameters()).device
        out = []
        for k in range(0, len(images), bs):
            out += predict(model, images[k:k + bs], device=device, long_side=long_side, **self._thresholds())
        return out

    def evaluate(self, model: nn.Module, *, max_images: int | None = None) -> dict[str, float]:
        """AP^p / PCP on the held-out composed scenes (``composed/...``: parts; ``composed_persons/...``:
        person masks only) and, when ``data.real_val``
        is given, on those real images (``real/...``; ``eval.real_mode: persons`` scores person masks
        only, as one foreground class; ``parts`` scores the mapped part labels)."""
        from ..metrics.instance import evaluate_instances

        was_training = model.training
        model.eval()
        results: dict[str, float] = {}
        try:
            if self.data_cfg.get("val_sources"):
                scenes = self.held_out_scenes()
                n = len(scenes) if max_images is None else min(len(scenes), int(max_images))
                data = [scenes.composer.compose(scenes.scene_index(i)) for i in range(n)]
                preds = self._predict_all(model, [s.image for s in data], None)
                scores = [{q["id"]: q["score"] for q in p["persons"]} for p in preds]
                r = evaluate_instances(
                    [(s.parts, s.person_ids, p["parts"], p["person_ids"], sc) for s, p, sc in zip(data, preds, scores)],
                    self.label_space.num_classes)
                results.update(_flat("composed", r))
                # the same predictions scored on person masks only (one foreground class), as for real/
                fg = [np.where(s.parts == 255, 255, (s.parts > 0).astype(np.uint8)).astype(np.uint8) for s in data]
                r = evaluate_instances(
                    [(g, s.person_ids, (p["person_ids"] > 0).astype(np.uint8), p["person_ids"], sc)
                     for g, s, p, sc in zip(fg, data, preds, scores)], 2)
                results.update({k: v for k, v in _flat("composed_persons", r).items() if "num_" not in k})
            if self.data_cfg.get("real_val"):
                results.update(self.evaluate_real(model, max_images=max_images))
        finally:
            model.train(was_training)
        return results

    def evaluate_real(self, model: nn.Module, *, max_images: int | None = None) -> dict[str, float]:
        """AP^p / PCP on data.real_val against one ground-truth map per person (MHPv2 persons stay
        apart where they overlap; ignore counts per person, as the official script)."""
        from ..metrics.instance import InstanceEvaluator, maps_from_ids

        mode = self.eval_cfg.get("real_mode", "persons")
        if mode not in ("persons", "parts"):
            raise ConfigError(f"eval.real_mode must be 'persons' or 'parts', got {mode!r}")
        real = self._real("real_val", train=False, mapped=(mode == "parts"))
        n = len(real) if max_images is None else min(len(real), int(max_images))
        loaded = [real.load_persons(i) for i in range(n)]
        preds = self._predict_all(model, [im for im, _ in loaded], self.eval_cfg.get("long_side"))
        classes = 2 if mode == "persons" else self.label_space.num_classes
        ev = InstanceEvaluator(classes)
        for (_, gt_maps), p in zip(loaded, preds):
            ids = [q["id"] for q in p["persons"]]
            pred_parts = (p["person_ids"] > 0).astype(np.uint8) if mode == "persons" else p["parts"]
            if mode == "persons":  # every foreground part is "person"; ignore stays ignore
                gt_maps = np.where(gt_maps == 255, 255, (gt_maps > 0).astype(np.uint8)).astype(np.uint8)
            ev.add_persons(gt_maps, maps_from_ids(pred_parts, p["person_ids"], ids), [q["score"] for q in p["persons"]])
        return _flat("real", ev.compute())

    def inference_model(self, model: nn.Module) -> nn.Module:
        return model  # the losses live in the method; the network has no training-only part

    def inference_settings(self) -> dict:
        """The size the model was evaluated at: the default input size of ``parse --task multi``."""
        long_side = self.eval_cfg.get("long_side")
        return {"long_side": int(long_side)} if long_side else {}


def _flat(prefix: str, r: dict) -> dict[str, float]:
    out = {f"{prefix}/{k}": r[k] for k in ("APp50", "APpvol", "PCP50") if r[k] is not None}
    out[f"{prefix}/num_gt_persons"] = r["num_gt_persons"]
    out[f"{prefix}/num_predictions"] = r["num_predictions"]
    return out
