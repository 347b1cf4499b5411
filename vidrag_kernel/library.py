"""Where collections live: the ``Library`` interface and the local library.

A ``Workbench`` sits in front of one or more libraries and sends each call to the one
that holds the collection (or video, conversation, job) it names:

- ``LocalLibrary``: everything in-process on a data directory (``VIDRAG_HOME``), with
  its own catalog and FAISS files. Personal mode, and the engine the vidrag service
  runs for shared collections.
- the vidrag service's HTTP client (``vidrag_hub``): shared course collections, read
  and changed only through the service, which checks roles and quotas.

A library exposes the same four parts the Workbench does (``collections``, ``videos``,
``jobs``, ``conversations``), the calls that work on a collection (plan, ingest,
search, transcript, ask, ask_stream, reindex), and ``holds_*`` questions the Workbench
uses to route an id or name to it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from sqlalchemy import select

from .access import Access
from .catalog import Catalog, Conversation, IngestJob, Video
from .collections import Collections
from .context import Context
from .conversations import Conversations
from .errors import NotFound
from .ingest import Ingestor, IngestResult, PlanItem
from .jobs import Jobs
from .layout import Layout
from .progress import ProgressCallback
from .records import MediaInfo
from .retrieve import Retriever, SearchHit
from .settings import Settings
from .videos import Videos

if TYPE_CHECKING:
    from .answer.types import Answer
    from .stages import Prepared


@runtime_checkable
class Library(Protocol):
    """What the Workbench needs from a place that holds collections."""

    #: a short name shown beside each collection ("local", "shared")
    name: str
    collections: Collections
    videos: Videos
    jobs: Jobs
    conversations: Conversations

    def holds_collection(self, ref: str) -> bool:
        """Whether a collection with this name or id is here and visible to the user."""
        ...

    def holds_video(self, video_id: str) -> bool: ...

    def holds_conversation(self, conversation_id: str) -> bool: ...

    def holds_job(self, job_id: str) -> bool: ...

    def plan(self, source: str | Sequence[str], captions: str | None = None) -> list[PlanItem]: ...

    def ingest(
        self,
        source: str | Sequence[str],
        collection: str | None = None,
        *,
        captions: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> list[IngestResult]: ...

    def search(
        self,
        query: str,
        collection: str | Sequence[str] | None = None,
        *,
        videos: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        k: int = 5,
        merge: bool = False,
    ) -> list[SearchHit]: ...

    def transcript(self, video_id: str, fmt: str = "txt") -> str: ...

    def ask(self, question: str, collection: str | None = None, **scope) -> Answer: ...

    def ask_stream(self, question: str, collection: str | None = None, **scope) -> Iterator[str | Answer]: ...

    def reindex(self, collection: str, progress: ProgressCallback | None = None) -> int: ...

    def close(self) -> None: ...


class LocalLibrary:
    """Collections on a local data directory, for one user (``access.user``).

    ``access`` is the policy that says which collections the user may see and change:
    personal mode's ``Access`` by default; the vidrag service passes its role-aware one.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        access: Access | None = None,
        catalog: Catalog | None = None,
        name: str = "local",
    ) -> None:
        self.name = name
        self.settings = settings
        layout = Layout(settings.home)
        layout.ensure()
        self.ctx = Context(settings, catalog or Catalog(settings.resolved_database_url), layout, access)
        self._owns_catalog = catalog is None
        self.collections = Collections(self.ctx)
        self.videos = Videos(self.ctx, self.collections)
        self.ingestor = Ingestor(self.ctx, self.collections)
        self.jobs = Jobs(self.ctx, self.ingestor, self.collections)
        self.retriever = Retriever(self.ctx, self.collections)
        self.conversations = Conversations(self.ctx, self.collections)
        self._asker = None

    def __repr__(self) -> str:
        return f"LocalLibrary(home={str(self.settings.home)!r}, user={self.ctx.owner!r})"

    def close(self) -> None:
        """Release the catalog's connections (when this library opened the catalog)."""
        if self._owns_catalog:
            self.ctx.catalog.close()

    # -- routing questions ---------------------------------------------------------------
    def holds_collection(self, ref: str) -> bool:
        try:
            self.collections.get(ref)
        except NotFound:
            return False
        return True

    def holds_video(self, video_id: str) -> bool:
        with self.ctx.catalog.session() as s:
            q = select(Video.id).where(Video.id == video_id, self.ctx.access.visible_video(Video.id))
            return s.scalar(q) is not None

    def holds_conversation(self, conversation_id: str) -> bool:
        with self.ctx.catalog.session() as s:
            q = select(Conversation.id).where(
                Conversation.id == conversation_id, self.ctx.access.own_conversations()
            )
            return s.scalar(q) is not None

    def holds_job(self, job_id: str) -> bool:
        with self.ctx.catalog.session() as s:
            return (
                s.scalar(select(IngestJob.id).where(IngestJob.id == job_id, self.ctx.access.own_jobs()))
                is not None
            )

    # -- work on collections -------------------------------------------------------------
    def plan(self, source, captions=None):
        return self.ingestor.plan(source, captions)

    def ingest(self, source, collection=None, *, captions=None, progress=None):
        return self.ingestor.run(source, collection, captions, progress)

    def expand(self, source: str | Sequence[str]) -> list[MediaInfo]:
        """The videos a source holds (a playlist expands), as the stages take them."""
        return self.ingestor.expand([source] if isinstance(source, str) else list(source))

    def media_dir_for(self, info: MediaInfo) -> Path:
        """The media folder of the video ``info`` describes (its pending catalog row is
        made if new): where ``stages.prepare`` in another process should download to."""
        video_id, _ready = self.ingestor.video_row(info)
        return self.ctx.layout.media_dir(video_id)

    def commit_prepared(
        self, prepared: Prepared, collection: str | None = None, progress=None, job_id: str | None = None
    ) -> IngestResult:
        """Commit a video whose stages ran in another process (see ``vidrag_kernel.stages``);
        ``job_id`` continues the job row queued for it."""
        return self.ingestor.commit_prepared(prepared, collection, progress, job_id)

    def search(self, query, collection=None, *, videos=None, tags=None, k=5, merge=False):
        return self.retriever.search(query, collection, videos, tags, k, merge=merge)

    def transcript(self, video_id, fmt="txt"):
        return self.videos.transcript(video_id, fmt)

    def _answers(self):
        if self._asker is None:
            from .answer.pipeline import Asker

            self._asker = Asker(self.ctx, self.retriever, self.conversations)
        return self._asker

    def ask(self, question, collection=None, **scope):
        return self._answers().ask(question, collection=collection, **scope)

    def ask_stream(self, question, collection=None, **scope):
        return self._answers().stream(question, collection=collection, **scope)

    def reindex(self, collection, progress=None):
        from .reindexing import reindex

        with self.ctx.catalog.session() as s:
            collection_id = self.collections.resolve(s, collection, "edit").id
        return reindex(self.ctx, collection_id, progress)
