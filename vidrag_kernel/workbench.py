"""The ``Workbench``: one object for notebooks, the CLI and the dashboards.

    from vidrag_kernel import Workbench
    wb = Workbench()                      # settings from VIDRAG_* variables
    wb.collections.create("CS101", instructor="Ada", semester="Fall 2026")
    wb.ingest("https://www.youtube.com/watch?v=...", collection="CS101")
    wb.search("what is a packet?", collection="CS101")
    answer = wb.ask("what is a packet?", collection="CS101")
    print(answer.text); answer.citations[0].link

Everything it needs is built here from its ``Settings`` and handed down; two
Workbenches on two data directories never share state (apart from loaded models,
which are read-only and cached per process).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING

from .catalog import Catalog
from .collections import Collections
from .context import Context
from .conversations import Conversations
from .ingest import Ingestor, IngestResult, PlanItem
from .jobs import Jobs
from .layout import Layout
from .progress import ProgressCallback
from .retrieve import Retriever, SearchHit
from .settings import Settings
from .videos import Videos

if TYPE_CHECKING:
    from .answer.types import Answer
    from .evaluate import EvalReport


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
        self.conversations = Conversations(self.ctx, self.collections)
        self._asker = None

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
        merge: bool = False,
    ) -> list[SearchHit]:
        """The ``k`` passages that best answer ``query``, each with a deep link to its second.

        With ``merge``, neighbouring chunks that both match join into one passage of whole
        sentences (as answers use them).
        """
        return self.retriever.search(query, collection, videos, tags, k, merge=merge)

    def transcript(self, video_id: str, fmt: str = "txt") -> str:
        """A video's transcript as txt, json, srt or vtt."""
        return self.videos.transcript(video_id, fmt)

    # -- answers -------------------------------------------------------------------------
    def _answers(self):
        if self._asker is None:
            from .answer.pipeline import Asker

            self._asker = Asker(self.ctx, self.retriever, self.conversations)
        return self._asker

    def ask(
        self,
        question: str,
        collection: str | None = None,
        *,
        videos: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        conversation: str | None = None,
        save: bool = True,
    ) -> Answer:
        """Answer ``question`` from the videos, citing the moments that support it.

        Scope: one ``collection`` (name or id), selected ``videos`` (ids) or videos with
        ``tags``; nothing means all your collections. With ``conversation`` (an id) the
        question continues that conversation: its scope is used and its last messages
        (``history_turns``) go to the LLM. Without one, a new conversation is started
        (unless ``save`` is False). Returns an ``Answer`` (text, citations, mode, model,
        usage, latency_ms, conversation_id, flagged, no_answer, fallback_reason, trace).
        """
        return self._answers().ask(
            question, collection=collection, videos=videos, tags=tags, conversation=conversation, save=save
        )

    def ask_stream(
        self,
        question: str,
        collection: str | None = None,
        *,
        videos: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        conversation: str | None = None,
        save: bool = True,
    ) -> Iterator[str | Answer]:
        """Like ``ask``, but yields the answer's text piece by piece (``str``) as it is
        written, and finally the ``Answer`` object itself::

            for item in wb.ask_stream("why does binary search need sorted input?", "CS101"):
                if isinstance(item, str):
                    print(item, end="", flush=True)
                else:
                    answer = item

        Show ``answer.text`` once it arrives: it is the checked text (a citation marker
        that no source backs is removed; an LLM failure part-way appends the fallback).
        """
        return self._answers().stream(
            question, collection=collection, videos=videos, tags=tags, conversation=conversation, save=save
        )

    def evaluate(
        self,
        qa: str | Sequence[dict],
        collection: str | None = None,
        *,
        k: int = 10,
        answers: bool = True,
    ) -> EvalReport:
        """Judge retrieval (Recall@1/5/10, MRR) and answers (keyword accuracy) on a QA set.

        ``qa`` is a JSONL path or a list of dicts (see ``vidrag_kernel.evaluate``).
        """
        from .evaluate import evaluate

        return evaluate(self, qa, collection, k=k, answers=answers)
