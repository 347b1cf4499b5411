"""The vidrag service's ASGI app: ``make_app(settings)``.

Every route lives under the hub's prefix for the service (``/services/vidrag/``): the
JSON API under ``api/``, the OpenAPI description at ``openapi.json``. Each request:

1. names its caller by the hub token it carries (``vidrag_hub.auth``), with the caller's
   groups read from the hub now;
2. builds a kernel ``LocalLibrary`` on the service's one shared catalog with
   ``access=RoleAccess(caller)``, so the kernel's own checks apply the caller's role;
3. answers JSON; a ``VidragError`` becomes its ``to_dict()`` with its status, anything
   else a 500 with a plain message (the traceback goes to the log, never to the caller).

Ingest is handed to ``app.state.runner`` (``submit(sources, collection_id, *, user,
captions) -> job ids``, ``status``, ``cancel``, ``retry``); without one the ingest and job
endpoints answer 503. A job is seen (and cancelled, retried, followed as Server-Sent
Events) by the user who queued it or an editor or owner of its collection. Answers also
stream as Server-Sent Events (``vidrag_hub.streams`` has the wire format). Every ingest
(and retry), search and answer first passes ``vidrag_hub.quotas.check``. ``metrics`` is
Prometheus's view of the service (``vidrag_hub.metrics``), for hub admins and the hub's
scraper (``read:metrics``).
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import defaultdict, deque
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import FastAPI, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from starlette.exceptions import HTTPException as StarletteHTTPException

from vidrag_kernel.catalog import Collection, CollectionVideo, IngestJob
from vidrag_kernel.errors import Forbidden, InvalidInput, NotFound, TooLarge, VidragError
from vidrag_kernel.library import LocalLibrary

from . import (
    billing_routes,
    conversations,
    corrections,
    insights,
    media,
    quotas,
    schedules,
    sharing,
    usage,
    web,
)
from .access import RoleAccess
from .auth import HubIdentity, HubUser
from .db import open_database
from .deps import User
from .errors import TooManyAttempts, Unavailable
from .metrics import ServiceMetrics, metrics_reader
from .settings import ServiceSettings
from .streams import EventStream, answer_events, job_events

log = logging.getLogger("vidrag_hub")

REDEEM_LIMIT = 20  # link redemptions per user per window
REDEEM_WINDOW = 60.0  # seconds


class Service:
    """What the app holds for its lifetime: settings, the one catalog, the hub identity."""

    def __init__(self, settings: ServiceSettings) -> None:
        self.settings = settings
        self.kernel_settings = settings.kernel_settings()
        self._catalog = None
        self._catalog_lock = threading.Lock()
        self._identity: HubIdentity | None = None
        self._redeems: dict[str, deque] = defaultdict(deque)
        self.quotas = quotas.Quotas(self)

    @property
    def catalog(self):
        # opened on first use, not at import or construction: ``make_app`` stays cheap;
        # the first requests arrive together on the thread pool, and only one may migrate
        if self._catalog is None:
            with self._catalog_lock:
                if self._catalog is None:
                    self._catalog = open_database(self.settings.resolved_database_url)
        return self._catalog

    @property
    def identity(self) -> HubIdentity:
        if self._identity is None:
            self._identity = HubIdentity(self.settings)
        return self._identity

    def library(self, user: HubUser) -> LocalLibrary:
        """A kernel library acting for ``user`` on the shared catalog (cheap: nothing is opened)."""
        return LocalLibrary(
            self.kernel_settings, access=RoleAccess(user), catalog=self.catalog, name="shared"
        )

    def writer(self, user: str) -> LocalLibrary:
        """The library the ingest runner plans a job through, in the name of the user who
        queued it (their edit right was checked when the job was submitted), with the
        service's authority. Commits go through ``committer``, which checks again."""
        return self.library(HubUser(user, admin=True))

    def committer(self, user: str) -> LocalLibrary:
        """The library the ingest runner commits a job through: acting as the user who
        queued it with their role now (groups and admin flag read from the hub at commit
        time), so an editor removed while the job waited, directly or by leaving a group,
        gets nothing committed (the runner fails the job and says why)."""
        from urllib.parse import quote

        import httpx

        from .errors import HubUnreachable

        url = f"{self.settings.hub_api_url}/users/{quote(user, safe='')}"
        try:
            reply = httpx.get(
                url, headers={"Authorization": f"token {self.settings.hub_api_token}"}, timeout=15
            )
        except httpx.HTTPError:
            raise HubUnreachable(
                f"JupyterHub did not answer at {self.settings.hub_api_url}, so {user}'s role could not be checked"
            ) from None
        if reply.status_code == 404:
            return self.library(HubUser(user))  # gone from the hub: their own grants at most
        if reply.status_code != 200:
            raise HubUnreachable(f"JupyterHub refused to describe user {user!r} (HTTP {reply.status_code})")
        model = reply.json()
        return self.library(
            HubUser(user, admin=bool(model.get("admin")), groups=frozenset(model.get("groups") or ()))
        )

    def ingest_workers(self):
        """The Dask ingest runner the settings ask for, not started (None when ingest is off)."""
        if self.settings.ingest_workers <= 0 and not self.settings.dask_address:
            return None
        from .work import IngestWorkers

        return IngestWorkers(
            self.writer,
            self.kernel_settings,
            committer=self.committer,
            quota=self.quotas,
            address=self.settings.dask_address or None,
            n_workers=max(1, self.settings.ingest_workers),
            whisper_threads=max(1, self.kernel_settings.whisper_threads),
        )

    def may_create(self, user: HubUser) -> bool:
        return user.admin or self.settings.creators_group in user.groups

    def count_redeem(self, user: str) -> None:
        seen, at = self._redeems[user], time.monotonic()
        while seen and seen[0] < at - REDEEM_WINDOW:
            seen.popleft()
        if len(seen) >= REDEEM_LIMIT:
            raise TooManyAttempts("Too many share-link attempts; wait a minute and try again")
        seen.append(at)

    async def close(self) -> None:
        if self._identity is not None:
            await self._identity.close()
        if self._catalog is not None:
            self._catalog.close()


