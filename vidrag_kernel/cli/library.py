"""Commands for the library: ingest, collections, videos, transcript, search, jobs."""

from __future__ import annotations

import sys

from ..links import format_time
from . import emit_json, workbench


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


class _Bars:
    """tqdm bars per video and stage, on stderr so --json output stays clean."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None
        self.key = None

    def __call__(self, event) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        key = (event.title, event.stage)
        if key != self.key:
            if self.bar is not None:
                self.bar.close()
            title = (event.title or "")[:40]
            self.bar = tqdm(
                total=100, desc=f"{title} · {event.stage}", unit="%", file=sys.stderr, leave=False
            )
            self.key = key
        self.bar.n = int(event.fraction * 100)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def cmd_ingest(args) -> int:
    wb = workbench()
    if args.dry_run:
        items = wb.plan(args.sources, captions=args.captions)
        if args.json:
            for item in items:
                emit_json(item.to_dict())
            return 0
        total = 0.0
        for item in items:
            dur = format_time(item.duration) if item.duration else "?"
            est = f"~{item.estimated_seconds:.0f}s" if item.estimated_seconds is not None else "unknown"
            caps = "captions" if item.captions else ("auto captions" if item.auto_captions else "no captions")
            flag = " (already ingested)" if item.already_ingested else ""
            err = f" — {item.error}" if item.error else ""
            print(f"{item.title}  [{dur}, {caps}, via {item.transcript_source}, {est}]{flag}{err}")
            total += item.duration or 0
        print(f"{len(items)} video(s), {total / 60:.1f} minutes in all")
        return 0
    bars = _Bars(enabled=not args.json and sys.stderr.isatty() or args.progress)
    try:
        results = wb.ingest(args.sources, collection=args.collection, captions=args.captions, progress=bars)
    finally:
        bars.close()
    failed = 0
    for r in results:
        failed += r.status == "failed"
        if args.json:
            emit_json(r.to_dict())
        elif r.status == "failed":
            print(f"FAILED  {r.title}: {r.error}")
        else:
            what = "already ingested" if r.status == "exists" else f"{r.chunk_count} chunks via {r.source}"
            print(f"{r.status.upper():6}  {r.video_id}  {r.title}  ({what})")
    return 1 if failed else 0


def cmd_collections(args) -> int:
    wb = workbench()
    if args.action == "list":
        items = wb.collections.list(search=args.search)
        if args.json:
            emit_json([c.to_dict() for c in items])
            return 0
        for c in items:
            meta = ", ".join(x for x in (c.instructor, c.subject, c.semester) if x)
            print(f"{c.name:30} {c.video_count:4d} videos  {format_time(c.total_duration):>8}  {meta}")
        return 0
    if args.action == "create":
        c = wb.collections.create(
            args.name,
            args.description or "",
            instructor=args.instructor,
            subject=args.subject,
            semester=args.semester,
            tags=_csv(args.tags),
            glossary=args.glossary,
        )
        emit_json(c.to_dict()) if args.json else print(f"created {c.name} ({c.id})")
        return 0
    if args.action == "edit":
        meta = {
            k: getattr(args, k) for k in ("instructor", "subject", "semester") if getattr(args, k) is not None
        }
        if args.tags is not None:
            meta["tags"] = _csv(args.tags)
        c = wb.collections.update(
            args.name, name=args.rename, description=args.description, glossary=args.glossary, **meta
        )
        emit_json(c.to_dict()) if args.json else print(f"changed {c.name} ({c.id})")
        return 0
    if args.action == "show":
        c = wb.collections.get(args.name)
        videos = wb.videos.list(c.id)
        if args.json:
            emit_json({**c.to_dict(), "videos": [v.to_dict() for v in videos]})
            return 0
        print(f"{c.name} ({c.id})\n{c.description}")
        for key in ("instructor", "subject", "semester"):
            if getattr(c, key):
                print(f"  {key}: {getattr(c, key)}")
        if c.tags:
            print(f"  tags: {', '.join(c.tags)}")
        if c.glossary:
            print(f"  glossary: {', '.join(c.glossary)}")
        for v in videos:
            print(f"  {v.id}  {format_time(v.duration or 0):>8}  {v.status:7} {v.title}")
        return 0
    if args.action == "publish":
        from .publish import cmd_publish

        return cmd_publish(wb, args)
    if args.action == "delete":
        deleted = wb.collections.delete(args.name, delete_videos=not args.keep_videos)
        print(f"deleted {args.name}" + (f" and {len(deleted)} video(s)" if deleted else ""))
        return 0
    return 2


def cmd_videos(args) -> int:
    wb = workbench()
    if args.action == "list":
        items = wb.videos.list(args.collection, tags=_csv(args.tags) or None)
        if args.json:
            emit_json([v.to_dict() for v in items])
            return 0
        for v in items:
            print(
                f"{v.id}  {format_time(v.duration or 0):>8}  {v.status:7} {v.title}  [{', '.join(v.collections)}]"
            )
        return 0
    if args.action == "delete":
        n = wb.videos.delete(args.ids)
        print(f"deleted {n} video(s)")
        return 0
    if args.action == "tag":
        v = wb.videos.set_tags(args.ids[0], _csv(args.tags))
        print(f"{v.title}: {', '.join(v.tags) or '(no tags)'}")
        return 0
    return 2


def cmd_transcript(args) -> int:
    sys.stdout.write(workbench().transcript(args.video_id, args.format))
    return 0


def cmd_search(args) -> int:
    hits = workbench().search(args.query, args.collection, videos=_csv(args.videos) or None, k=args.k)
    if args.json:
        emit_json([h.to_dict() for h in hits])
        return 0
    if not hits:
        print("no passages found")
    for i, h in enumerate(hits, 1):
        print(f"[{i}] {h.score:.3f}  {h.title}  {format_time(h.start)}–{format_time(h.end)}  {h.link}")
        print(f"    {h.text[:200]}")
    return 0


def cmd_jobs(args) -> int:
    wb = workbench()
    if args.action == "list":
        jobs = wb.jobs.list(state=args.state)
        if args.json:
            emit_json([j.to_dict() for j in jobs])
            return 0
        for j in jobs:
            err = f"  {j.error}" if j.error else ""
            print(f"{j.id}  {j.state:12} {(j.title or j.source)[:50]}{err}")
        return 0
    results = wb.jobs.retry(args.job_id)
    for r in results:
        print(f"{r.status.upper():6}  {r.title}" + (f": {r.error}" if r.error else ""))
    return 1 if any(r.status == "failed" for r in results) else 0


def register(sub) -> None:
    """Add the library commands to the parser."""
    p = sub.add_parser("ingest", help="fetch, transcribe and index videos")
    p.add_argument(
        "sources", nargs="+", metavar="SOURCE", help="URL (video, playlist, channel, page) or file"
    )
    p.add_argument("--collection", "-c", help="collection name or id (default: Uncategorized)")
    p.add_argument("--captions", choices=["auto", "prefer", "only", "never"], default=None)
    p.add_argument("--dry-run", action="store_true", help="list what would be added; download nothing")
    p.add_argument("--json", action="store_true", help="one JSON object per video")
    p.add_argument("--progress", action="store_true", help="show progress bars even when not on a terminal")
    p.set_defaults(func=cmd_ingest)

    p = sub.add_parser("collections", help="list, create, edit, show, delete or publish collections")
    p.add_argument("action", choices=["list", "create", "edit", "show", "delete", "publish"])
    p.add_argument("name", nargs="?")
    p.add_argument("--description", "-d")
    p.add_argument("--instructor")
    p.add_argument("--subject")
    p.add_argument("--semester")
    p.add_argument("--tags", help="comma-separated")
    p.add_argument(
        "--glossary",
        help='course terms and names, comma-separated ("Wegener, Pangaea, slab pull"): speech '
        'recognition is told to expect them; "" clears it',
    )
    p.add_argument("--rename", metavar="NEW", help="on edit, the collection's new name")
    p.add_argument("--search", help="filter the list")
    p.add_argument("--keep-videos", action="store_true", help="on delete, move videos to Uncategorized")
    p.add_argument("--as", dest="as_name", metavar="NEW", help="on publish, the shared collection's name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=_needs_name(cmd_collections))

    p = sub.add_parser("videos", help="list, tag or delete videos")
    p.add_argument("action", choices=["list", "delete", "tag"])
    p.add_argument("ids", nargs="*", metavar="VIDEO_ID")
    p.add_argument("--collection", "-c")
    p.add_argument("--tags", help="comma-separated (filter for list, new tags for tag)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_videos)

    p = sub.add_parser("transcript", help="print a video's transcript")
    p.add_argument("video_id")
    p.add_argument("--format", "-f", choices=["txt", "json", "srt", "vtt"], default="txt")
    p.set_defaults(func=cmd_transcript)

    p = sub.add_parser("search", help="find the passages that answer a question")
    p.add_argument("query")
    p.add_argument("--collection", "-c")
    p.add_argument("--videos", help="comma-separated video ids")
    p.add_argument("-k", type=int, default=5)
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_search)

    p = sub.add_parser("jobs", help="list ingest jobs or retry a failed one")
    p.add_argument("action", choices=["list", "retry"])
    p.add_argument("job_id", nargs="?")
    p.add_argument("--state")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_jobs)


def _needs_name(func):
    def wrapped(args):
        from ..errors import InvalidInput

        if args.action in {"create", "edit", "show", "delete", "publish"} and not args.name:
            raise InvalidInput(f"'collections {args.action}' needs a collection name")
        return func(args)

    return wrapped
