"""What a kernel learns from its JupyterHub: the hub API, the user's token, the vidrag service.

JupyterHub gives every single-user server (and so every kernel started by it) a few
``JUPYTERHUB_*`` variables; vidrag's hub configuration adds ``VIDRAG_SERVICE_URL`` and
``VIDRAG_SERVICE_NAME`` when the vidrag service is registered. ``detect()`` reads them
without importing jupyterhub, so the kernel library stays light and runs the same with
or without a hub.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class HubEnvironment:
    """The hub a kernel runs under, as its environment describes it."""

    #: JUPYTERHUB_API_URL: the hub's REST API, e.g. ``http://127.0.0.1:8081/hub/api``.
    api_url: str
    #: JUPYTERHUB_API_TOKEN: the server's token (scoped by the hub; never print it).
    api_token: str = ""
    #: JUPYTERHUB_USER: the user who owns this server.
    user: str = ""
    #: JUPYTERHUB_SERVICE_PREFIX: this server's URL prefix, e.g. ``/user/alice/``.
    service_prefix: str = ""
    #: JUPYTERHUB_BASE_URL: the hub's base URL, usually ``/``.
    base_url: str = "/"
    #: VIDRAG_SERVICE_URL: where the vidrag service answers; empty when none is registered.
    service_url: str = ""
    #: VIDRAG_SERVICE_NAME: the vidrag service's name in the hub (for ``access:services``).
    service_name: str = ""

    @property
    def has_service(self) -> bool:
        """True when the hub registered a vidrag service this server may call."""
        return bool(self.service_url)

    def auth_headers(self) -> dict[str, str]:
        """HTTP headers that authenticate as this server's token to the hub or the service."""
        return {"Authorization": f"token {self.api_token}"} if self.api_token else {}

    def describe(self) -> str:
        """One line for people: who, which hub, which service; the token is never shown."""
        service = (
            f"vidrag service {self.service_name or '?'} at {self.service_url}"
            if self.has_service
            else "no vidrag service"
        )
        token = "a token" if self.api_token else "no token"
        return f"JupyterHub user {self.user or '?'} at {self.api_url} ({token}); {service}"

    def __repr__(self) -> str:
        # the dataclass repr would print the token into notebook outputs
        return f"HubEnvironment({self.describe()})"


def detect(environ: Mapping[str, str] | None = None) -> HubEnvironment | None:
    """The hub this process runs under, or None outside JupyterHub (no ``JUPYTERHUB_API_URL``)."""
    env = os.environ if environ is None else environ
    api_url = env.get("JUPYTERHUB_API_URL", "").strip()
    if not api_url:
        return None
    return HubEnvironment(
        api_url=api_url.rstrip("/"),
        api_token=env.get("JUPYTERHUB_API_TOKEN", ""),
        user=env.get("JUPYTERHUB_USER", ""),
        service_prefix=env.get("JUPYTERHUB_SERVICE_PREFIX", ""),
        base_url=env.get("JUPYTERHUB_BASE_URL", "/") or "/",
        service_url=env.get("VIDRAG_SERVICE_URL", "").strip(),
        service_name=env.get("VIDRAG_SERVICE_NAME", "").strip(),
    )
