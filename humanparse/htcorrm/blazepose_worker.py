"""Run MediaPipe BlazePose on images; print raw landmarks as JSON. Needs only mediapipe, numpy, cv2.

This file is executed as a *script* by ``humanparse.htcorrm.pseudo_label`` inside the Python that
has mediapipe (mediapipe 0.10.21 pins an old protobuf, so it usually lives in its own venv); it
imports nothing from humanparse. Input: a JSON list of image paths on stdin. Output (stdout)::

    {"<path>": [[x_px, y_px, visibility], ... 33 landmarks] | null, ...}

``x_px, y_px`` are pixel coordinates with pixel centres at integers (MediaPipe's normalised
coordinates times the image size, minus 0.5); ``visibility`` is BlazePose's per-landmark likelihood of
being visible (the legacy API leaves ``presence`` at 0, so it is not reported); ``null`` = no person found.
The legacy ``mp.solutions.pose`` API is used with ``model_complexity=1`` ("full"): it is the landmark model
the wheel ships, so nothing is downloaded (complexities 0 and 2 would fetch their models).
"""

from __future__ import annotations

import json
import sys


def main() -> int:
    import cv2
    import mediapipe as mp

    paths = json.load(sys.stdin)
    out = {}
    with mp.solutions.pose.Pose(static_image_mode=True, model_complexity=1, enable_segmentation=False,
                                min_detection_confidence=0.5) as pose:
        for path in paths:
            bgr = cv2.imread(path, cv2.IMREAD_COLOR)
            if bgr is None:
                print(f"{path}: cannot read image", file=sys.stderr)
                return 2
            h, w = bgr.shape[:2]
            result = pose.process(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
            if result.pose_landmarks is None:
                out[path] = None
                continue
            out[path] = [[lm.x * w - 0.5, lm.y * h - 0.5, lm.visibility]
                         for lm in result.pose_landmarks.landmark]
    json.dump(out, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