# ------------------------------------------------------------------------------- bodies
class CollectionIn(BaseModel):
    name: str
    description: str = ""
    instructor: str | None = None
    subject: str | None = None
    semester: str | None = None
    tags: list[str] = Field(default_factory=list)
    glossary: list[str] | str = Field(default_factory=list)  # course terms (a list, or comma-separated)


class CollectionPatch(BaseModel):
    name: str | None = None
    description: str | None = None
    instructor: str | None = None
    subject: str | None = None
    semester: str | None = None
    tags: list[str] | None = None
    glossary: list[str] | str | None = None


Role = Literal["viewer", "editor"]


class MemberIn(BaseModel):
    user: str | None = None
    group: str | None = None
    role: Role = "viewer"


class RoleIn(BaseModel):
    role: Role


class TransferIn(BaseModel):
    user: str


class InviteIn(BaseModel):
    user: str | None = None
    group: str | None = None
    email: str | None = None
    role: Role = "viewer"


class AnswerIn(BaseModel):
    #: the token of an e-mail invite (from its link); not needed for user and group invites
    token: str | None = None


class LinkIn(BaseModel):
    role: Role = "viewer"
    expires_at: datetime | None = None
    expires_in_days: float | None = None
    max_uses: int | None = None
    note: str = ""


class RedeemIn(BaseModel):
    token: str


class SearchIn(BaseModel):
    query: str
    k: int = Field(5, ge=1, le=50)
    videos: list[str] | None = None
    tags: list[str] | None = None


class AskIn(BaseModel):
    question: str
    videos: list[str] | None = None
    tags: list[str] | None = None
    conversation: str | None = None


class IngestIn(BaseModel):
    sources: list[str] = Field(min_length=1, max_length=100)
    captions: Literal["auto", "prefer", "only", "never"] | None = None


# ------------------------------------------------------------------------------ helpers
def _one(kinds: dict[str, str | None], what: str) -> tuple[str, str]:
    given = [(k, v) for k, v in kinds.items() if v]
    if len(given) != 1:
        raise InvalidInput(f"{what} names exactly one of: {', '.join(kinds)}")
    return given[0]


