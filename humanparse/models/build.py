"""Build a ParsingNetwork from the ``model:`` section of a YAML config.

```yaml
model:
  backbone: {name: resnet50, pretrained: null, frozen_stride: null}
  # any timm name; pretrained: null | true | packaged | /path/weights; frozen_stride: freeze stem + stages up to it
  encoder: {type: deformable, dim: 256, num_layers: 6}   # other keys: DeformableEncoder's kwargs
  decoder: {type: swin, dim: 192, depths: [2, 2, 2]}     # other keys: SwinUpDecoder's kwargs
```
Every key is optional except ``backbone.name``; omitted keys take the constructor defaults, and the
resolved values are stored on ``network.config`` so that ``build_network(**network.config)`` rebuilds the
same architecture even if a default changes later. ``backbone.pretrained`` is stored as null there: it only
chooses the initial weights, and a rebuilt network gets its weights from a checkpoint.

Adding an encoder or decoder type: put its class in ``ENCODERS`` / ``DECODERS``. An encoder's constructor
takes ``in_channels`` (the backbone widths at strides 8/16/32) and sets ``out_dim``; a decoder's takes
``encoder_dim`` and ``lateral_channels`` (widths at strides 4/8/16) and sets ``out_dim``. Everything else
is a keyword argument with a default, and is a config key.
"""

from __future__ import annotations

import copy
import inspect
from collections.abc import Mapping
from typing import Any

from torch import nn

from humanparse.errors import ConfigError, check_keys, unknown_key_message
from humanparse.models.backbones.timm_backbone import TimmBackbone
from humanparse.models.decoders.swin_decoder import SwinUpDecoder
from humanparse.models.encoders.deformable_encoder import DeformableEncoder
from humanparse.models.frozen_bn import BACKBONE_NORMS, freeze_batch_norm
from humanparse.models.heads import DomainHeads
from humanparse.models.parsing_network import ParsingNetwork

__all__ = ["DECODERS", "ENCODERS", "build_network"]

ENCODERS: dict[str, type[nn.Module]] = {"deformable": DeformableEncoder}
DECODERS: dict[str, type[nn.Module]] = {"swin": SwinUpDecoder}

_BACKBONE_KEYS = {"name": None, "pretrained": None, "frozen_stride": None, "norm": "batch"}
_DERIVED = {"self", "in_channels", "encoder_dim", "lateral_channels"}  # filled in from the parts' widths


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    return value


def _defaults(cls: type) -> dict[str, Any]:
    """The config keys of a part: its keyword arguments and their defaults."""
    params = inspect.signature(cls.__init__).parameters.values()
    return {p.name: _jsonable(p.default) for p in params if p.name not in _DERIVED and p.default is not p.empty}


def _resolve_part(kind: str, cfg: Mapping[str, Any] | None, registry: Mapping[str, type], default: str) -> dict:
    cfg = dict(cfg or {})
    part_type = cfg.pop("type", default)
    if part_type not in registry:
        raise ConfigError(unknown_key_message(f"{kind} type", part_type, registry))
    defaults = _defaults(registry[part_type])
    check_keys(f"model.{kind} key", cfg, list(defaults) + ["type"])
    return {"type": part_type, **defaults, **{k: _jsonable(v) for k, v in cfg.items()}}


def _resolve(model_cfg: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(model_cfg, Mapping):
        raise ConfigError(f"the model config must be a mapping, got {type(model_cfg).__name__}")
    check_keys("model key", model_cfg, ["backbone", "encoder", "decoder"])
    backbone = dict(model_cfg.get("backbone") or {})
    check_keys("model.backbone key", backbone, _BACKBONE_KEYS)
    if not backbone.get("name"):
        raise ConfigError("model.backbone.name is required (a timm model name, e.g. resnet50)")
    return {
        "backbone": {**_BACKBONE_KEYS, **backbone},
        "encoder": _resolve_part("encoder", model_cfg.get("encoder"), ENCODERS, "deformable"),
        "decoder": _resolve_part("decoder", model_cfg.get("decoder"), DECODERS, "swin"),
    }


def build_network(model_cfg: Mapping[str, Any], num_classes: Mapping[str, int]) -> ParsingNetwork:
    """A ParsingNetwork with one head per entry of ``num_classes`` ({domain: number of classes})."""
    if not num_classes:
        raise ConfigError("num_classes is empty: give at least one {domain: number of classes}")
    resolved = _resolve(copy.deepcopy(dict(model_cfg)))
    backbone = TimmBackbone(resolved["backbone"]["name"], pretrained=resolved["backbone"]["pretrained"],
                            frozen_stride=resolved["backbone"]["frozen_stride"])
    if resolved["backbone"]["norm"] == "frozen":  # model.backbone.norm: frozen (see models/frozen_bn.py)
        freeze_batch_norm(backbone)
    elif resolved["backbone"]["norm"] not in BACKBONE_NORMS:
        raise ConfigError(unknown_key_message("model.backbone.norm", resolved["backbone"]["norm"], BACKBONE_NORMS))
    enc_cfg = {k: v for k, v in resolved["encoder"].items() if k != "type"}
    encoder = ENCODERS[resolved["encoder"]["type"]](backbone.out_channels[1:], **enc_cfg)
    dec_cfg = {k: v for k, v in resolved["decoder"].items() if k != "type"}
    decoder = DECODERS[resolved["decoder"]["type"]](
        encoder_dim=encoder.out_dim,
        lateral_channels=[backbone.out_channels[0], encoder.out_dim, encoder.out_dim],
        **dec_cfg,
    )
    heads = DomainHeads(decoder.out_dim, dict(num_classes))
    # the config describes the architecture; the network's own weights replace the backbone's initial ones,
    # so a rebuild (e.g. when loading a checkpoint elsewhere) must not need that file or the hub
    resolved["backbone"]["pretrained"] = None
    config = {"model_cfg": resolved, "num_classes": dict(num_classes)}
    return ParsingNetwork(backbone=backbone, encoder=encoder, decoder=decoder, heads=heads, config=config)
