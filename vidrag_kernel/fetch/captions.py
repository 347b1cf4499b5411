"""Published captions: pick a track, download it through yt-dlp, parse it into Segments."""

from __future__ import annotations

import html
import logging
import re
from collections import deque
from pathlib import Path

from ..errors import FetchFailed
from ..records import MediaInfo, Segment
from ..settings import Settings
from .urls import check_url

log = logging.getLogger(__name__)

PARSEABLE = ("vtt", "srt")
_MAX_BYTES = 20 * 1024 * 1024  # a caption file bigger than this is not a caption file
_TAG = re.compile(r"<[^>]*>")
_ASS_OVERRIDE = re.compile(r"\{\\[^}]*\}")  # SRT files exported from ASS keep {\an8}
_INLINE_TIME = re.compile(r"<\d{1,2}:\d{2}(?::\d{2})?\.\d{3}>")
_SPACES = re.compile(r"\s+")


def _lang_rank(lang: str, preferred: str) -> int:
    lang, preferred = lang.lower(), preferred.lower()
    if lang == preferred:
        return 0
    if lang.split("-")[0] == preferred.split("-")[0]:
        return 1
    if lang.startswith("en"):
        return 2
    return 3


def choose_track(info: MediaInfo, language: str, *, include_auto: bool) -> tuple[str, dict] | None:
    """The best parseable track: preferred language (then en*, then any), manual first.

    Manual tracks in the preferred language or English beat auto captions, which beat a
    manual track in some other language, because that is usually a translation.
    """
    candidates = []
    for lang, tracks in info.captions.items():
        rank = _lang_rank(lang, language)
        for track in tracks:
            ext = (track.get("ext") or "").lower()
            if track.get("kind") == "auto" and not include_auto:
                continue
            if ext and ext not in PARSEABLE:
                continue
            auto = track.get("kind") == "auto"
            group = (0 if rank <= 2 else 2) + (1 if auto else 0)
            candidates.append(((group, rank, PARSEABLE.index(ext) if ext else len(PARSEABLE)), lang, track))
    if not candidates:
        return None
    _, lang, track = min(candidates, key=lambda c: c[0])
    return lang, track


def _seconds(stamp: str) -> float:
    parts = stamp.strip().replace(",", ".").split(":")
    value = 0.0
    for part in parts:
        value = value * 60 + float(part)
    return value


def _clean(line: str) -> str:
    line = _ASS_OVERRIDE.sub("", _TAG.sub("", line))
    return _SPACES.sub(" ", html.unescape(line)).strip()


def parse_captions(path: Path, *, rolling: bool | None = None) -> list[Segment]:
    """Parse a VTT or SRT file into Segments, tags stripped.

    YouTube's auto captions "roll": each cue repeats the previous line above the new one,
    and short cues repeat a finished line. With ``rolling`` (detected from inline word
    timestamps when None) lines already shown are dropped, so every word appears once.
    """
    import webvtt

    path = Path(path)
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    is_vtt = text.lstrip().startswith("WEBVTT")
    try:
        doc = webvtt.from_string(text) if is_vtt else webvtt.from_srt(str(path))
    except Exception as exc:  # noqa: BLE001 - webvtt raises several malformed-file errors
        log.warning("could not parse captions %s: %s", path.name, exc)
        return []
    if rolling is None:
        rolling = bool(_INLINE_TIME.search(text))
    recent: deque[str] = deque(maxlen=3)
    segments: list[Segment] = []
    for cue in doc.captions:
        lines = [c for c in (_clean(line) for line in cue.raw_text.split("\n")) if c]
        if rolling:
            lines = [line for line in lines if line not in recent]
            recent.extend(lines)
        if not lines:
            continue
        start, end = _seconds(cue.start), _seconds(cue.end)
        body = " ".join(lines)
        previous = segments[-1] if segments else None
        # the same words split over touching cues are one segment
        if previous and previous.text == body and start - previous.end < 0.05:
            previous.end = max(previous.end, end)
            continue
        segments.append(Segment(start=start, end=max(end, start), text=body))
    return segments


def fetch_captions(
    info: MediaInfo, dest_dir: Path, settings: Settings, *, include_auto: bool
) -> list[Segment] | None:
    """Download and parse the best caption track, or None when there is no usable one.

    None also when the track cannot be fetched or parsed (logged), so callers can fall
    back to speech recognition; a refused (private) caption URL raises ``Forbidden``.

    Language: ``settings.captions_language``, then any English variant, then any; manual
    tracks first, auto captions only with ``include_auto``. The file is kept in
    ``dest_dir`` as ``captions.<kind>.<ext>``.
    """
    chosen = choose_track(info, settings.captions_language, include_auto=include_auto)
    if chosen is None:
        return None
    lang, track = chosen
    url = track["url"]
    check_url(url, settings.fetch_allow_hosts)
    try:
        data = _download(url, settings)
    except FetchFailed as exc:
        # A broken caption link should not sink the ingest: the caller falls back to ASR.
        log.warning("captions of %s could not be fetched: %s", info.title, exc.message)
        return None
    ext = (track.get("ext") or "").lower()
    if ext not in PARSEABLE:
        ext = "vtt" if data.lstrip(b"\xef\xbb\xbf \r\n\t").startswith(b"WEBVTT") else "srt"
    kind = "auto" if track.get("kind") == "auto" else "manual"
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    path = dest_dir / f"captions.{kind}.{ext}"
    path.write_bytes(data)
    segments = parse_captions(path, rolling=True if kind == "auto" else None)
    if not segments:
        log.warning("caption track %s (%s) of %s is empty or unreadable", lang, kind, info.title)
        return None
    return segments


def _download(url: str, settings: Settings) -> bytes:
    """Fetch a caption file with yt-dlp's networking (cookies, guard, timeouts)."""
    from .remote import _call, _session

    with _session(settings) as (ydl, run):

        def read() -> bytes:
            with ydl.urlopen(url) as response:
                data = response.read(_MAX_BYTES + 1)
            if len(data) > _MAX_BYTES:
                raise FetchFailed(f"Could not fetch {url}: the caption file is too large")
            return data

        return _call(read, url, run)