def collection_row(s, access: RoleAccess, collection_id: str, action: str) -> Collection:
    """The collection if the caller may see it (else NotFound), checked for ``action``."""
    row = s.scalar(select(Collection).where(Collection.id == collection_id, access.visible()))
    if row is None:
        raise NotFound(f"No collection with id {collection_id!r}")
    access.require(s, row, action)
    return row


def job_row(s, access: RoleAccess, job_id: str) -> IngestJob:
    """The job if the caller may see it: the user who queued it (while they can still see
    its collection), or an editor or owner of its collection. NotFound for anyone who
    cannot see the collection; Forbidden for its other members."""
    row = s.get(IngestJob, job_id)
    collection = None
    if row is not None and row.collection_id is not None:
        collection = s.scalar(select(Collection).where(Collection.id == row.collection_id, access.visible()))
    queuer = row is not None and row.owner == access.user
    if row is None or (collection is None and not (queuer and row.collection_id is None)):
        raise NotFound(f"No ingest job {job_id!r}")
    if not queuer:
        access.require(s, collection, "edit")
    return row


def refuse_local(source: str) -> str:
    """A source the service may fetch: an http(s) URL. Paths and file: URLs are refused."""
    source = (source or "").strip()
    parts = urlsplit(source)
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return source
    if parts.scheme.lower() in ("", "file") or source.startswith(("/", "~", ".")):
        raise Forbidden(
            "The service ingests URLs and uploaded files only; a path on the service's machine is refused"
        )
    raise InvalidInput(f"Not a URL the service can fetch (http or https): {source[:200]!r}")


def error_response(exc: VidragError) -> JSONResponse:
    return JSONResponse(exc.to_dict(), status_code=exc.status)


