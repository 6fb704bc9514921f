"""Reading and writing videos with OpenCV. Frames are RGB uint8 [H, W, 3] on the Python side.

A written video appears only when it is complete: frames go to a temporary file in the target folder,
which is moved into place (``os.replace``) by ``close()``; an error on the way removes it.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Iterator

import cv2
import numpy as np

from ..errors import DataError

__all__ = ["VIDEO_EXTENSIONS", "is_video_path", "VideoReader", "VideoWriter"]

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
# suffix -> fourcc; .mkv is FFV1, lossless (label videos), .avi Motion-JPEG, .mp4 MPEG-4 part 2
_CODECS = {".mkv": "FFV1", ".mp4": "mp4v", ".avi": "MJPG"}


def is_video_path(path: str | Path) -> bool:
    return Path(str(path)).suffix.lower() in VIDEO_EXTENSIONS


class VideoReader:
    """Iterate over a video's frames (RGB). ``fps``, ``size`` (w, h) and ``frame_count`` (as the container says)."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise DataError(self.path, "video file not found")
        self._cap = cv2.VideoCapture(str(self.path))
        if not self._cap.isOpened():
            raise DataError(self.path, "cannot open the video (not a video, or a codec OpenCV lacks)")
        self.fps = float(self._cap.get(cv2.CAP_PROP_FPS)) or 25.0
        self.size = (int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH)), int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT)))
        self.frame_count = max(0, int(self._cap.get(cv2.CAP_PROP_FRAME_COUNT)))

    def __iter__(self) -> Iterator[np.ndarray]:
        count = 0
        while True:
            ok, frame = self._cap.read()
            if not ok:
                break
            count += 1
            yield cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
        if count == 0:
            raise DataError(self.path, "the video has no readable frame")

    def close(self) -> None:
        self._cap.release()

    def __enter__(self) -> "VideoReader":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class VideoWriter:
    """Write RGB frames to ``path`` (codec by suffix: .mkv lossless FFV1, .mp4, .avi), atomically."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _CODECS:
            raise DataError(self.path, f"cannot write {suffix or 'a file without suffix'} videos; use one of "
                                       f"{', '.join(_CODECS)}")
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{self.path.stem}.", suffix=suffix, dir=self.path.parent)
        os.close(fd)
        self._tmp = tmp
        self.size = (int(size[0]), int(size[1]))
        self._out = cv2.VideoWriter(tmp, cv2.VideoWriter_fourcc(*_CODECS[suffix]), float(fps), self.size)
        if not self._out.isOpened():
            os.unlink(tmp)
            raise DataError(self.path, f"OpenCV cannot write {_CODECS[suffix]} video here")
        self.frames = 0

    def write(self, frame: np.ndarray) -> None:
        h, w = frame.shape[:2]
        if (w, h) != self.size:
            raise ValueError(f"frame of size {w}x{h} for a {self.size[0]}x{self.size[1]} video")
        self._out.write(cv2.cvtColor(np.ascontiguousarray(frame, dtype=np.uint8), cv2.COLOR_RGB2BGR))
        self.frames += 1

    def close(self) -> None:
        self._out.release()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        self._out.release()
        if os.path.exists(self._tmp):
            os.unlink(self._tmp)

    def __enter__(self) -> "VideoWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()
