"""Scheduled batch ingests: the tables, the cron check, and the scheduler of the service.

A schedule (collection, sources, cron expression, time zone) is a row of
``vidrag_schedules``; each run is a row of ``vidrag_schedule_runs`` with its executed
notebook on the data root (``vidrag_hub.batchrun`` runs it). The rows are the truth:
``Scheduler.start()`` rebuilds APScheduler's jobs from them, so schedules survive a
restart of the service and run while their owners' servers are culled.

Runs of one schedule never overlap. APScheduler's ``max_instances=1`` keeps one process
from starting a second, and a guard in the database keeps two service processes apart:
a run starts only by one conditional ``UPDATE vidrag_schedules SET running_run_id = ...
WHERE running_run_id IS NULL`` (or the holder's heartbeat stopped long ago, when the
process that held it died). The run clears it when it ends.

Missed firings: APScheduler keeps its jobs in memory here (the rows are the truth), so a
firing that fell while the service was down is not a misfire it knows of. ``start()``
compares each schedule's last run with its cron's fire times instead: a schedule that
should have fired since then, within ``VIDRAG_SCHEDULE_GRACE_HOURS``, runs once at once
(trigger "catch-up"), however many firings it missed.

The same scheduler keeps the service's other timer: the billing reconcile every
``VIDRAG_BILLING_RECONCILE_HOURS`` when billing is on (``vidrag_hub.billing``).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import JSON, Boolean, DateTime, Integer, String, Text, func, or_, select, update
from sqlalchemy.orm import Mapped, mapped_column

from vidrag_kernel.catalog.models import new_id
from vidrag_kernel.errors import Conflict, InvalidInput, NotFound

from .models import ServiceBase, utcnow

log = logging.getLogger("vidrag_hub.schedules")

#: how often a running run says it is alive (``heartbeat_at``)
HEARTBEAT_SECONDS = 30.0
#: a run whose heartbeat is older than this is taken to be dead (its process stopped),
#: so a restarted service frees its schedule within minutes
STALE_AFTER = timedelta(seconds=4 * HEARTBEAT_SECONDS)
#: VIDRAG_SCHEDULE_GRACE_HOURS: a firing missed while the service was down runs when it is
#: back if it fell within this many hours (older ones wait for the next firing); 0: never
GRACE_HOURS = 6.0
#: VIDRAG_BILLING_RECONCILE_HOURS: hours between billing reconciles (with billing on); 0: off
RECONCILE_HOURS = 6.0
#: the first reconcile after a start comes this soon (not a whole interval later), so a
#: service restarted more often than the interval still reconciles
FIRST_RECONCILE = timedelta(minutes=5)
RECONCILE_JOB = "vidrag-billing-reconcile"


def check_env(environ: Mapping[str, str] | None = None) -> None:
    """Refuse a bad ``VIDRAG_SCHEDULE_GRACE_HOURS`` or ``VIDRAG_BILLING_RECONCILE_HOURS`` now
    (``python -m vidrag_hub`` calls it before anything starts, so a typo is one line)."""
    hours_setting("VIDRAG_SCHEDULE_GRACE_HOURS", GRACE_HOURS, environ)
    hours_setting("VIDRAG_BILLING_RECONCILE_HOURS", RECONCILE_HOURS, environ)


def hours_setting(name: str, default: float, environ: Mapping[str, str] | None = None) -> timedelta:
    """The hours in variable ``name`` (``default`` when unset) as a timedelta; a value that
    is not a number of hours of 0 or more is an ``InvalidInput`` naming the variable."""
    raw = (os.environ if environ is None else environ).get(name, "").strip()
    if not raw:
        return timedelta(hours=default)
    try:
        hours = float(raw)
    except ValueError:
        hours = -1.0
    if not hours >= 0:  # also refuses nan
        raise InvalidInput(f"{name}={raw[:40]!r} is not a number of hours (0 or more)")
    return timedelta(hours=hours)


class InvalidSchedule(InvalidInput):
    """A cron expression or time zone that cannot be scheduled."""

    status = 422
    kind = "invalid_schedule"


class Schedule(ServiceBase):
    """A batch ingest that runs on a cron expression in a time zone, as its owner."""

    __tablename__ = "vidrag_schedules"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    collection_id: Mapped[str] = mapped_column(String(36), index=True)
    #: the user who made it; runs act as them (their role and quota apply)
    owner: Mapped[str] = mapped_column(String(255))
    sources: Mapped[list] = mapped_column(JSON)
    cron: Mapped[str] = mapped_column(String(120))
    timezone: Mapped[str] = mapped_column(String(64))
    captions: Mapped[str] = mapped_column(String(16), default="auto")
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    #: the run holding the no-overlap guard, if one is running
    running_run_id: Mapped[str | None] = mapped_column(String(36), nullable=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ScheduleRun(ServiceBase):
    """One run of a schedule: when, what it added, skipped and failed, where it stopped."""

    __tablename__ = "vidrag_schedule_runs"

    id: Mapped[str] = mapped_column(String(36), primary_key=True, default=new_id)
    schedule_id: Mapped[str] = mapped_column(String(36), index=True)
    #: "cron", "manual" or "catch-up" (a firing missed while the service was down)
    trigger: Mapped[str] = mapped_column(String(16))
    #: "running", "done", "stopped" (a quota or similar ended it early) or "failed"
    state: Mapped[str] = mapped_column(String(16), default="running")
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), nullable=True)
    added: Mapped[int] = mapped_column(Integer, default=0)
    skipped: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    #: the notebook's summary JSON (added, skipped and failed with reasons, stopped)
    summary: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    #: where and why the run stopped, when it did not finish cleanly
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    #: the executed notebook, relative to the runs folder (built from ids only)
    notebook: Mapped[str | None] = mapped_column(String(255), nullable=True)


def _aware(when: datetime | None) -> datetime | None:
    # SQLite hands timezone-aware columns back naive (they were stored as UTC)
    if when is not None and when.tzinfo is None:
        return when.replace(tzinfo=UTC)
    return when


def parse_trigger(cron: str, timezone: str):
    """An APScheduler ``CronTrigger`` for ``cron`` in ``timezone``, or ``InvalidSchedule``.

    Five fields are standard crontab (minute hour day month weekday); six fields put a
    seconds field first (``*/30 * * * * *``), for schedules finer than a minute.
    """
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    from apscheduler.triggers.cron import CronTrigger

    try:
        zone = ZoneInfo((timezone or "").strip())
    except (ZoneInfoNotFoundError, ValueError):
        raise InvalidSchedule(
            f"Unknown time zone {timezone[:64]!r}: use an IANA name such as Europe/Berlin"
        ) from None
    fields = (cron or "").split()
    try:
        if len(fields) == 5:
            return CronTrigger.from_crontab(" ".join(fields), timezone=zone)
        if len(fields) == 6:
            second, minute, hour, day, month, weekday = fields
            return CronTrigger(
                second=second,
                minute=minute,
                hour=hour,
                day=day,
                month=month,
                day_of_week=weekday,
                timezone=zone,
            )
    except ValueError as exc:
        raise InvalidSchedule(f"Not a cron expression the scheduler understands ({exc})") from None
    raise InvalidSchedule(
        "A cron expression has 5 fields (minute hour day month weekday), or 6 with seconds first"
    )


def runs_root(service) -> Path:
    """Where executed notebooks are kept: ``<shared root>/schedules/<schedule>/<run>/``."""
    return service.settings.shared_root / "schedules"


def schedule_view(row: Schedule, next_run: datetime | None = None) -> dict[str, Any]:
    return {
        "id": row.id,
        "collection_id": row.collection_id,
        "owner": row.owner,
        "sources": list(row.sources or []),
        "cron": row.cron,
        "timezone": row.timezone,
        "captions": row.captions,
        "paused": row.paused,
        "running_run_id": row.running_run_id,
        "next_run_at": next_run.isoformat() if next_run else None,
        "created_at": _aware(row.created_at).isoformat(),
    }


def run_view(row: ScheduleRun) -> dict[str, Any]:
    finished = _aware(row.finished_at)
    return {
        "id": row.id,
        "schedule_id": row.schedule_id,
        "trigger": row.trigger,
        "state": row.state,
        "started_at": _aware(row.started_at).isoformat(),
        "finished_at": finished.isoformat() if finished else None,
        "added": row.added,
        "skipped": row.skipped,
        "failed": row.failed,
        "summary": row.summary,
        "error": row.error,
        "has_notebook": bool(row.notebook),
    }


class Scheduler:
    """The service's APScheduler, rebuilt from the schedules table; runs notebooks as owners.

    ``runner`` executes one run (``vidrag_hub.batchrun.BatchRunner`` by default); tests
    and other processes share the guard through the database.
    """

    def __init__(
        self,
        service,
        *,
        runner=None,
        stale_after: timedelta = STALE_AFTER,
        grace: timedelta | None = None,
        reconcile_every: timedelta | None = None,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        """``grace`` and ``reconcile_every`` default to ``VIDRAG_SCHEDULE_GRACE_HOURS`` and
        ``VIDRAG_BILLING_RECONCILE_HOURS`` (read from ``environ``, else the process's)."""
        from .batchrun import BatchRunner

        self.service = service
        self.runner = runner or BatchRunner(service)
        self.stale_after = stale_after
        self.grace = (
            grace if grace is not None else hours_setting("VIDRAG_SCHEDULE_GRACE_HOURS", GRACE_HOURS, environ)
        )
        self.reconcile_every = (
            reconcile_every
            if reconcile_every is not None
            else hours_setting("VIDRAG_BILLING_RECONCILE_HOURS", RECONCILE_HOURS, environ)
        )
        self._aps = None
        self._threads: set[threading.Thread] = set()
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return self._aps is not None and self._aps.running

    # ------------------------------------------------------------------ lifecycle
    def start(self) -> None:
        """Recover runs a dead process left behind, add a job per active schedule, start;
        then run once each schedule that missed a firing while no scheduler ran (within
        the grace period), and keep the billing reconcile's timer when billing is on."""
        from apscheduler.executors.pool import ThreadPoolExecutor
        from apscheduler.schedulers.background import BackgroundScheduler

        self._aps = BackgroundScheduler(
            timezone=UTC,
            executors={"default": ThreadPoolExecutor(4)},
            # one run of a schedule at a time in this process; firings this process missed
            # while running (a stalled machine) run once, within an hour. Firings missed
            # while it was down are found by ``missed_firing`` instead (jobs live in memory)
            job_defaults={"max_instances": 1, "coalesce": True, "misfire_grace_time": 3600},
        )
        self.recover()
        now = utcnow()
        missed: list[tuple[str, datetime]] = []
        with self.service.catalog.session() as s:
            for row in s.scalars(select(Schedule).where(Schedule.paused.is_(False))):
                try:
                    self._add(row)
                    when = self.missed_firing(s, row, now)
                except InvalidSchedule as exc:  # a time zone this machine lacks, say
                    log.error("schedule %s cannot be scheduled here: %s", row.id, exc.message)
                    continue
                if when is not None:
                    missed.append((row.id, when))
        self._add_reconcile(now)
        self._aps.start()
        for schedule_id, when in missed:
            log.info(
                "schedule %s missed its firing at %s: running it once now", schedule_id, when.isoformat()
            )
            self._aps.add_job(
                self.fire,
                trigger="date",
                args=[schedule_id, "catch-up"],
                id=f"catch-up-{schedule_id}",
                name=f"catch-up of schedule {schedule_id}",
                replace_existing=True,
            )
        log.info("scheduler started with %d schedule(s)", len(self._aps.get_jobs()))

    def missed_firing(self, s, row: Schedule, now: datetime) -> datetime | None:
        """The first fire time of ``row`` that passed with no run after it: later than its
        last run's start and its last change, within the grace period, not after ``now``."""
        if self.grace <= timedelta(0):
            return None
        last_run = s.scalar(select(func.max(ScheduleRun.started_at)).where(ScheduleRun.schedule_id == row.id))
        # a firing before the last run is covered by it; one before the schedule was made,
        # changed or resumed (the service was up then) was not missed by a stopped service
        since = max(
            when for when in (_aware(last_run), _aware(row.updated_at), _aware(row.created_at)) if when
        )
        since = max(since, now - self.grace)
        when = parse_trigger(row.cron, row.timezone).get_next_fire_time(None, since)
        return when if when is not None and when <= now else None

    def _add_reconcile(self, now: datetime) -> None:
        """The billing reconcile on a timer, when billing is on and the interval is not 0."""
        if getattr(self.service, "billing", None) is None or self.reconcile_every <= timedelta(0):
            return
        self._aps.add_job(
            self.reconcile,
            trigger="interval",
            seconds=self.reconcile_every.total_seconds(),
            next_run_time=now + min(self.reconcile_every, FIRST_RECONCILE),
            id=RECONCILE_JOB,
            name="billing reconcile",
            replace_existing=True,
        )

    def reconcile(self) -> dict | None:
        """One billing reconcile, what ``vidrag-hub billing reconcile`` does
        (``vidrag_hub.billing.reconcile_all``: its summary); never raises, so that the
        timer keeps going: a failure is logged and the next run tries again."""
        from .billing import reconcile_all

        try:
            return reconcile_all(self.service)
        except Exception:
            log.exception("the billing reconcile failed")
            return None

    def stop(self) -> None:
        """Stop firing, end the runs in progress (recorded as stopped by the shutdown), wait."""
        if self._aps is None:
            return
        # runs in progress are ended first (a run that has not started yet will not), so
        # that waiting for APScheduler's threads below is short
        self.runner.stop_all()
        self._aps.shutdown(wait=True)
        for thread in list(self._threads):
            thread.join(timeout=60)
        self._aps = None

    def recover(self) -> int:
        """Mark runs whose process died (heartbeat stale) failed and free their schedules."""
        cutoff = utcnow() - self.stale_after
        count = 0
        with self.service.catalog.session() as s:
            for run in s.scalars(select(ScheduleRun).where(ScheduleRun.state == "running")):
                if (_aware(run.heartbeat_at or run.started_at)) >= cutoff:
                    continue
                self._fail_stale(s, run)
                count += 1
        return count

    @staticmethod
    def _fail_stale(s, run: ScheduleRun) -> None:
        run.state = "failed"
        run.finished_at = utcnow()
        run.error = "The service stopped during this run; the next run picks up what it did not ingest"
        s.execute(
            update(Schedule)
            .where(Schedule.id == run.schedule_id, Schedule.running_run_id == run.id)
            .values(running_run_id=None)
        )

    # ------------------------------------------------------------------ jobs
    def _add(self, row: Schedule) -> None:
        self._aps.add_job(
            self.fire,
            trigger=parse_trigger(row.cron, row.timezone),
            id=row.id,
            args=[row.id],
            name=f"schedule {row.id}",
            replace_existing=True,
        )

    def sync(self, schedule_id: str) -> None:
        """Bring APScheduler's job for ``schedule_id`` in line with its row (after an edit)."""
        if self._aps is None:
            return
        with self.service.catalog.session() as s:
            row = s.get(Schedule, schedule_id)
            if row is None or row.paused:
                if self._aps.get_job(schedule_id) is not None:
                    self._aps.remove_job(schedule_id)
                return
            self._add(row)

    def next_run(self, schedule_id: str) -> datetime | None:
        job = self._aps.get_job(schedule_id) if self._aps is not None else None
        return job.next_run_time if job is not None else None

    # ------------------------------------------------------------------ runs
    def acquire(self, schedule_id: str, trigger: str) -> str | None:
        """Start a run row if no other run of the schedule is going (in any process); its id."""
        run_id = new_id()
        now = utcnow()
        stale = select(ScheduleRun.id).where(
            ScheduleRun.state == "running",
            or_(ScheduleRun.heartbeat_at < now - self.stale_after, ScheduleRun.heartbeat_at.is_(None)),
            ScheduleRun.started_at < now - self.stale_after,
        )
        with self.service.catalog.session() as s:
            holder = s.scalar(select(Schedule.running_run_id).where(Schedule.id == schedule_id))
            taken = s.execute(
                update(Schedule)
                .where(
                    Schedule.id == schedule_id,
                    or_(Schedule.running_run_id.is_(None), Schedule.running_run_id.in_(stale)),
                )
                .values(running_run_id=run_id)
                .execution_options(synchronize_session=False)
            )
            if taken.rowcount != 1:
                return None
            if holder is not None:  # the holder's process died: close its run
                old = s.get(ScheduleRun, holder)
                if old is not None and old.state == "running":
                    old.state, old.finished_at = "failed", now
                    old.error = "The service stopped during this run; the next run picks up"
            s.add(
                ScheduleRun(
                    id=run_id, schedule_id=schedule_id, trigger=trigger, started_at=now, heartbeat_at=now
                )
            )
        return run_id

    def release(self, schedule_id: str, run_id: str) -> None:
        with self.service.catalog.session() as s:
            s.execute(
                update(Schedule)
                .where(Schedule.id == schedule_id, Schedule.running_run_id == run_id)
                .values(running_run_id=None)
            )

    def fire(self, schedule_id: str, trigger: str = "cron") -> str | None:
        """What APScheduler calls: one run now, unless one is going; the run's id."""
        run_id = self.acquire(schedule_id, trigger)
        if run_id is None:
            log.info("schedule %s: a run is still in progress; this firing is skipped", schedule_id)
            return None
        self._execute(schedule_id, run_id)
        return run_id

    def run_now(self, schedule_id: str) -> str:
        """Start a run at once in the background (Conflict while one is going); its id."""
        if self._aps is None:
            from .errors import Unavailable

            raise Unavailable("The scheduler is not running in this service")
        run_id = self.acquire(schedule_id, "manual")
        if run_id is None:
            raise Conflict("A run of this schedule is in progress; wait for it to finish")
        thread = threading.Thread(
            target=self._execute, args=(schedule_id, run_id), name=f"vidrag-run-{run_id[:8]}", daemon=True
        )
        with self._lock:
            self._threads.add(thread)
        thread.start()
        return run_id

    def _execute(self, schedule_id: str, run_id: str) -> None:
        try:
            self.runner.execute(schedule_id, run_id)
        except Exception as exc:  # the run's own errors are recorded by the runner; this is a bug
            log.exception("schedule %s run %s broke", schedule_id, run_id)
            with self.service.catalog.session() as s:
                run = s.get(ScheduleRun, run_id)
                if run is not None and run.state == "running":
                    run.state, run.finished_at = "failed", utcnow()
                    run.error = f"The scheduler failed to run the notebook ({type(exc).__name__})"
        finally:
            self.release(schedule_id, run_id)
            with self._lock:
                self._threads.discard(threading.current_thread())


def get_schedule(s, schedule_id: str) -> Schedule:
    row = s.get(Schedule, schedule_id)
    if row is None:
        raise NotFound(f"No schedule {schedule_id!r}")
    return row
