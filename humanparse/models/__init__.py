"""The parsing network (kept at inference): timm backbone -> deformable encoder -> Swin decoder -> heads.

This package never imports a training method (humanparse.sst, uniparser, htcorrm, engine).
"""

from humanparse.models.backbones import TimmBackbone
from humanparse.models.build import DECODERS, ENCODERS, build_network
from humanparse.models.heads import DomainHeads
from humanparse.models.parsing_network import ParsingNetwork, pad_to_multiple

__all__ = [
    "DECODERS",
    "ENCODERS",
    "DomainHeads",
    "ParsingNetwork",
    "TimmBackbone",
    "build_network",
    "pad_to_multiple",
]
