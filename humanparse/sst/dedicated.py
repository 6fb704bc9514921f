"""Dedicated parsing with SST (paper Sec. 3.1, Fig. 3, Eq. 13): the training method ``"sst_dedicated"``.

Step 1 is not a separate method: it is ``"sst"`` trained on the source domain(s) with
``use_scr_dataset: false`` and ``use_scr_img: false`` (alpha L_seg + beta L_aux), saved as a training
checkpoint. (A universal SST checkpoint works as well: "universal-to-specific" transfer.)

Step 2 (this module) reads that checkpoint and keeps a frozen copy of the step-1 pipeline (network,
source heads, source MSA and MSE) in eval mode without gradients. On each target image the frozen
pipeline predicts the source-domain label map (its own argmax; target ignore pixels stay ignored),
which gives the source category masks for the frozen MSA, hence the source representations
X_0..X_3 and S_1..S_3. The trainable side is the parsing network (initialised from step 1 by
``initialize_model``, heads excluded; the target head is new) with a fresh target MSA/MSE and one
fresh MST per (source, target) pair. Loss:
alpha L_seg + beta L_aux + lambda (SCR_dataset + SCR_img) between frozen source and target.

The frozen copy is held in a plain tuple attribute, so it is not a registered sub-module: it is absent
from ``method.parameters()`` (never optimised) and from ``method.state_dict()`` (never saved; it is
rebuilt from ``source_checkpoint``). ``method.to(device)`` still moves it (``_apply`` is forwarded).
"""

from __future__ import annotations

import copy
from typing import Mapping, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..engine.methods import TrainingMethod, register_method
from ..engine.supervised import per_domain_cross_entropy
from ..errors import CheckpointError, ConfigError, check_keys
from .msa import MultiScaleSemanticAggregation, resize_labels
from .mse import MultiScaleSemanticEnhancement, auxiliary_logits
from .mst import MultiScaleSemanticTransfer
from .scr import scr_dataset
from .universal import (
    SCALE_KEYS, DomainEncoding, check_domain_name, check_model_head, check_options, check_trains_something,
    encode_domain, image_level_scr, resolve_label_spaces, static_prior_matrix,
)

__all__ = ["SSTDedicated", "FrozenSource", "init_from_step1", "CONFIG_KEYS"]

CONFIG_KEYS = (
    "source_checkpoint", "target_domain", "source_domains", "seg_weight", "aux_weight", "scr_weight",
    "lovasz_weight", "use_aux", "use_intra_prior", "use_scr_dataset", "use_scr_img", "static_prior", "scr_img_categories",
    "ignore_index",
)
_CHECKPOINT_KEYS = ("model_config", "model", "method_name", "method_config", "method", "label_spaces")


class FrozenSource(nn.Module):
    """The fixed step-1 pipeline: parsing network with its source heads, and per source domain an MSA
    and an MSE. Always in eval mode, no parameter requires a gradient."""

    def __init__(self, network: nn.Module, msa: Mapping[str, nn.Module], mse: Mapping[str, nn.Module]):
        super().__init__()
        self.network = network
        self.msa = nn.ModuleDict(msa)
        self.mse = nn.ModuleDict(mse)
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> "FrozenSource":
        return super().train(False)

    @property
    def domains(self) -> list[str]:
        return list(self.msa)

    @torch.no_grad()
    def encode(self, images: Tensor, labels: Tensor, *, ignore_index: int = 255) -> dict[str, DomainEncoding]:
        """Source representations of target images. The category masks are the frozen network's
        argmax at 1/4 resolution; pixels whose target label is ``ignore_index`` are ignored."""
        outputs = self.network(images, domains=self.domains)
        encodings = {}
        for domain in self.domains:
            logits = outputs["logits"][domain]
            ignored = resize_labels(labels, logits.shape[-2:]) == ignore_index
            pseudo = logits.argmax(dim=1).masked_fill(ignored, self.msa[domain].ignore_index)
            encodings[domain] = encode_domain(self.msa[domain], self.mse[domain], outputs["features"], pseudo)
        return encodings


def _head_prefixes(model: nn.Module) -> list[str]:
    from ..models import DomainHeads

    return [f"{name}." for name, module in model.named_modules() if isinstance(module, DomainHeads)]


