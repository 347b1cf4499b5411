"""The vidrag service's client: shared course collections as a ``Library``.

Inside a JupyterHub server, ``Workbench()`` adds a ``ServiceLibrary`` after the local one
when the hub registered the vidrag service (``hubenv.detect()``), so
``wb.collections.list()`` shows personal and shared collections together and search,
ask, transcripts and ingest reach a shared collection through the same calls. Every
request carries the server's hub token; the service checks the user's role on each.

Sharing (members and roles, ownership, invites, share links) is one object,
``wb.service.sharing`` (``Sharing``), returning small dataclasses (``Member``, ``Invite``,
``ShareLink``, ``Joined``) with ``to_dict()``; the ``vidrag share|members|links|invites``
commands are its command-line face.

It speaks the service's HTTP API with httpx (a kernel dependency), so the kernel imports
no web framework. Errors come back as the service's ``VidragError`` JSON and are raised
as the same error types here.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from .collections import CollectionInfo
from .conversations import ConversationInfo, MessageInfo
from .corrections import CorrectionInfo
from .errors import (
    Conflict,
    FetchFailed,
    Forbidden,
    InvalidInput,
    MissingDependency,
    ModelError,
    NotFound,
    QuotaExceeded,
    TooLarge,
    VidragError,
)
from .hubenv import HubEnvironment
from .ingest import IngestResult
from .jobs import JobInfo
from .videos import VideoInfo

_ERRORS = {
    400: InvalidInput,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: TooLarge,
    429: QuotaExceeded,
    501: MissingDependency,
    502: FetchFailed,
    503: ModelError,
}


def _build(cls, data: dict):
    """A dataclass from the service's JSON, ignoring fields this kernel does not know."""
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


def api_base(service_url: str, service_name: str = "vidrag") -> str:
    """The service's API root from the URL servers are given (its own address, or its
    path behind the hub's proxy)."""
    base = service_url.rstrip("/")
    suffix = f"/services/{service_name}"
    if not base.endswith(suffix):
        base += suffix
    return base + "/api/"


class ServiceClient:
    """Authenticated JSON calls to the service; a ``VidragError`` for every refusal."""

    def __init__(self, base_url: str, token: str, *, timeout: float = 60.0, http: Any = None) -> None:
        import httpx

        # ``http`` lets tests hand in any httpx.Client (FastAPI's TestClient is one)
        self._http = http or httpx.Client(timeout=timeout)
        self._base = base_url if base_url.endswith("/") else base_url + "/"
        self._headers = {"Authorization": f"token {token}"} if token else {}

    def close(self) -> None:
        self._http.close()

    def call(self, method: str, path: str, **kwargs) -> Any:
        """One JSON request; the service's refusal is raised as its ``VidragError``."""
        import httpx

        try:
            r = self._http.request(method, self._base + path.lstrip("/"), headers=self._headers, **kwargs)
        except httpx.HTTPError as exc:
            raise FetchFailed(f"The vidrag service could not be reached ({type(exc).__name__})") from exc
        if r.status_code >= 400:
            raise _refusal(r)
        return r.json() if r.content else None

    def events(self, method: str, path: str, **kwargs) -> Iterator[tuple[str | None, Any]]:
        """Server-Sent Events of one request, as ``(event name or None, JSON data)``, each as
        it arrives (``vidrag_hub.streams`` has the wire format). A refusal before the
        stream starts is raised like ``call``'s; a broken connection is ``FetchFailed``."""
        import httpx

        try:
            with self._http.stream(
                method, self._base + path.lstrip("/"), headers=self._headers, **kwargs
            ) as r:
                if r.status_code >= 400:
                    r.read()
                    raise _refusal(r)
                yield from parse_events(r.iter_lines())
        except httpx.HTTPError as exc:
            raise FetchFailed(f"The vidrag service's stream broke off ({type(exc).__name__})") from exc


def _refusal(r) -> VidragError:
    """The ``VidragError`` a refused response stands for (its JSON message, or its text)."""
    body = None
    try:
        body = r.json()
        message = str(body.get("message") or body)
    except ValueError:
        message = r.text[:300] or r.reason_phrase
    if r.status_code == 429 and isinstance(body, dict):
        # a quota's figures travel with it: limit, usage, reset time and upgrade path
        figures = {name: body.get(name) for name in QuotaExceeded.FIELDS}
        return QuotaExceeded(f"vidrag service: {message}", **figures)
    return error_from(r.status_code, message)


def error_from(status: int, message: str) -> VidragError:
    """The kernel's error for a status the service answered with."""
    cls = _ERRORS.get(status, VidragError)
    return cls(f"vidrag service: {message}", status=status)


