"""Everything that talks to yt-dlp: planning URLs and downloading their audio.

yt-dlp is imported inside functions so that ``import vidrag_kernel`` stays light. Its
exceptions never leave this module: they become ``InvalidInput``, ``Forbidden``,
``TooLarge`` or ``FetchFailed`` with a one-line message.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
from collections import deque
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..errors import FetchFailed, Forbidden, InvalidInput, TooLarge, VidragError
from ..records import Chapter, MediaInfo
from ..settings import Settings
from .guard import Guard, guarded_downloader, refuse_unguarded
from .local import check_decodes, check_duration
from .urls import check_url, normalize_url, url_key

log = logging.getLogger(__name__)

AUDIO_FORMAT = "bestaudio/best"  # plain "bestaudio" fails on <video> pages
FRAGMENT_DOWNLOADS = 4  # HLS/DASH fragments fetched at once
# Large per-format details the rest of vidrag never reads.
# Extractors that take media from any page's HTML, with ids made from the page's URL.
_PAGE_EMBED_EXTRACTORS = {"html5mediaembed"}
_HEAVY_KEYS = {"formats", "thumbnails", "subtitles", "automatic_captions", "requested_formats", "heatmap"}


class _Collector:
    """A yt-dlp logger that keeps recent messages instead of printing them."""

    def __init__(self) -> None:
        self.messages: deque[str] = deque(maxlen=200)
        self.warnings: list[str] = []

    def debug(self, msg: str) -> None:
        self.messages.append(msg)

    def info(self, msg: str) -> None:
        self.messages.append(msg)

    def warning(self, msg: str) -> None:
        self.messages.append(msg)
        if len(self.warnings) < 50:
            self.warnings.append(msg)

    def error(self, msg: str) -> None:
        self.messages.append(msg)


class _Run:
    """State of one yt-dlp session: its guard, logger and abort reasons."""

    def __init__(self, guard: Guard, logger: _Collector) -> None:
        self.guard = guard
        self.logger = logger
        self.too_big: str | None = None


def _params(settings: Settings, logger: _Collector, **extra: Any) -> dict:
    params: dict[str, Any] = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "logger": logger,
        "socket_timeout": settings.fetch_timeout,
        "format": AUDIO_FORMAT,
        "playlistend": settings.playlist_limit,
        "retries": 2,
        "fragment_retries": 2,
        "extractor_retries": 1,
        # every connection goes through the guard's proxy, whichever thread opens it
        "concurrent_fragment_downloads": FRAGMENT_DOWNLOADS,
        # PyAV reads what yt-dlp downloads as it is; the guard leaves yt-dlp no ffmpeg
        "fixup": "never",
        "cachedir": str(Path(settings.home) / "cache" / "yt-dlp"),
        "color": {"stdout": "no_color", "stderr": "no_color"},
    }
    if settings.cookies_file:
        params["cookiefile"] = str(settings.cookies_file)
    params.update(extra)
    return params


def _session(settings: Settings, **extra: Any):
    """A guarded YoutubeDL and the run state around it."""

    @contextlib.contextmanager
    def session() -> Iterator[tuple[Any, _Run]]:
        logger = _Collector()
        started = False
        try:
            with guarded_downloader(
                _params(settings, logger, **extra), settings.fetch_allow_hosts, timeout=settings.fetch_timeout
            ) as (ydl, guard):
                started = True
                try:
                    yield ydl, _Run(guard, logger)
                finally:
                    for warning in logger.warnings:
                        log.info("yt-dlp: %s", warning)
        except VidragError:
            raise
        except Exception as exc:  # noqa: BLE001 - never leak yt-dlp errors
            if started:
                raise
            raise _startup_error(exc) from None

    return session()


def _cookie_error(cause: BaseException) -> InvalidInput | None:
    if type(cause).__name__ != "CookieLoadError":
        return None
    detail = cause.__context__ or cause
    return InvalidInput(f"The cookies file in VIDRAG_COOKIES_FILE could not be loaded: {detail}")


def _startup_error(exc: BaseException) -> VidragError:
    """The error for a downloader that could not start (bad options, bad cookies)."""
    cause = exc
    exc_info = getattr(exc, "exc_info", None)
    if exc_info and exc_info[1] is not None:  # yt-dlp's DownloadError wraps the cause
        cause = exc_info[1]
    return _cookie_error(cause) or FetchFailed(f"Could not start the downloader: {exc}")


def _no_media(url: str) -> InvalidInput:
    return InvalidInput(f"No video or audio found at {url}")


def _translate(exc: BaseException, url: str, run: _Run) -> VidragError:
    """One vidrag error for whatever yt-dlp raised."""
    from yt_dlp.networking.exceptions import HTTPError, ProxyError, RequestError
    from yt_dlp.utils import DownloadError, ExtractorError, UnsupportedError

    if run.guard.refused:
        return Forbidden(run.guard.refused[0])
    if run.too_big:
        return TooLarge(run.too_big)
    cause: BaseException | None = exc
    if isinstance(exc, DownloadError) and exc.exc_info and exc.exc_info[1] is not None:
        cause = exc.exc_info[1]
    if isinstance(cause, VidragError):
        return cause
    if cookie := _cookie_error(cause):
        return cookie
    if isinstance(cause, UnsupportedError):
        return _no_media(url)
    if isinstance(cause, ExtractorError) and isinstance(cause.cause, BaseException):
        inner = cause.cause
        if isinstance(inner, HTTPError | RequestError):
            cause = inner
    if isinstance(cause, HTTPError):
        return FetchFailed(f"Could not fetch {url}: HTTP Error {cause.status}")
    if isinstance(cause, ProxyError) and run.guard.failures:
        # the guard's proxy could not reach the host: its reason reads better than SOCKS codes
        return FetchFailed(f"Could not fetch {url}: {run.guard.failures[-1]}")
    if isinstance(cause, RequestError):
        return FetchFailed(f"Could not fetch {url}: {cause.msg or type(cause).__name__}")
    message = getattr(cause, "orig_msg", None) or str(cause)
    message = message.removeprefix("ERROR: ").strip()
    lowered = message.lower()
    if "no video formats" in lowered or "requested format is not available" in lowered:
        return _no_media(url)
    if "is larger than max-filesize" in lowered:
        return TooLarge(f"{url} is larger than the download limit")
    return FetchFailed(f"Could not fetch {url}: {message}")


def _call(fn: Callable[[], Any], url: str, run: _Run) -> Any:
    try:
        return fn()
    except VidragError:
        raise
    except Exception as exc:  # noqa: BLE001 - no yt-dlp exception may escape
        raise _translate(exc, url, run) from None


def _chapters(info: dict) -> list[Chapter]:
    chapters = []
    for i, c in enumerate(info.get("chapters") or []):
        if c.get("start_time") is None:
            continue
        end = c.get("end_time")
        chapters.append(
            Chapter(
                title=str(c.get("title") or f"Chapter {i + 1}"),
                start=float(c["start_time"]),
                end=float(end) if end is not None else None,
            )
        )
    return chapters


def _captions(info: dict) -> dict[str, list[dict]]:
    tracks: dict[str, list[dict]] = {}
    for kind, key in (("manual", "subtitles"), ("auto", "automatic_captions")):
        for lang, items in (info.get(key) or {}).items():
            if lang == "live_chat":  # YouTube lists chat replays among subtitles
                continue
            for item in items or []:
                if item.get("url"):
                    tracks.setdefault(lang, []).append(
                        {"ext": item.get("ext"), "url": item["url"], "kind": kind, "name": item.get("name")}
                    )
    return tracks


def source_key(info: dict, fallback_url: str) -> str:
    """``youtube:<id>``, ``<extractor>:<id>``, or a hash of the URL for generic media."""
    extractor = str(info.get("extractor_key") or info.get("ie_key") or "generic").lower()
    video_id = info.get("id")
    if extractor == "youtube" and video_id:
        return f"youtube:{video_id}"
    page = info.get("webpage_url") or fallback_url
    # Generic extractors name media after the file or page ("lecture"), which is not
    # unique across sites: the URL is the identity.
    if extractor == "generic" or not video_id:
        return url_key(page)
    if extractor in _PAGE_EMBED_EXTRACTORS:
        # several <video>s on one page share its URL; their ids number them
        return "url:" + hashlib.sha256(f"{normalize_url(page)}#{video_id}".encode()).hexdigest()[:16]
    return f"{extractor}:{video_id}"


def playable_url(info: dict) -> str | None:
    """A direct http(s) media URL a browser can play, when the site exposes one."""
    extractor = str(info.get("extractor_key") or info.get("extractor") or "").lower()
    if extractor.startswith("youtube"):
        return None  # played through YouTube's embed; its media URLs expire
    for fmt in [info, *reversed(info.get("formats") or [])]:  # yt-dlp lists best last
        url = fmt.get("url")
        if (
            url
            and urlsplit(url).scheme in ("http", "https")
            and fmt.get("protocol", "https") in ("http", "https")
        ):
            return url
    return None


def to_media_info(info: dict, requested_url: str, ydl: Any) -> MediaInfo:
    """Map a processed yt-dlp info dict onto a MediaInfo."""
    webpage_url = info.get("webpage_url") or requested_url
    duration = info.get("duration")
    raw = {k: v for k, v in ydl.sanitize_info(info).items() if k not in _HEAVY_KEYS}
    title = str(info.get("title") or info.get("id") or webpage_url)
    if str(info.get("extractor_key") or "").lower() in _PAGE_EMBED_EXTRACTORS and info.get(
        "playlist_count"
    ) in (
        None,
        1,
    ):
        # "Page title (1)" for the only video of a page reads better as the page title
        title = re.sub(r" \(1\)$", "", title)
    return MediaInfo(
        source_key=source_key(info, requested_url),
        url=webpage_url,
        title=title,
        webpage_url=webpage_url,
        uploader=info.get("uploader") or info.get("channel"),
        duration=float(duration) if duration is not None else None,
        upload_date=info.get("upload_date"),
        thumbnail=info.get("thumbnail"),
        chapters=_chapters(info),
        captions=_captions(info),
        extractor=str(info.get("extractor_key") or info.get("extractor") or "generic").lower(),
        filesize=info.get("filesize") or info.get("filesize_approx"),
        media_url=playable_url(info),
        raw=raw,
    )


def _is_playlist(info: dict) -> bool:
    return info.get("_type") in {"playlist", "multi_video"}


def _single(info: dict, url: str, ydl: Any, settings: Settings) -> MediaInfo:
    if info.get("is_live"):
        raise InvalidInput(f"{url} is a live stream; only recorded videos can be added")
    media = to_media_info(info, url, ydl)
    check_duration(media.title, media.duration, settings)
    return media


def plan_url(url: str, settings: Settings) -> list[MediaInfo]:
    """MediaInfo for a URL, expanding playlists and channels (up to ``playlist_limit``)."""
    check_url(url, settings.fetch_allow_hosts)
    with _session(settings, extract_flat="in_playlist") as (ydl, run):
        info = _call(lambda: ydl.extract_info(url, download=False), url, run)
        if not info:
            raise _no_media(url)
        if not _is_playlist(info):
            return [_single(info, url, ydl, settings)]
        entries = [e for e in list(info.get("entries") or [])[: max(settings.playlist_limit, 0)] if e]
    if not entries:
        raise InvalidInput(f"No videos found in the playlist at {url}")
    return _plan_entries(entries, url, settings)


def _plan_entries(entries: list[dict], url: str, settings: Settings) -> list[MediaInfo]:
    """Resolve flat playlist entries one by one, vetting each entry's URL first.

    One unavailable or over-long entry should not sink a whole course playlist, so
    failing entries are skipped (and logged); if none succeeds, the first error is raised.
    """
    results: list[MediaInfo] = []
    first_error: VidragError | None = None
    with _session(settings) as (ydl, run):
        for entry in entries:
            entry_url = entry.get("webpage_url") or entry.get("url") or url
            try:
                check_url(entry_url, settings.fetch_allow_hosts)
                if entry.get("_type", "video") == "video":
                    full = entry  # already resolved by the extractor
                else:
                    full = _call(
                        lambda e=entry: ydl.process_ie_result(dict(e), download=False), entry_url, run
                    )
                if not full or _is_playlist(full):
                    raise _no_media(entry_url)
                results.append(_single(full, entry_url, ydl, settings))
            except VidragError as exc:
                log.warning("skipping playlist entry %s: %s", entry_url, exc.message)
                first_error = first_error or exc
            run.guard.refused.clear()
            run.guard.failures.clear()
    if not results and first_error is not None:
        raise first_error
    return results


def _chosen_urls(info: dict) -> list[str]:
    """The URLs yt-dlp will download for the selected format(s)."""
    formats = info.get("requested_formats") or [info]
    urls = []
    for fmt in formats:
        for key in ("url", "manifest_url", "fragment_base_url"):
            if isinstance(fmt.get(key), str) and fmt[key].startswith(("http://", "https://")):
                urls.append(fmt[key])
    return urls


def _cleanup(dest_dir: Path) -> None:
    for leftover in dest_dir.glob("audio.*"):
        leftover.unlink(missing_ok=True)


def download_remote(
    info: MediaInfo, dest_dir: Path, settings: Settings, report: Callable[[float, str], None] | None
) -> Path:
    """Download the best audio of a planned URL into ``dest_dir/audio.<ext>``."""
    page_url = info.webpage_url or info.url
    check_url(page_url, settings.fetch_allow_hosts)
    check_duration(info.title, info.duration, settings)
    dest_dir = Path(dest_dir)
    dest_dir.mkdir(parents=True, exist_ok=True)
    limit = int(settings.max_filesize_mb * 1024 * 1024)
    limit_text = f"{settings.max_filesize_mb:g} MB (VIDRAG_MAX_FILESIZE_MB)"
    state: dict[str, Any] = {}

    def hook(d: dict) -> None:
        done = d.get("downloaded_bytes") or 0
        total = d.get("total_bytes") or d.get("total_bytes_estimate")
        if done > limit:
            # Without a Content-Length yt-dlp cannot apply max_filesize up front.
            state["run"].too_big = f"{info.title!r} is larger than the download limit of {limit_text}"
            raise TooLarge(state["run"].too_big)
        if report is None:
            return
        if d.get("status") == "finished":
            report(1.0, "downloaded")
        elif d.get("status") == "downloading":
            fraction = min(done / total, 0.99) if total else 0.0
            shown = f" of {total / 1e6:.1f}" if total else ""
            report(fraction, f"downloading {done / 1e6:.1f}{shown} MB")

    outtmpl = str(dest_dir.resolve() / "audio.%(ext)s")
    with _session(
        settings, outtmpl={"default": outtmpl}, noplaylist=True, max_filesize=limit, progress_hooks=[hook]
    ) as (ydl, run):
        state["run"] = run
        full = _call(lambda: ydl.extract_info(page_url, download=False), page_url, run)
        if not full or _is_playlist(full):
            raise _no_media(page_url)
        check_duration(info.title, full.get("duration"), settings)
        refuse_unguarded(full.get("requested_formats") or [full], page_url)
        for chosen in _chosen_urls(full):
            check_url(chosen, settings.fetch_allow_hosts)
        if report is not None:
            report(0.0, "starting download")
        try:
            done = _call(lambda: ydl.process_ie_result(full, download=True), page_url, run)
        except VidragError:
            _cleanup(dest_dir)
            raise
        messages = list(run.logger.messages)
    downloads = (done or {}).get("requested_downloads") or []
    path = Path(downloads[0]["filepath"]) if downloads and downloads[0].get("filepath") else None
    if path is None or not path.is_file():
        _cleanup(dest_dir)
        if any("max-filesize" in m for m in messages):
            raise TooLarge(f"{info.title!r} is larger than the download limit of {limit_text}")
        raise FetchFailed(f"Could not fetch {page_url}: the download produced no file")
    if path.stat().st_size > limit:
        _cleanup(dest_dir)
        raise TooLarge(f"{info.title!r} is larger than the download limit of {limit_text}")
    try:
        duration = check_decodes(path)
        check_duration(info.title, duration, settings)
    except VidragError:
        _cleanup(dest_dir)
        raise
    if info.duration is None:
        info.duration = round(duration, 3)
    return path
