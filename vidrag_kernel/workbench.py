"""The ``Workbench``: one object for notebooks, the CLI and the dashboards.

    from vidrag_kernel import Workbench
    wb = Workbench()                      # settings from VIDRAG_* variables
    wb.collections.create("CS101", instructor="Ada", semester="Fall 2026")
    wb.ingest("https://www.youtube.com/watch?v=...", collection="CS101")
    wb.search("what is a packet?", collection="CS101")

Everything it needs is built here from its ``Settings`` and handed down; two
Workbenches on two data directories never share state (apart from loaded models,
which are read-only and cached per process).
"""

from __future__ import annotations

from collections.abc import Sequence

from .catalog import Catalog
from .collections import Collections
from .context import Context
from .ingest import Ingestor, IngestResult, PlanItem
from .jobs import Jobs
from .layout import Layout
from .progress import ProgressCallback
from .retrieve import Retriever, SearchHit
from .settings import Settings
from .videos import Videos


class Workbench:
    """Ingest, search and ask questions of lecture videos."""

    def __init__(self, settings: Settings | None = None, **overrides) -> None:
        settings = settings or Settings.from_env()
        if overrides:
            settings = settings.with_(**overrides)
        self.settings = settings
        layout = Layout(settings.home)
        layout.ensure()
        self.ctx = Context(settings, Catalog(settings.resolved_database_url), layout)
        self.collections = Collections(self.ctx)
        self.videos = Videos(self.ctx, self.collections)
        self._ingestor = Ingestor(self.ctx, self.collections)
        self.jobs = Jobs(self.ctx, self._ingestor, self.collections)
        self.retriever = Retriever(self.ctx, self.collections)

    def __repr__(self) -> str:
        return f"Workbench(home={str(self.settings.home)!r}, user={self.settings.user!r})"

    def close(self) -> None:
        """Release the catalog's connections."""
        self.ctx.catalog.close()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- ingest --------------------------------------------------------------------------
    def plan(self, source: str | Sequence[str], captions: str | None = None) -> list[PlanItem]:
        """What ``source`` would add (titles, durations, captions, estimated time), downloading no media."""
        return self._ingestor.plan(source, captions)

    def ingest(
        self,
        source: str | Sequence[str],
        collection: str | None = None,
        *,
        captions: str | None = None,
        progress: ProgressCallback | None = None,
    ) -> list[IngestResult]:
        """Fetch, transcribe, chunk, embed and index every video of ``source``.

        ``source`` is a URL yt-dlp understands (video, playlist, channel, web page with
        media) or a local audio/video file, or a list of them. ``captions`` is one of
        auto, prefer, only, never. A source that cannot be used at all raises a
        ``VidragError``; a video of a playlist that fails comes back with status "failed".
        """
        return self._ingestor.run(source, collection, captions, progress)

    # -- search --------------------------------------------------------------------------
    def search(
        self,
        query: str,
        collection: str | Sequence[str] | None = None,
        *,
        videos: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        k: int = 5,
    ) -> list[SearchHit]:
        """The ``k`` passages that best answer ``query``, each with a deep link to its second."""
        return self.retriever.search(query, collection, videos, tags, k)

    def transcript(self, video_id: str, fmt: str = "txt") -> str:
        """A video's transcript as txt, json, srt or vtt."""
        return self.videos.transcript(video_id, fmt)
