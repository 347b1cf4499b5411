"""Dask pieces for running ingest stages on workers: the models plugin, the task, the cluster.

Imported only when a batch fans out (``vidrag_kernel.batch`` with a ``dask_address``)
and by the service's ingest runner (``vidrag_hub.work``, which uses the same plugin,
outcome and clusters), so ``import vidrag_kernel`` never needs distributed (it comes
with ``vidrag[hub]``).

    Cluster("local:2")    ──► a LocalCluster of 2 processes, one thread each
    Cluster("tcp://…")    ──► an existing scheduler
    Cluster("gateway:N")  ──► a new dask-gateway cluster of N workers (dask config)

Workers get everything a task needs as arguments and never open the catalog; they send
their stage changes back as Dask events on ``TOPIC``.
"""

from __future__ import annotations

import asyncio
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import dask
from distributed import Client, WorkerPlugin, get_worker

from .errors import InvalidInput, MissingDependency, VidragError
from .settings import Settings

if TYPE_CHECKING:
    from .records import MediaInfo
    from .stages import Prepared

log = logging.getLogger("vidrag.fanout")

#: the Dask event topic batch tasks report their stages on
TOPIC = "vidrag-batch"
#: worker deaths a task survives before it is reported failed: a lecture that kills its
#: worker again and again (out of memory, a decoder crash) must not take every worker down
ALLOWED_FAILURES = 2


class WarmModels(WorkerPlugin):
    """Loads the transcriber and embedder once per worker process when it starts (both
    cache their models per process, so every later task on that worker reuses them)."""

    name = "vidrag-batch-warm-models"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def _warm(self) -> None:
        from .embed import get_embedder
        from .transcribe import get_transcriber

        get_transcriber(self.settings)
        get_embedder(self.settings)

    async def setup(self, worker) -> None:
        # in a thread: loading takes seconds and the worker must keep answering heartbeats
        try:
            await asyncio.to_thread(self._warm)
        except VidragError as exc:  # a missing model fails the first task, with its message
            log.warning("could not warm the models on %s: %s", worker.address, exc)


@dataclass
class TaskOutcome:
    """What a worker hands back, for a batch and for the service's ingest jobs alike: the
    prepared video, or the stage that failed, the kernel's message and its error kind."""

    prepared: Prepared | None = None
    stage: str | None = None
    error: str | None = None
    #: the ``VidragError.kind`` of the failure ("error" for an engine's own exception)
    error_kind: str | None = None
    worker: str | None = None
    pid: int | None = None


def attempt(prepare: Callable[[], Prepared], stage: Callable[[], str | None]) -> TaskOutcome:
    """On a worker: run ``prepare()`` and wrap what comes of it in a ``TaskOutcome``.

    A failure comes back as an outcome (the stage ``stage()`` names at that moment, the
    kernel's user-facing message), not as an exception, so Dask retries only what it
    should: a worker that died.
    """
    worker = get_worker().address
    try:
        return TaskOutcome(prepared=prepare(), worker=worker, pid=os.getpid())
    except VidragError as exc:
        return TaskOutcome(stage=stage(), error=exc.message, error_kind=exc.kind, worker=worker)
    except Exception as exc:  # an engine's own error: keep its type for whoever debugs it
        return TaskOutcome(
            stage=stage(), error=f"{type(exc).__name__}: {exc}", error_kind="error", worker=worker
        )


def prepare_task(
    key: str,
    info: MediaInfo,
    media_dir: str,
    settings: Settings,
    captions: str,
    glossary: list[str] | None = None,
) -> TaskOutcome:
    """On a worker: ``stages.prepare`` for one video of a batch, its stage changes sent
    back as events on ``TOPIC``."""
    from . import stages

    worker = get_worker()
    current = {"stage": "fetching"}

    def on_stage(state: str) -> None:
        current["stage"] = state
        worker.log_event(TOPIC, {"key": key, "stage": state, "worker": worker.address, "pid": os.getpid()})

    return attempt(
        lambda: stages.prepare(
            info, Path(media_dir), settings, captions, on_stage=on_stage, glossary=glossary
        ),
        lambda: current["stage"],
    )


