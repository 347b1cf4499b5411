"""Scheduled batch ingests of shared collections, from a kernel: ``wb.service.schedules``.

The vidrag service keeps and runs the schedules (so they run while your server is
culled); this is its client. A schedule ingests its sources (playlists, channels,
feeds, video URLs) into a shared collection on a cron expression in a time zone, and
each run's executed notebook is its log::

    s = wb.service.schedules.create("CS101", ["https://example.edu/feed.xml"], "0 3 * * *",
                                    timezone="Europe/Berlin")
    wb.service.schedules.run_now(s.id)
    for run in wb.service.schedules.runs(s.id):
        print(run.state, run.added, run.skipped, run.failed, run.error)

Owners and editors of the collection manage its schedules; the service says no to others.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any


@dataclass
class ScheduleInfo:
    """A schedule as the service describes it (``next_run_at`` is ISO, in its time zone)."""

    id: str
    collection_id: str
    owner: str
    sources: list[str]
    cron: str
    timezone: str
    captions: str = "auto"
    paused: bool = False
    running_run_id: str | None = None
    next_run_at: str | None = None
    created_at: str | None = None

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclass
class RunInfo:
    """One run: when, what it added, skipped and failed, and where it stopped (``error``)."""

    id: str
    schedule_id: str
    trigger: str
    state: str
    started_at: str
    finished_at: str | None = None
    added: int = 0
    skipped: int = 0
    failed: int = 0
    summary: dict | None = field(default=None, repr=False)
    error: str | None = None
    has_notebook: bool = False

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def _build(cls, data: dict):
    known = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: v for k, v in data.items() if k in known})


class Schedules:
    """The service's schedules API (``client`` a ``vidrag_kernel.shared.ServiceClient``)."""

    def __init__(self, client: Any, collections: Any) -> None:
        self._c = client
        self._collections = collections

    def list(self, collection: str | None = None) -> list[ScheduleInfo]:
        """Schedules of one shared collection, or of every collection you edit."""
        if collection is None:
            rows = self._c.call("GET", "schedules")
        else:
            rows = self._c.call("GET", f"collections/{self._collections.id_of(collection)}/schedules")
        return [_build(ScheduleInfo, r) for r in rows]

    def get(self, schedule_id: str) -> ScheduleInfo:
        return _build(ScheduleInfo, self._c.call("GET", f"schedules/{schedule_id}"))

    def create(
        self,
        collection: str,
        sources: str | list[str],
        cron: str,
        *,
        timezone: str = "UTC",
        captions: str = "auto",
        paused: bool = False,
    ) -> ScheduleInfo:
        """Ingest ``sources`` into ``collection`` on ``cron`` (5 fields, or 6 with seconds first)."""
        body = {
            "sources": [sources] if isinstance(sources, str) else list(sources),
            "cron": cron,
            "timezone": timezone,
            "captions": captions,
            "paused": paused,
        }
        cid = self._collections.id_of(collection)
        return _build(ScheduleInfo, self._c.call("POST", f"collections/{cid}/schedules", json=body))

    def update(self, schedule_id: str, **changes) -> ScheduleInfo:
        """Change ``sources``, ``cron``, ``timezone``, ``captions`` or ``paused``."""
        body = {k: v for k, v in changes.items() if v is not None}
        return _build(ScheduleInfo, self._c.call("PATCH", f"schedules/{schedule_id}", json=body))

    def pause(self, schedule_id: str) -> ScheduleInfo:
        return self.update(schedule_id, paused=True)

    def resume(self, schedule_id: str) -> ScheduleInfo:
        return self.update(schedule_id, paused=False)

    def delete(self, schedule_id: str) -> None:
        self._c.call("DELETE", f"schedules/{schedule_id}")

    def run_now(self, schedule_id: str) -> RunInfo:
        """Start a run now (a ``Conflict`` while one is in progress)."""
        return _build(RunInfo, self._c.call("POST", f"schedules/{schedule_id}/run"))

    def runs(self, schedule_id: str, limit: int = 50) -> list[RunInfo]:
        """The history, newest first."""
        rows = self._c.call("GET", f"schedules/{schedule_id}/runs", params={"limit": limit})
        return [_build(RunInfo, r) for r in rows]

    def run(self, schedule_id: str, run_id: str) -> RunInfo:
        return _build(RunInfo, self._c.call("GET", f"schedules/{schedule_id}/runs/{run_id}"))

    def notebook(self, schedule_id: str, run_id: str, fmt: str = "ipynb") -> str:
        """The run's executed notebook: its JSON (``ipynb``) or an HTML page (``html``)."""
        import json

        path = f"schedules/{schedule_id}/runs/{run_id}/notebook"
        if fmt == "ipynb":
            return json.dumps(self._c.call("GET", path, params={"format": "ipynb"}), indent=1)
        return _text(self._c, path, params={"format": fmt})


def _text(client: Any, path: str, **kwargs) -> str:
    """A GET whose answer is not JSON (the notebook as HTML), refused as ``client.call`` is."""
    import httpx

    from .errors import FetchFailed, VidragError
    from .shared import _ERRORS

    try:
        r = client._http.request("GET", client._base + path, headers=client._headers, **kwargs)
    except httpx.HTTPError as exc:
        raise FetchFailed(f"The vidrag service could not be reached ({type(exc).__name__})") from exc
    if r.status_code >= 400:
        try:
            message = str(r.json().get("message"))
        except ValueError:
            message = r.text[:300] or r.reason_phrase
        raise _ERRORS.get(r.status_code, VidragError)(f"vidrag service: {message}", status=r.status_code)
    return r.text