def parse_events(lines: Iterable[str]) -> Iterator[tuple[str | None, Any]]:
    """``(name, data)`` for each Server-Sent Event in ``lines`` (data parsed as JSON).

    Comments (``: keep-alive``) are skipped; an event ends at a blank line, and several
    ``data:`` lines of one event are joined with newlines, as the SSE standard says."""
    import json

    name: str | None = None
    data: list[str] = []
    for line in lines:
        line = line.rstrip("\r")
        if not line:
            if data:
                yield name, json.loads("\n".join(data))
            name, data = None, []
            continue
        if line.startswith(":"):
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            name = value or None
        elif field == "data":
            data.append(value)
    if data:  # a last event without its blank line (the server closed right after it)
        yield name, json.loads("\n".join(data))


class SharedCollections:
    """Collections the service shares with the user (or that they own there).

    A collection is named by id or by name. Ids this client has seen in a listing (or
    created, or read) are taken as they are, with no listing to look them up: an id
    never changes, and the service checks every call, so one that is no longer the
    user's is refused there. A name is always looked up afresh."""

    def __init__(self, client: ServiceClient) -> None:
        self._c = client
        self._seen: set[str] = set()  # ids of collections listed, created or read

    def _info(self, data: dict) -> CollectionInfo:
        info = _build(CollectionInfo, data)
        info.library = "shared"
        self._seen.add(info.id)
        return info

    def forget(self, collection_id: str) -> None:
        """Look ``collection_id`` up again next time (it was deleted, or the user left it)."""
        self._seen.discard(collection_id)

    def list(self, search: str | None = None) -> list[CollectionInfo]:
        infos = [self._info(d) for d in self._c.call("GET", "collections")]
        self._seen = {i.id for i in infos}  # what the service lists now, and nothing else
        if search:
            needle = search.lower()
            infos = [i for i in infos if needle in f"{i.name} {i.description} {' '.join(i.tags)}".lower()]
        return infos

    def id_of(self, ref: str | None) -> str:
        """The id of a shared collection named or identified by ``ref``."""
        if ref is None:
            raise InvalidInput("Name the shared collection")
        if ref in self._seen:
            return ref
        infos = self.list()
        for info in infos:
            if info.id == ref:
                return info.id
        named = [i for i in infos if i.name == ref]
        if len(named) == 1:
            return named[0].id
        if named:
            ids = ", ".join(f"{i.id} (owner {i.owner})" for i in named)
            raise Conflict(f"Several collections shared with you are called {ref!r}: use an id ({ids})")
        raise NotFound(f"No shared collection named {ref!r}")

    def get(self, ref: str | None = None) -> CollectionInfo:
        return self._info(self._c.call("GET", f"collections/{self.id_of(ref)}"))

    def create(self, name: str, description: str = "", **meta) -> CollectionInfo:
        return self._info(
            self._c.call("POST", "collections", json={"name": name, "description": description, **meta})
        )

    def get_or_create(self, name: str, description: str = "", **meta) -> CollectionInfo:
        try:
            return self.get(name)
        except NotFound:
            return self.create(name, description, **meta)

    def update(self, ref: str, *, name: str | None = None, description: str | None = None, **meta):
        body = {"name": name, "description": description, **meta}
        return self._info(self._c.call("PATCH", f"collections/{self.id_of(ref)}", json=body))

    def delete(self, ref: str, *, delete_videos: bool = True) -> list[str]:
        cid = self.id_of(ref)
        deleted = self._c.call("DELETE", f"collections/{cid}").get("videos_deleted") or []
        self.forget(cid)
        return list(deleted)

    def share(
        self, ref: str, *, user: str | None = None, group: str | None = None, role: str = "viewer"
    ) -> dict:
        """Grant a JupyterHub user or group a role; ``wb.service.sharing`` has the rest."""
        body = {"user": user, "group": group, "role": role}
        return self._c.call("POST", f"collections/{self.id_of(ref)}/members", json=body)

    def members(self, ref: str) -> list[dict]:
        """Who holds which role (owners and editors may ask); see ``wb.service.sharing``."""
        return self._c.call("GET", f"collections/{self.id_of(ref)}/members")


