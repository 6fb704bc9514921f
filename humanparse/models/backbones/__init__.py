"""Backbones: timm models by their timm name."""

from humanparse.models.backbones.timm_backbone import TimmBackbone

__all__ = ["TimmBackbone"]
