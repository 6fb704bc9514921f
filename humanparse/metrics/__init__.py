"""Evaluation metrics: one implementation per metric, shared by training-time evaluation, ``eval``
and the ``score`` CLI. Every ``score_*`` / ``compute`` returns a plain JSON-able dict of fractions
in [0, 1] (``None`` where undefined). The conventions (which community script each follows) are in
each module's docstring and in ``/work/shared/notes/metrics.md``.

- ``semantic``: ``ConfusionMatrix`` (mIoU, mean / pixel accuracy), ``score_semantic_dirs``.
- ``instance``: AP^p_50, AP^p_vol, PCP_50 (MHP-v2 / UniParser / M2FP), ``evaluate_instances``,
  ``score_instance_dirs`` (CIHP layout).
- ``pose``: PCKh, LIP / MPII head sizes, Gaussian heatmap targets, ``score_pose_files``.
- ``edge``: edges from part labels (thin for evaluation), edge NMS, ODS / OIS / AP (BSDS), ``score_edge_dirs``.
- ``io``: label PNG reading and folder pairing with clear DataErrors.
"""

from .edge import EdgeEvaluator, edge_nms, edges_from_labels, score_edge_dirs
from .instance import InstanceEvaluator, evaluate_instances, score_instance_dirs
from .io import read_label_png
from .pose import (
    FLIP_INDEX,
    FLIP_PAIRS,
    JOINT_NAMES,
    decode_heatmaps,
    encode_heatmaps,
    lip_head_size,
    mpii_head_size,
    pckh,
    score_pose_files,
)
from .semantic import ConfusionMatrix, score_semantic_dirs

__all__ = [
    "ConfusionMatrix",
    "score_semantic_dirs",
    "InstanceEvaluator",
    "evaluate_instances",
    "score_instance_dirs",
    "JOINT_NAMES",
    "FLIP_PAIRS",
    "FLIP_INDEX",
    "pckh",
    "lip_head_size",
    "mpii_head_size",
    "score_pose_files",
    "encode_heatmaps",
    "decode_heatmaps",
    "edges_from_labels",
    "edge_nms",
    "EdgeEvaluator",
    "score_edge_dirs",
    "read_label_png",
]
