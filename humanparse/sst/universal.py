"""Universal parsing with SST (paper Sec. 3.1, Eq. 12): the training method ``"sst"``.

    L_u = alpha * sum_d L_seg^d + beta * sum_d L_aux^d + lambda * sum_pairs (L_SCR^dataset + L_SCR^img)

The method owns, per label domain, an MSA and an MSE, and per domain pair an MST; the parsing network
is shared and only its heads are per domain. ``training_step`` returns each term already weighted,
under ``seg/<d>``, ``aux/<d>``, ``scr_dataset/<d1>-<d2>`` and ``scr_img/<d1>-<d2>``. The Table-6
switches remove terms (and the modules that only they use); all four off is the "Multi-datasets"
baseline. The same method with ``use_scr_dataset`` and ``use_scr_img`` off is step 1 of dedicated
parsing (Eq. 13, first line).
"""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, NamedTuple, Sequence

import numpy as np
import torch
from torch import Tensor, nn

from ..engine.methods import TrainingMethod, register_method
from ..engine.supervised import per_domain_cross_entropy
from ..errors import ConfigError, check_keys
from .msa import MultiScaleSemanticAggregation, ScaleSemantics
from .mse import MSEOutput, MultiScaleSemanticEnhancement, auxiliary_logits
from .mst import MultiScaleSemanticTransfer
from .pairing import PAIRING_STRATEGIES, domain_pairs, pair_images
from .scr import SCR_IMG_CATEGORIES, scr_dataset, scr_image

__all__ = ["SSTUniversal", "DomainEncoding", "encode_domain", "image_level_scr", "static_prior_matrix", "SCALE_KEYS"]

#: Decoder outputs used by MSA, coarsest first (H_1 at 1/16, H_2 at 1/8, H_3 at 1/4).
SCALE_KEYS = ("H1", "H2", "H3")
STATIC_PRIORS = ("embedding", "graphonomy")
_BOOL_KEYS = ("use_aux", "use_intra_prior", "use_scr_dataset", "use_scr_img")
_WEIGHT_KEYS = ("seg_weight", "aux_weight", "scr_weight", "lovasz_weight")
CONFIG_KEYS = (*_WEIGHT_KEYS, *_BOOL_KEYS, "pairing", "static_prior", "scr_img_categories", "ignore_index")


class DomainEncoding(NamedTuple):
    """MSA + MSE output for the images of one domain: S_l per scale and X_0..X_L."""

    semantics: list[ScaleSemantics]
    mse: MSEOutput


def encode_domain(
    msa: MultiScaleSemanticAggregation,
    mse: MultiScaleSemanticEnhancement,
    features: Mapping[str, Tensor],
    labels: Tensor,
) -> DomainEncoding:
    """Run MSA on the decoder features ``H1..H3`` with category masks from ``labels`` and MSE on the result."""
    semantics = msa([features[key] for key in SCALE_KEYS], labels)
    return DomainEncoding(semantics, mse(semantics))


def image_level_scr(
    mst: MultiScaleSemanticTransfer, encoding_1: DomainEncoding, encoding_2: DomainEncoding,
    *, categories: str = "all",
) -> Tensor:
    """Eq. 9 + Eq. 11 on P aligned image pairs (row p of ``encoding_1`` with row p of ``encoding_2``);
    ``categories``: see ``scr.scr_image``."""
    x_1, x_2, x_1_to_2, x_2_to_1, p_1, p_2 = [], [], [], [], [], []
    for scale in range(1, mst.num_scales + 1):
        s_1, s_2 = encoding_1.semantics[scale - 1], encoding_2.semantics[scale - 1]
        rep_1, rep_2 = encoding_1.mse.representations[scale], encoding_2.mse.representations[scale]
        mapped = mst.image_level(scale, rep_1, rep_2, s_1.features, s_2.features, s_1.presence, s_2.presence)
        x_1.append(rep_1)
        x_2.append(rep_2)
        x_1_to_2.append(mapped.one_to_two)
        x_2_to_1.append(mapped.two_to_one)
        p_1.append(s_1.presence)
        p_2.append(s_2.presence)
    return scr_image(x_1, x_2, x_1_to_2, x_2_to_1, p_1, p_2, categories=categories)


def select_rows(encoding: DomainEncoding, rows: Sequence[int]) -> DomainEncoding:
    """The encoding of a subset (or a repetition) of its images; X_0 is kept as is."""
    index = torch.as_tensor(list(rows), dtype=torch.long, device=encoding.mse.representations[0].device)
    semantics = [ScaleSemantics(s.features.index_select(0, index), s.presence.index_select(0, index))
                 for s in encoding.semantics]
    reps = encoding.mse.representations
    return DomainEncoding(semantics, MSEOutput([reps[0]] + [x.index_select(0, index) for x in reps[1:]], []))


