"""The ``vidrag`` command.

Each command group lives in its own module with a ``register(subparsers)`` function.
Errors from the library become one clear line on stderr and a non-zero exit code.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence

from ..errors import VidragError

# exit codes by error kind, so scripts can tell bad input from an upstream failure
EXIT_CODES = {400: 2, 403: 3, 404: 4, 409: 5, 413: 2, 429: 6, 501: 7, 502: 8, 503: 9}


def build_parser() -> argparse.ArgumentParser:
    from . import answers, batch, library, maintenance, schedules, sharing

    parser = argparse.ArgumentParser(
        prog="vidrag",
        description="Ask questions of lecture videos. Data lives in $VIDRAG_HOME (default ~/.vidrag).",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    library.register(sub)
    answers.register(sub)
    maintenance.register(sub)
    sharing.register(sub)
    batch.register(sub)
    schedules.register(sub)
    return parser


def workbench():
    """The Workbench for CLI commands: settings from the environment."""
    from ..workbench import Workbench

    return Workbench()


def emit_json(obj) -> None:
    print(json.dumps(obj, ensure_ascii=False, default=str))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``vidrag`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except VidragError as exc:
        if getattr(args, "json", False):
            emit_json(exc.to_dict())
        print(f"vidrag: error: {exc.message}", file=sys.stderr)
        return EXIT_CODES.get(exc.status, 1)
    except KeyboardInterrupt:
        print("vidrag: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