# ------------------------------------------------------------------------------ sharing
@dataclasses.dataclass
class Member:
    """A grant on a shared collection: a user or a JupyterHub group and its role (the owner first)."""

    kind: str  # "user" or "group"
    name: str
    role: str  # "owner", "editor" or "viewer"
    granted_by: str | None = None
    created_at: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Invite:
    """An invite to a shared collection, to a user, a group or an e-mail address.

    ``token`` and ``join_path`` are set only in the answer that created an e-mail invite
    (the service keeps the token's hash only): send them to the invitee."""

    id: str
    collection_id: str
    kind: str  # "user", "group" or "email"
    target: str
    role: str
    invited_by: str | None = None
    created_at: str | None = None
    answers: list = dataclasses.field(default_factory=list)
    collection: str | None = None  # the collection's name (in one's own pending invites)
    owner: str | None = None
    token: str | None = None
    join_path: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class ShareLink:
    """A share link: its role, expiry, use limit and count, and state (active, revoked,
    expired, used_up). ``token`` and ``join_path`` are set only in the answer that created it."""

    id: str
    collection_id: str
    role: str
    expires_at: str | None = None
    max_uses: int | None = None
    uses: int = 0
    state: str = "active"
    note: str = ""
    created_by: str | None = None
    created_at: str | None = None
    token: str | None = None
    join_path: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Joined:
    """What accepting an invite or redeeming a link gave: a role on a collection (or, for a
    declined invite, nothing: ``accepted`` is False)."""

    collection_id: str
    collection: str
    role: str
    owner: str | None = None
    accepted: bool = True

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def link_token(token_or_url: str) -> str:
    """The token of a share link, given the token itself or the link (``.../join/<token>``)."""
    value = (token_or_url or "").strip()
    if "/join/" in value:
        value = value.rsplit("/join/", 1)[1]
    value = value.split("?", 1)[0].split("#", 1)[0].strip("/")
    if not value:
        raise InvalidInput("Give a share link or its token")
    return value


class Sharing:
    """Everything about who may use a shared collection: ``wb.service.sharing``.

    The one place for members and roles, ownership, invites and share links; the service
    decides who may do what (owners manage members and transfer; editors invite and make
    links; anyone may answer their own invites and redeem a link) and refuses the rest
    with ``Forbidden``. A collection is named by its name or id among the caller's shared
    collections. A revoked, expired or used-up link or invite is refused with the service's
    message and status 410.
    """

    def __init__(self, client: ServiceClient, collections: SharedCollections) -> None:
        self._c = client
        self._collections = collections

    def _path(self, ref: str, tail: str = "") -> str:
        return f"collections/{self._collections.id_of(ref)}/{tail}".rstrip("/")

    # -- members ---------------------------------------------------------------------
    def members(self, ref: str) -> list[Member]:
        """The owner, then every user and group grant (owners and editors may ask)."""
        return [_build(Member, d) for d in self._c.call("GET", self._path(ref, "members"))]

    def share(
        self,
        ref: str,
        *,
        user: str | None = None,
        group: str | None = None,
        email: str | None = None,
        role: str = "viewer",
    ) -> Member | Invite:
        """Give a hub user or group ``role`` at once (owner), or invite an e-mail address
        (editors and owner; the returned ``Invite`` carries its token, shown once)."""
        if sum(bool(v) for v in (user, group, email)) != 1:
            raise InvalidInput("Share with exactly one of: a user, a group, an e-mail address")
        if email:
            return self.invite(ref, email=email, role=role)
        body = {"user": user, "group": group, "role": role}
        return _build(Member, self._c.call("POST", self._path(ref, "members"), json=body))

    def set_role(self, ref: str, role: str, *, user: str | None = None, group: str | None = None) -> Member:
        """Change a user's or group's role (owner)."""
        kind, name = _principal(user, group)
        body = {"role": role}
        return _build(Member, self._c.call("PATCH", self._path(ref, f"members/{kind}/{name}"), json=body))

    def revoke(self, ref: str, *, user: str | None = None, group: str | None = None) -> None:
        """Remove a user's or group's grant (owner)."""
        kind, name = _principal(user, group)
        self._c.call("DELETE", self._path(ref, f"members/{kind}/{name}"))

    def transfer(self, ref: str, user: str) -> dict:
        """Make hub user ``user`` the owner; the previous owner stays as an editor (owner)."""
        return self._c.call("POST", self._path(ref, "transfer"), json={"user": user})

    def leave(self, ref: str) -> None:
        """Give up one's own grant on a collection (anyone but its owner)."""
        cid = self._collections.id_of(ref)
        self._c.call("POST", self._path(cid, "leave"))
        self._collections.forget(cid)

    # -- invites ---------------------------------------------------------------------
    def invite(
        self,
        ref: str,
        *,
        user: str | None = None,
        group: str | None = None,
        email: str | None = None,
        role: str = "viewer",
    ) -> Invite:
        """Invite a hub user, each member of a group, or an e-mail address (editors and owner)."""
        body = {"user": user, "group": group, "email": email, "role": role}
        return _build(Invite, self._c.call("POST", self._path(ref, "invites"), json=body))

    def invites(self, ref: str | None = None) -> list[Invite]:
        """Invites waiting for the caller, or (with ``ref``) a collection's invites with
        their answers (editors and owner)."""
        path = "invites" if ref is None else self._path(ref, "invites")
        return [_build(Invite, d) for d in self._c.call("GET", path)]

    def accept(self, invite_id: str, *, token: str | None = None) -> Joined:
        """Accept an invite (``token``: the one of an e-mail invite, from its link)."""
        return self._answer(invite_id, "accept", token)

    def decline(self, invite_id: str, *, token: str | None = None) -> Joined:
        """Decline an invite."""
        return self._answer(invite_id, "decline", token)

    def _answer(self, invite_id: str, verb: str, token: str | None) -> Joined:
        body = {"token": token} if token else None
        return _build(Joined, self._c.call("POST", f"invites/{_segment(invite_id)}/{verb}", json=body))

    def withdraw(self, ref: str, invite_id: str) -> None:
        """Withdraw an open invite (editors and owner)."""
        self._c.call("DELETE", self._path(ref, f"invites/{_segment(invite_id)}"))

    # -- links -----------------------------------------------------------------------
    def create_link(
        self,
        ref: str,
        *,
        role: str = "viewer",
        expires_in_days: float | None = None,
        max_uses: int | None = None,
        note: str = "",
    ) -> ShareLink:
        """A new share link (editors and owner); it expires in 7 days unless told. The
        returned link's ``token`` is shown this once."""
        body = {"role": role, "expires_in_days": expires_in_days, "max_uses": max_uses, "note": note}
        return _build(ShareLink, self._c.call("POST", self._path(ref, "links"), json=body))

    def links(self, ref: str) -> list[ShareLink]:
        """A collection's share links with their state and use count (editors and owner)."""
        return [_build(ShareLink, d) for d in self._c.call("GET", self._path(ref, "links"))]

    def revoke_link(self, ref: str, link_id: str) -> ShareLink:
        """Revoke a share link by its id (editors and owner); revoking twice is harmless."""
        return _build(ShareLink, self._c.call("DELETE", self._path(ref, f"links/{_segment(link_id)}")))

    def redeem(self, token_or_url: str) -> Joined:
        """Join the collection a share link shares, given the link or its token."""
        body = {"token": link_token(token_or_url)}
        return _build(Joined, self._c.call("POST", "links/redeem", json=body))


