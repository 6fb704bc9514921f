"""The HTCorrM network: backbone -> three task encoders -> fusion (HNL) -> main-task output.

One task is the main task (``parsing``, ``pose`` or ``edge``); ``aux_tasks`` lists the auxiliary
ones; ``fusion`` says how the main feature F_m meets them::

    fusion  aux_tasks       main output O_m                         Table 7 row
    none    []              the main encoder's own head             baseline (DeepLabV2 alone)
    self    []              W_3(non-local(F_m, F_m))                 1  SA
    none    [edge, pose]    the main encoder's own head             2  MTL (HTCorrM without HNL)
    concat  [edge]          W_3(conv(concat(F_m, F_b)))              3  Concat, parsing + edge
    concat  [pose]          W_3(conv(concat(F_m, F_k)))              4  Concat, parsing + pose
    concat  [edge, pose]    W_3(conv(concat(F_m, F_b, F_k)))         5  Concat, all three
    hnl     [edge]          W_3(HNL(F_m; F_m, F_b))                  6  Correlation, parsing + edge
    hnl     [pose]          W_3(HNL(F_m; F_m, F_k))                  7  Correlation, parsing + pose
    hnl     [edge, edge]    W_3(HNL(F_m; F_m, F_b, F_b))             8  "duplicated" edge feature
    hnl     [pose, pose]    W_3(HNL(F_m; F_m, F_k, F_k))             9  "duplicated" pose feature
    hnl     [edge, pose]    W_3(HNL(F_m; F_m, F_b, F_k))             10/11  full HTCorrM
    hnl + hnl_duplicate_main: false  W_3(HNL(F_m; F_b, F_k))          Table 8 dagger rows (no "duplicated" F_m)

Every encoder in {main} + aux_tasks is built and supervised through its own head (Eq. 4).

Backbones (``htcorrm.backbones``) return maps with fixed roles ``[G_1, G_2, G_3, final, ...]``: the
parsing encoder runs ASPP on ``final`` (the dilated Res5 of ResNet-101, or the HRNetV2 map) and
concatenates with G_1 (stride 4, the grid of every task feature); the edge encoder reads
``edge_levels`` (default [0, 1, 2] = G_1, G_2, G_3: Res2/Res3/Res4, or HRNet stages 1/3/4); the
pose encoder's two x2 deconvs read ``backbone.pose_index`` (Res5 at output stride 16 lands exactly
on the stride-4 grid; other strides are resized to it bilinearly). See docs/htcorrm.md.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CheckpointError, ConfigError, check_keys
from .backbones import build_backbone
from .encoders import EdgeEncoder, ParsingEncoder, PoseEncoder
from .hnl import ConcatFusion, HeterogeneousNonLocal

__all__ = [
    "FUSIONS",
    "TASKS",
    "HTCorrMNet",
    "build_backbone",
    "build_htcorrm",
    "build_htcorrm_from_config",
]

TASKS = ("parsing", "pose", "edge")
FUSIONS = ("none", "self", "concat", "hnl")
MODEL_KEYS = {
    "backbone", "main_task", "aux_tasks", "fusion", "num_joints", "channels", "aspp_channels", "aspp_rates",
    "aspp_dropout", "pose_mid_channels", "edge_mid_channels", "edge_levels", "hnl_inner_channels",
    "hnl_sub_sample", "hnl_duplicate_main",
}


class HTCorrMNet(nn.Module):
    """``forward(images [B,3,H,W], domains=None) -> dict`` (H, W multiples of 32)::

        {"main": O_m [B, T, H/4, W/4],                    T = Q (parsing), J (pose) or 2 (edge)
         "encoders": {task: encoder head output [B, T_task, H/4, W/4]},
         "features": {task: F_task [B, C, H/4, W/4]},
         "logits": {domain: O_m}}                          only when the main task is parsing
    """

    def __init__(self, backbone: nn.Module, *, num_classes: int, domain: str = "parsing",
                 main_task: str = "parsing", aux_tasks: Sequence[str] | None = None, fusion: str = "hnl",
                 num_joints: int = 16, channels: int = 512, aspp_channels: int = 256,
                 aspp_rates: Sequence[int] = (12, 24, 36), aspp_dropout: float = 0.1, pose_mid_channels: int = 256,
                 edge_mid_channels: int = 256, edge_levels: Sequence[int] = (0, 1, 2),
                 hnl_inner_channels: int | None = None, hnl_sub_sample: bool = False,
                 hnl_duplicate_main: bool = True):
        super().__init__()
        if aux_tasks is None:  # default: the full model, both other tasks auxiliary
            aux_tasks = [t for t in TASKS if t != main_task]
        aux_tasks = list(aux_tasks)
        _check_tasks(main_task, aux_tasks, fusion)
        strides = list(getattr(backbone, "strides", []))
        if len(strides) < 4 or strides[0] != 4:
            raise ConfigError(f"HTCorrM needs backbone maps [G_1 (stride 4), G_2, G_3, final, ...], got strides {strides}")
        edge_levels = [int(i) for i in edge_levels]
        if len(edge_levels) != 3 or any(not 0 <= i < 4 for i in edge_levels):
            raise ConfigError(f"model.edge_levels must be 3 level indices in 0..3 (G_1, G_2, G_3, final), got {edge_levels}")
        ch = list(backbone.out_channels)
        self.pose_index = int(getattr(backbone, "pose_index", 3))
        self.backbone = backbone
        self.main_task, self.aux_tasks, self.fusion_kind = main_task, aux_tasks, fusion
        self.domain, self.edge_levels = domain, edge_levels
        self.tasks = list(dict.fromkeys([main_task] + aux_tasks))  # main first, each once
        out_dims = {"parsing": int(num_classes), "pose": int(num_joints), "edge": 2}
        encoders = {}
        if "parsing" in self.tasks:
            encoders["parsing"] = ParsingEncoder(ch[3], ch[0], channels, num_classes, aspp_channels=aspp_channels,
                                                 rates=aspp_rates, dropout=aspp_dropout)
        if "pose" in self.tasks:
            encoders["pose"] = PoseEncoder(ch[self.pose_index], channels, num_joints, mid_channels=pose_mid_channels)
        if "edge" in self.tasks:
            encoders["edge"] = EdgeEncoder([ch[i] for i in edge_levels], channels, mid_channels=edge_mid_channels)
        self.encoders = nn.ModuleDict(encoders)
        # Table 8's dagger rows: the hybrid feature without the "duplicated" main feature F_m
        self.duplicate_main = bool(hnl_duplicate_main)
        if not self.duplicate_main and fusion != "hnl":
            raise ConfigError("model.hnl_duplicate_main: false only applies to fusion: hnl")
        n_inputs = int(self.duplicate_main) + len(aux_tasks)
        if fusion == "hnl":
            self.fusion = HeterogeneousNonLocal(channels, n_inputs, inner_channels=hnl_inner_channels,
                                                sub_sample=hnl_sub_sample)
        elif fusion == "self":
            self.fusion = HeterogeneousNonLocal(channels, 1, inner_channels=hnl_inner_channels,
                                                sub_sample=hnl_sub_sample, hybrid=False)
        elif fusion == "concat":
            self.fusion = ConcatFusion(channels, n_inputs)
        else:
            self.fusion = None
        self.main_head = nn.Conv2d(channels, out_dims[main_task], 1) if self.fusion is not None else None  # W_3
        self.out_dims = out_dims

    @property
    def num_outputs(self) -> int:
        return self.out_dims[self.main_task]

    def forward(self, images: Tensor, domains: Sequence[str] | None = None) -> dict:
        if domains is not None and self.main_task == "parsing" and any(d != self.domain for d in domains):
            raise ValueError(f"this HTCorrM network predicts domain {self.domain!r} only, asked for {list(domains)}")
        h, w = images.shape[-2:]
        if h % 32 or w % 32:
            raise ValueError(f"input size {h}x{w} is not a multiple of 32; pad it to "
                             f"{-(-h // 32) * 32}x{-(-w // 32) * 32} (humanparse pads with pad_to_multiple)")
        levels = self.backbone(images)
        grid = levels[0].shape[-2:]
        features: dict[str, Tensor] = {}
        for task in self.tasks:
            if task == "parsing":
                f = self.encoders["parsing"](levels[3], levels[0])
            elif task == "pose":
                f = self.encoders["pose"](levels[self.pose_index])
            else:
                f = self.encoders["edge"]([levels[i] for i in self.edge_levels])
            if f.shape[-2:] != grid:  # pose at output stride 8 / 32, or a map not exactly grid / 4
                f = F.interpolate(f, size=grid, mode="bilinear", align_corners=False)
            features[task] = f
        encoders = {t: self.encoders[t].head(f) for t, f in features.items()}
        main_feat = features[self.main_task]
        if self.fusion is None:
            main = encoders[self.main_task]
        else:
            own = [main_feat] if self.duplicate_main or self.fusion_kind != "hnl" else []
            inputs = own + ([features[t] for t in self.aux_tasks] if self.fusion_kind != "self" else [])
            main = self.main_head(self.fusion(main_feat, inputs))
        out = {"main": main, "encoders": encoders, "features": features}
        if self.main_task == "parsing":
            out["logits"] = {self.domain: main}
        return out


def _check_tasks(main_task: str, aux_tasks: list[str], fusion: str) -> None:
    from ..errors import unknown_key_message

    if main_task not in TASKS:
        raise ConfigError(unknown_key_message("model.main_task", main_task, TASKS))
    if fusion not in FUSIONS:
        raise ConfigError(unknown_key_message("model.fusion", fusion, FUSIONS))
    others = [t for t in TASKS if t != main_task]
    for t in aux_tasks:
        if t not in others:
            raise ConfigError(f"model.aux_tasks: {t!r} is not an auxiliary task of main task {main_task!r}"
                              f" (choose from {others})")
    if len(set(aux_tasks)) != len(aux_tasks) and fusion not in ("concat", "hnl"):
        raise ConfigError(f"model.aux_tasks {aux_tasks} repeats a task; a repeated ('duplicated', Table 7 rows 8/9)"
                          " feature only means something with fusion concat or hnl")
    if fusion in ("concat", "hnl") and not aux_tasks:
        raise ConfigError(f"model.fusion {fusion!r} fuses the main feature with auxiliary ones; give aux_tasks"
                          " (or use fusion: self for self-attention on the main feature alone)")


def build_htcorrm(model_cfg: dict, *, num_classes: int, domain: str) -> HTCorrMNet:
    """Build the network from the config's ``model`` section; ``net.config`` records what was built."""
    cfg = dict(model_cfg or {})
    check_keys("key in model (htcorrm)", cfg, MODEL_KEYS)
    backbone_cfg = dict(cfg.pop("backbone", None) or {"name": "resnet101"})
    for key in ("aspp_rates", "edge_levels", "aux_tasks"):
        if key in cfg and not isinstance(cfg[key], (list, tuple)):
            raise ConfigError(f"model.{key} must be a list, got {cfg[key]!r}")
    net = HTCorrMNet(build_backbone(backbone_cfg), num_classes=num_classes, domain=domain, **cfg)
    net.config = {"architecture": "htcorrm", "backbone": backbone_cfg, "num_classes": int(num_classes),
                  "domain": domain, **{k: (list(v) if isinstance(v, tuple) else v) for k, v in cfg.items()}}
    return net


def build_htcorrm_from_config(config: dict) -> HTCorrMNet:
    """Rebuild a network from its ``net.config`` (as stored in checkpoints), for loading saved weights.

    The backbone is built without pretrained weights: the checkpoint's state dict supplies them.
    """
    if not isinstance(config, dict) or config.get("architecture") != "htcorrm" or "num_classes" not in config:
        raise CheckpointError("checkpoint model config is not an HTCorrM one (needs architecture 'htcorrm' and"
                              " 'num_classes'); was it saved by the htcorrm recipe?")
    cfg = {k: v for k, v in config.items() if k not in ("architecture", "num_classes", "domain")}
    cfg["backbone"] = {**dict(cfg.get("backbone") or {}), "pretrained": None}
    return build_htcorrm(cfg, num_classes=int(config["num_classes"]), domain=str(config.get("domain", "parsing")))
