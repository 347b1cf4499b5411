"""The vidrag service's client: shared course collections as a ``Library``.

Inside a JupyterHub server, ``Workbench()`` adds a ``ServiceLibrary`` after the local one
when the hub registered the vidrag service (``hubenv.detect()``), so
``wb.collections.list()`` shows personal and shared collections together and search,
ask, transcripts and ingest reach a shared collection through the same calls. Every
request carries the server's hub token; the service checks the user's role on each.

It speaks the service's HTTP API with httpx (a kernel dependency), so the kernel imports
no web framework. Errors come back as the service's ``VidragError`` JSON and are raised
as the same error types here.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

from .collections import CollectionInfo
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
        import httpx

        try:
            r = self._http.request(method, self._base + path.lstrip("/"), headers=self._headers, **kwargs)
        except httpx.HTTPError as exc:
            raise FetchFailed(f"The vidrag service could not be reached ({type(exc).__name__})") from exc
        if r.status_code >= 400:
            try:
                body = r.json()
                message = str(body.get("message") or body)
            except ValueError:
                message = r.text[:300] or r.reason_phrase
            cls = _ERRORS.get(r.status_code, VidragError)
            raise cls(f"vidrag service: {message}", status=r.status_code)
        return r.json() if r.content else None


class SharedCollections:
    """Collections the service shares with the user (or that they own there)."""

    def __init__(self, client: ServiceClient) -> None:
        self._c = client

    def _info(self, data: dict) -> CollectionInfo:
        info = _build(CollectionInfo, data)
        info.library = "shared"
        return info

    def list(self, search: str | None = None) -> list[CollectionInfo]:
        infos = [self._info(d) for d in self._c.call("GET", "collections")]
        if search:
            needle = search.lower()
            infos = [i for i in infos if needle in f"{i.name} {i.description} {' '.join(i.tags)}".lower()]
        return infos

    def id_of(self, ref: str | None) -> str:
        """The id of a shared collection named or identified by ``ref``."""
        if ref is None:
            raise InvalidInput("Name the shared collection")
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
        return list(self._c.call("DELETE", f"collections/{self.id_of(ref)}").get("videos_deleted") or [])

    def share(
        self, ref: str, *, user: str | None = None, group: str | None = None, role: str = "viewer"
    ) -> dict:
        """Grant a JupyterHub user or group a role (viewer, editor) on a shared collection."""
        body = {"user": user, "group": group, "role": role}
        return self._c.call("POST", f"collections/{self.id_of(ref)}/members", json=body)

    def members(self, ref: str) -> list[dict]:
        """Who holds which role on a shared collection (owners and editors may ask)."""
        return self._c.call("GET", f"collections/{self.id_of(ref)}/members")


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
        return None  # shared media stay on the service's volume; play them from their URL


class SharedJobs:
    """Ingest jobs of shared collections (the service runs them)."""

    def __init__(self, client: ServiceClient) -> None:
        self._c = client

    def list(self, collection: str | None = None, *, state: str | None = None, limit: int = 100) -> list:
        return []  # the service lists jobs per collection in its own API; none are local

    def get(self, job_id: str):
        raise NotFound(f"No ingest job {job_id!r} here")

    def retry(self, job_id: str, progress=None):
        raise NotFound(f"No ingest job {job_id!r} here")

    def recover(self) -> int:
        return 0


class SharedConversations:
    """Conversations on shared collections are kept by the service, private to each member."""

    def __init__(self, client: ServiceClient) -> None:
        self._c = client

    def list(self, collection: str | None = None) -> list:
        return []

    def get(self, conversation_id: str):
        raise NotFound(f"No conversation with id {conversation_id!r}")


class ServiceLibrary:
    """Shared collections, through the vidrag service (see the module docstring)."""

    def __init__(self, base_url: str, token: str, *, name: str = "shared", http: Any = None) -> None:
        self.name = name
        self._client = ServiceClient(base_url, token, http=http)
        self._asked: dict[str, str] = {}  # conversation id -> the shared collection it is about
        self.collections = SharedCollections(self._client)
        self.videos = SharedVideos(self._client, self.collections)
        self.jobs = SharedJobs(self._client)
        self.conversations = SharedConversations(self._client)

    @classmethod
    def from_hub(cls, hub: HubEnvironment) -> ServiceLibrary:
        """The client a hub server uses: its service URL and its own token."""
        return cls(api_base(hub.service_url, hub.service_name or "vidrag"), hub.api_token)

    def __repr__(self) -> str:
        return f"ServiceLibrary(name={self.name!r})"

    def close(self) -> None:
        self._client.close()

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
        return conversation_id in self._asked

    def holds_job(self, job_id: str) -> bool:
        return False

    # -- work on collections -------------------------------------------------------------
    def plan(self, source, captions=None):
        raise InvalidInput("Plan sources with your own library (wb.plan); the service plans when it ingests")

    def ingest(self, source, collection=None, *, captions=None, progress=None) -> list[IngestResult]:
        """Queue ``source`` on the service's workers; results come back ``queued``."""
        cid = self.collections.id_of(collection)
        sources = [source] if isinstance(source, str) else list(source)
        body = {"sources": sources, "captions": captions} if captions else {"sources": sources}
        jobs = self._client.call("POST", f"collections/{cid}/ingest", json=body)["jobs"]
        return [IngestResult(job, None, "", "", None, "queued", None) for job in jobs]

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

    def ask(self, question, collection=None, **scope):
        from .answer.types import Answer, Citation

        conversation = scope.get("conversation")
        if collection is None and conversation is None:
            raise InvalidInput("Ask a shared collection by name or id")
        if collection is not None:
            cid = self.collections.id_of(collection)
        elif conversation in self._asked:
            cid = self._asked[conversation]
        else:
            raise NotFound(f"No conversation with id {conversation!r}")
        body = {"question": question, **{k: v for k, v in scope.items() if v and k != "save"}}
        data = self._client.call("POST", f"collections/{cid}/ask", json=body)
        data["text"] = data.pop("answer", "")
        data["citations"] = [_build(Citation, c) for c in data.get("citations") or []]
        answer = _build(Answer, data)
        if answer.conversation_id:
            self._asked[answer.conversation_id] = cid
        return answer

    def ask_stream(self, question, collection=None, **scope) -> Iterator:
        """The service answers in one piece today: the text, then the ``Answer``."""
        answer = self.ask(question, collection, **scope)
        yield answer.text
        yield answer

    def reindex(self, collection, progress=None):
        raise InvalidInput("Shared collections are reindexed by the service's administrator")


def service_libraries(hub: HubEnvironment | None) -> Sequence[ServiceLibrary]:
    """The service's library when this process runs under a hub that has one, else none."""
    if hub is None or not hub.has_service or not hub.api_token:
        return ()
    return (ServiceLibrary.from_hub(hub),)
