"""The schedules API: scheduled batch ingests of shared collections (owners and editors).

Routes (under ``<prefix>api``):

- ``GET|POST collections/{id}/schedules``: the collection's schedules; make one
  (sources, cron, time zone, captions). A bad cron expression or time zone is a 422.
- ``GET schedules``: every schedule of the collections the caller edits.
- ``GET|PATCH|DELETE schedules/{id}``: one schedule; pause, resume or change it; delete it.
- ``POST schedules/{id}/run``: run now (409 while a run is going, 503 without a scheduler).
- ``GET schedules/{id}/runs``, ``GET schedules/{id}/runs/{run}``: the history.
- ``GET schedules/{id}/runs/{run}/notebook?format=ipynb|html``: the executed notebook,
  the run's log (HTML through nbconvert when it is installed, else the notebook JSON).

The scheduler itself is ``app.state.scheduler`` (``vidrag_hub.scheduler.Scheduler``,
started beside uvicorn by ``python -m vidrag_hub``); without one schedules are still
kept and listed, and run-now answers 503.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import FileResponse, HTMLResponse
from pydantic import BaseModel, Field
from sqlalchemy import select

from vidrag_kernel.catalog import Collection
from vidrag_kernel.errors import NotFound

from .access import RoleAccess
from .deps import User
from .errors import Unavailable
from .models import utcnow
from .scheduler import Schedule, ScheduleRun, parse_trigger, run_view, runs_root, schedule_view

Captions = Literal["auto", "prefer", "only", "never"]


class ScheduleIn(BaseModel):
    sources: list[str] = Field(min_length=1, max_length=100)
    cron: str = Field(min_length=1, max_length=120)
    timezone: str = Field("UTC", min_length=1, max_length=64)
    captions: Captions = "auto"
    paused: bool = False


class SchedulePatch(BaseModel):
    sources: list[str] | None = Field(None, min_length=1, max_length=100)
    cron: str | None = Field(None, min_length=1, max_length=120)
    timezone: str | None = Field(None, min_length=1, max_length=64)
    captions: Captions | None = None
    paused: bool | None = None


def router(service) -> APIRouter:
    """The schedules routes of ``service`` (see the module docstring)."""
    from .app import collection_row, refuse_local

    api = service.settings.prefix + "api"
    routes = APIRouter(tags=["schedules"])

    def scheduler(request: Request):
        return getattr(request.app.state, "scheduler", None)

    def view(request: Request, row: Schedule) -> dict:
        running = scheduler(request)
        return schedule_view(row, running.next_run(row.id) if running is not None else None)

    def editable(s, user, schedule_id: str) -> Schedule:
        """The schedule if the caller edits its collection: NotFound if they cannot see it."""
        row = s.get(Schedule, schedule_id)
        if row is None:
            raise NotFound(f"No schedule {schedule_id!r}")
        try:
            collection_row(s, RoleAccess(user), row.collection_id, "edit")
        except NotFound:
            raise NotFound(f"No schedule {schedule_id!r}") from None
        return row

    def sync(request: Request, schedule_id: str) -> None:
        running = scheduler(request)
        if running is not None:
            running.sync(schedule_id)

    @routes.get(api + "/collections/{collection_id}/schedules")
    def list_collection_schedules(user: User, request: Request, collection_id: str) -> list[dict]:
        """The collection's schedules, with their next firing (editors and owner)."""
        with service.catalog.session() as s:
            collection_row(s, RoleAccess(user), collection_id, "edit")
            rows = s.scalars(
                select(Schedule).where(Schedule.collection_id == collection_id).order_by(Schedule.created_at)
            )
            return [view(request, r) for r in rows]

    @routes.post(api + "/collections/{collection_id}/schedules", status_code=201)
    def create_schedule(user: User, request: Request, collection_id: str, body: ScheduleIn) -> dict:
        """Ingest ``sources`` on a cron expression in a time zone, as the caller (editors and owner)."""
        parse_trigger(body.cron, body.timezone)
        sources = [refuse_local(src) for src in body.sources]
        with service.catalog.session() as s:
            collection_row(s, RoleAccess(user), collection_id, "edit")
            row = Schedule(
                collection_id=collection_id,
                owner=user.name,
                sources=sources,
                cron=" ".join(body.cron.split()),
                timezone=body.timezone.strip(),
                captions=body.captions,
                paused=body.paused,
            )
            s.add(row)
            s.flush()
            schedule_id = row.id
        sync(request, schedule_id)
        with service.catalog.session() as s:
            return view(request, s.get(Schedule, schedule_id))

    @routes.get(api + "/schedules")
    def list_schedules(user: User, request: Request) -> list[dict]:
        """Schedules of every collection the caller edits or owns."""
        access = RoleAccess(user)
        with service.catalog.session() as s:
            rows = s.execute(
                select(Schedule, Collection)
                .join(Collection, Collection.id == Schedule.collection_id)
                .where(access.visible())
                .order_by(Schedule.created_at)
            ).all()
            return [view(request, r) for r, c in rows if access.allows(s, c, "edit")]

    @routes.get(api + "/schedules/{schedule_id}")
    def get_one(user: User, request: Request, schedule_id: str) -> dict:
        with service.catalog.session() as s:
            return view(request, editable(s, user, schedule_id))

    @routes.patch(api + "/schedules/{schedule_id}")
    def patch_schedule(user: User, request: Request, schedule_id: str, body: SchedulePatch) -> dict:
        """Pause (``{"paused": true}``), resume, or change sources, cron, time zone, captions."""
        with service.catalog.session() as s:
            row = editable(s, user, schedule_id)
            cron = " ".join(body.cron.split()) if body.cron is not None else row.cron
            zone = body.timezone.strip() if body.timezone is not None else row.timezone
            parse_trigger(cron, zone)
            row.cron, row.timezone = cron, zone
            if body.sources is not None:
                row.sources = [refuse_local(src) for src in body.sources]
            if body.captions is not None:
                row.captions = body.captions
            if body.paused is not None:
                row.paused = body.paused
            row.updated_at = utcnow()
        sync(request, schedule_id)
        with service.catalog.session() as s:
            return view(request, s.get(Schedule, schedule_id))

    @routes.delete(api + "/schedules/{schedule_id}")
    def delete_schedule(user: User, request: Request, schedule_id: str) -> dict:
        """Delete a schedule; its history and logs go with it (a run in progress finishes)."""
        import shutil

        with service.catalog.session() as s:
            row = editable(s, user, schedule_id)
            for run in s.scalars(select(ScheduleRun).where(ScheduleRun.schedule_id == schedule_id)):
                s.delete(run)
            s.delete(row)
        sync(request, schedule_id)
        shutil.rmtree(runs_root(service) / schedule_id, ignore_errors=True)
        return {"deleted": schedule_id}

    @routes.post(api + "/schedules/{schedule_id}/run", status_code=202)
    def run_now(user: User, request: Request, schedule_id: str) -> dict:
        """Start a run now (409 while one is in progress)."""
        with service.catalog.session() as s:
            editable(s, user, schedule_id)
        running = scheduler(request)
        if running is None or not running.running:
            raise Unavailable("Schedules do not run in this service process (no scheduler is running)")
        run_id = running.run_now(schedule_id)
        with service.catalog.session() as s:
            return run_view(s.get(ScheduleRun, run_id))

    @routes.get(api + "/schedules/{schedule_id}/runs")
    def list_runs(
        user: User, schedule_id: str, limit: Annotated[int, Query(ge=1, le=500)] = 50
    ) -> list[dict]:
        """The schedule's runs, newest first: start, end, added, skipped, failed, where it stopped."""
        with service.catalog.session() as s:
            editable(s, user, schedule_id)
            rows = s.scalars(
                select(ScheduleRun)
                .where(ScheduleRun.schedule_id == schedule_id)
                .order_by(ScheduleRun.started_at.desc())
                .limit(limit)
            )
            return [run_view(r) for r in rows]

    def run_row(s, user, schedule_id: str, run_id: str) -> ScheduleRun:
        editable(s, user, schedule_id)
        run = s.get(ScheduleRun, run_id)
        if run is None or run.schedule_id != schedule_id:
            raise NotFound(f"No run {run_id!r} of this schedule")
        return run

    @routes.get(api + "/schedules/{schedule_id}/runs/{run_id}")
    def get_run(user: User, schedule_id: str, run_id: str) -> dict:
        with service.catalog.session() as s:
            return run_view(run_row(s, user, schedule_id, run_id))

    @routes.get(
        api + "/schedules/{schedule_id}/runs/{run_id}/notebook",
        responses={
            200: {
                "content": {
                    "application/x-ipynb+json": {"schema": {"type": "object"}},
                    "text/html": {"schema": {"type": "string"}},
                }
            }
        },
    )
    def run_notebook(user: User, schedule_id: str, run_id: str, format: Literal["ipynb", "html"] = "ipynb"):
        """The run's executed notebook: ``ipynb`` (a download) or ``html`` (nbconvert, else the JSON)."""
        with service.catalog.session() as s:
            run = run_row(s, user, schedule_id, run_id)
            # the stored path is rebuilt from ids, so nothing a user typed reaches the file system
            if run.notebook is None:
                raise NotFound("This run has no executed notebook (it had not started one)")
        path = runs_root(service) / schedule_id / run_id / "notebook.ipynb"
        if not path.is_file():
            raise NotFound("This run's notebook is no longer on disk")
        if format == "html":
            html = notebook_html(path)
            if html is not None:
                return HTMLResponse(html)
        stamp = datetime.now().strftime("%Y%m%d")
        return FileResponse(
            path,
            media_type="application/x-ipynb+json",
            filename=f"run-{run_id[:8]}-{stamp}.ipynb",
        )

    return routes


def notebook_html(path) -> str | None:
    """The notebook as a standalone HTML page, or None when nbconvert is not installed."""
    try:
        import nbformat
        from nbconvert import HTMLExporter
    except ImportError:
        return None
    html, _resources = HTMLExporter().from_notebook_node(nbformat.read(str(path), as_version=4))
    return html
