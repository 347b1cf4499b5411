"""Class insights of a shared collection, for its owners and editors.

``GET api/collections/{id}/insights``: questions over time, topics clustered from the
questions' embeddings, the moments cited most along each video's timeline, and the
questions that got no good answer, computed over every member's conversations on the
collection by ``vidrag_kernel.insights`` (one implementation with the notebooks' local
fallback). Aggregates only: no student is named, and a group of fewer than
``vidrag_kernel.insights.MIN_GROUP`` students is counted as hidden, never shown.
Viewers (students) are refused: the figures describe their classmates.
"""

from __future__ import annotations

from fastapi import APIRouter
from starlette.concurrency import run_in_threadpool

from vidrag_kernel.insights import collection_insights

from .deps import User


def router(service) -> APIRouter:
    """The insights route of ``service`` (a ``vidrag_hub.app.Service``)."""
    api = APIRouter(prefix=service.settings.prefix + "api", tags=["insights"])

    def _insights(user, collection_id: str) -> dict:
        from .app import collection_row

        lib = service.library(user)
        with service.catalog.session() as s:
            row = collection_row(s, lib.ctx.access, collection_id, "edit")
            data = collection_insights(s, row.id, service.kernel_settings, asker="owner")
            return {"collection": {"id": row.id, "name": row.name}, "local_fallback": False, **data}

    @api.get("/collections/{collection_id}/insights")
    async def insights(user: User, collection_id: str) -> dict:
        """Aggregate figures of the collection's questions (owners and editors only)."""
        # embedding the questions takes a moment: off the event loop
        return await run_in_threadpool(_insights, user, collection_id)

    return api
