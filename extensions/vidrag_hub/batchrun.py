"""One scheduled run: ``01_batch_ingest.ipynb`` executed with papermill, as the schedule's owner.

papermill runs in a child process (``python -m papermill``) so that the service can stop
a run (at shutdown or after ``run_timeout``) and so the kernel gets an environment of
its own: the hub variables a user's server would have (``JUPYTERHUB_API_URL``, a run
token as ``JUPYTERHUB_API_TOKEN``, ``VIDRAG_SERVICE_URL`` = this service), so that
``Workbench()`` in the notebook reaches this service as the owner and ingests through
its API, and nothing of the service's own secrets. The parameters are a JSON file
(papermill reads it as YAML, of which JSON is a part): typed values, never code.

Files live in ``<shared root>/schedules/<schedule id>/<run id>/`` (ids only): the
parameters, the summary JSON the notebook writes, papermill's log and the executed
notebook, the run's log.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

from .models import utcnow
from .scheduler import HEARTBEAT_SECONDS, Schedule, ScheduleRun, runs_root

log = logging.getLogger("vidrag_hub.schedules")

NOTEBOOK = "01_batch_ingest.ipynb"
#: where a checkout keeps it (an editable install runs it from there)
REPO_NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / NOTEBOOK

# variables a run's kernel never inherits from the service: its hub token, Stripe keys,
# the run-token secret and the service's own data settings
_SECRET_WORDS = ("TOKEN", "SECRET", "KEY", "PASSWORD")
_SERVICE_ONLY = {"VIDRAG_HOME", "VIDRAG_DATABASE_URL", "VIDRAG_USER", "VIDRAG_BATCH_NOTEBOOK"}


def default_notebook() -> Path:
    """The batch-ingest notebook: ``VIDRAG_BATCH_NOTEBOOK``, else the copy the wheel ships
    in this package (``vidrag_hub/notebooks/``), else the checkout's ``notebooks/``."""
    chosen = os.environ.get("VIDRAG_BATCH_NOTEBOOK", "").strip()
    if chosen:
        return Path(chosen)
    from importlib.resources import as_file, files

    # an installed wheel has no notebooks/ folder: pyproject's force-include puts the
    # notebook into the package. as_file gives a real path (papermill reads a file), and
    # for a package on disk, as a wheel installs it, that is the file itself
    shipped = files(__package__).joinpath("notebooks", NOTEBOOK)
    if shipped.is_file():
        with as_file(shipped) as path:
            return Path(path)
    return REPO_NOTEBOOK


