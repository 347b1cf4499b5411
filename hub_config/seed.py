"""Seed the demo: ingest the sample lecture into each demo user's "Sample course".

Run by ``python -m hub_config.launch`` on first start, in its own process so the models it
loads are not kept in memory beside the hub. A user is seeded once: a marker file in their
data directory records it, so later starts skip the work (and a collection the user has
since deleted is not forced back).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterable
from pathlib import Path

from hub_config.options import REPO_ROOT
from hub_config.spawning import safe_dirname

SAMPLE = REPO_ROOT / "samples" / "lecture.webm"
COLLECTION = "Sample course"
DESCRIPTION = "A short sample lecture, ingested by `make run` so there is something to ask about."
MARKER = ".sample-course-seeded"


def user_home(home: Path, user: str) -> Path:
    """A user's personal data directory, as the hub's spawner sets ``VIDRAG_HOME``."""
    return home / "users" / safe_dirname(user)


def pending(home: Path, users: Iterable[str]) -> list[str]:
    """The users whose sample course has not been seeded yet."""
    return [u for u in users if not (user_home(home, u) / MARKER).exists()]


def seed(home: Path, users: Iterable[str], sample: Path = SAMPLE, out=sys.stdout) -> list[str]:
    """Ingest ``sample`` into "Sample course" for each pending user; the users seeded."""
    from vidrag_kernel import Settings, Workbench

    done = []
    for user in pending(home, users):
        started = time.monotonic()
        data = user_home(home, user)
        last = {"stage": None}

        def progress(event, user=user, last=last) -> None:
            if event.stage != last["stage"]:
                last["stage"] = event.stage
                print(f"  {user}: {event.stage}", file=out, flush=True)

        with Workbench(Settings.from_env(home=data, user=user)) as wb:
            wb.collections.get_or_create(COLLECTION, description=DESCRIPTION)
            results = wb.ingest(str(sample), collection=COLLECTION, progress=progress)
        failed = [r for r in results if getattr(r, "status", "") == "failed"]
        if failed or not results:
            raise RuntimeError(
                f"ingesting the sample lecture for {user} failed: {[r.error for r in failed] or 'no result'}"
            )
        (data / MARKER).write_text(f"{COLLECTION}\n")
        print(f"  {user}: {COLLECTION} ready ({time.monotonic() - started:.0f} s)", file=out, flush=True)
        done.append(user)
    return done


def main(argv: list[str] | None = None) -> int:
    """``python -m hub_config.seed --home DIR USER...``"""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, required=True, help="the data root (VIDRAG_HOME)")
    parser.add_argument("--sample", type=Path, default=SAMPLE, help="the lecture to ingest")
    parser.add_argument("users", nargs="+", help="users to seed")
    args = parser.parse_args(argv)
    seed(args.home.resolve(), args.users, args.sample)
    return 0


if __name__ == "__main__":
    sys.exit(main())
