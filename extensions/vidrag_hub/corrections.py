"""Transcript corrections of a shared collection's videos.

``GET  api/collections/{id}/videos/{video_id}/corrections``: the corrected lines (viewers);
``POST api/collections/{id}/videos/{video_id}/corrections``: correct one line, by its
position or its start time (editors). The kernel (``wb.videos.correct``) stores the
correction, rebuilds the video's chunks and vectors in every collection holding it with
no new transcription, and keeps the correction over later transcripts. A correction
changes the video wherever it is, so the caller must be an editor of every collection
holding it, not only of this one.
"""

from __future__ import annotations

from fastapi import APIRouter
from pydantic import BaseModel, Field, model_validator
from starlette.concurrency import run_in_threadpool

from .deps import User


class CorrectionIn(BaseModel):
    """One corrected line: ``line`` (its position, from 0) or ``start`` (seconds)."""

    line: int | None = Field(default=None, ge=0)
    start: float | None = Field(default=None, ge=0)
    text: str = Field(min_length=1, max_length=2000)

    @model_validator(mode="after")
    def _one_way(self):
        if (self.line is None) == (self.start is None):
            raise ValueError("give the line's position (line) or its start time (start), not both")
        return self


def router(service) -> APIRouter:
    """The corrections routes of ``service`` (a ``vidrag_hub.app.Service``)."""
    api = APIRouter(prefix=service.settings.prefix + "api", tags=["videos"])

    def _check(user, collection_id: str, video_id: str, action: str):
        from vidrag_kernel.catalog import CollectionVideo
        from vidrag_kernel.errors import NotFound

        from .app import collection_row

        lib = service.library(user)
        with service.catalog.session() as s:
            collection_row(s, lib.ctx.access, collection_id, action)
            if s.get(CollectionVideo, (collection_id, video_id)) is None:
                raise NotFound(f"No video {video_id!r} in this collection")
        return lib

    @api.get("/collections/{collection_id}/videos/{video_id}/corrections")
    def list_corrections(user: User, collection_id: str, video_id: str) -> list[dict]:
        """The video's corrected lines, earliest first (anyone who may read the collection)."""
        lib = _check(user, collection_id, video_id, "read")
        return [c.to_dict() for c in lib.videos.corrections(video_id)]

    @api.post("/collections/{collection_id}/videos/{video_id}/corrections")
    async def correct(user: User, collection_id: str, video_id: str, body: CorrectionIn) -> dict:
        """Correct one line; the video's passages are rebuilt and searchable at once."""

        def work() -> dict:
            lib = _check(user, collection_id, video_id, "edit")
            line = body.line if body.line is not None else float(body.start)
            return lib.videos.correct(video_id, line, body.text).to_dict()

        # chunking and embedding the video again takes a moment: off the event loop
        return await run_in_threadpool(work)

    return api
