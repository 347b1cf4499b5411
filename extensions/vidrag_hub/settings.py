"""The service's settings: one small dataclass read from the environment.

JupyterHub hands a managed service its address and credentials in ``JUPYTERHUB_*``
variables; vidrag adds where the shared data lives and who may create course
collections. Reading settings opens nothing: ``make_app`` does that when it starts.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from vidrag_kernel.settings import Settings

#: The user recorded as the kernel library's default user. Nothing is created in its
#: name: every request builds a library for the caller (see ``vidrag_hub.access``).
SERVICE_USER = "vidrag-service"


def _prefix(value: str) -> str:
    value = "/" + value.strip("/") + "/"
    return value.replace("//", "/")


@dataclass(frozen=True)
class ServiceSettings:
    """How the vidrag service runs. Each field names the variable it is read from."""

    #: VIDRAG_SHARED_ROOT: the shared data root (catalog, indexes, media of shared collections).
    shared_root: Path = field(default_factory=lambda: Path.home() / ".vidrag-shared")
    #: VIDRAG_SHARED_DATABASE_URL: the catalog and service database; default SQLite in the shared root.
    database_url: str = ""
    #: JUPYTERHUB_SERVICE_NAME: the service's name in the hub (for ``access:services!service=``).
    service_name: str = "vidrag"
    #: JUPYTERHUB_SERVICE_URL: where uvicorn listens (host and port are taken from it).
    service_url: str = "http://127.0.0.1:10101/"
    #: JUPYTERHUB_SERVICE_PREFIX: the URL prefix of every route, as the hub's proxy forwards it.
    prefix: str = "/services/vidrag/"
    #: JUPYTERHUB_API_URL: the hub's REST API.
    hub_api_url: str = "http://127.0.0.1:8081/hub/api"
    #: JUPYTERHUB_API_TOKEN: the service's own token (reads users and groups); never logged.
    hub_api_token: str = field(default="", repr=False)
    #: VIDRAG_CREATORS_GROUP: members of this JupyterHub group (and hub admins) may create
    #: shared collections.
    creators_group: str = "instructors"
    #: VIDRAG_TOKEN_CACHE_SECONDS: how long a verified token's identity is reused before the
    #: hub is asked again. Groups and the admin flag are read fresh on every request.
    token_cache_seconds: int = 30
    #: VIDRAG_INGEST_WORKERS: Dask worker processes for shared ingests (0 = no ingest).
    ingest_workers: int = 1
    #: VIDRAG_DASK_ADDRESS: a Dask scheduler to submit ingests to instead of a local cluster.
    dask_address: str = ""
    #: VIDRAG_PLANS: the plans as JSON, ``{"default_plan": "free", "plans": {name: limits},
    #: "enterprise": {group: limits}, "upgrade_url": ""}`` (limits in videos, minutes,
    #: messages, storage_gb); jupyterhub_config.py writes it from ``c.VidragPlans``.
    #: Empty: Free and Pro as ``vidrag_hub.plans.DEFAULT_PLANS``, everyone on Free.
    plans: dict = field(default_factory=dict)
    #: the kernel settings of the service's library (``VIDRAG_*`` kernel variables; the data
    #: root and database are the shared ones above)
    kernel: Settings | None = None

    @property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.shared_root / 'catalog.sqlite'}"

    @property
    def host(self) -> str:
        return urlsplit(self.service_url).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.service_url).port or 10101

    def kernel_settings(self) -> Settings:
        """The kernel settings for the service's libraries: shared root and database."""
        base = self.kernel or Settings()
        # requests run side by side on the thread pool: one torch thread each, unless set
        threads = base.embed_threads if base.embed_threads > 0 else 1
        return base.with_(
            home=self.shared_root,
            database_url=self.resolved_database_url,
            user=SERVICE_USER,
            embed_threads=threads,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides) -> ServiceSettings:
        """Read the service's variables (and the kernel's ``VIDRAG_*`` ones)."""
        env = os.environ if environ is None else environ
        values: dict = {}
        if env.get("VIDRAG_SHARED_ROOT", "").strip():
            values["shared_root"] = Path(env["VIDRAG_SHARED_ROOT"].strip()).expanduser().resolve()
        if env.get("VIDRAG_SHARED_DATABASE_URL", "").strip():
            values["database_url"] = env["VIDRAG_SHARED_DATABASE_URL"].strip()
        plain = {
            "service_name": "JUPYTERHUB_SERVICE_NAME",
            "service_url": "JUPYTERHUB_SERVICE_URL",
            "hub_api_url": "JUPYTERHUB_API_URL",
            "hub_api_token": "JUPYTERHUB_API_TOKEN",
            "creators_group": "VIDRAG_CREATORS_GROUP",
        }
        for name, variable in plain.items():
            if env.get(variable, "").strip():
                values[name] = env[variable].strip()
        if env.get("JUPYTERHUB_SERVICE_PREFIX", "").strip():
            values["prefix"] = env["JUPYTERHUB_SERVICE_PREFIX"].strip()
        elif "service_name" in values:
            values["prefix"] = f"/services/{values['service_name']}/"
        if env.get("VIDRAG_TOKEN_CACHE_SECONDS", "").strip():
            raw = env["VIDRAG_TOKEN_CACHE_SECONDS"].strip()
            try:
                values["token_cache_seconds"] = max(0, int(raw))
            except ValueError:
                raise ValueError(f"VIDRAG_TOKEN_CACHE_SECONDS={raw!r} is not a number of seconds") from None
        if env.get("VIDRAG_INGEST_WORKERS", "").strip():
            raw = env["VIDRAG_INGEST_WORKERS"].strip()
            try:
                values["ingest_workers"] = max(0, int(raw))
            except ValueError:
                raise ValueError(f"VIDRAG_INGEST_WORKERS={raw!r} is not a number of workers") from None
        if env.get("VIDRAG_DASK_ADDRESS", "").strip():
            values["dask_address"] = env["VIDRAG_DASK_ADDRESS"].strip()
        if env.get("VIDRAG_PLANS", "").strip():
            try:
                values["plans"] = json.loads(env["VIDRAG_PLANS"])
            except ValueError as exc:
                raise ValueError(f"VIDRAG_PLANS is not JSON: {exc}") from None
            if not isinstance(values["plans"], dict):
                raise ValueError("VIDRAG_PLANS must be a JSON object")
        values["kernel"] = Settings.from_env(dict(env))
        values.update(overrides)
        if "prefix" in values:
            values["prefix"] = _prefix(values["prefix"])
        values["hub_api_url"] = values.get("hub_api_url", cls.hub_api_url).rstrip("/")
        return cls(**values)
