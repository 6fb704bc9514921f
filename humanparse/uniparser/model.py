"""UniParser network: backbone + FPN -> F_neck -> Center Locator, IFSB, CFSB (paper Sec. 3).

``UniParser.forward(images) -> dict`` (images [B, 3, H, W], H and W multiples of 32):

- ``center_logits`` [B, 1, S, S]: Center Locator logits (``sigmoid`` gives the heatmap H_c, Eq. 1).
- ``ins_feats`` [B, D, H/4, W/4]: IFSB features, L2-normalised along channels (F_ins, Eq. 2).
- ``cate_feats`` [B, D, H/4, W/4]: CFSB features, L2-normalised (F_cate, Eq. 3).
- ``cate_kernels`` [K, D]: L2-normalised category kernels K_cate (K = num_classes - 1: no kernel for
  the background, as in the official code).
- ``cate_sim`` [B, K, H/4, W/4]: cosine maps Q_cate = K_cate * F_cate.

Instance kernels depend on where the persons are (ground-truth centres when training, heatmap peaks
at inference), so they are read by :func:`sample_kernels` outside the network, at the centre of an
S x S cell in both cases (the official code reads them differently at train and test time).

The paper's network options (appendix 6.1 and the official configs; all off by default, the
paper configs turn them on): ``backbone.frozen_stride: 4`` freezes the stem and res2 (weights and
BatchNorm statistics); ``backbone.norm_eval: true`` keeps every backbone BatchNorm in eval mode
(mmdet's ``norm_eval``); ``backbone.dcn: true`` replaces the 3x3 conv of every res3-res5 block by a
modulated deformable conv (DCNv2, ``torchvision.ops.deform_conv2d``; pure PyTorch, no extension of
ours; slow on a CPU); ``norm_last: true`` gives the last IFSB/CFSB conv a GroupNorm (+ ReLU), so that
every one of their 5 convs is "a convolution layer with a group normalization layer".

``light=True`` is UniParser_light: only the finest FPN level (stride 4) feeds the compression
conv, which is 1x1 (padding 0). The full model concatenates all five upsampled FPN levels
(P2..P6); the paper's text says a 1x1 compression conv, the official code a 3x3 one
(``neck_kernel``).
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchvision.ops import FeaturePyramidNetwork, deform_conv2d
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool

from ..models.backbones.timm_backbone import TimmBackbone

__all__ = ["UniParser", "build_uniparser", "build_uniparser_from_config", "coord_channels", "sample_kernels", "cell_centres", "index_fusion", "PRIOR_BIAS",
           "ModulatedDeformConv", "add_deformable_convs"]

PRIOR_BIAS = -4.59511985013459  # log(0.01 / 0.99): the heatmap starts near 0.01 everywhere


def coord_channels(x: Tensor) -> Tensor:
    """``x`` with two extra channels: relative x and y in [-1, 1] over its own grid."""
    b, _, h, w = x.shape
    ys = torch.linspace(-1.0, 1.0, h, device=x.device, dtype=x.dtype)
    xs = torch.linspace(-1.0, 1.0, w, device=x.device, dtype=x.dtype)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    coords = torch.stack([gx, gy]).unsqueeze(0).expand(b, -1, -1, -1)
    return torch.cat([x, coords], dim=1)


def _tower(in_ch: int, width: int, out_ch: int, num_convs: int, groups: int, *, norm_last: bool = False) -> nn.Sequential:
    """``num_convs`` 3x3 convs: (num_convs - 1) x [conv + GroupNorm + ReLU], then a plain conv
    (``norm_last``: one more conv + GroupNorm + ReLU instead)."""
    layers: list[nn.Module] = []
    ch = in_ch
    for _ in range(num_convs - 1):
        layers += [nn.Conv2d(ch, width, 3, padding=1, bias=False), nn.GroupNorm(groups, width), nn.ReLU(inplace=True)]
        ch = width
    if norm_last:
        layers += [nn.Conv2d(ch, out_ch, 3, padding=1, bias=False), nn.GroupNorm(groups, out_ch), nn.ReLU(inplace=True)]
    else:
        layers.append(nn.Conv2d(ch, out_ch, 3, padding=1))
    return nn.Sequential(*layers)


class ModulatedDeformConv(nn.Module):
    """DCNv2 in place of a plain conv: the conv's weights, plus an offset/mask conv initialised to
    zero (so it starts as the plain conv with every tap weighted sigmoid(0) = 0.5, as mmcv's DCNv2)."""

    def __init__(self, conv: nn.Conv2d):
        super().__init__()
        kh, kw = conv.kernel_size
        self.stride, self.padding, self.dilation = conv.stride, conv.padding, conv.dilation
        if conv.groups != 1:
            raise ValueError("deformable convolution replaces only ungrouped convs")
        self.weight = conv.weight
        self.bias = conv.bias
        self.offset_mask = nn.Conv2d(conv.in_channels, 3 * kh * kw, (kh, kw), stride=conv.stride,
                                     padding=conv.padding, dilation=conv.dilation)
        nn.init.zeros_(self.offset_mask.weight)
        nn.init.zeros_(self.offset_mask.bias)

    def forward(self, x: Tensor) -> Tensor:
        dy_dx_m = self.offset_mask(x)
        n = dy_dx_m.shape[1] // 3
        offset, mask = dy_dx_m[:, : 2 * n], dy_dx_m[:, 2 * n:].sigmoid()
        return deform_conv2d(x, offset, self.weight, self.bias, stride=self.stride, padding=self.padding,
                             dilation=self.dilation, mask=mask)


def add_deformable_convs(backbone: TimmBackbone, strides=(8, 16, 32)) -> int:
    """Replace the 3x3 ``conv2`` of every residual block in the stages of ``strides`` (res3-res5) by
    :class:`ModulatedDeformConv`. Returns the number replaced; ValueError when the backbone has no
    such block (DCN is defined here for ResNet-style backbones)."""
    info = backbone.model.feature_info.get_dicts()
    stages = [d["module"] for d in info if int(d["reduction"]) in strides]
    count = 0
    for stage in stages:
        for block in backbone.model.get_submodule(stage).children():
            conv = getattr(block, "conv2", None)
            if isinstance(conv, nn.Conv2d) and conv.kernel_size == (3, 3) and conv.groups == 1:
                block.conv2 = ModulatedDeformConv(conv)
                count += 1
    if count == 0:
        raise ValueError(f"backbone {backbone.name!r} has no ResNet-style 3x3 conv2 blocks for deformable convs")
    return count


def cell_centres(cells: Tensor, grid: int) -> Tensor:
    """Flat cell indices (row * S + col) -> (x, y) of the cell centres in [-1, 1] (grid_sample units)."""
    rows = torch.div(cells, grid, rounding_mode="floor")
    cols = cells - rows * grid
    x = (cols.float() + 0.5) / grid * 2.0 - 1.0
    y = (rows.float() + 0.5) / grid * 2.0 - 1.0
    return torch.stack([x, y], dim=-1)


def sample_kernels(feats: Tensor, cells: Tensor, grid: int) -> Tensor:
    """Instance kernels: the normalised feature at the centre of each S x S cell.

    ``feats`` [D, h, w] (one image), ``cells`` [N] flat cell indices -> [N, D], unit length.
    Bilinear sampling at the cell centre (align_corners=False), then re-normalised.
    """
    if cells.numel() == 0:
        return feats.new_zeros((0, feats.shape[0]))
    grid_xy = cell_centres(cells, grid).to(feats.dtype).view(1, 1, -1, 2)
    picked = F.grid_sample(feats.unsqueeze(0), grid_xy, mode="bilinear", align_corners=False)
    return F.normalize(picked[0, :, 0].t(), dim=1)


def index_fusion(ins_sim: Tensor, cate_sim: Tensor) -> Tensor:
    """The paper's "Index" fusion: parsing map of (person n, part k) = ins_sim[n] * cate_sim[k].

    Both cosine maps are clamped at 0 first (otherwise two negative similarities would give a
    positive prediction). ``ins_sim`` [N, h, w], ``cate_sim`` [K, h, w] -> [N, K, h, w].
    """
    return ins_sim.clamp(min=0).unsqueeze(1) * cate_sim.clamp(min=0).unsqueeze(0)


class UniParser(nn.Module):
    """The UniParser network (inference part: no loss, no training-only parameter)."""

    def __init__(
        self,
        *,
        num_classes: int,
        backbone: dict | None = None,
        fpn_dim: int = 256,
        feat_dim: int = 128,
        S: int = 40,
        light: bool = False,
        neck_kernel: int = 1,
        num_convs: int = 5,
        gn_groups: int = 32,
        norm_last: bool = False,
    ):
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must count the background and at least one part, got {num_classes}")
        if neck_kernel not in (1, 3):
            raise ValueError(f"neck_kernel must be 1 or 3, got {neck_kernel}")
        if num_convs < 2:
            raise ValueError(f"num_convs must be at least 2, got {num_convs}")
        backbone = dict(backbone or {"name": "resnet50"})
        self.num_classes = num_classes
        self.S = S
        self.light = light
        self.backbone = TimmBackbone(backbone["name"], pretrained=backbone.get("pretrained"),
                                     frozen_stride=backbone.get("frozen_stride"))
        self.norm_eval = bool(backbone.get("norm_eval", False))
        if backbone.get("dcn", False):
            add_deformable_convs(self.backbone)
        if list(self.backbone.strides) != [4, 8, 16, 32]:
            raise ValueError(f"UniParser needs backbone strides 4/8/16/32, got {self.backbone.strides}")
        self.fpn = FeaturePyramidNetwork(list(self.backbone.out_channels), fpn_dim, extra_blocks=LastLevelMaxPool())
        in_neck = fpn_dim if light else 5 * fpn_dim  # light: P2 only; full: P2..P6 concatenated
        kernel = 1 if light else neck_kernel
        self.neck = nn.Conv2d(in_neck, fpn_dim, kernel, padding=kernel // 2)
        self.center_locator = _tower(fpn_dim + 2, feat_dim, 1, num_convs, gn_groups)
        self.ifsb = _tower(fpn_dim + 2, feat_dim, feat_dim, num_convs, gn_groups, norm_last=norm_last)
        self.cfsb = _tower(fpn_dim, feat_dim, feat_dim, num_convs, gn_groups, norm_last=norm_last)
        self.cate_kernels = nn.Parameter(torch.randn(num_classes - 1, feat_dim) * 0.01)
        self._init_weights()

    def _init_weights(self) -> None:
        for tower in (self.center_locator, self.ifsb, self.cfsb):
            for m in tower.modules():
                if isinstance(m, nn.Conv2d):
                    nn.init.normal_(m.weight, std=0.01)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
        nn.init.constant_(self.center_locator[-1].bias, PRIOR_BIAS)

    def train(self, mode: bool = True) -> "UniParser":
        super().train(mode)
        if self.norm_eval:  # every backbone BatchNorm keeps its statistics (mmdet norm_eval)
            for m in self.backbone.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()
        return self

    def neck_features(self, images: Tensor) -> Tensor:
        """F_neck [B, fpn_dim, H/4, W/4]."""
        h, w = images.shape[-2:]
        if h % 32 or w % 32:
            raise ValueError(
                f"input size {h}x{w} is not a multiple of 32; pad it to {-(-h // 32) * 32}x{-(-w // 32) * 32}"
            )
        feats = self.backbone(images)
        pyramid = list(self.fpn(OrderedDict((str(i), f) for i, f in enumerate(feats))).values())
        if self.light:
            return self.neck(pyramid[0])
        size = pyramid[0].shape[-2:]
        ups = [pyramid[0]] + [F.interpolate(p, size=size, mode="bilinear", align_corners=False) for p in pyramid[1:]]
        return self.neck(torch.cat(ups, dim=1))

    def forward(self, images: Tensor) -> dict[str, Tensor]:
        neck = self.neck_features(images)
        with_xy = coord_channels(neck)
        small = F.interpolate(with_xy, size=(self.S, self.S), mode="bilinear", align_corners=False)
        center_logits = self.center_locator(small)
        ins_feats = F.normalize(self.ifsb(with_xy), dim=1)
        cate_feats = F.normalize(self.cfsb(neck), dim=1)
        kernels = F.normalize(self.cate_kernels, dim=1)
        cate_sim = torch.einsum("kd,bdhw->bkhw", kernels, cate_feats)
        return {
            "center_logits": center_logits,
            "ins_feats": ins_feats,
            "cate_feats": cate_feats,
            "cate_kernels": kernels,
            "cate_sim": cate_sim,
        }


MODEL_KEYS = ("backbone", "fpn_dim", "feat_dim", "num_classes", "S", "light", "neck_kernel", "num_convs", "gn_groups",
              "norm_last")
BACKBONE_KEYS = ("name", "pretrained", "frozen_stride", "norm_eval", "dcn")


def build_uniparser(model_cfg: dict) -> UniParser:
    """Build from the ``model:`` config section; unknown keys raise ConfigError with close matches.

    The returned network carries ``.config`` (a JSON-able copy of the section) so that an inference
    checkpoint can rebuild it.
    """
    import copy

    from ..errors import ConfigError, check_keys

    cfg = copy.deepcopy(dict(model_cfg or {}))
    check_keys("key in 'model'", cfg, MODEL_KEYS)
    backbone = cfg.get("backbone") or {"name": "resnet50"}
    if not isinstance(backbone, dict) or "name" not in backbone:
        raise ConfigError("model.backbone must be a mapping with a timm 'name' (e.g. {name: resnet50})")
    check_keys("key in 'model.backbone'", backbone, BACKBONE_KEYS)
    if "num_classes" not in cfg:
        raise ConfigError("model.num_classes is missing (the target label space's number of classes)")
    kwargs = {k: v for k, v in cfg.items() if k != "backbone"}
    try:
        net = UniParser(backbone=backbone, **kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"model: {exc}") from None
    net.config = cfg
    return net


def build_uniparser_from_config(config: dict) -> UniParser:
    """Rebuild the network stored in a checkpoint (its ``model_config``, i.e. ``net.config``)."""
    from ..errors import CheckpointError, ConfigError

    try:
        return build_uniparser(config)
    except ConfigError as exc:
        raise CheckpointError(f"checkpoint model config cannot be built: {exc}") from None