def _principal(user: str | None, group: str | None) -> tuple[str, str]:
    if bool(user) == bool(group):
        raise InvalidInput("Name exactly one of: a user, a group")
    return ("user", _segment(user)) if user else ("group", _segment(group))


def _segment(value: str | None) -> str:
    """``value`` as one URL path segment (a name with a slash must not reach another route)."""
    from urllib.parse import quote

    if not value:
        raise InvalidInput("A name or id is missing")
    return quote(value, safe="")


def _correction(data: dict) -> CorrectionInfo:
    info = _build(CorrectionInfo, data)
    info.created_at = _when(info.created_at)  # JSON carries the time as ISO text
    return info


class SharedVideos:
    """Videos of shared collections (read through the service; changes go through it)."""

    def __init__(self, client: ServiceClient, collections: SharedCollections) -> None:
        self._c = client
        self._collections = collections
        self._home: dict[str, str] = {}  # video id -> a shared collection holding it

    def list(self, collection: str | None = None, *, tags=None, search: str | None = None) -> list[VideoInfo]:
        ids = (
            [self._collections.id_of(collection)] if collection else [c.id for c in self._collections.list()]
        )
        out: dict[str, VideoInfo] = {}
        for cid in ids:
            for data in self._c.call("GET", f"collections/{cid}/videos"):
                self._home.setdefault(data["id"], cid)
                out.setdefault(data["id"], _build(VideoInfo, data))
        infos = list(out.values())
        if tags:
            infos = [v for v in infos if set(tags) & set(v.tags)]
        if search:
            infos = [v for v in infos if search.lower() in v.title.lower()]
        return infos

    def collection_of(self, video_id: str) -> str:
        if video_id not in self._home:
            self.list()
        if video_id not in self._home:
            raise NotFound(f"No video with id {video_id!r} in your shared collections")
        return self._home[video_id]

    def get(self, video_id: str) -> VideoInfo:
        cid = self.collection_of(video_id)
        return next(v for v in self.list(cid) if v.id == video_id)

    def transcript(self, video_id: str, fmt: str = "txt") -> str:
        cid = self.collection_of(video_id)
        return self._c.call("GET", f"collections/{cid}/videos/{video_id}/transcript", params={"format": fmt})[
            "text"
        ]

    def correct(self, video_id: str, line: int | float, text: str) -> CorrectionInfo:
        """Correct one line (its position, or its start time in seconds) through the service."""
        cid = self.collection_of(video_id)
        body = {"line": line, "text": text} if isinstance(line, int) else {"start": float(line), "text": text}
        return _correction(
            self._c.call("POST", f"collections/{cid}/videos/{video_id}/corrections", json=body)
        )

    def corrections(self, video_id: str) -> list[CorrectionInfo]:
        cid = self.collection_of(video_id)
        return [
            _correction(d) for d in self._c.call("GET", f"collections/{cid}/videos/{video_id}/corrections")
        ]

    def remove_from(self, collection: str, video_ids: str | list[str]) -> int:
        cid = self._collections.id_of(collection)
        ids = [video_ids] if isinstance(video_ids, str) else list(video_ids)
        return sum(self._c.call("DELETE", f"collections/{cid}/videos/{v}")["removed"] for v in ids)

    def _through_service_only(self, *_args, **_kwargs):
        raise InvalidInput(
            "Shared videos are changed through their collection (add by ingest, remove from it)"
        )

    delete = set_tags = add_to = move = _through_service_only

    def segments(self, video_id: str) -> list:
        import json

        return json.loads(self.transcript(video_id, "json")).get("segments", [])

    def media_path(self, video_id: str):
        return None  # shared media stay on the service's volume; play them from ``media_url``

    def media_url(self, video_id: str) -> str:
        """Where a browser plays this shared video from: the service's media route (HTTP
        Range, the browser's session with the service), as a path on the hub's origin.

        A path, not the service's own address: kernels may reach the service directly, but
        browsers reach it through the hub's proxy, on the page's origin, where the
        service's session cookie lives."""
        from urllib.parse import quote, urlsplit

        cid = self.collection_of(video_id)
        root = urlsplit(self._c._base).path  # .../services/<name>/api/
        return f"{root}collections/{quote(cid, safe='')}/videos/{quote(video_id, safe='')}/media"


