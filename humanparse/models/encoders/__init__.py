"""Pixel encoders over the stride-8/16/32 backbone maps."""

from humanparse.models.encoders.deformable_encoder import DeformableEncoder
from humanparse.models.encoders.ms_deform_attn import MSDeformAttn, ms_deform_attn

__all__ = ["DeformableEncoder", "MSDeformAttn", "ms_deform_attn"]