def static_prior_matrix(space_1, space_2, source: str = "embedding") -> np.ndarray:
    """M_static for mapping domain 1 -> domain 2: float32 [Z_2, Z_1] in [0, 1].

    ``source="embedding"``: cosine similarity of label-name embeddings (``humanparse.labels.static_similarity``);
    ``"graphonomy"``: Graphonomy's GloVe matrices, available for PASCAL-Person-Part, ATR and CIHP only.
    """
    from .. import labels

    expected = (space_2.num_classes, space_1.num_classes)
    if source == "embedding":
        matrix = labels.static_similarity(space_1, space_2)
    elif source == "graphonomy":
        matrix = labels.graphonomy_static_similarity(space_1.name, space_2.name)
        if matrix is None:
            raise ConfigError(
                f"static_prior: graphonomy has no matrix for {space_1.name!r} -> {space_2.name!r} "
                f"(Graphonomy covers PASCAL-Person-Part, ATR and CIHP); use static_prior: embedding"
            )
    else:
        raise ConfigError(f"static_prior must be one of {', '.join(STATIC_PRIORS)}, got {source!r}")
    matrix = np.asarray(matrix, dtype=np.float32)
    if matrix.shape != expected:
        raise ConfigError(
            f"static prior {space_1.name!r} -> {space_2.name!r} has shape {matrix.shape}, expected {expected}"
        )
    return np.clip(matrix, 0.0, 1.0)


def resolve_label_spaces(label_spaces: Mapping) -> dict:
    """{domain: LabelSpace}. Values may be LabelSpace objects, built-in names, label-space file paths,
    or ``LabelSpace.to_dict()`` dicts (as stored in training checkpoints; a dict equal to a built-in
    label space resolves to the built-in, which carries its cached name embeddings)."""
    from ..labels import LabelSpace, get_label_space, list_label_spaces

    resolved = {}
    for domain, space in label_spaces.items():
        if isinstance(space, Mapping):
            stored = dict(space)
            name = stored.get("name")
            if isinstance(name, str) and name in list_label_spaces() and get_label_space(name).to_dict() == stored:
                space = get_label_space(name)
            else:
                space = LabelSpace.from_dict(stored, source=f"<stored label space of domain {domain!r}>")
        elif isinstance(space, (str, Path)):
            space = get_label_space(space)
        resolved[domain] = space
    return resolved


def check_options(kind: str, cfg: Mapping) -> None:
    """Type checks shared by ``sst`` and ``sst_dedicated``."""
    for key in _BOOL_KEYS:
        if key in cfg and not isinstance(cfg[key], bool):
            raise ConfigError(f"{kind} key {key!r} must be true or false, got {cfg[key]!r}")
    for key in _WEIGHT_KEYS:
        if key in cfg and (isinstance(cfg[key], bool) or not isinstance(cfg[key], (int, float)) or cfg[key] < 0):
            raise ConfigError(f"{kind} key {key!r} must be a number >= 0, got {cfg[key]!r}")
    if "static_prior" in cfg and cfg["static_prior"] not in STATIC_PRIORS:
        choices = ", ".join(STATIC_PRIORS)
        raise ConfigError(f"{kind} key 'static_prior' must be one of {choices}, got {cfg['static_prior']!r}")
    check_trains_something(kind, use_aux=cfg.get("use_aux", True), use_scr_dataset=cfg.get("use_scr_dataset", True),
                           use_scr_img=cfg.get("use_scr_img", True))
    if "scr_img_categories" in cfg and cfg["scr_img_categories"] not in SCR_IMG_CATEGORIES:
        choices = ", ".join(SCR_IMG_CATEGORIES)
        raise ConfigError(f"{kind} key 'scr_img_categories' must be one of {choices}, got {cfg['scr_img_categories']!r}")
    if "pairing" in cfg and cfg["pairing"] not in PAIRING_STRATEGIES:
        choices = ", ".join(PAIRING_STRATEGIES)
        raise ConfigError(f"{kind} key 'pairing' must be one of {choices}, got {cfg['pairing']!r}")


def check_trains_something(kind: str, *, use_aux: bool, use_scr_dataset: bool, use_scr_img: bool) -> None:
    """ConfigError for ``use_scr_dataset`` without ``use_aux`` or ``use_scr_img``: then only X_0 and SM_0
    would be built, and the dataset-level SCR between them never reaches the parsing network (the run
    would silently be the Multi-datasets baseline plus an unused term)."""
    if use_scr_dataset and not (use_aux or use_scr_img):
        raise ConfigError(
            f"{kind}: use_scr_dataset: true with use_aux: false and use_scr_img: false trains only X_0 and "
            "SM_0, which never reach the parsing network; set use_aux: true (Table 6 row 4) or "
            "use_scr_img: true, or set use_scr_dataset: false (the Multi-datasets baseline)"
        )


