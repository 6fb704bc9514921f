"""The ``semantic`` recipe: single-domain, multi-domain ("Multi-datasets") and SST parsing.

Config sections it reads::

    domains:                      # one entry per label domain / head
      lip:
        label_space: lip          # built-in name or path to a label-space YAML (default: the key)
        train: {reader: folder, root: samples://lip, split: train}
        val:   {reader: folder, root: samples://lip, split: val}
    model: {backbone: {...}, encoder: {...}, decoder: {...}}
    method: {name: supervised | sst | sst_dedicated, ...}
    data: {transforms: {...}, domain_weights: {...}, skip_bad: false}
    eval: {long_side: null, tta: false, scales: [...], batch_size: 4, max_images: null}
"""

from __future__ import annotations

import os
from pathlib import Path

from torch import nn

from ..config import section
from ..errors import ConfigError, check_keys
from .methods import build_method
from .recipes import Recipe, register_recipe

DOMAIN_KEYS = {"label_space", "train", "val", "weight"}
DATA_KEYS = {"transforms", "domain_weights", "skip_bad"}
EVAL_KEYS = {"long_side", "tta", "scales", "batch_size", "max_images", "domains"}


def resolve_root(root: str | Path, base: Path) -> Path:
    """``samples://x`` -> the embedded sample data; ``shared://x`` -> $HUMANPARSE_DATA (default ../shared/data)."""
    root = str(root)
    if root.startswith("samples://"):
        from ..data.sample_data import sample_data_root

        return Path(sample_data_root()) / root[len("samples://"):]
    if root.startswith("shared://"):
        return Path(os.environ.get("HUMANPARSE_DATA", "../shared/data")) / root[len("shared://"):]
    path = Path(os.path.expanduser(root))
    return path if path.is_absolute() else base / path


def read_split(split_cfg: dict | list, domain: str, base: Path):
    """Records of one split from its config entry (reader, root, split, reader options), or of a list of
    such entries (several sources of one label domain, e.g. CIHP and the CIHP cut-outs), concatenated."""
    from ..data.readers import read_dataset

    if isinstance(split_cfg, list):
        return [rec for entry in split_cfg for rec in read_split(entry, domain, base)]
    if not isinstance(split_cfg, dict):
        raise ConfigError(f"domains.{domain}: a split is a mapping (reader, root, split) or a list of them")
    opts = dict(split_cfg)  # reader options are checked by the reader itself
    if "domain" in opts:
        raise ConfigError(f"domains.{domain}: 'domain' is the key above the split ({domain!r}), not a split option; "
                          "remove it from the split entry")
    reader = opts.pop("reader", "folder")
    if "root" not in opts:
        raise ConfigError(f"domains.{domain}: a split needs 'root' (a folder, samples://NAME or shared://NAME)")
    root = resolve_root(opts.pop("root"), base)
    split = opts.pop("split", "all")
    limit = opts.pop("limit", None)
    records = read_dataset(reader, root, split, domain=domain, **opts)
    return records[: int(limit)] if limit else records


def labelled_samples(records, label_space):
    """(image, label) pairs at original resolution; a label whose size differs from its image is a DataError
    naming both files."""
    from ..data.io import check_pair, load_label, read_image

    for rec in records:
        label, _ = load_label(rec, label_space.num_classes, label_space.ignore_index)
        image = read_image(rec.image)
        check_pair(image, label, (rec.image, rec.label))
        yield image, label


