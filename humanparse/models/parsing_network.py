"""The parsing network kept at inference: backbone -> encoder -> decoder -> one 1x1 head per domain."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from humanparse.errors import ConfigError
from humanparse.models.heads import DomainHeads

__all__ = ["INPUT_MULTIPLE", "ParsingNetwork", "pad_to_multiple"]

INPUT_MULTIPLE = 32  # the coarsest stride: H and W must be multiples of it


def pad_to_multiple(
    images: Tensor, multiple: int = INPUT_MULTIPLE, value: float = 0.0
) -> tuple[Tensor, tuple[int, int]]:
    """Pad [..., H, W] at the bottom and right up to multiples of ``multiple``.

    Returns ``(padded, (pad_h, pad_w))``; crop outputs with ``[..., :H, :W]``. With normalised images the
    default ``value=0`` is the mean colour.
    """
    h, w = int(images.shape[-2]), int(images.shape[-1])
    pad_h, pad_w = (multiple - h % multiple) % multiple, (multiple - w % multiple) % multiple
    if pad_h or pad_w:
        images = F.pad(images, (0, pad_w, 0, pad_h), value=value)
    return images, (pad_h, pad_w)


def _is_exporting() -> bool:
    return torch.jit.is_scripting() or torch.jit.is_tracing() or torch.compiler.is_compiling()


class ParsingNetwork(nn.Module):
    """``forward(images [B, 3, H, W], domains=None) -> {"logits": {domain: [B, C_d, H/4, W/4]},
    "features": {"H1": 1/16, "H2": 1/8, "H3": 1/4, "F": 1/4, all [B, D, ., .]}}``.

    ``domains``: None for every head, a name, or a list of names. H and W must be multiples of 32
    (``pad_to_multiple``); other sizes raise ValueError naming the padded size.

    Parts (any modules with these interfaces):
      backbone(images) -> [C4, C8, C16, C32] with ``strides == [4, 8, 16, 32]`` and ``out_channels``;
      encoder([C8, C16, C32]) -> [E8, E16, E32];
      decoder([E8, E16, E32], C4) -> {"H1", "H2", "H3", "F"} with ``out_dim`` (D);
      heads: DomainHeads over F.
    """

    requires_divisible_input_shape = True

    def __init__(
        self,
        *,
        backbone: nn.Module,
        encoder: nn.Module,
        decoder: nn.Module,
        heads: DomainHeads,
        config: dict[str, Any] | None = None,
    ):
        super().__init__()
        strides = list(getattr(backbone, "strides", []))
        if strides != [4, 8, 16, 32]:
            raise ConfigError(f"the backbone must give feature maps at strides [4, 8, 16, 32], it gives {strides}")
        if heads.in_dim != decoder.out_dim:
            raise ConfigError(f"heads take {heads.in_dim} channels but the decoder gives {decoder.out_dim}")
        self.backbone, self.encoder, self.decoder, self.heads = backbone, encoder, decoder, heads
        self._config = copy.deepcopy(config) if config is not None else None

    @property
    def domains(self) -> list[str]:
        return self.heads.domains

    @property
    def num_classes(self) -> dict[str, int]:
        return self.heads.num_classes

    @property
    def feature_dim(self) -> int:
        return self.decoder.out_dim

    @property
    def config(self) -> dict[str, Any] | None:
        """The JSON-able dict this network was built from (``build_network(**network.config)`` rebuilds it).

        Heads added later with ``add_head`` are included in ``num_classes``.
        """
        if self._config is None:
            return None
        config = copy.deepcopy(self._config)
        config["num_classes"] = self.num_classes
        return config

    def add_head(self, domain: str, num_classes: int) -> None:
        """A new head, e.g. the target domain's in dedicated parsing."""
        self.heads.add_head(domain, num_classes)

    @staticmethod
    def check_input_shape(images: Tensor) -> None:
        h, w = int(images.shape[-2]), int(images.shape[-1])
        if h % INPUT_MULTIPLE or w % INPUT_MULTIPLE:
            m = INPUT_MULTIPLE
            ph, pw = h + (m - h % m) % m, w + (m - w % m) % m
            raise ValueError(
                f"input size {h}x{w} is not a multiple of {INPUT_MULTIPLE}; pad it to {ph}x{pw} "
                f"(humanparse.models.pad_to_multiple) and crop the output"
            )

    def forward(self, images: Tensor, domains: str | Sequence[str] | None = None) -> dict[str, dict[str, Tensor]]:
        if not _is_exporting():
            self.check_input_shape(images)
        c4, c8, c16, c32 = self.backbone(images)
        features = self.decoder(self.encoder([c8, c16, c32]), c4)
        return {"logits": self.heads(features["F"], domains), "features": features}

    def predict(self, images: Tensor, domain: str) -> Tensor:
        """Logits of one domain at the input size, [B, C, H, W], in eval mode without autograd.

        Any H, W: the images are padded to a multiple of 32 and the result is cropped back.
        The module's training/eval mode is restored afterwards.
        """
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode():
                h, w = int(images.shape[-2]), int(images.shape[-1])
                padded, _ = pad_to_multiple(images)
                logits = self(padded, [domain])["logits"][domain]
                logits = F.interpolate(logits, size=padded.shape[-2:], mode="bilinear", align_corners=False)
                return logits[..., :h, :w]
        finally:
            self.train(was_training)
