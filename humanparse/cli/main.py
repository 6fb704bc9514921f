"""The ``humanparse`` command. Thin: it parses arguments and calls the package.

Known errors (``HumanparseError``) become one line on stderr and exit code 1; set
``HUMANPARSE_DEBUG=1`` for the traceback.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys

from ..errors import HumanparseError
from . import bench, demo, evaluate, export, keypoints, labels, parse, pseudo_label, score, serve, train

GROUPS = [labels, train, evaluate, score, parse, export, bench, demo, pseudo_label, keypoints, serve]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="humanparse",
        description="Human parsing: train over several label domains (SST), evaluate, score, parse your photos, export.",
    )
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for group in GROUPS:
        group.add_parser(sub)
    return parser


def _version() -> str:
    from .. import __version__

    return f"humanparse {__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code = args.run(args)
    except HumanparseError as exc:
        if os.environ.get("HUMANPARSE_DEBUG"):
            raise
        print(f"humanparse {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)  # RunInterrupted: a run saved its last step
        saved = "; the last complete step is checkpointed (--resume continues)" if hasattr(exc, "signum") else ""
        print(f"humanparse {args.command}: interrupted by {signal.Signals(signum).name}{saved}", file=sys.stderr)
        return 128 + int(signum)
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
