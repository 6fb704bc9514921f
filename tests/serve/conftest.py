"""Fixtures of the serve tests (defined in _live_server.py, which tests import helpers from)."""

from _live_server import live_server, tiny_checkpoint  # noqa: F401
