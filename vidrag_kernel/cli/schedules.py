"""``vidrag schedules``: scheduled batch ingests of shared collections, kept by the service.

    vidrag schedules create COLLECTION --source URL [--source URL ...] --cron "0 3 * * *"
                            [--timezone Europe/Berlin] [--captions auto] [--paused]
    vidrag schedules list [COLLECTION]
    vidrag schedules pause|resume|delete|run-now SCHEDULE_ID
    vidrag schedules runs SCHEDULE_ID            # the history: start, end, added/skipped/failed
    vidrag schedules log SCHEDULE_ID RUN_ID [--format ipynb|html] [-o FILE]

They need the vidrag service (inside JupyterHub), like ``vidrag share``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..errors import InvalidInput
from . import emit_json, workbench
from .sharing import NoService, _table

NO_SERVICE = "schedules need the vidrag service: run inside JupyterHub with the service enabled"
ACTIONS = ["create", "list", "pause", "resume", "delete", "run-now", "runs", "log"]


def _schedules():
    service = workbench().service
    if service is None:
        raise NoService(NO_SERVICE)
    return service.schedules


def _need(value: str | None, what: str) -> str:
    if not value:
        raise InvalidInput(f"Name the {what}")
    return value


def _schedule_rows(items) -> list[list[str]]:
    rows = [["ID", "COLLECTION", "CRON", "TIME ZONE", "STATE", "NEXT RUN", "SOURCES"]]
    for s in items:
        state = "paused" if s.paused else ("running" if s.running_run_id else "active")
        rows.append(
            [s.id, s.collection_id, s.cron, s.timezone, state, s.next_run_at or "-", str(len(s.sources))]
        )
    return rows


def cmd_schedules(args) -> int:
    schedules = _schedules()
    action = args.action
    if action == "create":
        if not args.source:
            raise InvalidInput("Give at least one --source (a playlist, channel, feed or video URL)")
        made = schedules.create(
            _need(args.target, "collection"),
            args.source,
            _need(args.cron, "--cron expression"),
            timezone=args.timezone,
            captions=args.captions,
            paused=args.paused,
        )
        if args.json:
            emit_json(made.to_dict())
        else:
            print(f"schedule {made.id}: {made.cron} ({made.timezone}), next run {made.next_run_at or '-'}")
        return 0
    if action == "list":
        items = schedules.list(args.target)
        if args.json:
            emit_json([s.to_dict() for s in items])
        elif items:
            _table(_schedule_rows(items))
        else:
            print("no schedules")
        return 0
    schedule_id = _need(args.target, "schedule id")
    if action in ("pause", "resume"):
        done = schedules.pause(schedule_id) if action == "pause" else schedules.resume(schedule_id)
        if args.json:
            emit_json(done.to_dict())
        else:
            print(f"schedule {done.id} {'paused' if done.paused else 'active'}")
        return 0
    if action == "delete":
        schedules.delete(schedule_id)
        if args.json:
            emit_json({"deleted": schedule_id})
        else:
            print(f"schedule {schedule_id} deleted")
        return 0
    if action == "run-now":
        run = schedules.run_now(schedule_id)
        if args.json:
            emit_json(run.to_dict())
        else:
            print(f"run {run.id} started; see: vidrag schedules runs {schedule_id}")
        return 0
    if action == "runs":
        runs = schedules.runs(schedule_id)
        if args.json:
            emit_json([r.to_dict() for r in runs])
            return 0
        if not runs:
            print("no runs yet")
            return 0
        rows = [["RUN", "TRIGGER", "STATE", "STARTED", "FINISHED", "ADDED", "SKIPPED", "FAILED", "WHY"]]
        for r in runs:
            why = (r.error or "").splitlines()[0][:80] if r.error else ""
            rows.append(
                [
                    r.id,
                    r.trigger,
                    r.state,
                    r.started_at,
                    r.finished_at or "-",
                    str(r.added),
                    str(r.skipped),
                    str(r.failed),
                    why,
                ]
            )
        _table(rows)
        return 0
    # log
    text = schedules.notebook(schedule_id, _need(args.run, "run id"), args.format)
    if args.output:
        Path(args.output).write_text(text)
        print(f"wrote {args.output}")
    else:
        print(text)
    return 0


def register(sub) -> None:
    """Add ``schedules`` to the ``vidrag`` parser."""
    p = sub.add_parser(
        "schedules",
        help="scheduled batch ingests of shared collections (run by the vidrag service)",
        description=__doc__.split("\n\n", 1)[1].split("\n\nThey")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("action", choices=ACTIONS)
    p.add_argument("target", nargs="?", help="create, list: a shared collection; otherwise a schedule id")
    p.add_argument("run", nargs="?", help="log: the run's id")
    p.add_argument(
        "--source", action="append", help="create: a playlist, channel, feed or video URL (repeat)"
    )
    p.add_argument("--cron", help='create: when, e.g. "0 3 * * *" (5 fields; 6 with seconds first)')
    p.add_argument("--timezone", default="UTC", help="create: an IANA time zone (default UTC)")
    p.add_argument("--captions", choices=["auto", "prefer", "only", "never"], default="auto")
    p.add_argument("--paused", action="store_true", help="create: keep it paused until resumed")
    p.add_argument("--format", choices=["ipynb", "html"], default="ipynb", help="log: notebook or HTML")
    p.add_argument("-o", "--output", help="log: write the notebook to this file")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_schedules)
