"""Commands for shared collections: share, members, links, invites.

They speak to the vidrag service through ``workbench().service.sharing``, so they work
only inside a JupyterHub server whose hub registered the service; elsewhere they stop
with one line saying so. The service decides who may do what; its refusals come back
as the kernel's errors (a viewer's ``share`` exits with 3, forbidden).
"""

from __future__ import annotations

import re

from ..errors import InvalidInput, VidragError
from . import emit_json, workbench

NO_SERVICE = "sharing needs the vidrag service: run inside JupyterHub with the service enabled"

ROLES = ["viewer", "editor"]

# seconds per unit of an --expires value such as 7d, 12h, 30m or 2w
_UNITS = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


class NoService(VidragError):
    """Sharing asked for outside a hub with the vidrag service."""

    status = 503
    kind = "no_service"


def _sharing():
    service = workbench().service
    if service is None:
        raise NoService(NO_SERVICE)
    return service.sharing


def expiry_days(value: str) -> float:
    """Days from an expiry such as ``7d``, ``12h``, ``30m``, ``2w`` (a bare number is days)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([mhdw]?)\s*", value or "")
    if not match:
        raise InvalidInput(f"An expiry looks like 7d, 12h, 30m or 2w, not {value!r}")
    amount, unit = float(match.group(1)), match.group(2) or "d"
    return amount * _UNITS[unit] / 86400


def _table(rows: list[list[str]]) -> None:
    if not rows:
        return
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    for row in rows:
        print("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())


# ------------------------------------------------------------------------------ share
def cmd_share(args) -> int:
    sharing = _sharing()
    given = {"user": args.user, "group": args.group, "email": args.email}
    if sum(bool(v) for v in given.values()) != 1:
        raise InvalidInput("Share with exactly one of --user, --group, --email")
    if args.invite or args.email:
        result = sharing.invite(
            args.collection, user=args.user, group=args.group, email=args.email, role=args.role
        )
    else:
        result = sharing.share(args.collection, user=args.user, group=args.group, role=args.role)
    if args.json:
        emit_json(result.to_dict())
    elif not args.email and args.invite:
        print(f"Invited {result.kind} {result.target} as {result.role} (invite {result.id}).")
    elif args.email:
        print(f"Invited {args.email} as {result.role} (invite {result.id}).")
        print(f"Send them this link to accept after logging in: {result.join_path}")
    else:
        print(f"Shared {args.collection!r} with {result.kind} {result.name} as {result.role}.")
    return 0


def cmd_members(args) -> int:
    members = _sharing().members(args.collection)
    if args.json:
        emit_json([m.to_dict() for m in members])
        return 0
    _table(
        [["KIND", "NAME", "ROLE", "GRANTED BY"]]
        + [[m.kind, m.name, m.role, m.granted_by or ""] for m in members]
    )
    return 0


# ------------------------------------------------------------------------------ links
def cmd_links(args) -> int:
    sharing = _sharing()
    if args.action == "create":
        days = expiry_days(args.expires) if args.expires else None
        link = sharing.create_link(
            _need(args.collection, "links create COLLECTION"),
            role=args.role,
            expires_in_days=days,
            max_uses=args.uses,
            note=args.note or "",
        )
        if args.json:
            emit_json(link.to_dict())
        else:
            uses = f", {link.max_uses} use(s)" if link.max_uses else ""
            print(f"Link {link.id}: {link.role}, expires {link.expires_at}{uses}.")
            print(f"Token (shown once): {link.token}")
            print(f"Join at: {link.join_path}")
        return 0
    if args.action == "list":
        links = sharing.links(_need(args.collection, "links list COLLECTION"))
        if args.json:
            emit_json([link.to_dict() for link in links])
            return 0
        rows = [["ID", "ROLE", "STATE", "USES", "EXPIRES", "NOTE"]]
        for link in links:
            limit = f"{link.uses}/{link.max_uses}" if link.max_uses else str(link.uses)
            rows.append([link.id, link.role, link.state, limit, link.expires_at or "", link.note])
        _table(rows)
        return 0
    if args.action == "revoke":
        link = sharing.revoke_link(
            _need(args.collection, "links revoke COLLECTION LINK_ID"),
            _need(args.id, "links revoke COLLECTION LINK_ID"),
        )
        if args.json:
            emit_json(link.to_dict())
        else:
            print(f"Revoked link {link.id} ({link.uses} use(s)).")
        return 0
    # redeem: the only argument is the link (or its token)
    joined = sharing.redeem(_need(args.collection, "links redeem LINK_OR_TOKEN"))
    if args.json:
        emit_json(joined.to_dict())
    else:
        print(f"Joined {joined.collection!r} (owner {joined.owner}) as {joined.role}.")
    return 0


# ---------------------------------------------------------------------------- invites
def cmd_invites(args) -> int:
    sharing = _sharing()
    if args.action == "list":
        invites = sharing.invites(args.collection)
        if args.json:
            emit_json([i.to_dict() for i in invites])
            return 0
        if not invites:
            print("No invites." if args.collection else "No invites waiting for you.")
            return 0
        rows = [["ID", "COLLECTION", "ROLE", "FROM", "TO"]]
        for i in invites:
            rows.append(
                [i.id, i.collection or i.collection_id, i.role, i.invited_by or "", f"{i.kind} {i.target}"]
            )
        _table(rows)
        return 0
    invite_id = _need(args.id, f"invites {args.action} ID")
    answer = sharing.accept if args.action == "accept" else sharing.decline
    joined = answer(invite_id, token=args.token)
    if args.json:
        emit_json(joined.to_dict())
    elif joined.accepted:
        print(f"Accepted: you are now {joined.role} on {joined.collection!r}.")
    else:
        print(f"Declined the invite to {joined.collection!r}.")
    return 0


def _need(value: str | None, usage: str) -> str:
    if not value:
        raise InvalidInput(f"Usage: vidrag {usage}")
    return value


def register(sub) -> None:
    """Add ``share``, ``members``, ``links`` and ``invites`` to the ``vidrag`` parser."""
    p = sub.add_parser("share", help="share a shared collection with a hub user, group or e-mail address")
    p.add_argument("collection", help="shared collection name or id")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--user", help="a JupyterHub user name (granted at once)")
    who.add_argument("--group", help="a JupyterHub group, e.g. a course roster (granted at once)")
    who.add_argument("--email", help="an e-mail address (an invite with a link to send)")
    p.add_argument("--role", choices=ROLES, default="viewer")
    p.add_argument(
        "--invite",
        action="store_true",
        help="invite the user or group (they accept or decline) instead of granting at once",
    )
    p.add_argument("--json", action="store_true", help="print the grant or invite as JSON")
    p.set_defaults(func=cmd_share)

    p = sub.add_parser("members", help="who holds which role on a shared collection")
    p.add_argument("collection", help="shared collection name or id")
    p.add_argument("--json", action="store_true", help="a JSON list")
    p.set_defaults(func=cmd_members)

    p = sub.add_parser(
        "links",
        help="share links: create, list, revoke (on a collection) or redeem one",
        description="vidrag links create COLLECTION [--expires 7d] [--uses N] [--role R]; "
        "links list COLLECTION; links revoke COLLECTION LINK_ID; links redeem LINK_OR_TOKEN",
    )
    p.add_argument("action", choices=["create", "list", "revoke", "redeem"])
    p.add_argument(
        "collection", nargs="?", help="shared collection name or id (redeem: the link or its token)"
    )
    p.add_argument("id", nargs="?", help="the link's id (revoke)")
    p.add_argument("--expires", help="how long the link works: 30m, 12h, 7d (default), 2w")
    p.add_argument("--uses", type=int, help="how many people may use it (default: no limit)")
    p.add_argument("--role", choices=ROLES, default="viewer")
    p.add_argument("--note", help="a note for yourself (who the link is for)")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_links)

    p = sub.add_parser(
        "invites",
        help="invites waiting for you: list, accept or decline",
        description="vidrag invites list [--collection C]; invites accept|decline ID [--token T]",
    )
    p.add_argument("action", choices=["list", "accept", "decline"])
    p.add_argument("id", nargs="?", help="the invite's id (accept, decline)")
    p.add_argument("--collection", help="list: a collection's invites and answers instead of yours")
    p.add_argument("--token", help="the token of an e-mail invite (from its link)")
    p.add_argument("--json", action="store_true", help="JSON output")
    p.set_defaults(func=cmd_invites)
