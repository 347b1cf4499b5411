"""``vidrag collections publish NAME [--as NEW]``: a personal collection becomes a shared one.

The work is ``Workbench.publish`` (``vidrag_kernel.publishing``); this draws a progress
bar per video and stage when stderr is a terminal, prints one line per video published or
not (with the reason), and a summary. The exit code is 0 when every video was published,
1 when some could not be.
"""

from __future__ import annotations

import sys

from . import emit_json


def cmd_publish(wb, args) -> int:
    """Publish ``args.name`` (as ``args.as_name``) and print what happened."""
    from .library import _Bars

    bars = _Bars(enabled=not args.json and sys.stderr.isatty())
    try:
        report = wb.publish(args.name, args.as_name, progress=bars)
    finally:
        bars.close()
    if args.json:
        emit_json(report.to_dict())
        return 1 if report.failed else 0
    shared = report.collection
    for result in report.published:
        print(
            f"PUBLISHED  {result.video_id}  {result.title}  ({result.chunk_count} chunks via {result.source})"
        )
    for missing in report.failed:
        print(f"NOT PUBLISHED  {missing.title}: {missing.reason}")
    total = len(report.published) + len(report.failed)
    print(
        f"published {args.name} as the shared collection {shared.name} ({shared.id}): "
        f"{len(report.published)} of {total} video(s)"
    )
    return 1 if report.failed else 0
