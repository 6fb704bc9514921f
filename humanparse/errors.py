"""One small exception hierarchy. Every message says what went wrong, where, and what to do next."""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Iterable


class HumanparseError(Exception):
    """Base class for errors the CLI turns into a one-line message and exit code 1."""


class ConfigError(HumanparseError, ValueError):
    """A configuration key or value is wrong."""


class DataError(HumanparseError):
    """A data file is missing, unreadable or inconsistent. ``path`` names the file."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class CheckpointError(HumanparseError):
    """A checkpoint cannot be read, or does not match what the caller asked for."""


def unknown_key_message(kind: str, key: str, valid: Iterable[str]) -> str:
    """'unknown backbone 'resnt50'; did you mean 'resnet50'? valid: ...' (difflib close matches)."""
    valid = sorted(valid)
    close = difflib.get_close_matches(key, valid, n=3)
    hint = f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return f"unknown {kind} {key!r}{hint} (valid: {', '.join(valid)})"


def check_keys(kind: str, given: Iterable[str], valid: Iterable[str]) -> None:
    """Raise ConfigError for the first key of ``given`` not in ``valid``, with close matches."""
    valid = set(valid)
    for key in given:
        if key not in valid:
            raise ConfigError(unknown_key_message(kind, key, valid))
