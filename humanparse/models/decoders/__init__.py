"""Decoders: encoder maps + backbone stride-4 map -> H_1, H_2, H_3, F."""

from humanparse.models.decoders.swin_decoder import SwinUpDecoder

__all__ = ["SwinUpDecoder"]
