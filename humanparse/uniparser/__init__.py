"""UniParser: NMS-free multi-person parsing with unified correlation representation learning.

    from humanparse.uniparser import MultiPersonParser
    parser = MultiPersonParser.from_checkpoint("runs/uniparser_tiny_cpu/model.safetensors", long_side=128)
    results = parser([rgb_uint8])    # [{"person_ids", "parts", "persons": [{id, score, rle}]}]

Training goes through the generic trainer with ``recipe: uniparser`` (``configs/uniparser_*.yaml``).
"""

from .compose import PersonCutout, Scene, SceneComposer, cutout_from_sample
from .inference import decode, find_centres, predict
from .model import UniParser, build_uniparser
from .predictor import MultiPersonParser, write_cihp_predictions

__all__ = [
    "UniParser", "build_uniparser", "MultiPersonParser", "write_cihp_predictions", "predict", "decode",
    "find_centres", "SceneComposer", "Scene", "PersonCutout", "cutout_from_sample",
]