class SharedJobs:
    """Ingest jobs of shared collections: the service runs them; its owners and editors,
    and whoever queued a job, may see it (the service decides)."""

    def __init__(self, client: ServiceClient, collections: SharedCollections) -> None:
        self._c = client
        self._collections = collections

    def list(self, collection: str | None = None, *, state: str | None = None, limit: int = 100) -> list:
        """Jobs of one shared collection, or of every one the user edits, newest first."""
        if collection is not None:
            ids = [self._collections.id_of(collection)]
        else:
            ids = [c.id for c in self._collections.list() if c.role in ("editor", "owner")]
        params = {"limit": limit, **({"state": state} if state else {})}
        jobs = []
        for cid in ids:
            try:
                jobs += [job_info(d) for d in self._c.call("GET", f"collections/{cid}/jobs", params=params)]
            except VidragError as exc:
                if collection is not None or exc.status not in (403, 503):
                    raise  # (all collections: one without a runner or right yet is left out)
        return sorted(jobs, key=lambda j: j.created_at or 0, reverse=True)[:limit]

    def get(self, job_id: str) -> JobInfo:
        return job_info(self._c.call("GET", f"jobs/{_segment(job_id)}"))

    def retry(self, job_id: str, progress=None) -> IngestResult:
        """Run a failed job again on the service and wait for it (as a local retry does)."""
        self._c.call("POST", f"jobs/{_segment(job_id)}/retry")
        return job_result(follow_job(self._c, job_id, progress))

    def recover(self) -> int:
        return 0  # the service requeues its own jobs when it starts


def job_info(data: dict) -> JobInfo:
    """A ``JobInfo`` from the service's job status JSON."""
    return _build(
        JobInfo,
        {**data, "created_at": _when(data.get("created_at")), "updated_at": _when(data.get("updated_at"))},
    )


