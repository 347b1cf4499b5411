"""Seed the demo: ingest the sample lecture into a "Sample course".

With the vidrag service (``make run``'s default), the course is a *shared* collection on
the service's data root, owned by the instructor (the first demo user) with a course
group (``cs101``) as viewers: a student logs in and finds it under "Shared with me".
Without the service, each demo user gets a personal "Sample course" instead.

Run by ``python -m hub_config.launch`` on first start, in its own process so the models it
loads are not kept in memory beside the hub. Seeding happens once: a marker file records
it, so later starts skip the work (and a collection since deleted is not forced back).
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


def shared_pending(shared_root: Path) -> bool:
    """Whether the shared sample course has not been seeded on this data root yet."""
    return not (shared_root / MARKER).exists()


def seed_shared(shared_root: Path, owner: str, group: str, sample: Path = SAMPLE, out=sys.stdout) -> str:
    """Ingest ``sample`` into ``owner``'s shared "Sample course" on the service's data root,
    with JupyterHub group ``group`` as its viewers; returns the collection's id.

    It writes what the service would (the service is not running yet at seeding time):
    the kernel library on the shared root, acting for the owner, and the group's grant.
    """
    from vidrag_hub import sharing
    from vidrag_hub.access import RoleAccess
    from vidrag_hub.auth import HubUser
    from vidrag_hub.db import open_database

    from vidrag_kernel import Settings
    from vidrag_kernel.catalog import Collection
    from vidrag_kernel.library import LocalLibrary

    started = time.monotonic()
    settings = Settings.from_env(home=shared_root, user=owner)
    catalog = open_database(settings.resolved_database_url)  # kernel and service tables
    try:
        lib = LocalLibrary(settings, catalog=catalog, access=RoleAccess(HubUser(owner, admin=True)))
        course = lib.collections.get_or_create(COLLECTION, description=DESCRIPTION)
        results = lib.ingest(str(sample), course.id)
        failed = [r for r in results if r.status == "failed"]
        if failed or not results:
            raise RuntimeError(f"ingesting the shared sample lecture failed: {[r.error for r in failed]}")
        with catalog.session() as s:
            sharing.grant(s, s.get(Collection, course.id), "group", group, "viewer", owner)
    finally:
        catalog.close()
    (shared_root / MARKER).write_text(f"{COLLECTION}\n")
    print(
        f"  {owner}: shared {COLLECTION} ready, group {group} may view it ({time.monotonic() - started:.0f} s)",
        file=out,
        flush=True,
    )
    return course.id


def main(argv: list[str] | None = None) -> int:
    """``python -m hub_config.seed --home DIR USER...`` (personal courses), or
    ``python -m hub_config.seed --shared-root DIR --group cs101 OWNER`` (one shared course)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--home", type=Path, help="the data root (VIDRAG_HOME): personal courses")
    parser.add_argument("--shared-root", type=Path, help="the service's data root: one shared course")
    parser.add_argument("--group", default="cs101", help="with --shared-root: the group that may view it")
    parser.add_argument("--sample", type=Path, default=SAMPLE, help="the lecture to ingest")
    parser.add_argument("users", nargs="+", help="users to seed (with --shared-root: the owner)")
    args = parser.parse_args(argv)
    if args.shared_root:
        args.shared_root.mkdir(parents=True, exist_ok=True)
        seed_shared(args.shared_root.resolve(), args.users[0], args.group, args.sample)
    elif args.home:
        seed(args.home.resolve(), args.users, args.sample)
    else:
        parser.error("give --home or --shared-root")
    return 0


if __name__ == "__main__":
    sys.exit(main())
