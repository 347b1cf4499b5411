"""Run benchmarks: ``python -m benchmarks [ingest|retrieval|answer|batch ...]`` runs the
ones named (all of ``ALL`` when none is), each with its defaults;
``python -m benchmarks NAME --option ...`` runs one with its own options
(``python -m benchmarks.NAME --help`` lists them)."""

from __future__ import annotations

import importlib
import sys

ALL = ["ingest", "retrieval", "answer", "batch", "quotas", "service", "login"]


def main(argv: list[str]) -> int:
    names = list(argv) or ALL
    options: list[str] = []
    for i, arg in enumerate(names):
        if arg.startswith("-"):
            names, options = names[:i], names[i:]
            break
    if options and len(names) != 1:
        raise SystemExit(
            "options go after exactly one benchmark's name: python -m benchmarks NAME --option ..."
        )
    for name in names:
        module = importlib.import_module(f"benchmarks.{name}")
        module.main(options)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