class SharedConversations:
    """The caller's own conversations on shared collections, kept by the service.

    Each member's conversations are private to them (the service shows nobody else's,
    and none on a collection they can no longer read). A conversation there starts with
    its first question (``wb.ask``), and the service records every turn itself."""

    def __init__(self, client: ServiceClient, collections: SharedCollections) -> None:
        self._c = client
        self._collections = collections

    def list(self, collection: str | None = None) -> list[ConversationInfo]:
        """The caller's conversations, most recently active first (optionally of one collection)."""
        params = {"collection_id": self._collections.id_of(collection)} if collection is not None else None
        return [conversation_info(d) for d in self._c.call("GET", "conversations", params=params)]

    def get(self, conversation_id: str) -> ConversationInfo:
        """One conversation with its messages, citations and traces."""
        return conversation_info(self._c.call("GET", f"conversations/{_segment(conversation_id)}"))

    def rename(self, conversation_id: str, title: str) -> ConversationInfo:
        body = {"title": title}
        return conversation_info(
            self._c.call("PATCH", f"conversations/{_segment(conversation_id)}", json=body)
        )

    def delete(self, conversation_id: str) -> None:
        self._c.call("DELETE", f"conversations/{_segment(conversation_id)}")

    def export(self, conversation_id: str, fmt: str = "markdown") -> str:
        """The conversation as Markdown or a replay notebook (made here from what the service sends)."""
        from .exports import export_conversation

        return export_conversation(self.get(conversation_id), fmt)

    def history(self, conversation_id: str, limit: int) -> list[dict]:
        """The last ``limit`` messages as ``{"role", "content"}``, oldest first."""
        if limit <= 0:
            return []
        messages = self.get(conversation_id).messages[-limit:]
        return [{"role": m.role, "content": m.content} for m in messages]

    def create(self, collection=None, videos=None, title=None):
        raise InvalidInput(
            "A conversation on a shared collection starts with its first question: wb.ask(question, collection)"
        )

    def add_turn(self, conversation_id: str, question: str, answer) -> str:
        raise InvalidInput("The vidrag service records the turns of shared conversations itself")


def _when(value: str | None):
    from datetime import datetime

    return datetime.fromisoformat(value) if value else None


def conversation_info(data: dict) -> ConversationInfo:
    """A ``ConversationInfo`` (with its messages) from the service's JSON."""
    from .answer.types import Citation

    messages = []
    for m in data.get("messages") or []:
        message = _build(MessageInfo, {**m, "created_at": _when(m.get("created_at"))})
        message.citations = [_build(Citation, c) for c in m.get("citations") or []]
        messages.append(message)
    info = _build(
        ConversationInfo,
        {**data, "created_at": _when(data.get("created_at")), "updated_at": _when(data.get("updated_at"))},
    )
    info.messages = messages
    return info


