"""``GET api/collections/{collection_id}/videos/{video_id}/media``: a shared video's media file.

The dashboards' player points its ``<video>`` here for videos of shared collections, so a
citation can seek it: the file is streamed with HTTP Range (206 and ``Content-Range``;
Starlette's ``FileResponse`` answers ranges itself), so the browser fetches only what it
plays. Viewers and up may read it; anyone who cannot see the collection gets 404.

The file is the one the catalog knows for the video (the uploaded original, or the audio
ingest downloaded into ``media/<video id>/``); the request names ids only, never a path.

A ``<video>`` cannot send a header, so besides the hub token (``Authorization``) this GET
accepts the browser's session cookie (``vidrag_hub.oauth``); it changes nothing, so it needs
no XSRF token, and the cookie is SameSite=Lax, so another site's page cannot play it with
the user's session. A browser that is not logged in yet is sent through the hub's login
and back; any other caller without credentials gets 401.
"""

from __future__ import annotations

import mimetypes
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, RedirectResponse
from sqlalchemy import select

from vidrag_kernel.catalog import Collection, CollectionVideo
from vidrag_kernel.errors import NotFound

from .auth import HubUser, token_from_header
from .errors import Unauthenticated
from .web import browser_login

#: what a <video> or <audio> element may be handed (the catalog also knows transcripts and captions)
MEDIA_TYPES = ("audio/", "video/")
EXTRA_TYPES = {".m4a": "audio/mp4", ".opus": "audio/ogg", ".oga": "audio/ogg", ".webm": "video/webm"}
#: fetch destinations of a browser that can follow a login redirect (media elements, pages)
BROWSER_DESTINATIONS = {"video", "audio", "document", "iframe"}


def media_type(path: Path) -> str | None:
    """The media type of a playable file, else None."""
    kind = EXTRA_TYPES.get(path.suffix.lower()) or mimetypes.guess_type(path.name)[0] or ""
    return kind if kind.startswith(MEDIA_TYPES) else None


def from_browser(request: Request) -> bool:
    """Whether the request is a browser's page or media load (which can follow a login)."""
    dest = request.headers.get("sec-fetch-dest")
    if dest is not None:
        return dest in BROWSER_DESTINATIONS
    return "text/html" in request.headers.get("accept", "")


def router(service) -> APIRouter:
    """The media route of ``service``."""
    from .app import collection_row

    r = APIRouter()
    api = service.settings.prefix + "api"
    login = browser_login(service)

    def stored_file(user: HubUser, collection_id: str, video_id: str) -> tuple[Path, str]:
        lib = service.library(user)
        with service.catalog.session() as s:
            collection_row(s, lib.ctx.access, collection_id, "read")
            if s.get(CollectionVideo, (collection_id, video_id)) is None:
                raise NotFound(f"No video {video_id!r} in this collection")
            name = s.scalar(select(Collection.name).where(Collection.id == collection_id))
        path = lib.videos.media_path(video_id)
        kind = media_type(path) if path is not None and path.is_file() else None
        if kind is None:
            raise NotFound(
                f"The service keeps no media file for this video of {name!r}; open it from its source"
            )
        return path, kind

    @r.get(
        api + "/collections/{collection_id}/videos/{video_id}/media",
        tags=["videos"],
        response_class=FileResponse,
        responses={
            200: {"description": "The whole file", "content": {"video/mp4": {}, "audio/mp4": {}}},
            206: {"description": "The byte range asked for (Range: bytes=...)"},
            302: {"description": "A browser that is not logged in: to the hub's login and back"},
            416: {"description": "A range outside the file"},
        },
    )
    async def video_media(request: Request, collection_id: str, video_id: str):
        """The video's stored media file, with HTTP Range (viewers and up)."""
        header = request.headers.get("authorization")
        if header:
            user = await service.identity.user(token_from_header(header))
        else:
            user = await login.user(request, service.identity)
            if user is None:
                if from_browser(request):
                    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
                    return RedirectResponse(login.login_url(here), status_code=302)
                raise Unauthenticated(
                    "Log in to JupyterHub: send your hub token as 'Authorization: token ...'"
                )
        path, kind = await run_in_threadpool(stored_file, user, collection_id, video_id)
        # private: a shared cache must not hand one member's media to a non-member
        return FileResponse(
            path, media_type=kind, headers={"Cache-Control": "private, max-age=3600"}, filename=None
        )

    return r
