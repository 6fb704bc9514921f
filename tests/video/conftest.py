"""Fixtures of the video tests (defined in _video_clips.py, which tests import helpers from)."""

from _video_clips import checkpoint, one_thread  # noqa: F401
