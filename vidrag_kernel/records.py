"""Plain records passed between the pipeline's stages.

They hold no database or file handles, so each stage can be tested on its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Chapter:
    """A chapter the uploader marked in the video."""

    title: str
    start: float
    end: float | None = None


@dataclass
class MediaInfo:
    """What we know about one video before (and after) downloading it."""

    source_key: str  # canonical: "youtube:<id>", "<extractor>:<id>", "file:<sha256>"
    url: str  # what yt-dlp or the file reader will fetch
    title: str
    webpage_url: str | None = None
    uploader: str | None = None
    duration: float | None = None
    upload_date: str | None = None  # YYYYMMDD as yt-dlp reports it
    thumbnail: str | None = None
    chapters: list[Chapter] = field(default_factory=list)
    # language -> list of {"ext", "url", "kind": "manual"|"auto"}
    captions: dict[str, list[dict]] = field(default_factory=dict)
    extractor: str = "generic"
    filesize: int | None = None
    local_path: str | None = None  # set for local files
    # a direct http(s) URL of the media a browser can play (pages with <video>, file hosts);
    # None for YouTube (played through its embed) and for streaming-only formats
    media_url: str | None = None
    raw: dict = field(default_factory=dict, repr=False)

    @property
    def has_manual_captions(self) -> bool:
        return any(t.get("kind") == "manual" for tracks in self.captions.values() for t in tracks)

    @property
    def has_captions(self) -> bool:
        return bool(self.captions)


@dataclass(frozen=True)
class Word:
    """A recognised word with its time span."""

    text: str
    start: float
    end: float
    probability: float | None = None


@dataclass
class Segment:
    """A span of transcript: the unit ASR engines and caption files give us."""

    start: float
    end: float
    text: str
    words: list[Word] | None = None


@dataclass
class Transcript:
    """A whole transcript of one video."""

    segments: list[Segment]
    language: str | None = None
    duration: float | None = None
    source: str = "asr"  # "asr" or "captions"
    engine: str | None = None


@dataclass(frozen=True)
class ChunkSpec:
    """A retrieval unit cut from a transcript, before it has an id."""

    index: int
    start: float
    end: float
    text: str
    chapter: str | None = None
    token_count: int = 0
