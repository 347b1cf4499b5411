"""The service's Prometheus metrics (``/services/vidrag/metrics``).

- ``vidrag_http_requests_total{method,route,status}`` and
  ``vidrag_http_request_duration_seconds{method,route}``: labelled by the route's
  template (``.../collections/{collection_id}``), never the raw path, so ids and a
  fuzzer's garbage paths cannot grow the label set (unmatched paths are ``unmatched``);
- ``vidrag_ingest_jobs{state}``: the shared catalog's ingest jobs by state;
- ``vidrag_ingest_queue_depth``: jobs queued and not yet on a worker;
- ``vidrag_ingest_workers``: Dask workers the runner's scheduler knows (0 without one).

Each app has its own registry (state is passed in, never global), and only hub admins or
a token with JupyterHub's ``read:metrics`` scope (the hub's metrics scraper) may read it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import func, select

from vidrag_kernel.catalog import IngestJob
from vidrag_kernel.errors import Forbidden, InvalidInput
from vidrag_kernel.jobs import ACTIVE

from .auth import HubIdentity, HubUser, token_from_header
from .errors import Unauthenticated

log = logging.getLogger("vidrag_hub")

#: JupyterHub's own scope for reading metrics (its scraper's role holds it)
METRICS_SCOPE = "read:metrics"
STATES = (*ACTIVE, "done", "failed")


class JobGauges:
    """A collector asked at each scrape: jobs by state, queue depth, worker count."""

    def __init__(self, catalog: Callable[[], Any], runner: Callable[[], Any]) -> None:
        self._catalog = catalog
        self._runner = runner

    def collect(self):
        jobs = GaugeMetricFamily("vidrag_ingest_jobs", "Ingest jobs by state", labels=["state"])
        counts = dict.fromkeys(STATES, 0)
        with self._catalog().session() as s:
            for state, n in s.execute(select(IngestJob.state, func.count()).group_by(IngestJob.state)):
                counts[state] = n
        for state, n in counts.items():
            jobs.add_metric([state], n)
        yield jobs
        yield GaugeMetricFamily(
            "vidrag_ingest_queue_depth", "Ingest jobs queued, waiting for a worker", value=counts["queued"]
        )
        yield GaugeMetricFamily(
            "vidrag_ingest_workers", "Dask workers running ingest tasks", value=self._workers()
        )

    def _workers(self) -> int:
        runner = self._runner()
        if runner is None:
            return 0
        try:
            return len(runner.client.scheduler_info(n_workers=-1).get("workers", {}))
        except InvalidInput:  # not started yet, or closed
            return 0
        except Exception:  # a scrape must answer even when the scheduler does not
            log.warning("could not count the Dask workers", exc_info=True)
            return 0


class ServiceMetrics:
    """The registry of one app, and the ASGI middleware that counts its requests."""

    def __init__(self, catalog: Callable[[], Any], runner: Callable[[], Any]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "vidrag_http_requests",
            "HTTP requests by route template and status",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "vidrag_http_request_duration_seconds",
            "Time to the end of the response, by route template (a stream counts until it ends)",
            ["method", "route"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.registry.register(JobGauges(catalog, runner))

    def render(self) -> bytes:
        """The registry in Prometheus's text format."""
        return generate_latest(self.registry)

    def middleware(self, app):
        """Wrap ``app`` (ASGI): each HTTP request is counted once its response is sent."""

        async def counted(scope, receive, send):
            if scope["type"] != "http":
                return await app(scope, receive, send)
            start, status = time.perf_counter(), {"code": 500}

            async def watch(message):
                if message["type"] == "http.response.start":
                    status["code"] = message["status"]
                await send(message)

            try:
                await app(scope, receive, watch)
            finally:
                # the router writes the matched route into the scope it was given
                route = getattr(scope.get("route"), "path", None) or "unmatched"
                method = scope.get("method", "")
                self.requests.labels(method, route, str(status["code"])).inc()
                self.latency.labels(method, route).observe(time.perf_counter() - start)

        return counted


async def metrics_reader(identity: HubIdentity, authorization: str | None) -> None:
    """Pass a hub admin or a token with ``read:metrics`` (a user's or a service's, such as
    the hub's scraper); raise Unauthenticated or Forbidden otherwise."""
    from jupyterhub.services.auth import check_scopes

    token = token_from_header(authorization)
    if not token:
        raise Unauthenticated("Log in to JupyterHub: send your hub token as 'Authorization: token ...'")
    # the token's own scopes first: a scraper's service token is no user of the service
    model = await identity._model_for_token(token)
    if not model or not model.get("name"):
        raise Unauthenticated("JupyterHub does not know this token (expired or revoked?)")
    if check_scopes({METRICS_SCOPE}, frozenset(model.get("scopes") or ())):
        return
    user: HubUser = await identity.user(token)
    if not user.admin:
        raise Forbidden(f"Only hub admins and tokens with the {METRICS_SCOPE} scope may read the metrics")
