"""FastAPI dependencies shared by every route module of the service.

Route modules (``app.py`` and the ones it includes, each an ``APIRouter`` built by a
``router(service)`` function) take the caller as ``user: User``: the request's hub token,
verified with the hub (``vidrag_hub.auth``), with the caller's groups read fresh.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from .auth import HubUser, token_from_header


async def caller(request: Request) -> HubUser:
    """The request's user, from its hub token (a FastAPI dependency of every API route)."""
    service = request.app.state.service
    user = await service.identity.user(token_from_header(request.headers.get("authorization")))
    if user.collection is not None and request.method != "GET":
        # a scheduled run's token changes its one collection only (ingest), never
        # invites, links, other collections or new ones; reads are filtered by RoleAccess
        from vidrag_kernel.errors import Forbidden

        if f"/collections/{user.collection}/" not in request.url.path:
            raise Forbidden("A scheduled run's token may change its own collection only")
    return user


User = Annotated[HubUser, Depends(caller)]
