"""The ingest stages as plain functions: explicit inputs in, explicit outputs out.

    fetch ──► transcribe ──► chunk ──► embed            (``prepare``: any process)
                                            └──► commit (the collection's one writer)

``fetch``, ``transcribe``, ``chunk`` and ``embed`` touch no catalog and no job rows:
they read settings and files and return values, so a Dask worker or a papermill
notebook can run them for a video (``prepare`` runs all four) and hand the picklable
``Prepared`` result to the process that writes the collection, which calls ``commit``.
Job bookkeeping (state, timings, progress) lives in the orchestrator,
``vidrag_kernel.ingest``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

import numpy as np
from sqlalchemy import delete, select

from .catalog import Chunk, CollectionVideo, Video, chunk_uuid, vector_id
from .catalog import Segment as SegmentRow
from .context import Context
from .errors import InvalidInput
from .progress import Reporter
from .records import Chapter, ChunkSpec, MediaInfo, Transcript
from .settings import Settings


def _quiet(_fraction: float, _message: str = "") -> None:
    """A reporter that reports nothing."""


@dataclass
class Fetched:
    """What the fetch stage got: published captions that make the transcript, or audio."""

    transcript: Transcript | None = None
    audio: Path | None = None


@dataclass
class Prepared:
    """Everything the writer needs to commit one video; crosses process boundaries."""

    info: MediaInfo
    transcript: Transcript
    chunks: list[ChunkSpec]
    vectors: np.ndarray
    duration: float | None
    #: where the duration figure came from: "source" (the site reported it), "media"
    #: (probed from the downloaded file), "captions" (end of the last cue) or "transcript"
    duration_source: str | None
    timings: dict[str, float] = field(default_factory=dict)
    #: the model that made ``vectors`` (``embed.identity``): the writer checks it against
    #: the collection's index without loading a model of its own
    embedder: dict | None = None


def transcript_source(info: MediaInfo, captions: str) -> str:
    """Whether captions or speech recognition will make the transcript (captions mode
    auto, prefer, only or never)."""
    if captions == "never":
        return "asr"
    if captions == "only":
        return "captions"
    if captions == "prefer":
        return "captions" if info.has_captions else "asr"
    return "captions" if info.has_manual_captions else "asr"


def fetch(
    info: MediaInfo, media_dir: Path, settings: Settings, captions: str, report: Reporter = _quiet
) -> Fetched:
    """Download what the transcript will come from into ``media_dir``: the published
    captions when ``captions`` mode chooses them and they exist, else the audio."""
    from .fetch import download_audio, fetch_captions

    media_dir = Path(media_dir)
    media_dir.mkdir(parents=True, exist_ok=True)
    if transcript_source(info, captions) == "captions":
        segments = fetch_captions(info, media_dir, settings, include_auto=captions != "auto")
        if segments:
            return Fetched(
                transcript=Transcript(segments, settings.captions_language, info.duration, "captions")
            )
        if captions == "only":
            raise InvalidInput(f"{info.title!r} has no published captions (captions mode 'only')")
    return Fetched(audio=download_audio(info, media_dir, settings, report))


def transcribe(
    audio: Path, settings: Settings, report: Reporter = _quiet, glossary: Sequence[str] | None = None
) -> Transcript:
    """Speech recognition of ``audio`` with the configured transcriber; ``glossary``
    (the collection's course terms and names) is given to the model as hints."""
    from .transcribe import get_transcriber

    transcriber = get_transcriber(settings)
    if glossary:
        return transcriber.transcribe(audio, report, glossary=list(glossary))
    # no glossary: the engine is called as before, so engines without the option still work
    return transcriber.transcribe(audio, report)


def chunk(
    transcript: Transcript, chapters: Sequence[Chapter], settings: Settings, title: str = ""
) -> list[ChunkSpec]:
    """Time-aware, sentence-bounded chunks of ``transcript``; an error when it holds no speech."""
    from .chunking import chunk_segments

    chunks = chunk_segments(
        transcript.segments,
        chapters=list(chapters),
        target_tokens=settings.chunk_tokens,
        min_tokens=settings.chunk_min_tokens,
        overlap_tokens=settings.chunk_overlap_tokens,
    )
    if not chunks:
        where = "its captions" if transcript.source == "captions" else "its audio"
        raise InvalidInput(f"No speech was found in {where}: {title!r} has nothing to search")
    return chunks


def embed(chunks: Sequence[ChunkSpec], settings: Settings, report: Reporter = _quiet) -> np.ndarray:
    """One normalised vector per chunk, from the configured embedder."""
    from .embed import get_embedder

    return get_embedder(settings).embed([c.text for c in chunks], report)


def embedder_identity(settings: Settings) -> dict:
    """Engine, model and dimensions of the configured embedder (what index manifests record)."""
    from .embed import get_embedder, identity

    return identity(get_embedder(settings), settings)


def duration_of(info: MediaInfo, fetched: Fetched, transcript: Transcript) -> tuple[float | None, str | None]:
    """The video's length and where the figure came from (see ``Prepared.duration_source``).

    yt-dlp reports no duration for plain HTML5 media, so the downloaded file is probed,
    and a captions-only ingest (no media downloaded) takes the end of the last cue.
    """
    if info.duration:
        return float(info.duration), "source"
    if fetched.audio is not None:
        from .fetch.media import probe_duration

        probed = probe_duration(fetched.audio)
        if probed:
            return probed, "media"
    if transcript.source == "captions" and transcript.segments:
        return max(s.end for s in transcript.segments), "captions"
    if transcript.duration:
        return float(transcript.duration), "transcript"
    return None, None


#: how an orchestrator runs one stage: ``stage(state, timing)`` is a context manager that
#: yields the stage's progress reporter (``JobRun.stage`` records the job row and timing)
Stage = Callable[[str, str], AbstractContextManager[Reporter]]


def _timed(timings: dict[str, float], report: Reporter, on_stage: Callable[[str], None]) -> Stage:
    """The stage runner ``prepare`` uses when no orchestrator times the stages."""

    @contextmanager
    def stage(state: str, timing: str) -> Iterator[Reporter]:
        on_stage(state)
        started = perf_counter()
        yield report
        timings[timing] = round(perf_counter() - started, 3)

    return stage


def prepare(
    info: MediaInfo,
    media_dir: Path,
    settings: Settings,
    captions: str,
    report: Reporter = _quiet,
    on_stage: Callable[[str], None] | None = None,
    glossary: Sequence[str] | None = None,
    *,
    stage: Stage | None = None,
) -> Prepared:
    """fetch → transcribe → chunk → embed for one video, touching no catalog or index.

    Runs in any process that sees ``media_dir`` and has the models (a Dask worker, a
    papermill kernel); the writer of the collection then calls ``commit`` with the result.
    ``on_stage(state)`` is called as each stage starts, with the job state it means
    ("fetching", "transcribing", "chunking", "embedding"), so a caller far from the
    catalog can show where the work is; the stage timings come back in
    ``Prepared.timings``. An orchestrator that keeps a job row passes ``stage`` instead
    (then it times the stages, and reports progress, itself). ``glossary``: the
    collection's course terms, passed to speech recognition (captions are used as
    published).
    """
    timings: dict[str, float] = {}
    stage = stage or _timed(timings, report, on_stage or (lambda _state: None))
    with stage("fetching", "fetch") as progress:
        fetched = fetch(info, media_dir, settings, captions, progress)
    transcript = fetched.transcript
    if transcript is None:
        with stage("transcribing", "transcribe") as progress:
            transcript = transcribe(fetched.audio, settings, progress, glossary)
    with stage("chunking", "chunk"):
        chunks = chunk(transcript, info.chapters, settings, info.title)
    with stage("embedding", "embed") as progress:
        vectors = embed(chunks, settings, progress)
    duration, source = duration_of(info, fetched, transcript)
    return Prepared(info, transcript, chunks, vectors, duration, source, timings, embedder_identity(settings))


def store_transcript(ctx: Context, video_id: str, prepared: Prepared) -> list[int]:
    """Replace the video's segments and chunks in the catalog (the video stays
    ``pending``); return the index ids its chunks had before."""
    transcript = prepared.transcript
    with ctx.catalog.session() as s:
        old_ids = list(s.scalars(select(Chunk.vector_id).where(Chunk.video_id == video_id)))
        s.execute(delete(SegmentRow).where(SegmentRow.video_id == video_id))
        s.execute(delete(Chunk).where(Chunk.video_id == video_id))
        for seg in transcript.segments:
            words = (
                [{"text": w.text, "start": w.start, "end": w.end} for w in seg.words] if seg.words else None
            )
            s.add(
                SegmentRow(
                    video_id=video_id, start=seg.start, end=seg.end, text=seg.text.strip(), words=words
                )
            )
        for c in prepared.chunks:
            cid = chunk_uuid(video_id, c.index)
            s.add(
                Chunk(
                    id=cid,
                    vector_id=vector_id(cid),
                    video_id=video_id,
                    index=c.index,
                    start=c.start,
                    end=c.end,
                    text=c.text,
                    chapter=c.chapter,
                    token_count=c.token_count,
                )
            )
        video = s.get(Video, video_id)
        video.status = "pending"
        video.transcript_source = transcript.source
        video.language = transcript.language
        if prepared.duration is not None:
            video.duration = prepared.duration
            video.duration_source = prepared.duration_source
    return old_ids


def commit(ctx: Context, collection_id: str, video_id: str, prepared: Prepared) -> int:
    """Store a prepared video in the catalog and the collection's index; returns the
    index generation. Only the collection's one writer calls this.

    Order keeps the collection consistent if the process dies at any point: the catalog
    rows are written while the video is ``pending`` (retrieval ignores it), the index gets
    a new generation atomically, and only then is the video ``ready``.
    """
    from .corrections import over_new_transcript
    from .indexing import open_index, write_chunks

    # people's corrections of this video's lines outlive a new transcript (a re-ingest)
    prepared = over_new_transcript(ctx, video_id, prepared)
    if len(prepared.vectors) != len(prepared.chunks):
        raise InvalidInput(f"{len(prepared.chunks)} chunks but {len(prepared.vectors)} vectors")
    # vectors of another model than the index's are refused before the catalog changes
    open_index(ctx, collection_id, identity=prepared.embedder)
    old_ids = store_transcript(ctx, video_id, prepared)
    ids = [vector_id(chunk_uuid(video_id, c.index)) for c in prepared.chunks]
    generation = write_chunks(
        ctx,
        collection_id,
        add_ids=ids,
        vectors=prepared.vectors,
        texts=[c.text for c in prepared.chunks],
        remove_ids=sorted(set(old_ids) - set(ids)),
        embedder=prepared.embedder,
    )
    with ctx.catalog.session() as s:
        s.get(Video, video_id).status = "ready"
        if not s.get(CollectionVideo, (collection_id, video_id)):
            s.add(CollectionVideo(collection_id=collection_id, video_id=video_id))
    return generation
