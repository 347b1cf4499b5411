"""Fan-out on dask-gateway, for real: a dask-gateway server on 127.0.0.1 (its
UnsafeLocalBackend starts schedulers and workers as local processes, its Go proxy routes
TLS to them, SimpleAuthenticator checks a password), reached by the real client through
Dask's config as a deployment configures it (``gateway.address``, ``gateway.auth``).

A batch with ``dask_address="gateway:2"`` gives the catalog and index a serial run gives;
the service's ingest runner with ``VIDRAG_DASK_ADDRESS=gateway`` runs its jobs there.
Each cluster is the run's own and is gone when the run ends.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hub_config.options import free_port  # one port picker: never the same port twice
from tests.support.lectures import TOPICS, contents, make_lectures, same
from tests.support.settings import make_settings

pytestmark = pytest.mark.slow

PASSWORD = "vidrag-gateway-test"
USER = "instructor"


class GatewayServer:
    """``dask-gateway-server`` in a child process, with a config file as an operator writes one."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.api_port, self.port = free_port(), free_port()
        self.address = f"http://127.0.0.1:{self.port}"
        bin_dir = Path(sys.executable).parent
        environment = {
            "HF_HUB_OFFLINE": "1",
            "TRANSFORMERS_OFFLINE": "1",
            "TOKENIZERS_PARALLELISM": "false",
            # the suite's speech model (tests/conftest.py), as the serial run in this process uses
            "VIDRAG_WHISPER_MODEL": os.environ.get("VIDRAG_WHISPER_MODEL", "tiny.en"),
            # what hub_config/dask-gateway-values.yaml gives its clusters' schedulers too
            "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "2",
        }
        (root / "clusters").mkdir()
        self.config = root / "dask_gateway_config.py"
        self.config.write_text(
            f"""
c.DaskGateway.address = "127.0.0.1:{self.api_port}"
c.Proxy.address = "127.0.0.1:{self.port}"
c.DaskGateway.backend_class = "dask_gateway_server.backends.local.UnsafeLocalBackend"
c.DaskGateway.authenticator_class = "dask_gateway_server.auth.SimpleAuthenticator"
c.SimpleAuthenticator.password = {PASSWORD!r}
c.LocalBackend.clusters_directory = {str(root / "clusters")!r}
# distributed 2026 has no dask-scheduler / dask-worker scripts any more: "dask scheduler"
c.ClusterConfig.scheduler_cmd = [{str(bin_dir / "dask")!r}, "scheduler"]
c.ClusterConfig.worker_cmd = [{str(bin_dir / "dask")!r}, "worker"]
c.ClusterConfig.worker_threads = 1
c.ClusterConfig.worker_memory = "4 G"
c.ClusterConfig.cluster_max_workers = 2
c.ClusterConfig.idle_timeout = 600
c.ClusterConfig.environment = {environment!r}
"""
        )
        self.log = root / "gateway.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> GatewayServer:
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [str(Path(sys.executable).parent / "dask-gateway-server"), "-f", str(self.config)],
                cwd=self.root,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 60
        while True:
            try:
                self.clusters()
                return self
            except Exception:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"dask-gateway-server did not start:\n{self.log.read_text()[-3000:]}"
                    ) from None
                time.sleep(0.5)

    def dask_config(self) -> dict:
        """The client side, as ``DASK_GATEWAY__*`` variables would set it."""
        return {
            "gateway.address": self.address,
            "gateway.auth.type": "basic",
            "gateway.auth.kwargs": {"username": USER, "password": PASSWORD},
        }

    def clusters(self) -> list:
        """The gateway's running or pending clusters."""
        from dask_gateway import BasicAuth, Gateway

        from vidrag_kernel.fanout import settle_gateway

        gateway = Gateway(self.address, auth=BasicAuth(USER, PASSWORD))
        try:
            return gateway.list_clusters()
        finally:
            settle_gateway(gateway)

    def wait_no_clusters(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.clusters():
            assert time.monotonic() < deadline, f"clusters left running: {self.clusters()}"
            time.sleep(0.5)

    def stop(self) -> list[int]:
        """Stop the server (it stops its clusters); the pids of processes it left behind."""
        import psutil

        if self.proc is None or self.proc.poll() is not None:
            return []
        children = psutil.Process(self.proc.pid).children(recursive=True)
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        left = [c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE]
        for child in left:  # ours: never leave a scheduler or worker running
            os.kill(child.pid, signal.SIGKILL)
        return [c.pid for c in left]


@pytest.fixture(scope="module")
def gateway(tmp_path_factory):
    import dask

    server = GatewayServer(tmp_path_factory.mktemp("gateway")).start()
    try:
        with dask.config.set(server.dask_config()):
            yield server
    finally:
        assert server.stop() == []


@pytest.fixture(scope="module")
def lectures(tmp_path_factory) -> Path:
    """Two generated lectures (m4a) in a folder."""
    return make_lectures(
        tmp_path_factory.mktemp("gateway-lectures"), tmp_path_factory.mktemp("gateway-speech"), TOPICS[:2]
    )


def test_a_batch_on_a_gateway_cluster_gives_what_a_serial_run_gives(gateway, tmp_path, lectures):
    from vidrag_kernel import Workbench
    from vidrag_kernel.batch import run_batch

    with Workbench(make_settings(tmp_path / "serial", whisper_threads=1), libraries=()) as serial:
        alone = run_batch(serial, "Batch", [str(lectures)])
        expected = contents(serial, "Batch")
    assert len(alone.added) == 2 and not alone.failed, alone.to_dict()
    with Workbench(make_settings(tmp_path / "gateway", whisper_threads=1), libraries=()) as wb:
        fanned = run_batch(wb, "Batch", [str(lectures)], dask_address="gateway:2")
        assert not fanned.failed and len(fanned.added) == 2, fanned.to_dict()
        assert fanned.stats["mode"] == "gateway" and fanned.stats["workers"] == 2
        # prepared by the gateway's workers: their scheduler speaks TLS through its proxy
        per_worker = fanned.stats["tasks_per_worker"]
        assert sum(per_worker.values()) == 2 and all(w.startswith("tls://") for w in per_worker), per_worker
        same(expected, contents(wb, "Batch"))
    gateway.wait_no_clusters()  # the batch's cluster went with it


def test_the_services_ingest_runner_runs_its_jobs_on_a_gateway_cluster(gateway, tmp_path, media_server):
    from vidrag_hub.settings import ServiceSettings
    from vidrag_hub.work import IngestWorkers, cluster_address

    from vidrag_kernel.catalog import Catalog
    from vidrag_kernel.library import LocalLibrary

    # the setting as the service reads it, and the cluster it asks for
    settings = ServiceSettings.from_env({"VIDRAG_DASK_ADDRESS": "gateway", "VIDRAG_INGEST_WORKERS": "1"})
    assert cluster_address(settings.dask_address, settings.ingest_workers) == "gateway:1"

    kernel = make_settings(tmp_path / "shared")
    catalog = Catalog(kernel.resolved_database_url)

    def library(user: str) -> LocalLibrary:
        return LocalLibrary(kernel.with_(user=user), catalog=catalog)

    try:
        collection = library(USER).collections.create("On the gateway").id
        runner = IngestWorkers(
            library,
            kernel,
            address=settings.dask_address,
            n_workers=settings.ingest_workers,
            whisper_threads=1,
        )
        with runner:
            assert len(gateway.clusters()) == 1
            [job_id] = runner.submit(
                [media_server.url("lecture.html")], collection, user=USER, captions="only"
            )
            deadline = time.monotonic() + 240
            while runner.status(job_id)["state"] not in ("done", "failed"):
                assert time.monotonic() < deadline, runner.status(job_id)
                time.sleep(0.2)
            status = runner.status(job_id)
        assert status["state"] == "done" and status["chunk_count"] > 0, status
        hit = library(USER).search("guillotine", collection, k=1)[0]
        assert hit.video_id == status["video_id"]
    finally:
        catalog.close()
    gateway.wait_no_clusters()  # closing the runner shut its cluster down


def test_the_values_snippet_configures_the_gateway_as_documented():
    """hub_config/dask-gateway-values.yaml's extraConfig runs as the chart runs it (Python
    with ``c`` in scope): the ``dask`` commands, a cap, and no idle timeout for the service."""
    import yaml
    from dask_gateway_server.options import Options
    from traitlets.config import Config

    values = yaml.safe_load(
        (Path(__file__).parents[1] / "hub_config" / "dask-gateway-values.yaml").read_text()
    )
    assert values["gateway"]["backend"]["environment"]["DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES"] == "2"
    c = Config()
    exec(values["gateway"]["extraConfig"]["vidrag-limits"], {"c": c})
    assert c.KubeClusterConfig.scheduler_cmd == ["dask", "scheduler"]
    assert c.KubeClusterConfig.worker_cmd == ["dask", "worker"]
    options = c.Backend.cluster_options
    assert isinstance(options, Options)

    def overrides(name: str) -> dict:
        return options.get_configuration(options.parse_options({}), type("User", (), {"name": name})())

    assert overrides("service:vidrag")["idle_timeout"] == 0
    assert overrides("ada") == {}