@register_recipe("semantic")
class SemanticRecipe(Recipe):
    def __init__(self, cfg: dict, *, root: Path | str = "."):
        super().__init__(cfg, root=root)
        from ..labels import get_label_space

        domains = cfg.get("domains")
        if not domains or not isinstance(domains, dict):
            raise ConfigError("config needs a 'domains' mapping: one entry per label domain (see configs/)")
        self.domain_cfg: dict[str, dict] = {}
        self.label_spaces = {}
        for name, dcfg in domains.items():
            dcfg = dict(dcfg or {})
            check_keys(f"key in domains.{name}", dcfg, DOMAIN_KEYS)
            self.domain_cfg[name] = dcfg
            self.label_spaces[name] = get_label_space(dcfg.get("label_space", name))
        self.data_cfg = section(cfg, "data", DATA_KEYS)
        self.eval_cfg = section(cfg, "eval", EVAL_KEYS)
        self._val_cache: dict[str, list] = {}

    # -- model and method ------------------------------------------------------------------
    def build_model(self) -> nn.Module:
        from ..models import build_network

        model_cfg = self.cfg.get("model") or {}
        return build_network(model_cfg, {d: ls.num_classes for d, ls in self.label_spaces.items()})

    def build_method(self, model: nn.Module) -> nn.Module:
        mcfg = dict(self.cfg.get("method") or {})
        name = mcfg.pop("name", "supervised")
        return build_method(name, mcfg, model=model, label_spaces=self.label_spaces)

    def label_space_dicts(self) -> dict[str, dict]:
        return {d: ls.to_dict() for d, ls in self.label_spaces.items()}

    # -- data ------------------------------------------------------------------------------
    def build_train_dataset(self):
        from ..data.dataset import ParsingDataset
        from ..data.multi_domain import MultiDomainDataset
        from ..data.transforms import build_train_transforms

        seed = int(self.cfg.get("seed", 0))
        datasets = {}
        for name, dcfg in self.domain_cfg.items():
            if "train" not in dcfg:
                continue
            records = read_split(dcfg["train"], name, self.root)
            transforms = build_train_transforms(self.data_cfg.get("transforms") or {}, self.label_spaces[name])
            datasets[name] = ParsingDataset(records, self.label_spaces[name], transforms, seed=seed,
                                            skip_bad=bool(self.data_cfg.get("skip_bad", False)))
        if not datasets:
            raise ConfigError("no domain has a 'train' split: nothing to train on")
        return MultiDomainDataset(datasets)

    def build_batch_sampler(self, dataset, *, batch_size: int, seed: int, rank: int = 0, world_size: int = 1):
        from ..data.multi_domain import MixedDomainBatchSampler

        # domain_weights: at_least_one (default) | proportional | balanced | {domain: weight}; the sampler
        # prints each domain's share and passes per epoch
        sampler = MixedDomainBatchSampler.from_config(dataset.domains, dataset.sizes, self.data_cfg.get("domain_weights"),
                                                      batch_size, seed=seed, rank=rank, world_size=world_size)
        return _EpochBatches(sampler)

    def collate(self, items):
        from ..data.multi_domain import collate_parsing

        return collate_parsing(items)

    # -- evaluation ------------------------------------------------------------------------
    def val_samples(self, domain: str, max_images: int | None = None):
        """(image, label) pairs of a domain's val split, at original resolution."""
        if domain not in self._val_cache:
            self._val_cache[domain] = read_split(self.domain_cfg[domain]["val"], domain, self.root)
        return labelled_samples(self._val_cache[domain][: max_images or None], self.label_spaces[domain])

    def evaluate(self, model: nn.Module, *, max_images: int | None = None, tta: bool | None = None) -> dict:
        from .evaluator import evaluate_domain

        device = next(model.parameters()).device
        max_images = max_images or self.eval_cfg.get("max_images")
        tta = bool(self.eval_cfg.get("tta", False)) if tta is None else tta
        results: dict = {}
        for domain, dcfg in self.domain_cfg.items():
            if "val" not in dcfg:
                continue
            r = evaluate_domain(model, self.val_samples(domain, max_images), domain, self.label_spaces[domain],
                                long_side=self.eval_cfg.get("long_side"), tta=tta, scales=self.eval_cfg.get("scales"),
                                batch_size=int(self.eval_cfg.get("batch_size", 4)), device=device)
            for key in ("mIoU", "mean_acc", "pixel_acc"):
                results[f"{domain}/{key}"] = r[key]
            results[f"{domain}/per_class_iou"] = r["per_class_iou"]
        return results

    def inference_model(self, model: nn.Module) -> nn.Module:
        return model  # the ParsingNetwork itself: SST modules live in the method, never in the model

    def inference_settings(self) -> dict:
        """The size the network was evaluated at: the default input size of eval, parse and Parser."""
        long_side = self.eval_cfg.get("long_side")
        return {"long_side": int(long_side)} if long_side else {}


class _EpochBatches:
    """Adapts a ``set_epoch`` + ``__iter__`` batch sampler to the trainer's ``batches_for_epoch``."""

    def __init__(self, sampler):
        self.sampler = sampler

    def batches_for_epoch(self, epoch: int) -> list[list[int]]:
        self.sampler.set_epoch(epoch)
        return [list(b) for b in self.sampler]