class ServiceLibrary:
    """Shared collections, through the vidrag service (see the module docstring)."""

    def __init__(self, base_url: str, token: str, *, name: str = "shared", http: Any = None) -> None:
        self.name = name
        self._client = ServiceClient(base_url, token, http=http)
        self._asked: dict[str, str] = {}  # conversation id -> the shared collection it is about
        self.collections = SharedCollections(self._client)
        #: members, roles, ownership, invites and share links (see ``Sharing``)
        self.sharing = Sharing(self._client, self.collections)
        self.videos = SharedVideos(self._client, self.collections)
        self.jobs = SharedJobs(self._client, self.collections)
        from .usage import Usage

        #: plans, usage and billing (``vidrag_kernel.usage``): ``wb.service.usage()``
        self.usage = Usage(self._client)
        self.conversations = SharedConversations(self._client, self.collections)
        from .schedules import Schedules

        #: scheduled batch ingests of shared collections (``vidrag_kernel.schedules``)
        self.schedules = Schedules(self._client, self.collections)

    @classmethod
    def from_hub(cls, hub: HubEnvironment) -> ServiceLibrary:
        """The client a hub server uses: its service URL and its own token."""
        return cls(api_base(hub.service_url, hub.service_name or "vidrag"), hub.api_token)

    def __repr__(self) -> str:
        return f"ServiceLibrary(name={self.name!r})"

    def close(self) -> None:
        self._client.close()

    def me(self) -> dict:
        """The caller as the service sees them: name, admin, groups, may_create_collections."""
        return self._client.call("GET", "me")

    # -- routing questions ---------------------------------------------------------------
    def holds_collection(self, ref: str) -> bool:
        try:
            self.collections.id_of(ref)
        except NotFound:
            return False
        return True

    def holds_video(self, video_id: str) -> bool:
        try:
            self.videos.collection_of(video_id)
        except NotFound:
            return False
        return True

    def holds_conversation(self, conversation_id: str) -> bool:
        if conversation_id in self._asked:
            return True
        try:
            self._asked[conversation_id] = self.conversations.get(conversation_id).collection_id
        except (NotFound, InvalidInput):
            return False
        return True

    def holds_job(self, job_id: str) -> bool:
        try:
            self.jobs.get(job_id)
        except (NotFound, Forbidden, InvalidInput):
            return False
        return True

    # -- work on collections -------------------------------------------------------------
    def plan(self, source, captions=None):
        raise InvalidInput("Plan sources with your own library (wb.plan); the service plans when it ingests")

    def ingest(
        self,
        source,
        collection=None,
        *,
        captions=None,
        progress=None,
        wait: bool = True,
        timeout: float | None = None,
    ) -> list[IngestResult]:
        """Ingest ``source`` on the service's workers into a shared collection.

        The service queues one job per video (a playlist expands there); with ``wait``
        (the default) this follows each job's progress (``progress`` gets the same
        ``ProgressEvent`` stages a local ingest reports) and returns the same results a
        local ingest returns: ``done`` or ``failed`` with the job's message. A broken
        stream or a service restarting mid-job is waited out (see ``follow_job``);
        ``timeout`` bounds the whole wait in seconds. ``wait=False`` returns at once,
        each result ``queued`` with its job id.
        """
        cid = self.collections.id_of(collection)
        sources = [source] if isinstance(source, str) else list(source)
        body = {"sources": sources, "captions": captions} if captions else {"sources": sources}
        jobs = self._client.call("POST", f"collections/{cid}/ingest", json=body)["jobs"]
        return self._results(cid, jobs, progress, wait=wait, timeout=timeout)

    def upload(
        self,
        path,
        collection=None,
        *,
        progress=None,
        wait: bool = True,
        timeout: float | None = None,
    ) -> list[IngestResult]:
        """Send a local media file to the service and ingest it into a shared collection
        (the service never reads paths of its own machine: the file travels in the request)."""
        from pathlib import Path

        file = Path(path).expanduser()
        if not file.is_file():
            raise NotFound(f"No file {str(path)!r} to upload")
        cid = self.collections.id_of(collection)

        def pieces():  # streamed: a lecture's file is not read into memory at once
            with file.open("rb") as data:
                while piece := data.read(1 << 20):
                    yield piece

        jobs = self._client.call(
            "POST", f"collections/{cid}/upload", params={"filename": file.name}, content=pieces()
        )["jobs"]
        return self._results(cid, jobs, progress, wait=wait, timeout=timeout)

    def follow(self, job_id: str, progress=None, *, timeout: float | None = None) -> IngestResult:
        """Wait for one of the service's ingest jobs (e.g. one queued with ``wait=False``)
        to finish, reporting its progress; its result, ``done`` or ``failed`` with the reason."""
        deadline = None if timeout is None else time.monotonic() + timeout
        return job_result(follow_job(self._client, job_id, progress, deadline=deadline))

    def _results(self, cid: str, jobs: list[str], progress, *, wait: bool, timeout: float | None):
        if not wait:
            return [IngestResult(job, None, "", "", None, "queued", None) for job in jobs]
        deadline = None if timeout is None else time.monotonic() + timeout
        statuses = [follow_job(self._client, job, progress, deadline=deadline) for job in jobs]
        durations = {}
        if any(s["state"] == "done" for s in statuses):
            durations = {
                v["id"]: v.get("duration") for v in self._client.call("GET", f"collections/{cid}/videos")
            }
        return [job_result(s, durations.get(s.get("video_id"))) for s in statuses]

    def search(self, query, collection=None, *, videos=None, tags=None, k=5, merge=False):
        from .retrieve import SearchHit

        cid = self.collections.id_of(collection if isinstance(collection, str) else None)
        body = {
            "query": query,
            "k": k,
            "videos": list(videos) if videos else None,
            "tags": list(tags) if tags else None,
        }
        return [
            _build(SearchHit, d) for d in self._client.call("POST", f"collections/{cid}/search", json=body)
        ]

    def transcript(self, video_id, fmt="txt"):
        return self.videos.transcript(video_id, fmt)

    def _asked_collection(self, collection, conversation) -> str:
        if collection is None and conversation is None:
            raise InvalidInput("Ask a shared collection by name or id")
        if collection is not None:
            return self.collections.id_of(collection)
        if conversation not in self._asked:
            # a conversation from an earlier session: the service knows its collection
            self._asked[conversation] = self.conversations.get(conversation).collection_id
        return self._asked[conversation]

    def _answer(self, data: dict, cid: str):
        from .answer.types import Answer, Citation

        data["text"] = data.pop("answer", "")
        data["citations"] = [_build(Citation, c) for c in data.get("citations") or []]
        answer = _build(Answer, data)
        if answer.conversation_id:
            self._asked[answer.conversation_id] = cid
        return answer

    def ask(self, question, collection=None, **scope):
        cid = self._asked_collection(collection, scope.get("conversation"))
        body = {"question": question, **{k: v for k, v in scope.items() if v and k != "save"}}
        return self._answer(self._client.call("POST", f"collections/{cid}/ask", json=body), cid)

    def ask_stream(self, question, collection=None, **scope) -> Iterator:
        """The answer's text piece by piece as the service writes it (Server-Sent Events),
        then the ``Answer``; an error part-way is raised as the service's ``VidragError``."""
        cid = self._asked_collection(collection, scope.get("conversation"))
        body = {"question": question, **{k: v for k, v in scope.items() if v and k != "save"}}
        for name, data in self._client.events("POST", f"collections/{cid}/ask/stream", json=body):
            if name == "answer":
                yield self._answer(data, cid)
                return
            if name == "error":
                raise error_from(int(data.get("status") or 500), str(data.get("message") or data))
            if name is None and "text" in data:
                yield data["text"]
        raise FetchFailed("The vidrag service's answer stream ended before the answer")

    def reindex(self, collection, progress=None):
        raise InvalidInput("Shared collections are reindexed by the service's administrator")

    def insights(self, collection: str) -> dict:
        """Class insights of a shared collection (owners and editors): questions over time,
        topics, cited moments, unanswered questions; aggregates only (``vidrag_kernel.insights``)."""
        return self._client.call("GET", f"collections/{self.collections.id_of(collection)}/insights")