# ---------------------------------------------------------------------------------- app
def make_app(settings: ServiceSettings | None = None, *, runner: Any = None) -> FastAPI:
    """The service's ASGI app; ``runner`` takes ingest work (see the module docstring)."""
    from contextlib import asynccontextmanager

    settings = settings or ServiceSettings.from_env()
    service = Service(settings)
    prefix = settings.prefix
    api = prefix + "api"

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        await service.close()

    app = FastAPI(
        title="vidrag service",
        description="Shared course collections of lecture videos: roles, sharing, search and answers.",
        version="1",
        openapi_url=prefix + "openapi.json",
        docs_url=prefix + "docs",
        redoc_url=None,
        lifespan=lifespan,
    )
    app.state.service = service
    app.state.runner = runner
    metrics = ServiceMetrics(lambda: service.catalog, lambda: app.state.runner)
    app.state.metrics = metrics
    # outermost, so that refusals and errors are counted with their status too
    app.add_middleware(lambda inner: metrics.middleware(inner))

    @app.exception_handler(VidragError)
    async def _vidrag_error(_request: Request, exc: VidragError) -> JSONResponse:
        return error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        # name the fields and the problems, never echo the values (one might be a token)
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err.get('loc', ()) if p != 'body') or 'body'}: {err.get('msg', 'invalid')}"
            for err in exc.errors()
        )
        return error_response(VidragError(f"Invalid request: {problems}", status=422))

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        # the framework's own refusals (a body that is not JSON, no such route, a wrong
        # method) in the same shape as every other error, so clients parse one shape
        kinds = {400: InvalidInput, 404: NotFound}
        error = kinds.get(exc.status_code, VidragError)(str(exc.detail), status=exc.status_code)
        return JSONResponse(error.to_dict(), status_code=exc.status_code, headers=exc.headers)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.error("unexpected error on %s %s", request.method, request.url.path, exc_info=exc)
        return JSONResponse(
            {
                "error": "error",
                "status": 500,
                "message": "Internal error in the vidrag service; its log has the details",
            },
            status_code=500,
        )

    # -------------------------------------------------------------------------- about
    @app.get(prefix, tags=["service"])
    def about() -> dict:
        """What this is (no login needed; the hub's proxy checks the route is up)."""
        return {"service": settings.service_name, "api": api, "openapi": prefix + "openapi.json"}

    @app.get(api + "/me", tags=["service"])
    def me(user: User) -> dict:
        """The caller as the service sees them."""
        return {
            "name": user.name,
            "admin": user.admin,
            "groups": sorted(user.groups),
            "may_create_collections": service.may_create(user),
        }

    @app.get(
        prefix + "metrics",
        tags=["service"],
        response_class=Response,
        responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
    )
    async def read_metrics(request: Request) -> Response:
        """Prometheus metrics: requests, latencies, jobs by state, queue depth, workers
        (hub admins, or a token with JupyterHub's ``read:metrics`` scope)."""
        from prometheus_client import CONTENT_TYPE_LATEST

        await metrics_reader(service.identity, request.headers.get("authorization"))
        return Response(await run_in_threadpool(metrics.render), media_type=CONTENT_TYPE_LATEST)

    # -------------------------------------------------------------------- collections
    def _info(lib: LocalLibrary, s, row: Collection) -> dict:
        info = lib.collections.info(s, row)
        info.library = "shared"
        return info.to_dict()

    @app.get(api + "/collections", tags=["collections"])
    def list_collections(user: User) -> list[dict]:
        """Collections the caller owns or is granted (directly or through a group), with their role."""
        lib = service.library(user)
        with service.catalog.session() as s:
            rows = s.scalars(select(Collection).where(lib.ctx.access.visible()).order_by(Collection.name))
            return [_info(lib, s, r) for r in rows]

    @app.post(api + "/collections", tags=["collections"], status_code=201)
    def create_collection(user: User, body: CollectionIn) -> dict:
        """Create a shared collection (members of the creators group and hub admins)."""
        if not service.may_create(user):
            raise Forbidden(
                f"Only members of the {settings.creators_group!r} group (and hub admins) may create shared collections"
            )
        lib = service.library(user)
        meta = {k: v for k, v in body.model_dump(exclude={"name", "description"}).items() if v}
        info = lib.collections.create(body.name, body.description, **meta)
        info.library = "shared"
        return info.to_dict()

    @app.get(api + "/collections/{collection_id}", tags=["collections"])
    def get_collection(user: User, collection_id: str) -> dict:
        lib = service.library(user)
        with service.catalog.session() as s:
            return _info(lib, s, collection_row(s, lib.ctx.access, collection_id, "read"))

    @app.patch(api + "/collections/{collection_id}", tags=["collections"])
    def update_collection(user: User, collection_id: str, body: CollectionPatch) -> dict:
        """Change description and metadata (editors) or the name (owner)."""
        lib = service.library(user)
        with service.catalog.session() as s:
            collection_row(s, lib.ctx.access, collection_id, "edit")
        meta = {k: v for k, v in body.model_dump(exclude={"name", "description"}).items() if v is not None}
        info = lib.collections.update(collection_id, name=body.name, description=body.description, **meta)
        info.library = "shared"
        return info.to_dict()

    @app.delete(api + "/collections/{collection_id}", tags=["collections"])
    def delete_collection(user: User, collection_id: str) -> dict:
        """Delete a collection with its index, members, invites and links (owner)."""
        lib = service.library(user)
        with service.catalog.session() as s:
            collection_row(s, lib.ctx.access, collection_id, "manage")
        service.quotas.give_back(collection_id)  # before the delete unlinks its jobs
        deleted = lib.collections.delete(collection_id)
        with service.catalog.session() as s:
            sharing.forget_collection(s, collection_id)
        return {"deleted": collection_id, "videos_deleted": deleted}

    # ------------------------------------------------------------------------ members
    @app.get(api + "/collections/{collection_id}/members", tags=["members"])
    def list_members(user: User, collection_id: str) -> list[dict]:
        """The owner and every grant (editors and owner)."""
        lib = service.library(user)
        with service.catalog.session() as s:
            return sharing.members(s, collection_row(s, lib.ctx.access, collection_id, "edit"))

    @app.post(api + "/collections/{collection_id}/members", tags=["members"], status_code=201)
    def add_member(user: User, collection_id: str, body: MemberIn) -> dict:
        """Grant a user or a group a role (owner)."""
        kind, name = _one({"user": body.user, "group": body.group}, "A member")
        lib = service.library(user)
        with service.catalog.session() as s:
            row = collection_row(s, lib.ctx.access, collection_id, "manage")
            return sharing.grant_view(sharing.grant(s, row, kind, name, body.role, user.name))

    @app.patch(api + "/collections/{collection_id}/members/{kind}/{name}", tags=["members"])
    def change_member(user: User, collection_id: str, kind: str, name: str, body: RoleIn) -> dict:
        """Change a member's role (owner)."""
        lib = service.library(user)
        with service.catalog.session() as s:
            row = collection_row(s, lib.ctx.access, collection_id, "manage")
            return sharing.grant_view(sharing.change(s, row, kind, name, body.role, user.name))

    @app.delete(api + "/collections/{collection_id}/members/{kind}/{name}", tags=["members"])
    def remove_member(user: User, collection_id: str, kind: str, name: str) -> dict:
        """Remove a member's grant (owner)."""
        lib = service.library(user)
        with service.catalog.session() as s:
            sharing.revoke(s, collection_row(s, lib.ctx.access, collection_id, "manage"), kind, name)
        return {"removed": {"kind": kind, "name": name}}

    @app.post(api + "/collections/{collection_id}/transfer", tags=["members"])
    async def transfer_ownership(user: User, collection_id: str, body: TransferIn) -> dict:
        """Make another hub user the owner; the previous owner stays as an editor (owner)."""

        def check_role() -> None:
            lib = service.library(user)
            with service.catalog.session() as s:
                collection_row(s, lib.ctx.access, collection_id, "manage")

        await run_in_threadpool(check_role)
        if not await service.identity.exists(body.user):
            raise NotFound(f"No JupyterHub user named {body.user!r}")

        def move() -> dict:
            lib = service.library(user)
            with service.catalog.session() as s:
                row = collection_row(s, lib.ctx.access, collection_id, "manage")
                sharing.transfer(s, row, body.user, user.name)
                return {"collection_id": row.id, "owner": row.owner}

        return await run_in_threadpool(move)

    @app.post(api + "/collections/{collection_id}/leave", tags=["members"])
    def leave_collection(user: User, collection_id: str) -> dict:
        """Give up one's own grant (any member but the owner)."""
        lib = service.library(user)
        with service.catalog.session() as s:
            sharing.leave(s, user, collection_row(s, lib.ctx.access, collection_id, "read"))
        return {"left": collection_id}

    # ------------------------------------------------------------------------ invites
    @app.get(api + "/collections/{collection_id}/invites", tags=["invites"])
    def list_collection_invites(user: User, collection_id: str) -> list[dict]:
        """Open invites of a collection with their answers (editors and owner)."""
        lib = service.library(user)
        with service.catalog.session() as s:
            return sharing.collection_invites(s, collection_row(s, lib.ctx.access, collection_id, "edit"))

    @app.post(api + "/collections/{collection_id}/invites", tags=["invites"], status_code=201)
    def create_invite(user: User, collection_id: str, body: InviteIn) -> dict:
        """Invite a hub user, each member of a group, or an e-mail address (editors and owner).

        An e-mail invite's token is in this answer only: send it to the invitee.
        """
        kind, target = _one({"user": body.user, "group": body.group, "email": body.email}, "An invite")
        lib = service.library(user)
        with service.catalog.session() as s:
            row = collection_row(s, lib.ctx.access, collection_id, "edit")
            invite, token = sharing.invite(s, row, kind, target, body.role, user.name)
            view = sharing.invite_view(invite, s)
        if token:
            view["token"] = token
            view["join_path"] = f"{prefix}join/invite/{invite.id}?token={token}"
        return view

    @app.delete(api + "/collections/{collection_id}/invites/{invite_id}", tags=["invites"])
    def withdraw_invite(user: User, collection_id: str, invite_id: str) -> dict:
        lib = service.library(user)
        with service.catalog.session() as s:
            sharing.revoke_invite(s, collection_row(s, lib.ctx.access, collection_id, "edit"), invite_id)
        return {"withdrawn": invite_id}

    @app.get(api + "/invites", tags=["invites"])
    def my_invites(user: User) -> list[dict]:
        """Invites waiting for the caller (by name or through a group)."""
        with service.catalog.session() as s:
            return sharing.pending_for(s, user)

    @app.post(api + "/invites/{invite_id}/accept", tags=["invites"])
    def accept_invite(user: User, invite_id: str, body: AnswerIn | None = None) -> dict:
        with service.catalog.session() as s:
            return sharing.answer(s, user, invite_id, True, body.token if body else None)

    @app.post(api + "/invites/{invite_id}/decline", tags=["invites"])
    def decline_invite(user: User, invite_id: str, body: AnswerIn | None = None) -> dict:
        with service.catalog.session() as s:
            return sharing.answer(s, user, invite_id, False, body.token if body else None)

    # -------------------------------------------------------------------------- links
    @app.get(api + "/collections/{collection_id}/links", tags=["links"])
    def list_links(user: User, collection_id: str) -> list[dict]:
        """Share links with their state and use count (editors and owner)."""
        lib = service.library(user)
        with service.catalog.session() as s:
            return sharing.collection_links(s, collection_row(s, lib.ctx.access, collection_id, "edit"))

    @app.post(api + "/collections/{collection_id}/links", tags=["links"], status_code=201)
    def create_link(user: User, collection_id: str, body: LinkIn) -> dict:
        """A share link (viewer or editor; expires in 7 days unless told). Its token is in this answer only."""
        lib = service.library(user)
        with service.catalog.session() as s:
            row = collection_row(s, lib.ctx.access, collection_id, "edit")
            link, token = sharing.create_link(
                s,
                row,
                body.role,
                user.name,
                expires_at=body.expires_at,
                expires_in_days=body.expires_in_days,
                max_uses=body.max_uses,
                note=body.note,
            )
            view = sharing.link_view(link)
        return {**view, "token": token, "join_path": f"{prefix}join/{token}"}

    @app.delete(api + "/collections/{collection_id}/links/{link_id}", tags=["links"])
    def revoke_link(user: User, collection_id: str, link_id: str) -> dict:
        lib = service.library(user)
        with service.catalog.session() as s:
            return sharing.revoke_link(s, collection_row(s, lib.ctx.access, collection_id, "edit"), link_id)

    @app.post(api + "/links/redeem", tags=["links"])
    def redeem_link(user: User, body: RedeemIn) -> dict:
        """Join the collection a link shares (rate-limited per user)."""
        service.count_redeem(user.name)
        with service.catalog.session() as s:
            return sharing.redeem(s, user, body.token)

    # ------------------------------------------------------------------ videos, search
    @app.get(api + "/collections/{collection_id}/videos", tags=["videos"])
    def list_videos(user: User, collection_id: str) -> list[dict]:
        lib = service.library(user)
        with service.catalog.session() as s:
            collection_row(s, lib.ctx.access, collection_id, "read")
        return [v.to_dict() for v in lib.videos.list(collection_id)]

    def _video_in(s, collection_id: str, video_id: str) -> None:
        if s.get(CollectionVideo, (collection_id, video_id)) is None:
            raise NotFound(f"No video {video_id!r} in this collection")

    @app.delete(api + "/collections/{collection_id}/videos/{video_id}", tags=["videos"])
    def remove_video(user: User, collection_id: str, video_id: str) -> dict:
        """Take a video out of the collection (editors and owner)."""
        lib = service.library(user)
        with service.catalog.session() as s:
            collection_row(s, lib.ctx.access, collection_id, "edit")
            _video_in(s, collection_id, video_id)
        removed = lib.videos.remove_from(collection_id, video_id)
        service.quotas.give_back(collection_id, video_id)  # the owner's quota is free again
        return {"removed": removed}

    @app.get(api + "/collections/{collection_id}/videos/{video_id}/transcript", tags=["videos"])
    def transcript(
        user: User, collection_id: str, video_id: str, format: Literal["txt", "json", "srt", "vtt"] = "txt"
    ) -> dict:
        lib = service.library(user)
        with service.catalog.session() as s:
            collection_row(s, lib.ctx.access, collection_id, "read")
            _video_in(s, collection_id, video_id)
        return {"video_id": video_id, "format": format, "text": lib.transcript(video_id, format)}

    @app.post(api + "/collections/{collection_id}/search", tags=["search"])
    def search(user: User, collection_id: str, body: SearchIn) -> list[dict]:
        lib = service.library(user)
        with service.catalog.session() as s:
            collection_row(s, lib.ctx.access, collection_id, "read")
        quotas.check(user, "search", 1)
        return [
            h.to_dict()
            for h in lib.search(body.query, collection_id, videos=body.videos, tags=body.tags, k=body.k)
        ]

    @app.post(api + "/collections/{collection_id}/ask", tags=["search"])
    def ask(user: User, collection_id: str, body: AskIn) -> dict:
        """An answer with citations (JSON, not streamed); the conversation is the caller's own."""
        lib = service.library(user)
        with service.catalog.session() as s:
            collection_row(s, lib.ctx.access, collection_id, "read")
        quotas.check(user, "answer", 1)
        scope = {
            k: v
            for k, v in {"videos": body.videos, "tags": body.tags, "conversation": body.conversation}.items()
            if v
        }
        with service.quotas.message(user, f"answer:{collection_id}"):
            return lib.ask(body.question, collection_id, **scope).to_dict()

    @app.post(
        api + "/collections/{collection_id}/ask/stream",
        tags=["search"],
        response_class=EventStream,
        responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
    )
    def ask_stream(user: User, collection_id: str, body: AskIn) -> EventStream:
        """The answer as Server-Sent Events: ``{"text": piece}`` events as it is written,
        then ``event: answer`` with the same JSON as ``ask`` (see ``vidrag_hub.streams``)."""
        lib = service.library(user)
        with service.catalog.session() as s:
            collection_row(s, lib.ctx.access, collection_id, "read")
        quotas.check(user, "answer", 1)
        scope = {
            k: v
            for k, v in {"videos": body.videos, "tags": body.tags, "conversation": body.conversation}.items()
            if v
        }
        pieces = lib.ask_stream(body.question, collection_id, **scope)
        held = service.quotas.reserve_message(user, f"answer:{collection_id}")
        pieces = service.quotas.metered(held, pieces)
        # the first piece is taken here, so that a refusal (an unknown conversation, no
        # answerer) is an ordinary HTTP error rather than an event in a 200 stream
        first = next(pieces)
        return EventStream(answer_events(first, pieces))

    # ------------------------------------------------------------------------- ingest
    def _runner(request: Request):
        runner = request.app.state.runner
        if runner is None:
            raise Unavailable(
                "Ingest is not available: this service runs no ingest workers yet. "
                "Search, answers and sharing work; ask the administrator to enable ingest."
            )
        return runner

    @app.post(api + "/collections/{collection_id}/ingest", tags=["ingest"], status_code=202)
    def ingest(user: User, request: Request, collection_id: str, body: IngestIn) -> dict:
        """Queue videos by URL (editors and owner). Paths on the service's machine are refused."""
        lib = service.library(user)
        with service.catalog.session() as s:
            collection_row(s, lib.ctx.access, collection_id, "edit")
        sources = [refuse_local(src) for src in body.sources]
        quotas.check(user, "ingest", len(sources))
        runner = _runner(request)
        captions = body.captions or service.kernel_settings.captions
        jobs = runner.submit(sources, collection_id, user=user.name, captions=captions)
        return {"jobs": list(jobs)}

    @app.post(api + "/collections/{collection_id}/upload", tags=["ingest"], status_code=202)
    async def upload(user: User, request: Request, collection_id: str, filename: str) -> dict:
        """Queue an uploaded media file: the request body is the file (editors and owner)."""

        def check() -> None:
            lib = service.library(user)
            with service.catalog.session() as s:
                collection_row(s, lib.ctx.access, collection_id, "edit")

        await run_in_threadpool(check)
        name = Path(filename).name.strip()
        if not name or name.startswith("."):
            raise InvalidInput("An upload needs a file name")
        quotas.check(user, "ingest", 1)
        runner = _runner(request)
        limit = int(service.kernel_settings.max_filesize_mb * 1024 * 1024)
        folder = service.kernel_settings.home / "uploads" / str(uuid.uuid4())
        folder.mkdir(parents=True)
        path = folder / name
        size = 0
        with path.open("wb") as out:
            async for piece in request.stream():
                size += len(piece)
                if size > limit:
                    out.close()
                    path.unlink()
                    folder.rmdir()
                    raise TooLarge(f"Uploads are at most {service.kernel_settings.max_filesize_mb:g} MB")
                out.write(piece)
        if size == 0:
            path.unlink()
            folder.rmdir()
            raise InvalidInput("The upload is empty")
        captions = service.kernel_settings.captions
        jobs = await run_in_threadpool(
            lambda: runner.submit([str(path)], collection_id, user=user.name, captions=captions)
        )
        return {"jobs": list(jobs)}

    # --------------------------------------------------------------------------- jobs
    def _job(user: HubUser, job_id: str) -> None:
        with service.catalog.session() as s:
            job_row(s, RoleAccess(user), job_id)

    @app.get(api + "/collections/{collection_id}/jobs", tags=["jobs"])
    def list_jobs(
        user: User,
        request: Request,
        collection_id: str,
        state: str | None = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 100,
    ) -> list[dict]:
        """The collection's ingest jobs, newest first, with state, progress and error (editors and owner)."""
        lib = service.library(user)
        with service.catalog.session() as s:
            collection_row(s, lib.ctx.access, collection_id, "edit")
            query = select(IngestJob.id).where(IngestJob.collection_id == collection_id)
            if state:
                query = query.where(IngestJob.state == state)
            ids = list(s.scalars(query.order_by(IngestJob.created_at.desc()).limit(limit)))
        runner = _runner(request)
        return [runner.status(job_id) for job_id in ids]

    @app.get(api + "/jobs/{job_id}", tags=["jobs"])
    def job_status(user: User, request: Request, job_id: str) -> dict:
        """One ingest job (the user who queued it, or an editor or owner of its collection)."""
        _job(user, job_id)
        return _runner(request).status(job_id)

    @app.post(api + "/jobs/{job_id}/cancel", tags=["jobs"])
    def cancel_job(user: User, request: Request, job_id: str) -> dict:
        """Stop a queued or running job; nothing of it is committed (same rule as reading it)."""
        _job(user, job_id)
        runner = _runner(request)
        runner.cancel(job_id)
        return runner.status(job_id)

    @app.post(api + "/jobs/{job_id}/retry", tags=["jobs"], status_code=202)
    def retry_job(user: User, request: Request, job_id: str) -> dict:
        """Run a failed or cancelled job again from the start (same rule as reading it)."""
        _job(user, job_id)
        runner = _runner(request)
        quotas.check(user, "ingest", 1)
        runner.retry(job_id)
        return runner.status(job_id)

    @app.get(
        api + "/jobs/{job_id}/events",
        tags=["jobs"],
        response_class=EventStream,
        responses={200: {"content": {"text/event-stream": {"schema": {"type": "string"}}}}},
    )
    async def job_progress(user: User, request: Request, job_id: str) -> EventStream:
        """The job's progress as Server-Sent Events: its status JSON at each change of
        state or progress, ending at done or failed (poll ``GET jobs/{job_id}`` otherwise)."""
        await run_in_threadpool(_job, user, job_id)
        runner = _runner(request)
        first = await run_in_threadpool(runner.status, job_id)
        return EventStream(job_events(lambda: runner.status(job_id), first, request.is_disconnected))

    # ------------------------------------------------------------- included route modules
    # each module's ``router(service) -> APIRouter`` (one line per module, in this block)
    # ROUTERS-BEGIN
    app.include_router(conversations.router(service))
    app.include_router(schedules.router(service))
    app.include_router(web.router(service))
    app.include_router(media.router(service))
    app.include_router(billing_routes.router(service))
    app.include_router(usage.router(service))
    app.include_router(insights.router(service))
    app.include_router(corrections.router(service))
    # ROUTERS-END
    return app
