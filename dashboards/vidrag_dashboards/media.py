"""Where the browser can play a video from, and the route that serves local media.

A video's playable source is, in order:

1. YouTube (``youtube:<id>`` source key): an embedded player, seeked with ``start=``.
2. The direct media URL ingest found (``VideoInfo.media_url``: the ``<video>`` of a web
   page, a file host), or a remote URL of a media file (``.mp4``, ``.m4a`` ...): played
   directly.
3. A video of a shared collection: the service's media route
   (``.../api/collections/<id>/videos/<id>/media``, HTTP Range), a path on the hub's origin
   that the browser fetches with its session on the service (logging in through the hub
   first if need be).
4. A local file: the uploaded or notebook-ingested file itself, or the audio that
   ingest downloaded into ``media/<video id>/``. Under ``panel serve`` with
   ``--plugins vidrag_dashboards.media`` it is served by :class:`MediaHandler` at
   ``/vidrag-media/<video id>`` (HTTP Range, so seeking works on long lectures). Elsewhere
   (Voila, a notebook) small files are inlined as a ``data:`` URL.
5. Otherwise (a site that only streams, with nothing downloaded): no player, a link that
   opens the page at the second.

Only files the catalog knows for a video are ever served: the route takes a video id,
never a path.
"""

from __future__ import annotations

import base64
import mimetypes
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from vidrag_kernel import youtube_id

MEDIA_SUFFIXES = (
    ".mp4",
    ".m4v",
    ".webm",
    ".ogv",
    ".ogg",
    ".mov",
    ".m4a",
    ".mp3",
    ".oga",
    ".opus",
    ".wav",
    ".flac",
    ".aac",
)
#: Largest local file inlined as a data URL where no media route exists (Voila, notebooks).
INLINE_LIMIT = 64 * 1024 * 1024
ROUTE = "vidrag-media"

_route_registered = False


@dataclass(frozen=True)
class Playable:
    """How to play one video: ``kind`` is "video", "youtube" or "none"."""

    kind: str
    src: str = ""
    page: str = ""  # the page to open when there is no player
    note: str = ""


def local_media_file(wb, video) -> Path | None:
    """The local file a video can be played from, if any (the kernel knows where it is)."""
    path = wb.videos.media_path(video.id)
    return path if path is not None and path.suffix.lower() in MEDIA_SUFFIXES else None


def _is_media_url(url: str) -> bool:
    parts = urlsplit(url or "")
    return parts.scheme in ("http", "https") and Path(parts.path).suffix.lower() in MEDIA_SUFFIXES


def _data_url(path: Path) -> str:
    mime = mimetypes.guess_type(path.name)[0] or "video/mp4"
    return f"data:{mime};base64,{base64.b64encode(path.read_bytes()).decode()}"


def playable(wb, video, *, rel_path: str | None = None) -> Playable:
    """How the browser can play ``video`` (a VideoInfo) in the current context."""
    vid = youtube_id(video.source_key)
    if vid:
        return Playable("youtube", f"https://www.youtube-nocookie.com/embed/{vid}", video.page_url)
    if video.media_url:  # the direct media of a page with <video>, or of a file host
        return Playable("video", video.media_url, video.page_url)
    if _is_media_url(video.url):
        return Playable("video", video.url, video.page_url)
    if video.webpage_url and _is_media_url(video.webpage_url):
        return Playable("video", video.webpage_url, video.page_url)
    page = video.page_url if urlsplit(video.page_url or "").scheme in ("http", "https") else ""
    shared = wb.videos.media_url(video.id)
    if shared:  # a shared collection's video: the service streams what it keeps
        return Playable("video", shared, page)
    path = local_media_file(wb, video)
    if path is not None:
        if _route_registered:
            base = (rel_path or ".").rstrip("/")
            return Playable("video", f"{base}/{ROUTE}/{video.id}/{path.name}", page)
        if path.stat().st_size <= INLINE_LIMIT:
            return Playable("video", _data_url(path), page)
        return Playable(
            "none", "", page, "This file is too large to play inside a notebook; open the panel serve app."
        )
    return Playable("none", "", page, "This video plays on its own page.")


# -- the route ----------------------------------------------------------------------------
def _handler_class():
    from panel.io.server import AuthenticatedStaticFileHandler
    from tornado.web import HTTPError

    class MediaHandler(AuthenticatedStaticFileHandler):
        """``GET /vidrag-media/<video id>[/<name>]``: the video's local media file, with Range."""

        def initialize(self, **kwargs) -> None:
            super().initialize(path="/")

        def parse_url_path(self, url_path: str) -> str:
            from vidrag_kernel import VidragError

            from .state import shared_workbench

            video_id = url_path.split("/", 1)[0]
            wb = shared_workbench()
            try:
                video = wb.videos.get(video_id)
            except VidragError:
                raise HTTPError(404) from None
            path = local_media_file(wb, video)
            if path is None:
                raise HTTPError(404)
            return str(path.resolve())

    return MediaHandler


def routes() -> list[tuple]:
    """Tornado routes for ``pn.serve(extra_patterns=...)``; marks the route as available."""
    global _route_registered
    _route_registered = True
    return [(rf"/{ROUTE}/(.*)", _handler_class(), {})]


def __getattr__(name: str):
    # `panel serve --plugins vidrag_dashboards.media` reads ROUTES from this module; reading it is
    # also how the apps in the same process learn that local media can be served by URL.
    if name == "ROUTES":
        return routes()
    raise AttributeError(name)