def init_from_step1(model: nn.Module, checkpoint: Mapping) -> list[str]:
    """Copy the step-1 network weights (backbone, encoder, decoder; every head excluded) into ``model``
    in place, so an optimiser built on ``model`` keeps its parameters. ``checkpoint``: a training
    checkpoint dict (its ``"model"`` state dict is used). Returns the copied keys.

    Raises CheckpointError listing the missing, unexpected or mismatched keys when the two networks'
    architectures differ outside the heads."""
    if "model" not in checkpoint:
        raise CheckpointError("init_from_step1 needs a training checkpoint dict with a 'model' state dict")
    source = checkpoint["model"]
    heads = tuple(_head_prefixes(model))  # same architecture, so the same head prefixes in both
    target = {k: v for k, v in model.state_dict().items() if not k.startswith(heads)}
    source = {k: v for k, v in source.items() if not k.startswith(heads)}
    missing = sorted(set(target) - set(source))
    unexpected = sorted(set(source) - set(target))
    mismatched = sorted(k for k in set(target) & set(source) if tuple(target[k].shape) != tuple(source[k].shape))
    if missing or unexpected or mismatched:
        raise CheckpointError(
            "the step-1 network does not match the model outside its heads: "
            f"missing {missing[:10]}, unexpected {unexpected[:10]}, shape-mismatched {mismatched[:10]} "
            "(use the same model section as in step 1)"
        )
    with torch.no_grad():
        for key, tensor in target.items():
            tensor.copy_(source[key].to(device=tensor.device, dtype=tensor.dtype))
    return sorted(target)


def _rebuild_network(model_config: Mapping) -> nn.Module:
    """The step-1 network from its stored ``config`` (``build_network(**config)``), without
    loading pretrained backbone weights (the checkpoint's weights replace them)."""
    from ..models import build_network

    config = copy.deepcopy(dict(model_config or {}))
    if set(config) != {"model_cfg", "num_classes"}:
        raise CheckpointError(
            f"the checkpoint's model_config has keys {sorted(config)}; expected model_cfg, num_classes"
        )
    backbone = config["model_cfg"].get("backbone")
    if isinstance(backbone, dict):
        backbone["pretrained"] = None
    return build_network(**config)


def _load_subset(module: nn.Module, state: Mapping[str, Tensor], prefix: str, what: str) -> None:
    subset = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
    missing = sorted(set(module.state_dict()) - set(subset))
    if missing:
        raise CheckpointError(
            f"the step-1 checkpoint has no trained {what} (missing {missing[:5]}); "
            "train step 1 with method sst and use_aux: true"
        )
    try:
        module.load_state_dict(subset, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"the step-1 {what} does not match: {exc}") from None


