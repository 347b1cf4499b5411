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

from .ingest import IngestResult, PlanItem
from .library import Library, LocalLibrary
from .progress import ProgressCallback
from .retrieve import SearchHit
from .routing import CollectionsView, ConversationsView, JobsView, Libraries, VideosView
from .settings import Settings

if TYPE_CHECKING:
    from .answer.types import Answer
    from .evaluate import EvalReport
    from .publishing import PublishReport
    from .stages import Prepared


class Workbench:
    """Ingest, search and ask questions of lecture videos.

    Behind it sit one or more libraries (``vidrag_kernel.library``): the local one on
    ``settings.home`` always comes first; ``libraries`` adds others, such as the vidrag
    service's shared course collections (found by itself inside a JupyterHub server whose
    hub registered the service; ``libraries=()`` turns that off). Every call goes to the library that holds the
    collection, video or conversation it names, so callers never branch on where a
    collection lives.
    """

    def __init__(
        self, settings: Settings | None = None, *, libraries: Sequence[Library] | None = None, **overrides
    ) -> None:
        settings = settings or Settings.from_env()
        if overrides:
            settings = settings.with_(**overrides)
        self.settings = settings
        self.local = LocalLibrary(settings)
        if libraries is None:
            # inside a JupyterHub server with the vidrag service: its shared collections too
            from .hubenv import detect
            from .shared import service_libraries

            libraries = service_libraries(detect())
        self.libraries = Libraries([self.local, *libraries])
        #: the vidrag service's library (sharing, members, links, invites), None without one
        self.service = next((lib for lib in libraries if getattr(lib, "name", "") == "shared"), None)
        self.ctx = self.local.ctx
        self.retriever = self.local.retriever
        self.collections = CollectionsView(self.libraries)
        self.videos = VideosView(self.libraries)
        self.jobs = JobsView(self.libraries)
        self.conversations = ConversationsView(self.libraries)

    def __repr__(self) -> str:
        return f"Workbench(home={str(self.settings.home)!r}, user={self.settings.user!r})"

    def close(self) -> None:
        """Release every library's connections."""
        for lib in self.libraries.all:
            lib.close()

    def __enter__(self) -> Workbench:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- ingest --------------------------------------------------------------------------
    def plan(self, source: str | Sequence[str], captions: str | None = None) -> list[PlanItem]:
        """What ``source`` would add (titles, durations, captions, estimated time), downloading no media."""
        return self.libraries.default.plan(source, captions)

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
        auto, prefer, only, never. A ``collection`` name that does not exist yet is
        created (with a warning saying so). A source that cannot be used at all raises a
        ``VidragError``; a video of a playlist that fails comes back with status "failed".
        """
        lib = self.libraries.for_collection(collection)
        return lib.ingest(source, collection, captions=captions, progress=progress)

    def commit_prepared(
        self, prepared: Prepared, collection: str | None = None, *, progress: ProgressCallback | None = None
    ) -> IngestResult:
        """Commit a video whose stages ran elsewhere (``vidrag_kernel.stages.prepare`` in a
        Dask worker or a notebook) into ``collection``, as that collection's writer."""
        return self.local.commit_prepared(prepared, collection, progress)

    def publish(
        self, name: str, as_: str | None = None, *, progress: ProgressCallback | None = None
    ) -> PublishReport:
        """Publish the personal collection ``name`` to the vidrag service as a new shared
        collection (``as_``, default the same name) owned by you: its videos are ingested
        there again, by URL or by uploading local files. Course creators only. Returns what
        was published and, per video, why one could not be (see ``vidrag_kernel.publishing``)."""
        from .publishing import publish

        return publish(self, name, as_, progress=progress)

    def reindex(self, collection: str, *, progress: ProgressCallback | None = None) -> int:
        """Re-embed a collection's stored passages with the configured embedder into a new
        index generation (after changing ``VIDRAG_EMBEDDING_MODEL``); nothing is downloaded
        or transcribed again. Returns the new generation number."""
        return self.libraries.for_collection(collection).reindex(collection, progress)

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
        lib = self.libraries.for_scope(collection, videos)
        return lib.search(query, collection, videos=videos, tags=tags, k=k, merge=merge)

    def transcript(self, video_id: str, fmt: str = "txt") -> str:
        """A video's transcript as txt, json, srt or vtt."""
        return self.libraries.for_video(video_id).transcript(video_id, fmt)

    # -- answers -------------------------------------------------------------------------
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
        lib = self.libraries.for_scope(collection, videos, conversation)
        return lib.ask(question, collection, videos=videos, tags=tags, conversation=conversation, save=save)

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
        lib = self.libraries.for_scope(collection, videos, conversation)
        return lib.ask_stream(
            question, collection, videos=videos, tags=tags, conversation=conversation, save=save
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