def check_domain_name(domain: str) -> None:
    if not domain or "." in domain:
        raise ConfigError(f"label domain name {domain!r} cannot name SST modules (it must be non-empty, without '.')")


@register_method("sst")
class SSTUniversal(TrainingMethod):
    """SST for universal parsing over the label domains in ``num_classes``.

    Args:
        feature_dim: D, the width of the network's H_1..H_3 and F.
        num_classes: {domain: Z}.
        adjacency: {domain: M_intra [Z, Z]}; a missing domain means no prior (all ones).
        static_priors: {(d1, d2): M_static [Z_2, Z_1]} for every pair of ``domain_pairs`` (needed when
            ``use_scr_dataset``).
        pairing: ``"full"`` or ``"progressive"`` (see ``pairing.domain_pairs``).
        seg_weight, aux_weight, scr_weight: alpha, beta, lambda of Eq. 12 (paper: 10, 1, 5).
        use_aux: the L_aux terms (MSE auxiliary masks).
        use_intra_prior: the M_intra product in the SP layers (False = Eq. 5).
        use_scr_dataset, use_scr_img: the dataset- and image-level SCR terms (``use_scr_dataset`` needs
            ``use_aux`` or ``use_scr_img``: alone it trains nothing the network uses; ConfigError).
        scr_img_categories: ``"all"`` (Eq. 11 as written: 1/Z over every category) or ``"present"``
            (over the categories present in the image); see ``scr.scr_image``.
        lovasz_weight: adds this times the Lovasz-Softmax loss to each L_seg (0 = cross-entropy alone, the paper;
            not in the paper: SCHP's addition, which lifts rare classes when training is short).
        ignore_index: label value excluded from the losses and the category masks.
    """

    def __init__(
        self,
        *,
        feature_dim: int,
        num_classes: Mapping[str, int],
        adjacency: Mapping[str, np.ndarray | Tensor | None] | None = None,
        static_priors: Mapping[tuple[str, str], np.ndarray | Tensor] | None = None,
        pairing: str = "full",
        seg_weight: float = 10.0,
        aux_weight: float = 1.0,
        scr_weight: float = 5.0,
        use_aux: bool = True,
        use_intra_prior: bool = True,
        use_scr_dataset: bool = True,
        use_scr_img: bool = True,
        scr_img_categories: str = "all",
        lovasz_weight: float = 0.0,
        ignore_index: int = 255,
    ):
        super().__init__()
        self.lovasz_weight = float(lovasz_weight)
        for domain in num_classes:
            check_domain_name(domain)
        check_trains_something("sst method", use_aux=use_aux, use_scr_dataset=use_scr_dataset, use_scr_img=use_scr_img)
        if scr_img_categories not in SCR_IMG_CATEGORIES:
            raise ConfigError(f"scr_img_categories must be one of {', '.join(SCR_IMG_CATEGORIES)}, got {scr_img_categories!r}")
        self.scr_img_categories = scr_img_categories
        self.num_classes = dict(num_classes)
        self.seg_weight, self.aux_weight, self.scr_weight = float(seg_weight), float(aux_weight), float(scr_weight)
        self.use_aux, self.use_intra_prior = use_aux, use_intra_prior
        self.use_scr_dataset, self.use_scr_img = use_scr_dataset, use_scr_img
        self.ignore_index = ignore_index
        pairs = domain_pairs(self.num_classes, pairing)  # validates ``pairing`` even when unused
        self.pairs = pairs if (use_scr_dataset or use_scr_img) else []

        # Build only what the enabled terms use, so every parameter receives a gradient.
        needs_layers = use_aux or (use_scr_img and bool(self.pairs))
        needs_embedding = needs_layers or (use_scr_dataset and bool(self.pairs))
        adjacency = adjacency or {}
        self.msa = nn.ModuleDict()
        self.mse = nn.ModuleDict()
        if needs_embedding:
            for domain, classes in self.num_classes.items():
                if needs_layers:
                    self.msa[domain] = MultiScaleSemanticAggregation(feature_dim, classes, ignore_index=ignore_index)
                self.mse[domain] = MultiScaleSemanticEnhancement(
                    feature_dim, classes, adjacency=adjacency.get(domain), use_intra_prior=use_intra_prior,
                    num_layers=len(SCALE_KEYS) if needs_layers else 0,
                )
        self.mst = nn.ModuleDict()
        static_priors = static_priors or {}
        for first, second in self.pairs:
            if use_scr_dataset and (first, second) not in static_priors:
                raise ConfigError(f"no static prior given for the SST domain pair ({first!r}, {second!r})")
            self.mst[f"{first}-{second}"] = MultiScaleSemanticTransfer(
                feature_dim, self.num_classes[first], self.num_classes[second],
                static_prior=static_priors[(first, second)] if use_scr_dataset else None,
                num_scales=len(SCALE_KEYS) if use_scr_img else 0,
            )

    @classmethod
    def from_config(cls, cfg: Mapping, *, model: nn.Module, label_spaces: Mapping) -> "SSTUniversal":
        """``cfg``: the method's config section (keys: ``CONFIG_KEYS``); ``label_spaces``: {domain: LabelSpace,
        name, path or stored dict}."""
        cfg = dict(cfg or {})
        check_keys("sst method key", cfg, CONFIG_KEYS)
        check_options("sst method", cfg)
        spaces = resolve_label_spaces(label_spaces)
        if not spaces:
            raise ConfigError("the sst method needs at least one label domain")
        for domain, space in spaces.items():
            check_model_head(model, domain, space.num_classes)
        num_classes = {d: s.num_classes for d, s in spaces.items()}
        static_source = cfg.pop("static_prior", "embedding")
        priors = {}
        if cfg.get("use_scr_dataset", True):
            for first, second in domain_pairs(num_classes, cfg.get("pairing", "full")):
                priors[(first, second)] = static_prior_matrix(spaces[first], spaces[second], static_source)
        return cls(
            feature_dim=int(model.feature_dim), num_classes=num_classes,
            adjacency={d: s.adjacency for d, s in spaces.items()}, static_priors=priors, **cfg,
        )

    def training_step(self, model: nn.Module, batch: dict) -> dict[str, Tensor]:
        domains = list(batch["domain"])
        present = list(dict.fromkeys(domains))
        unknown = [d for d in present if d not in self.num_classes]
        if unknown:
            raise ConfigError(
                f"batch has label domain(s) {unknown} that the sst method was not built for "
                f"(its domains: {sorted(self.num_classes)})"
            )
        labels = batch["label"]
        outputs = model(batch["image"], domains=sorted(present))
        seg = per_domain_cross_entropy(outputs["logits"], labels, domains, ignore_index=self.ignore_index,
                                       lovasz_weight=self.lovasz_weight)
        terms = {f"seg/{d}": self.seg_weight * loss for d, loss in seg.items()}

        encodings: dict[str, DomainEncoding] = {}
        rank: dict[int, int] = {}  # batch index -> row within its domain's subset
        if len(self.msa):
            features = outputs["features"]
            for domain in present:
                rows = [i for i, d in enumerate(domains) if d == domain]
                rank.update({i: r for r, i in enumerate(rows)})
                index = torch.as_tensor(rows, dtype=torch.long, device=labels.device)
                subset = {k: features[k].index_select(0, index) for k in (*SCALE_KEYS, "F")}
                target = labels.index_select(0, index)
                encodings[domain] = encode_domain(self.msa[domain], self.mse[domain], subset, target)
                if self.use_aux:
                    aux = auxiliary_logits(subset["F"], encodings[domain].mse.representations[-1])
                    loss = per_domain_cross_entropy({domain: aux}, target, [domain] * len(rows),
                                                    ignore_index=self.ignore_index)[domain]
                    terms[f"aux/{domain}"] = self.aux_weight * loss

        for first, second in self.pairs:
            name = f"{first}-{second}"
            mst = self.mst[name]
            if self.use_scr_dataset:
                x0_1, x0_2 = self.mse[first].embedding, self.mse[second].embedding
                mapped = mst.dataset_level(x0_1, x0_2)
                terms[f"scr_dataset/{name}"] = self.scr_weight * scr_dataset(
                    x0_1, x0_2, mapped.one_to_two, mapped.two_to_one
                )
            if self.use_scr_img and first in encodings and second in encodings:
                rows_1, rows_2 = pair_images(domains, first, second)
                pair_1 = select_rows(encodings[first], [rank[i] for i in rows_1])
                pair_2 = select_rows(encodings[second], [rank[i] for i in rows_2])
                terms[f"scr_img/{name}"] = self.scr_weight * image_level_scr(
                    mst, pair_1, pair_2, categories=self.scr_img_categories)
        return terms


def check_model_head(model: nn.Module, domain: str, num_classes: int) -> None:
    """The network must have a head for ``domain`` with ``num_classes`` outputs."""
    heads = getattr(model, "num_classes", None)
    if heads is None or domain not in heads:
        raise ConfigError(
            f"the parsing network has no head for label domain {domain!r} "
            f"(its heads: {sorted(heads) if heads else []}); add it to the model's domains"
        )
    if int(heads[domain]) != int(num_classes):
        raise ConfigError(
            f"the network's head {domain!r} has {heads[domain]} classes but the label space has {num_classes}"
        )
