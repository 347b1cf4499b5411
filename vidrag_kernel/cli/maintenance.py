"""Commands for the installation and the indexes: backends, reindex."""

from __future__ import annotations

import sys

from ..errors import VidragError
from . import emit_json, workbench


def _selected() -> dict[str, str]:
    """The backend the environment's settings choose for each kind ({} if they are invalid)."""
    from ..backends import selected
    from ..settings import Settings

    try:
        return selected(Settings.from_env())
    except VidragError:
        # the listing is how one finds out what to set: a bad value must not hide it
        return {}


def cmd_backends(args) -> int:
    from ..backends import REGISTRIES

    chosen = _selected()
    rows = []
    for kind, registry in REGISTRIES.items():
        for backend in registry.backends():
            row = backend.to_dict()
            row["selected"] = chosen.get(kind) == backend.name and row["status"] != "broken"
            rows.append(row)
    if args.json:
        emit_json(rows)
        return 0
    for kind, registry in REGISTRIES.items():
        print(f"{kind}s (choose with {registry.setting})")
        for row in (r for r in rows if r["kind"] == kind):
            where = row["source"]
            if row["package"]:
                where += f" ({row['package']} {row['version'] or ''})".replace(" )", ")")
            state = row["status"]
            if row["reason"]:
                state += f": {row['reason']}"
            if row["install"]:
                state += f" ({row['install']})"
            mark = "*" if row["selected"] else " "
            print(f"  {mark} {row['name']:<22} {where:<36} {state}")
    print("* = chosen by the current settings")
    return 0


def cmd_reindex(args) -> int:
    from ..embed import describe_identity, get_embedder, identity
    from ..progress import tqdm_progress

    wb = workbench()
    show = not args.json and sys.stderr.isatty() or args.progress
    progress = tqdm_progress(notebook=False) if show else None
    generation = wb.reindex(args.collection, progress=progress)
    used = identity(get_embedder(wb.settings), wb.settings)
    if args.json:
        emit_json({"collection": args.collection, "generation": generation, "embedder": used})
    else:
        print(f'reindexed "{args.collection}" with {describe_identity(used)}: index generation {generation}')
    return 0


def register(sub) -> None:
    """Add the maintenance commands to the parser."""
    p = sub.add_parser(
        "backends", help="list the transcribers, embedders and answerers installed, and which can run"
    )
    p.add_argument("--json", action="store_true", help="print one JSON list")
    p.set_defaults(func=cmd_backends)

    p = sub.add_parser(
        "reindex",
        help="re-embed a collection's stored passages with the current embedding model "
        "(no download or transcription)",
    )
    p.add_argument("collection", metavar="COLLECTION", help="collection name or id")
    p.add_argument("--progress", action="store_true", help="show progress bars even when not on a terminal")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=cmd_reindex)