@register_method("sst_dedicated")
class SSTDedicated(TrainingMethod):
    """Step 2 of dedicated parsing. Build it with ``from_config`` (reads ``source_checkpoint``) or
    ``from_step1_state`` (a checkpoint dict already in memory), or directly from a ``FrozenSource``.

    Args:
        source: the frozen step-1 pipeline.
        target_domain: name of the target label domain (the model must have its head).
        target_num_classes: Z_t.
        feature_dim: D of the model (must equal the source network's).
        target_adjacency: M_intra of the target domain, or None (no prior).
        static_priors: {source domain: M_static [Z_t, Z_s]} (needed when ``use_scr_dataset``).
        seg_weight, aux_weight, scr_weight, lovasz_weight, use_*, scr_img_categories, ignore_index: as for
            ``SSTUniversal``.
    """

    def __init__(
        self,
        *,
        source: FrozenSource,
        target_domain: str,
        target_num_classes: int,
        feature_dim: int,
        target_adjacency: np.ndarray | Tensor | None = None,
        static_priors: Mapping[str, np.ndarray | Tensor] | None = None,
        seg_weight: float = 10.0,
        aux_weight: float = 1.0,
        scr_weight: float = 5.0,
        lovasz_weight: float = 0.0,
        use_aux: bool = True,
        use_intra_prior: bool = True,
        use_scr_dataset: bool = True,
        use_scr_img: bool = True,
        scr_img_categories: str = "all",
        ignore_index: int = 255,
    ):
        super().__init__()
        check_domain_name(target_domain)
        check_trains_something("sst_dedicated method", use_aux=use_aux, use_scr_dataset=use_scr_dataset,
                               use_scr_img=use_scr_img)
        self.scr_img_categories = scr_img_categories
        if target_domain in source.domains:
            raise ConfigError(f"target_domain {target_domain!r} is also a source domain of the step-1 pipeline")
        source_dim = getattr(source.network, "feature_dim", feature_dim)
        if int(source_dim) != int(feature_dim):
            raise ConfigError(f"the step-1 network has feature width {source_dim} but the model has {feature_dim}")
        self._source = (source,)  # not a sub-module: no parameters(), no state_dict()
        self.target_domain = target_domain
        self.source_domains = source.domains
        self.seg_weight, self.aux_weight, self.scr_weight = float(seg_weight), float(aux_weight), float(scr_weight)
        self.lovasz_weight = float(lovasz_weight)
        self.use_aux, self.use_intra_prior = use_aux, use_intra_prior
        self.use_scr_dataset, self.use_scr_img = use_scr_dataset, use_scr_img
        self.ignore_index = ignore_index
        self.pairs = [(s, target_domain) for s in self.source_domains] if (use_scr_dataset or use_scr_img) else []

        needs_layers = use_aux or use_scr_img
        self.msa, self.mse, self.mst = nn.ModuleDict(), nn.ModuleDict(), nn.ModuleDict()
        if needs_layers:
            self.msa[target_domain] = MultiScaleSemanticAggregation(
                feature_dim, target_num_classes, ignore_index=ignore_index
            )
        if needs_layers or use_scr_dataset:
            self.mse[target_domain] = MultiScaleSemanticEnhancement(
                feature_dim, target_num_classes, adjacency=target_adjacency, use_intra_prior=use_intra_prior,
                num_layers=len(SCALE_KEYS) if needs_layers else 0,
            )
        static_priors = static_priors or {}
        for src, tgt in self.pairs:
            if use_scr_dataset and src not in static_priors:
                raise ConfigError(f"no static prior given for the SST domain pair ({src!r}, {tgt!r})")
            self.mst[f"{src}-{tgt}"] = MultiScaleSemanticTransfer(
                feature_dim, source.msa[src].num_classes, target_num_classes,
                static_prior=static_priors[src] if use_scr_dataset else None,
                num_scales=len(SCALE_KEYS) if use_scr_img else 0,
            )

    # ------------------------------------------------------------------ construction
    @classmethod
    def from_config(cls, cfg: Mapping, *, model: nn.Module, label_spaces: Mapping) -> "SSTDedicated":
        """``cfg`` keys: see ``CONFIG_KEYS``; ``source_checkpoint`` and ``target_domain`` are required."""
        cfg = dict(cfg or {})
        check_keys("sst_dedicated method key", cfg, CONFIG_KEYS)
        for key in ("source_checkpoint", "target_domain"):
            if not cfg.get(key):
                raise ConfigError(f"the sst_dedicated method needs {key!r} (see docs/sst.md)")
        from ..engine.checkpoint import load_training_checkpoint

        state = load_training_checkpoint(cfg.pop("source_checkpoint"))
        return cls.from_step1_state(state, model=model, label_spaces=label_spaces, **cfg)

    @classmethod
    def from_step1_state(
        cls,
        state: Mapping,
        *,
        model: nn.Module,
        label_spaces: Mapping,
        target_domain: str,
        source_domains: Sequence[str] | None = None,
        static_prior: str = "embedding",
        **options,
    ) -> "SSTDedicated":
        """Build from a step-1 training checkpoint dict (keys: model_config, model, method_name,
        method_config, method, label_spaces)."""
        check_options("sst_dedicated method", {**options, "static_prior": static_prior})
        missing = [k for k in _CHECKPOINT_KEYS if k not in state]
        if missing:
            raise CheckpointError(f"the step-1 checkpoint lacks {missing}; it must be a humanparse training checkpoint")
        if state["method_name"] != "sst":
            raise CheckpointError(
                f"the step-1 checkpoint was trained with method {state['method_name']!r}; "
                "dedicated parsing needs step 1 trained with method sst"
            )
        step1 = dict(state["method_config"] or {})
        step1.pop("name", None)
        stored_spaces = resolve_label_spaces(state["label_spaces"])
        sources = list(source_domains) if source_domains else list(stored_spaces)
        for domain in sources:
            if domain not in stored_spaces:
                raise ConfigError(
                    f"source domain {domain!r} is not in the step-1 checkpoint (it has {sorted(stored_spaces)})"
                )
        if target_domain in sources:
            raise ConfigError(
                f"target_domain {target_domain!r} is a source domain of the step-1 checkpoint; "
                "list the others under source_domains"
            )
        if target_domain not in label_spaces:
            raise ConfigError(
                f"target_domain {target_domain!r} is not a domain of this experiment ({sorted(label_spaces)})"
            )
        target_space = resolve_label_spaces({target_domain: label_spaces[target_domain]})[target_domain]
        check_model_head(model, target_domain, target_space.num_classes)

        network = _rebuild_network(state["model_config"])
        try:
            network.load_state_dict(state["model"], strict=True)
        except RuntimeError as exc:
            raise CheckpointError(f"the step-1 network weights do not match its model_config: {exc}") from None
        dim = int(network.feature_dim)
        msa, mse = {}, {}
        for domain in sources:
            check_model_head(network, domain, stored_spaces[domain].num_classes)
            msa[domain] = MultiScaleSemanticAggregation(
                dim, stored_spaces[domain].num_classes, ignore_index=step1.get("ignore_index", 255))
            mse[domain] = MultiScaleSemanticEnhancement(
                dim, stored_spaces[domain].num_classes, adjacency=stored_spaces[domain].adjacency,
                use_intra_prior=step1.get("use_intra_prior", True), num_layers=len(SCALE_KEYS))
            _load_subset(msa[domain], state["method"], f"msa.{domain}.", f"MSA of domain {domain!r}")
            _load_subset(mse[domain], state["method"], f"mse.{domain}.", f"MSE of domain {domain!r}")
        source = FrozenSource(network, msa, mse)

        priors = {}
        if options.get("use_scr_dataset", True):
            priors = {s: static_prior_matrix(stored_spaces[s], target_space, static_prior) for s in sources}
        return cls(
            source=source, target_domain=target_domain, target_num_classes=target_space.num_classes,
            feature_dim=int(model.feature_dim), target_adjacency=target_space.adjacency,
            static_priors=priors, **options,
        )

    # ------------------------------------------------------------------ the frozen side
    @property
    def source(self) -> FrozenSource:
        return self._source[0]

    def _apply(self, fn, *args, **kwargs):
        # .to()/.cuda()/.float() reach the frozen copy although it is not a sub-module.
        super()._apply(fn, *args, **kwargs)
        self._source[0]._apply(fn, *args, **kwargs)
        return self

    def initialize_model(self, model: nn.Module) -> None:
        """Called by the trainer before the first step (not on resume): step-1 weights, heads excluded."""
        init_from_step1(model, {"model": self.source.network.state_dict()})

    # ------------------------------------------------------------------ training
    def training_step(self, model: nn.Module, batch: dict) -> dict[str, Tensor]:
        target = self.target_domain
        domains = list(batch["domain"])
        others = sorted(set(domains) - {target})
        if others:
            raise ConfigError(f"sst_dedicated trains on {target!r} only, but the batch has {others}")
        images, labels = batch["image"], batch["label"]
        outputs = model(images, domains=[target])
        seg = per_domain_cross_entropy(outputs["logits"], labels, domains, ignore_index=self.ignore_index,
                                       lovasz_weight=self.lovasz_weight)
        terms = {f"seg/{target}": self.seg_weight * seg[target]}

        encoding = None
        if len(self.msa):
            encoding = encode_domain(self.msa[target], self.mse[target], outputs["features"], labels)
            if self.use_aux:
                aux = auxiliary_logits(outputs["features"]["F"], encoding.mse.representations[-1])
                loss = per_domain_cross_entropy({target: aux}, labels, domains, ignore_index=self.ignore_index)
                terms[f"aux/{target}"] = self.aux_weight * loss[target]
        if not self.pairs:
            return terms

        source = self.source
        first = next(source.parameters(), None)
        if first is not None and first.device != images.device:
            source.to(images.device)
        source_encodings = source.encode(images, labels, ignore_index=self.ignore_index) if self.use_scr_img else {}
        for src, tgt in self.pairs:
            name = f"{src}-{tgt}"
            mst = self.mst[name]
            if self.use_scr_dataset:
                x0_s, x0_t = source.mse[src].embedding, self.mse[tgt].embedding
                mapped = mst.dataset_level(x0_s, x0_t)
                terms[f"scr_dataset/{name}"] = self.scr_weight * scr_dataset(
                    x0_s, x0_t, mapped.one_to_two, mapped.two_to_one)
            if self.use_scr_img:
                terms[f"scr_img/{name}"] = self.scr_weight * image_level_scr(
                    mst, source_encodings[src], encoding, categories=self.scr_img_categories)
        return terms
