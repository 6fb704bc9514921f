"""Video parsing: frames in, a label video (or P-mode PNGs) and an overlay video out, at the input's frame rate.

    humanparse parse model.safetensors clip.mp4 --out parsed/ --smooth 0.6          # semantic, smoothed
    humanparse parse uniparser.safetensors clip.mp4 --task multi --out persons/      # stable person ids

- ``io``: reading (OpenCV) and atomic writing (lossless FFV1 ``.mkv`` for labels, ``.mp4`` for overlays).
- ``temporal``: scene-cut detection, the exponential moving average of probabilities, the flicker measure.
- ``tracking``: person ids kept from frame to frame by mask IoU (Hungarian matching).
- ``pipeline``: the two parsing loops that ``humanparse parse`` calls for video inputs.
"""

from .io import VIDEO_EXTENSIONS, VideoReader, VideoWriter, is_video_path
from .temporal import ProbabilityEMA, SceneCutDetector, label_flicker
from .tracking import PersonTracker

__all__ = ["VIDEO_EXTENSIONS", "VideoReader", "VideoWriter", "is_video_path", "ProbabilityEMA",
           "SceneCutDetector", "label_flicker", "PersonTracker", "parse_video", "parse_video_multi"]


def __getattr__(name: str):
    if name in ("parse_video", "parse_video_multi"):
        from . import pipeline

        return getattr(pipeline, name)
    raise AttributeError(f"module 'humanparse.video' has no attribute {name!r}")
