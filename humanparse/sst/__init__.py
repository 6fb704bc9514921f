"""SST: Scalable Semantic Transfer over multiple label domains (Yang et al., ICCV 2023). Training only.

Importing this package registers the training methods ``"sst"`` (universal parsing) and
``"sst_dedicated"`` (step 2 of dedicated parsing; step 1 is ``"sst"`` without the SCR terms).
Nothing here is part of the inference network. See docs/sst.md.
"""

from .dedicated import FrozenSource, SSTDedicated, init_from_step1
from .msa import MultiScaleSemanticAggregation, ScaleSemantics, category_pooling, resize_labels
from .mse import MultiScaleSemanticEnhancement, SemanticPropagation, auxiliary_logits, masked_attention
from .mst import MultiScaleSemanticTransfer, SemanticMapping
from .pairing import domain_pairs, pair_images
from .scr import consistency, scr_dataset, scr_image
from .universal import SSTUniversal, static_prior_matrix

__all__ = [
    "SSTUniversal",
    "SSTDedicated",
    "FrozenSource",
    "init_from_step1",
    "MultiScaleSemanticAggregation",
    "ScaleSemantics",
    "category_pooling",
    "resize_labels",
    "MultiScaleSemanticEnhancement",
    "SemanticPropagation",
    "masked_attention",
    "auxiliary_logits",
    "MultiScaleSemanticTransfer",
    "SemanticMapping",
    "consistency",
    "scr_dataset",
    "scr_image",
    "domain_pairs",
    "pair_images",
    "static_prior_matrix",
]
