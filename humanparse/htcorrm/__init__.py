"""HTCorrM: parsing, pose and edge in one network; one main task, the others auxiliary, fused by HNL.

    from humanparse.htcorrm import build_htcorrm, HTCorrMLoss, edge_target, pose_targets
    net = build_htcorrm({"backbone": {"name": "resnet101"}, "fusion": "hnl", "aux_tasks": ["edge", "pose"]},
                        num_classes=20, domain="lip")

Training goes through the ``htcorrm`` recipe (``recipe: htcorrm`` in a config). Names are imported
lazily, so ``humanparse.htcorrm.pseudo_label`` also runs where torch is not installed.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "HTCorrMNet": "model", "build_htcorrm": "model", "build_htcorrm_from_config": "model", "build_backbone": "model", "TASKS": "model",
    "FUSIONS": "model", "HeterogeneousNonLocal": "hnl", "ConcatFusion": "hnl",
    "ParsingEncoder": "encoders", "PoseEncoder": "encoders", "EdgeEncoder": "encoders",
    "HTCorrMLoss": "losses", "PAPER_LOSS_WEIGHTS": "losses",
    "edge_target": "labels", "pose_targets": "labels", "decode_pose": "labels", "flip_keypoints": "labels",
    "HTCorrMDataset": "dataset", "load_keypoints": "dataset", "load_pose_table": "dataset", "collate_htcorrm": "dataset",
    "DilatedResNet": "backbones", "HRNetV2": "backbones",
    "HTCorrMRecipe": "recipe", "HTCorrMMethod": "recipe",
    "blazepose_to_mpii": "pseudo_label", "pseudo_label_pose": "pseudo_label",
}  # fmt: skip

__all__ = [
    "FUSIONS",
    "PAPER_LOSS_WEIGHTS",
    "TASKS",
    "ConcatFusion",
    "DilatedResNet",
    "EdgeEncoder",
    "HTCorrMDataset",
    "HTCorrMLoss",
    "HTCorrMMethod",
    "HTCorrMNet",
    "HRNetV2",
    "HTCorrMRecipe",
    "HeterogeneousNonLocal",
    "ParsingEncoder",
    "PoseEncoder",
    "blazepose_to_mpii",
    "build_backbone",
    "build_htcorrm",
    "build_htcorrm_from_config",
    "collate_htcorrm",
    "decode_pose",
    "edge_target",
    "flip_keypoints",
    "load_keypoints",
    "load_pose_table",
    "pose_targets",
    "pseudo_label_pose",
]


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'humanparse.htcorrm' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