def run_environment(service, token: str, user: str, home: Path, service_url: str) -> dict[str, str]:
    """The environment of a run's papermill and kernel (see the module docstring)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("JUPYTERHUB_", "VIDRAG_SHARED_", "VIDRAG_SERVICE_", "STRIPE_"))
        and k not in _SERVICE_ONLY
        and not any(word in k.upper() for word in _SECRET_WORDS)
    }
    settings = service.settings
    kernel = service.kernel_settings
    # the notebook plans sources (titles, playlist entries) before the service fetches
    # them: with the service's fetch policy, so that both agree on what may be fetched
    env["VIDRAG_FETCH_ALLOW_HOSTS"] = ",".join(kernel.fetch_allow_hosts)
    env["VIDRAG_PLAYLIST_LIMIT"] = str(kernel.playlist_limit)
    env.update(
        JUPYTERHUB_API_URL=settings.hub_api_url,
        JUPYTERHUB_API_TOKEN=token,
        JUPYTERHUB_USER=user,
        VIDRAG_SERVICE_URL=service_url,
        VIDRAG_SERVICE_NAME=settings.service_name,
        # the kernel's personal library lands in the run's scratch folder, never the shared root
        VIDRAG_HOME=str(home),
        PYTHONUNBUFFERED="1",
    )
    return env


def where_it_stopped(notebook: Path) -> str | None:
    """``cell N (first line): Error: message`` for the first cell of ``notebook`` that raised."""
    try:
        nb = json.loads(notebook.read_text())
    except (OSError, ValueError):
        return None
    for index, cell in enumerate(nb.get("cells", []), start=1):
        for output in cell.get("outputs", []) or []:
            if output.get("output_type") == "error":
                source = cell.get("source", "")
                source = "".join(source) if isinstance(source, list) else source
                first = next((line for line in source.splitlines() if line.strip()), "")[:80]
                return f"cell {index} ({first}): {output.get('ename')}: {str(output.get('evalue'))[:500]}"
    return None


class BatchRunner:
    """Executes runs of schedules with papermill; ``stop_all()`` ends those in progress."""

    def __init__(
        self,
        service,
        *,
        notebook: Path | None = None,
        service_url: str | None = None,
        run_timeout: float = 6 * 3600,
        cell_timeout: float = 3600,
    ) -> None:
        self.service = service
        self.notebook = notebook
        #: where the run's kernel reaches this service (its own listen address by default)
        self.service_url = service_url or service.settings.service_url
        self.run_timeout = run_timeout
        self.cell_timeout = cell_timeout
        self._procs: dict[str, subprocess.Popen] = {}
        self._stopping = threading.Event()
        self._lock = threading.Lock()

    def stop_all(self) -> None:
        self._stopping.set()
        with self._lock:
            procs = list(self._procs.values())
        for proc in procs:
            proc.terminate()

    def execute(self, schedule_id: str, run_id: str) -> None:
        """Run the notebook for ``run_id`` (already recorded as running) and record the outcome."""
        catalog = self.service.catalog
        with catalog.session() as s:
            schedule = s.get(Schedule, schedule_id)
            owner, collection = schedule.owner, schedule.collection_id
            params = {
                "collection": collection,
                "sources": list(schedule.sources or []),
                "library": "shared",
                "captions": schedule.captions,
            }
        folder = runs_root(self.service) / schedule_id / run_id
        (folder / "home").mkdir(parents=True, exist_ok=True)
        summary_path = folder / "summary.json"
        output = folder / "notebook.ipynb"
        params["summary_path"] = str(summary_path)
        (folder / "parameters.json").write_text(json.dumps(params, indent=1))
        token = self.service.identity.run_tokens.mint(
            owner, collection, ttl=self.run_timeout + 600, run=run_id
        )
        env = run_environment(self.service, token, owner, folder / "home", self.service_url)
        notebook = self.notebook or default_notebook()
        command = [
            sys.executable,
            "-m",
            "papermill",
            str(notebook),
            str(output),
            "-f",
            str(folder / "parameters.json"),
            "--cwd",
            str(folder),
            "--no-progress-bar",
            "--execution-timeout",
            str(int(self.cell_timeout)),
        ]
        if self._stopping.is_set():  # the service is shutting down: do not start a notebook
            self._record(run_id, -1, folder, False)
            return
        log.info("schedule %s run %s: executing %s", schedule_id, run_id, notebook.name)
        timed_out = False
        with (folder / "papermill.log").open("wb") as out:
            proc = subprocess.Popen(command, env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT)
            with self._lock:
                self._procs[run_id] = proc
            try:
                deadline = time.monotonic() + self.run_timeout
                while True:
                    try:
                        proc.wait(timeout=HEARTBEAT_SECONDS)
                        break
                    except subprocess.TimeoutExpired:
                        self._beat(run_id)
                        if time.monotonic() > deadline:
                            timed_out = True
                            proc.terminate()
                            proc.wait(30)
                            break
            finally:
                with self._lock:
                    self._procs.pop(run_id, None)
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
        self._record(run_id, proc.returncode, folder, timed_out)

    def _beat(self, run_id: str) -> None:
        with self.service.catalog.session() as s:
            run = s.get(ScheduleRun, run_id)
            if run is not None:
                run.heartbeat_at = utcnow()

    def _record(self, run_id: str, returncode: int, folder: Path, timed_out: bool) -> None:
        summary = None
        summary_path = folder / "summary.json"
        if summary_path.exists():
            try:
                summary = json.loads(summary_path.read_text())
            except ValueError:
                summary = None
        output = folder / "notebook.ipynb"
        with self.service.catalog.session() as s:
            run = s.get(ScheduleRun, run_id)
            run.finished_at = utcnow()
            run.notebook = f"{run.schedule_id}/{run_id}/notebook.ipynb" if output.exists() else None
            if summary:
                run.summary = summary
                run.added = len(summary.get("added") or [])
                run.skipped = len(summary.get("skipped") or [])
                run.failed = len(summary.get("failed") or [])
            if timed_out:
                run.state = "failed"
                run.error = f"The run took longer than {self.run_timeout:g} s and was stopped"
            elif self._stopping.is_set() and returncode != 0:
                run.state = "failed"
                run.error = (
                    "The service stopped during this run; the next run picks up what it did not ingest"
                )
            elif returncode != 0:
                run.state = "failed"
                run.error = where_it_stopped(output) or _tail(folder / "papermill.log")
            elif summary is None:
                run.state = "failed"
                run.error = "The notebook finished without writing its summary"
            elif summary.get("stopped"):
                run.state = "stopped"
                run.error = str(summary["stopped"])
            else:
                run.state = "done"
            log.info(
                "schedule run %s: %s (%d added, %d skipped, %d failed)",
                run_id,
                run.state,
                run.added,
                run.skipped,
                run.failed,
            )


def _tail(path: Path, lines: int = 5) -> str:
    try:
        text = path.read_text(errors="replace").strip().splitlines()
    except OSError:
        return "The notebook could not be run"
    return "\n".join(text[-lines:]) or "The notebook could not be run"
