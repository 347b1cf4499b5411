"""Members, invites and share links of shared collections: the rules, on a session.

The endpoints check the caller's role with the kernel's policy first (``RoleAccess``);
these functions then change the service's tables. Roles handed out here are viewer or
editor: owner changes hands only by ``transfer``.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, or_, select, update
from sqlalchemy.orm import Session

from vidrag_kernel.access import role_rank
from vidrag_kernel.catalog import Collection
from vidrag_kernel.errors import Conflict, InvalidInput, NotFound, VidragError

from .auth import HubUser
from .models import Grant, Invite, InviteAnswer, ShareLink

ASSIGNABLE = ("viewer", "editor")
KINDS = ("user", "group")
INVITE_KINDS = ("user", "group", "email")
DEFAULT_LINK_DAYS = 7
MAX_LINK_DAYS = 365
TOKEN_BYTES = 32  # 256 bits; at least 128 are required


class LinkUnusable(VidragError):
    """A share link or invite that was valid once: revoked, expired or used up."""

    status = 410
    kind = "link_unusable"


def new_token() -> str:
    """A random token for a link or an e-mail invite (shown once, never stored).

    Never one that starts with "-": a command line would read it as an option
    (``vidrag links redeem -Yz…``). Drawing again keeps every token uniform over the rest.
    """
    while True:
        token = secrets.token_urlsafe(TOKEN_BYTES)
        if not token.startswith("-"):
            return token


def hash_token(token: str) -> str:
    """What the database keeps of a token: its SHA-256 (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


def now() -> datetime:
    return datetime.now(UTC)


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything here is written in UTC."""
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


def iso(value: datetime | None) -> str | None:
    value = aware(value)
    return value.isoformat() if value else None


def check_role(role: str) -> str:
    if role not in ASSIGNABLE:
        raise InvalidInput(
            f"A role to give is viewer or editor, not {role!r} (ownership moves with a transfer)"
        )
    return role


def _principal(kind: str, name: str) -> tuple[str, str]:
    if kind not in KINDS:
        raise InvalidInput(f"Members are a user or a group, not {kind!r}")
    name = (name or "").strip()
    if not name or len(name) > 255:
        raise InvalidInput(f"A {kind} name is 1 to 255 characters")
    return kind, name


# ------------------------------------------------------------------------------ members
def grant_view(g: Grant) -> dict:
    return {
        "kind": g.principal_kind,
        "name": g.principal,
        "role": g.role,
        "granted_by": g.granted_by,
        "created_at": iso(g.created_at),
    }


def members(s: Session, collection: Collection) -> list[dict]:
    """The owner, then every grant (users, then groups, by name)."""
    rows = s.scalars(
        select(Grant)
        .where(Grant.collection_id == collection.id)
        .order_by(Grant.principal_kind.desc(), Grant.principal)
    )
    owner = {
        "kind": "user",
        "name": collection.owner,
        "role": "owner",
        "granted_by": None,
        "created_at": None,
    }
    return [owner, *(grant_view(g) for g in rows)]


def grant(
    s: Session,
    collection: Collection,
    kind: str,
    name: str,
    role: str,
    by: str,
    *,
    keep_stronger: bool = False,
) -> Grant | None:
    """Give ``kind``/``name`` the ``role`` (replacing their grant, or only raising it with
    ``keep_stronger``). None when the user is the owner, who needs no grant."""
    kind, name = _principal(kind, name)
    check_role(role)
    if kind == "user" and name == collection.owner:
        if keep_stronger:
            return None
        raise Conflict(f"{name} owns {collection.name!r}; transfer ownership to change that")
    row = s.scalar(
        select(Grant).where(
            Grant.collection_id == collection.id, Grant.principal_kind == kind, Grant.principal == name
        )
    )
    if row is None:
        row = Grant(
            collection_id=collection.id, principal_kind=kind, principal=name, role=role, granted_by=by
        )
        s.add(row)
    elif not keep_stronger or role_rank(role) > role_rank(row.role):
        row.role, row.granted_by = role, by
    s.flush()
    return row


def change(s: Session, collection: Collection, kind: str, name: str, role: str, by: str) -> Grant:
    """Change an existing member's role."""
    kind, name = _principal(kind, name)
    row = s.scalar(
        select(Grant).where(
            Grant.collection_id == collection.id, Grant.principal_kind == kind, Grant.principal == name
        )
    )
    if row is None:
        raise NotFound(f"{kind} {name} is not a member of {collection.name!r}")
    row.role, row.granted_by = check_role(role), by
    s.flush()
    return row


def revoke(s: Session, collection: Collection, kind: str, name: str) -> None:
    """Remove a member's grant."""
    kind, name = _principal(kind, name)
    if kind == "user" and name == collection.owner:
        raise Conflict(f"{name} owns {collection.name!r}: transfer ownership before removing them")
    gone = s.execute(
        delete(Grant).where(
            Grant.collection_id == collection.id, Grant.principal_kind == kind, Grant.principal == name
        )
    ).rowcount
    if not gone:
        raise NotFound(f"{kind} {name} is not a member of {collection.name!r}")


def transfer(s: Session, collection: Collection, new_owner: str, by: str) -> None:
    """Make ``new_owner`` the owner; the previous owner stays on as an editor."""
    new_owner = _principal("user", new_owner)[1]
    old = collection.owner
    if new_owner == old:
        raise Conflict(f"{new_owner} already owns {collection.name!r}")
    clash = s.scalar(
        select(Collection.id).where(Collection.owner == new_owner, Collection.name == collection.name)
    )
    if clash:
        raise Conflict(f"{new_owner} already owns a collection named {collection.name!r}: rename one first")
    s.execute(
        delete(Grant).where(
            Grant.collection_id == collection.id, Grant.principal_kind == "user", Grant.principal == new_owner
        )
    )
    collection.owner = new_owner
    s.flush()
    grant(s, collection, "user", old, "editor", by)


def leave(s: Session, user: HubUser, collection: Collection) -> None:
    """Drop the caller's own grant; the owner must transfer first, and a group's grant
    is not the member's to drop."""
    if collection.owner == user.name:
        raise Conflict(f"You own {collection.name!r}: transfer ownership before leaving it")
    gone = s.execute(
        delete(Grant).where(
            Grant.collection_id == collection.id, Grant.principal_kind == "user", Grant.principal == user.name
        )
    ).rowcount
    if gone:
        return
    via = sorted(
        s.scalars(
            select(Grant.principal).where(
                Grant.collection_id == collection.id,
                Grant.principal_kind == "group",
                Grant.principal.in_(sorted(user.groups)),
            )
        )
    )
    if via:
        raise Conflict(
            f"You reach {collection.name!r} through the group(s) {', '.join(via)}; "
            "ask its owner to remove the group or you from it"
        )
    raise NotFound(f"You are not a member of {collection.name!r}")


def forget_collection(s: Session, collection_id: str) -> None:
    """Remove a deleted collection's grants, invites and links."""
    invite_ids = select(Invite.id).where(Invite.collection_id == collection_id)
    s.execute(delete(InviteAnswer).where(InviteAnswer.invite_id.in_(invite_ids)))
    for model in (Grant, Invite, ShareLink):
        s.execute(delete(model).where(model.collection_id == collection_id))


# ------------------------------------------------------------------------------ invites
def invite_view(inv: Invite, s: Session) -> dict:
    answers = s.scalars(select(InviteAnswer).where(InviteAnswer.invite_id == inv.id)).all()
    return {
        "id": inv.id,
        "collection_id": inv.collection_id,
        "kind": inv.kind,
        "target": inv.target,
        "role": inv.role,
        "invited_by": inv.invited_by,
        "created_at": iso(inv.created_at),
        "answers": [{"user": a.user, "answer": a.answer, "at": iso(a.answered_at)} for a in answers],
    }


def invite(
    s: Session, collection: Collection, kind: str, target: str, role: str, by: str
) -> tuple[Invite, str | None]:
    """Invite a user, each member of a group, or an e-mail address; the token (e-mail only) is returned once."""
    if kind not in INVITE_KINDS:
        raise InvalidInput(f"Invite a user, a group or an email, not {kind!r}")
    target = (target or "").strip()
    if kind == "email":
        if "@" not in target or len(target) > 320 or any(ch.isspace() for ch in target):
            raise InvalidInput(f"{target!r} is not an e-mail address")
        target = target.lower()
    else:
        target = _principal(kind, target)[1]
    if kind == "user" and target == collection.owner:
        raise Conflict(f"{target} owns {collection.name!r}")
    token = new_token() if kind == "email" else None
    row = Invite(
        collection_id=collection.id,
        kind=kind,
        target=target,
        role=check_role(role),
        invited_by=by,
        token_hash=hash_token(token) if token else None,
    )
    s.add(row)
    s.flush()
    return row, token


def collection_invites(s: Session, collection: Collection) -> list[dict]:
    rows = s.scalars(
        select(Invite)
        .where(Invite.collection_id == collection.id, Invite.revoked_at.is_(None))
        .order_by(Invite.created_at)
    )
    return [invite_view(r, s) for r in rows]


def revoke_invite(s: Session, collection: Collection, invite_id: str) -> None:
    row = s.scalar(
        select(Invite).where(
            Invite.id == invite_id, Invite.collection_id == collection.id, Invite.revoked_at.is_(None)
        )
    )
    if row is None:
        raise NotFound(f"No open invite {invite_id!r} on {collection.name!r}")
    row.revoked_at = now()


def _closed(s: Session, inv: Invite, user: str) -> bool:
    """Whether ``user`` can no longer answer: they did, or (one-person invites) anyone did."""
    q = select(InviteAnswer.id).where(InviteAnswer.invite_id == inv.id)
    if inv.kind == "group":
        q = q.where(InviteAnswer.user == user)
    return s.scalar(q.limit(1)) is not None


def pending_for(s: Session, user: HubUser) -> list[dict]:
    """Invites waiting for ``user``: to their name or to a group they are in (e-mail invites
    are answered through their link, as the hub knows no addresses)."""
    q = select(Invite, Collection).join(Collection, Collection.id == Invite.collection_id)
    conditions = (Invite.kind == "user") & (Invite.target == user.name)
    if user.groups:
        conditions = or_(conditions, (Invite.kind == "group") & Invite.target.in_(sorted(user.groups)))
    rows = s.execute(q.where(Invite.revoked_at.is_(None), conditions).order_by(Invite.created_at)).all()
    out = []
    for inv, coll in rows:
        if _closed(s, inv, user.name):
            continue
        out.append({**invite_view(inv, s), "collection": coll.name, "owner": coll.owner})
    return out


def answer(s: Session, user: HubUser, invite_id: str, accept: bool, token: str | None = None) -> dict:
    """Accept (a grant to the caller, never lowering a stronger one) or decline an invite."""
    inv = s.scalar(select(Invite).where(Invite.id == invite_id))
    meant = inv is not None and (
        (inv.kind == "user" and inv.target == user.name)
        or (inv.kind == "group" and inv.target in user.groups)
        or (inv.kind == "email" and token is not None and inv.token_hash == hash_token(token))
    )
    if not meant:
        raise NotFound(f"No invite {invite_id!r} for you")
    if inv.revoked_at is not None:
        raise LinkUnusable("This invite was withdrawn by the collection's owner")
    if _closed(s, inv, user.name):
        raise Conflict("This invite was already answered")
    collection = s.get(Collection, inv.collection_id)
    if collection is None:
        raise NotFound("The collection of this invite no longer exists")
    s.add(InviteAnswer(invite_id=inv.id, user=user.name, answer="accepted" if accept else "declined"))
    if accept:
        grant(s, collection, "user", user.name, inv.role, inv.invited_by, keep_stronger=True)
    s.flush()
    return {
        "collection_id": collection.id,
        "collection": collection.name,
        "role": inv.role,
        "accepted": accept,
    }


# -------------------------------------------------------------------------------- links
def link_state(link: ShareLink, at: datetime | None = None) -> str:
    """active, revoked, expired or used_up (the first that applies, in that order of checks)."""
    at = at or now()
    if link.revoked_at is not None:
        return "revoked"
    if aware(link.expires_at) <= at:
        return "expired"
    if link.max_uses is not None and link.uses >= link.max_uses:
        return "used_up"
    return "active"


def link_view(link: ShareLink) -> dict:
    return {
        "id": link.id,
        "collection_id": link.collection_id,
        "role": link.role,
        "note": link.note,
        "created_by": link.created_by,
        "created_at": iso(link.created_at),
        "expires_at": iso(link.expires_at),
        "max_uses": link.max_uses,
        "uses": link.uses,
        "state": link_state(link),
    }


def create_link(
    s: Session,
    collection: Collection,
    role: str,
    by: str,
    *,
    expires_at: datetime | None = None,
    expires_in_days: float | None = None,
    max_uses: int | None = None,
    note: str = "",
) -> tuple[ShareLink, str]:
    """A new link (every link expires: in 7 days unless told); its token is returned once."""
    at = now()
    if expires_at is not None and expires_in_days is not None:
        raise InvalidInput("Give expires_at or expires_in_days, not both")
    if expires_at is None:
        days = DEFAULT_LINK_DAYS if expires_in_days is None else expires_in_days
        if not 0 < days <= MAX_LINK_DAYS:
            raise InvalidInput(f"A link expires in more than 0 and at most {MAX_LINK_DAYS} days")
        expires_at = at + timedelta(days=days)
    expires_at = aware(expires_at)
    if expires_at <= at:
        raise InvalidInput("A link's expiry must be in the future")
    if expires_at > at + timedelta(days=MAX_LINK_DAYS):
        raise InvalidInput(f"A link expires within {MAX_LINK_DAYS} days")
    if max_uses is not None and max_uses < 1:
        raise InvalidInput("A use limit is at least 1 (or none)")
    if len(note or "") > 500:
        raise InvalidInput("A link's note is at most 500 characters")
    token = new_token()
    row = ShareLink(
        collection_id=collection.id,
        token_hash=hash_token(token),
        role=check_role(role),
        note=note or "",
        created_by=by,
        expires_at=expires_at,
        max_uses=max_uses,
        uses=0,
    )
    s.add(row)
    s.flush()
    return row, token


def collection_links(s: Session, collection: Collection) -> list[dict]:
    rows = s.scalars(
        select(ShareLink).where(ShareLink.collection_id == collection.id).order_by(ShareLink.created_at)
    )
    return [link_view(r) for r in rows]


def revoke_link(s: Session, collection: Collection, link_id: str) -> dict:
    row = s.scalar(select(ShareLink).where(ShareLink.id == link_id, ShareLink.collection_id == collection.id))
    if row is None:
        raise NotFound(f"No link {link_id!r} on {collection.name!r}")
    if row.revoked_at is None:
        row.revoked_at = now()
    s.flush()
    return link_view(row)


UNUSABLE = {
    "revoked": "This share link was revoked by the person who shared it",
    "expired": "This share link has expired; ask for a new one",
    "used_up": "This share link has been used as many times as it allows; ask for a new one",
}


def preview(s: Session, token: str) -> tuple[ShareLink, Collection]:
    """The link a token names and its collection, or why it cannot be used."""
    link = s.scalar(select(ShareLink).where(ShareLink.token_hash == hash_token(token or "")))
    collection = s.get(Collection, link.collection_id) if link is not None else None
    if link is None or collection is None:
        raise NotFound("This share link is not valid: check that it was copied whole")
    state = link_state(link)
    if state != "active":
        raise LinkUnusable(UNUSABLE[state])
    return link, collection


def redeem(s: Session, user: HubUser, token: str) -> dict:
    """Join a collection through a link: one use counted (atomically) and a grant made."""
    link, collection = preview(s, token)
    at = now()
    # the use is counted by one conditional UPDATE, so two redemptions of a link's last
    # use cannot both succeed
    counted = s.execute(
        update(ShareLink)
        .where(
            ShareLink.id == link.id,
            ShareLink.revoked_at.is_(None),
            ShareLink.expires_at > at,
            or_(ShareLink.max_uses.is_(None), ShareLink.uses < ShareLink.max_uses),
        )
        .values(uses=ShareLink.uses + 1)
        .execution_options(synchronize_session=False)
    ).rowcount
    if not counted:
        s.refresh(link)
        raise LinkUnusable(UNUSABLE.get(link_state(link, at), UNUSABLE["used_up"]))
    grant(s, collection, "user", user.name, link.role, link.created_by, keep_stronger=True)
    s.flush()
    return {
        "collection_id": collection.id,
        "collection": collection.name,
        "owner": collection.owner,
        "role": link.role,
    }
