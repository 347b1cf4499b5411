"""Run every benchmark: ``python -m benchmarks [ingest|retrieval|answer|batch ...]``."""

from __future__ import annotations

import importlib
import sys

ALL = ["ingest", "retrieval", "answer", "batch", "quotas", "service", "login"]


def main(argv: list[str]) -> int:
    for name in argv or ALL:
        module = importlib.import_module(f"benchmarks.{name}")
        module.main()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