def worker_settings(settings: Settings, n_workers: int) -> Settings:
    """The settings tasks run with: an explicit whisper ``cpu_threads`` (the nanny sets
    ``OMP_NUM_THREADS=1`` and faster-whisper's default differs by version), the cores
    shared out between the workers when the setting says "all" (0); no catalog URL,
    since workers never open it and it may carry a password."""
    threads = settings.whisper_threads or max(1, (os.cpu_count() or 1) // max(1, n_workers))
    return settings.with_(whisper_threads=threads, database_url=None)


def parse_address(address: str) -> tuple[str, Any]:
    """("local", n_workers) | ("scheduler", address) | ("gateway", n_workers) for an address
    setting, or ``InvalidInput`` naming the accepted forms."""
    address = (address or "").strip()
    if address.startswith("local:"):
        try:
            n = int(address.split(":", 1)[1])
        except ValueError:
            n = 0
        if n < 1:
            raise InvalidInput(f"dask_address {address!r}: 'local:N' needs a worker count of 1 or more")
        return "local", n
    if address.startswith(("tcp://", "tls://", "inproc://")):
        return "scheduler", address
    if address == "gateway" or address.startswith("gateway:"):
        try:
            n = int(address.split(":", 1)[1]) if ":" in address else 2
        except ValueError:
            n = 0
        if n < 1:
            raise InvalidInput(f"dask_address {address!r}: 'gateway:N' needs a worker count of 1 or more")
        return "gateway", n
    raise InvalidInput(
        f"dask_address {address!r} is not one of: '' (serial), 'local:N', 'tcp://host:port', 'gateway[:N]'"
    )


class Cluster:
    """A Dask client for a batch or the service's ingest runner, and the cluster it started
    (closed with it): see ``parse_address`` for the forms of ``address``.

    "gateway:N" asks the dask-gateway server that Dask's config names for a new cluster
    (``gateway.address``, ``gateway.auth.type``, ``gateway.cluster.options``: in a
    JupyterHub beside dask-gateway, ``DASK_GATEWAY__ADDRESS`` and
    ``DASK_GATEWAY__AUTH__TYPE=jupyterhub``), scales it to N workers and shuts it down on
    ``close()``. Its scheduler reads ``allowed-failures`` from the gateway's cluster
    environment (``hub_config/dask-gateway-values.yaml`` sets it).
    """

    def __init__(self, address: str) -> None:
        kind, value = parse_address(address)
        self.kind = kind
        self.cluster = None
        if kind == "local":
            from distributed import LocalCluster

            # the scheduler of a LocalCluster runs in this process and reads this at start
            with dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}):
                self.cluster = LocalCluster(
                    n_workers=value,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address="127.0.0.1:0",  # a free port: batches never clash
                )
            self.client = Client(self.cluster)
            self.n_workers = value
        elif kind == "scheduler":
            self.client = Client(value)
            self.n_workers = max(1, len(self.client.scheduler_info().get("workers", {})))
        else:
            self.cluster = _gateway_cluster(value)
            try:
                self.client = self.cluster.get_client(set_as_default=False)
            except Exception:
                self.cluster.shutdown()
                settle_gateway(self.cluster.gateway)
                raise
            self.n_workers = value

    def close(self) -> None:
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                if self.kind == "gateway":
                    self.cluster.shutdown()
                    settle_gateway(self.cluster.gateway)
                else:
                    try:
                        self.cluster.close()
                    except TimeoutError:
                        # a nanny waits 5 s for its worker to exit, then SIGKILLs it: on a
                        # loaded machine that wait runs out, and the close is still done
                        log.warning("a Dask worker took long to stop; its nanny killed it")


def settle_gateway(gateway) -> None:
    """Close a dask-gateway ``Gateway`` client for good.

    dask-gateway 2026.3's ``Gateway.__del__`` closes it again, and once its loop runner has
    stopped, distributed 2026 refuses (``RuntimeError`` from ``LoopRunner.loop``): an
    exception at garbage collection, which lands wherever the collector runs (inside
    another module's import, once). A closed client has nothing left to close, so its
    ``__del__`` is told to skip it (it checks for ``_loop_runner``).
    """
    try:
        gateway.close()
    except RuntimeError:  # closed already: its loop runner has stopped
        pass
    gateway.__dict__.pop("_loop_runner", None)


def _gateway_cluster(n_workers: int):
    """A new dask-gateway cluster scaled to ``n_workers``, or a ``VidragError`` that says
    what is missing (the package, the gateway's address, a gateway that answers)."""
    try:
        from dask_gateway import Gateway
    except ImportError:
        raise MissingDependency.for_extra("dask_address 'gateway'", "hub", "dask-gateway") from None
    try:
        gateway = Gateway()
    except ValueError:  # no gateway.address in Dask's config
        raise InvalidInput(
            "dask_address 'gateway' needs the dask-gateway server's address in Dask's config: "
            "set DASK_GATEWAY__ADDRESS (and DASK_GATEWAY__AUTH__TYPE=jupyterhub inside JupyterHub)"
        ) from None
    try:
        cluster = gateway.new_cluster(shutdown_on_close=True)
    except Exception as exc:  # refused (auth, limits) or unreachable: say which gateway
        raise ClusterUnavailable(
            f"The dask-gateway server at {gateway.address} did not start a cluster "
            f"({type(exc).__name__}: {str(exc)[:300]})"
        ) from None
    finally:
        settle_gateway(gateway)  # the cluster keeps a client of its own
    try:
        cluster.scale(n_workers)
    except Exception:
        cluster.shutdown()
        raise
    return cluster


class ClusterUnavailable(VidragError):
    """The Dask cluster a setting names cannot be reached or refused the work."""

    status = 503
    kind = "cluster_unavailable"