#: seconds a follower keeps trying to reach the service (a restart, a dropped stream)
#: before it gives up on a job; the job itself lives on in the service
RECONNECT_SECONDS = 300.0


def follow_job(client: ServiceClient, job_id: str, progress=None, *, deadline: float | None = None) -> dict:
    """Follow an ingest job of the service until it is done or failed; its last status.

    Reads the job's Server-Sent Events and reports each change through ``progress``
    (``ProgressEvent(stage=state, fraction=progress, ...)``, ending with ``done`` or
    ``failed``). The stream may break (a proxy timeout, the service restarting: its
    workers requeue the job): the follower then reconnects, with a growing pause,
    for up to ``RECONNECT_SECONDS`` without an answer. ``deadline`` (a
    ``time.monotonic()`` value) bounds the whole wait with a ``Conflict`` naming the job."""
    from .jobs import ACTIVE
    from .progress import ProgressEvent, silent

    report = progress or silent
    last: tuple | None = None
    status: dict | None = None
    pause, lost_since = 0.5, None
    while True:
        try:
            for name, data in client.events("GET", f"jobs/{_segment(job_id)}/events"):
                if name == "error":
                    raise error_from(int(data.get("status") or 500), str(data.get("message") or data))
                if name is not None:
                    continue
                status, lost_since, pause = data, None, 0.5
                seen = (data["state"], data.get("progress"))
                if seen != last:
                    last = seen
                    fraction = 1.0 if data["state"] == "done" else float(data.get("progress") or 0.0)
                    message = (data.get("error") or "") if data["state"] == "failed" else ""
                    report(
                        ProgressEvent(
                            data["state"], fraction, message, data.get("video_id"), data.get("title")
                        )
                    )
                if data["state"] not in ACTIVE:
                    return data
                if deadline is not None and time.monotonic() > deadline:
                    break
        except VidragError as exc:
            # unreachable, or the service is starting its workers again (503): wait it out
            if not isinstance(exc, FetchFailed) and exc.status not in (502, 503, 504):
                raise
            lost_since = lost_since or time.monotonic()
            if time.monotonic() - lost_since > RECONNECT_SECONDS:
                raise FetchFailed(
                    f"Lost the vidrag service while following ingest job {job_id} "
                    f"({exc.message}); the job goes on there: see it with its id"
                ) from exc
        if deadline is not None and time.monotonic() > deadline:
            where = f" (last seen {status['state']})" if status else ""
            raise Conflict(f"Ingest job {job_id} did not finish in time{where}; it goes on in the service")
        time.sleep(pause)
        pause = min(pause * 2, 5.0)


def job_result(status: dict, duration: float | None = None) -> IngestResult:
    """A finished service job as the ``IngestResult`` a local ingest returns."""
    done = status["state"] == "done"
    return IngestResult(
        job_id=status["id"],
        video_id=status.get("video_id"),
        title=status.get("title") or "",
        url=status.get("source") or "",
        duration=duration,
        status="done" if done else "failed",
        source=status.get("transcript_source"),
        chunk_count=int(status.get("chunk_count") or 0),
        timings=dict(status.get("timings") or {}),
        error=None if done else status.get("error"),
        error_kind=None if done else status.get("error_kind"),
    )


def service_libraries(hub: HubEnvironment | None) -> Sequence[ServiceLibrary]:
    """The service's library when this process runs under a hub that has one, else none."""
    if hub is None or not hub.has_service or not hub.api_token:
        return ()
    return (ServiceLibrary.from_hub(hub),)
