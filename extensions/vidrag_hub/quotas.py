"""The quota point: every ingest and every answer the service pays for reserves first.

What counts against whom:

- videos, minutes of video and storage: the OWNER of the shared collection the video
  goes into, whoever queued it. An ingest reserves a video slot, its minutes (from the
  duration the dry-run plan learned before any download; one minute when the site
  reports none) and its expected size, in the same transaction that queues its job
  (``reserve_jobs``, called by ``vidrag_hub.work.IngestWorkers``). When the worker is
  done, the real duration and size are checked against the limit before anything is
  committed (``admit``): a video longer than its reservation that does not fit is
  stopped there. At the job's end the real figures are committed, or everything is
  released on failure or cancellation (``settle``); reservations of jobs that died
  expire (``ledger.sweep``).
- chat messages: the user who ASKS, whoever owns the collection (``message``), one per
  answer, reset each calendar month (UTC) or at the subscription's period start.
- search is free; personal-mode work never reaches the service and is not counted.

A refusal is ``vidrag_kernel.errors.QuotaExceeded`` (HTTP 429): one sentence naming the
limit, the usage, the reset time and the upgrade path, with the figures as fields.
Nothing stored is hidden or deleted when an account is over a limit: only new work is
refused.
"""

from __future__ import annotations

import logging
import math
import os
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vidrag_kernel.errors import InvalidInput, QuotaExceeded

from . import ledger, plans
from .auth import HubUser
from .ledger import Ask, OverLimit
from .plans import METRICS as PLAN_METRICS
from .plans import PlanBook, Standing

if TYPE_CHECKING:
    from vidrag_kernel.records import MediaInfo
    from vidrag_kernel.stages import Prepared

log = logging.getLogger("vidrag_hub.quotas")

#: what the endpoints name when they pass ``check`` (search is not metered)
METRICS = ("ingest", "search", "answer")
#: an answer's reservation outlives any answer; then its holder is taken for dead
#: (``VIDRAG_ANSWER_HOLD_SECONDS``)
ANSWER_HOLD = timedelta(minutes=10)
#: an ingest's reservation lasts this much longer than the longest video allowed
#: (``VIDRAG_MAX_DURATION``) takes to fetch and transcribe on a slow worker, and at
#: least ``MIN_INGEST_HOLD`` (``VIDRAG_INGEST_HOLD_SECONDS`` replaces both)
INGEST_HOLD_FACTOR = 3
MIN_INGEST_HOLD = timedelta(hours=6)
#: minutes reserved for a video whose length the site does not report (then checked
#: against the real length before the commit)
UNKNOWN_SECONDS = 60
UNIT_WORDS = {"minutes": "minutes of video", "storage": "of storage"}
NOUNS = {
    "videos": "videos",
    "minutes": "minutes of video",
    "messages": "chat messages",
    "storage": "of storage",
}


def check(user: HubUser, metric: str, amount: int = 1) -> None:
    """The point every ingest, search and answer endpoint passes.

    Search costs nothing. Ingest is reserved by the ingest runner once the dry-run plan
    knows each video's duration (``Quotas.reserve_jobs``) and answers by
    ``Quotas.message``; this only rejects a caller's mistake.
    """
    if metric not in METRICS:
        raise ValueError(f"unknown quota metric {metric!r}: one of {', '.join(METRICS)}")
    if amount < 0:
        raise ValueError("a quota amount is never negative")


def _iso(when: datetime | None) -> str | None:
    return when.astimezone(UTC).isoformat() if when is not None else None


def _show(metric: str, amount: int | None) -> str:
    """A ledger figure in the words a person reads (minutes, GB)."""
    if amount is None:
        return "unlimited"
    if metric == "minutes":
        minutes = amount / 60
        return f"{minutes:,.0f}" if minutes == int(minutes) else f"{minutes:,.1f}"
    if metric == "storage":
        return f"{amount / plans.GB:,.2f} GB".replace(".00 GB", " GB")
    return f"{amount:,}"


def _hold(env: Mapping[str, str], variable: str, default: timedelta) -> timedelta:
    raw = env.get(variable, "").strip()
    if not raw:
        return default
    try:
        seconds = float(raw)
    except ValueError:
        seconds = math.nan
    if not 1 <= seconds <= 366 * 24 * 3600:  # also false for NaN
        raise InvalidInput(f"{variable}={raw[:40]!r} is not a number of seconds from 1 to a year")
    return timedelta(seconds=seconds)


def holds(max_duration: float, environ: Mapping[str, str] | None = None) -> tuple[timedelta, timedelta]:
    """How long an answer's and an ingest's reservation live before they are taken for
    dead and expire: ``VIDRAG_ANSWER_HOLD_SECONDS`` (default 10 minutes) and
    ``VIDRAG_INGEST_HOLD_SECONDS`` (default three times ``max_duration``, at least 6 hours).
    Too short and a slow job's reservation expires under it (its figures are then counted
    at its end anyway, but others may take its room meanwhile); too long and a crashed
    job's room stays taken that long."""
    env = os.environ if environ is None else environ
    ingest = max(MIN_INGEST_HOLD, timedelta(seconds=INGEST_HOLD_FACTOR * max_duration))
    return (
        _hold(env, "VIDRAG_ANSWER_HOLD_SECONDS", ANSWER_HOLD),
        _hold(env, "VIDRAG_INGEST_HOLD_SECONDS", ingest),
    )


def media_bytes(folder: Path) -> int:
    """Bytes of the files a video keeps on the shared root (its storage use)."""
    if not folder.is_dir():
        return 0
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class Quotas:
    """Plans and the ledger for one service (``Service.quotas``)."""

    def __init__(self, service: Any, environ: Mapping[str, str] | None = None) -> None:
        self.service = service
        self.book = PlanBook(getattr(service.settings, "plans", None))
        max_duration = getattr(service.kernel_settings, "max_duration", 4 * 3600)
        self.answer_hold, self.ingest_hold = holds(max_duration, environ)
        self._bound = False
        self._serial = threading.Lock()

    @property
    def catalog(self):
        catalog = self.service.catalog
        if not self._bound:
            plans.use_book(catalog.engine, self.book)
            self._bound = True
        return catalog

    @contextmanager
    def _write(self) -> Iterator[Session]:
        """A short transaction of the ledger's own. On SQLite, which has one writer at a
        time anyway, this process's writers queue on a lock instead of in SQLite's busy
        handler, whose growing sleeps (up to 100 ms) would leave the lock idle under
        contention. Correctness never rests on the lock: the conditional UPDATE decides,
        also across processes."""
        catalog = self.catalog
        serial = self._serial if catalog.engine.dialect.name == "sqlite" else nullcontext()
        with serial, catalog.session() as s:
            yield s

    # -- plans and refusals --------------------------------------------------------------
    def standing(self, session: Session, user: HubUser | str) -> Standing:
        """The plan and account of ``user`` (a caller's groups are recorded on the way)."""
        if isinstance(user, HubUser):
            return plans.standing(session, self.book, user.name, user.groups)
        return plans.standing(session, self.book, user)

    def period(self, standing: Standing, now: datetime | None = None) -> datetime:
        return plans.period_bounds(standing.period_start, now)[0]

    def upgrade_url(self) -> str | None:
        """Where a user over a limit upgrades: the configured page, the billing checkout
        when billing is on, else None (the administrator decides plans)."""
        if self.book.upgrade_url:
            return self.book.upgrade_url
        if getattr(self.service, "billing", None) is not None:
            return self.service.settings.prefix + "api/billing/checkout"
        return None

    def _bigger(self, standing: Standing, metric: str) -> str | None:
        """The title of the smallest self-service plan with more of ``metric``."""
        limit = standing.plan.limit(metric)
        better = [
            p
            for p in self.book.plans.values()
            if not p.name.startswith(plans.ENTERPRISE)
            and (p.limit(metric) is None or (limit is not None and p.limit(metric) > limit))
        ]
        better.sort(key=lambda p: math.inf if p.limit(metric) is None else p.limit(metric))
        return better[0].title if better else None

    def refusal(
        self, standing: Standing, over: OverLimit, caller: str, now: datetime | None = None
    ) -> QuotaExceeded:
        """The 429: one sentence with the limit, the usage, the reset time and the upgrade path."""
        metric = over.metric
        pool = standing.account.removeprefix("group:") if standing.account.startswith("group:") else None
        if caller == standing.user:
            whose = f"Your organisation ({pool}) has" if pool else "You have"
        else:
            owner = (
                f"The collection owner's organisation ({pool})"
                if pool
                else f"The collection's owner, {standing.user},"
            )
            whose = f"{owner} has"
        amount = f"{_show(metric, over.used)} of {_show(metric, over.limit)}"
        amount += " of storage" if metric == "storage" else f" {NOUNS[metric]}"
        sentence = f"{whose} used {amount} on the {standing.plan.title} plan"
        if over.reserved:
            sentence += f" ({_show(metric, over.reserved)} more in progress)"
        resets = None
        if metric == ledger.PERIODIC:
            resets = standing.resets_at(now)
            sentence += f"; they reset on {resets:%Y-%m-%d %H:%M} UTC"
        elif metric in ("minutes", "storage") and over.amount:
            sentence += f", and this needs {_show(metric, over.amount)}" + (
                "" if metric == "storage" else " more"
            )
        upgrade = self.upgrade_url()
        bigger = self._bigger(standing, metric)
        if upgrade and bigger and standing.source in ("default", "stripe"):
            where = (
                upgrade
                if self.book.upgrade_url
                else "the Upgrade button under Usage & billing in the vidrag dashboard"
            )
            sentence += f"; upgrade to {bigger} for more: {where}"
        else:
            sentence += "; ask the administrator of this hub for a bigger plan"
        return QuotaExceeded(
            sentence + ".",
            metric=metric,
            limit=over.limit,
            used=over.used,
            reserved=over.reserved,
            resets_at=_iso(resets),
            upgrade=upgrade,
        )

    # -- answers -------------------------------------------------------------------------
    def reserve_message(self, user: HubUser, ref: str | None = None) -> str:
        """Hold one chat message for the asker (``QuotaExceeded`` when none is left)."""
        now = datetime.now(UTC)
        for attempt in (1, 2):
            with self._write() as s:
                standing = self.standing(s, user)
                limit = standing.plan.limit("messages")
                try:
                    return ledger.reserve(
                        s, standing.account, user.name, [Ask("messages", 1, limit)],
                        ttl=self.answer_hold, ref=ref, period=self.period(standing, now), now=now,
                    )[0]  # fmt: skip
                except OverLimit as over:
                    refused = over
            if attempt == 1 and self.sweep(standing.account, now) == 0:
                break  # nothing was dead: the refusal stands
        raise self.refusal(standing, refused, user.name, now)

    def settle_message(self, reservation_id: str, ok: bool) -> None:
        """Count the answer (``ok``) or give the message back (it failed)."""
        with self._write() as s:
            if ok:
                user = s.scalar(
                    select(ledger.Reservation.user).where(ledger.Reservation.id == reservation_id)
                )
                if user is None:
                    return  # settled already (swept as expired)
                ledger.commit(s, reservation_id, period=self.period(plans.standing(s, self.book, user)))
            else:
                ledger.release(s, reservation_id)

    @contextmanager
    def message(self, user: HubUser, ref: str | None = None) -> Iterator[str]:
        """Reserve one message around an answer: committed if the block succeeds,
        released if it raises."""
        rid = self.reserve_message(user, ref)
        try:
            yield rid
        except BaseException:
            self.settle_message(rid, False)
            raise
        self.settle_message(rid, True)

    def metered(self, reservation_id: str, pieces: Iterator) -> Iterator:
        """A streamed answer that commits its message when it ends (also when the
        client goes away mid-stream: the answer was paid for), released on an error."""
        failed = False
        try:
            yield from pieces
        except Exception:
            failed = True
            raise
        finally:
            self.settle_message(reservation_id, not failed)

    # -- ingest (called by vidrag_hub.work.IngestWorkers) --------------------------------
    def sweep(self, account: str | None = None, now: datetime | None = None) -> int:
        """Settle dead reservations (of one account, or all) in a transaction of their own."""
        with self._write() as s:
            return ledger.sweep(s, account=account, now=now)

    def _owner(self, session: Session, collection_id: str) -> str:
        from vidrag_kernel.catalog import Collection

        return session.get(Collection, collection_id).owner

    def reserve_jobs(
        self, session: Session, collection_id: str, user: str, jobs: list[tuple[str, MediaInfo | None]]
    ) -> None:
        """In the transaction that queues the jobs: a video slot, its minutes and its
        expected bytes per job, against the collection owner's plan. ``QuotaExceeded``
        for the first that does not fit (the caller's transaction then queues nothing)."""
        now = datetime.now(UTC)
        owner = self._owner(session, collection_id)
        standing = self.standing(session, owner)
        # dead reservations first, in this transaction: ingest is rare, and the queue's
        # own write already holds the database's write lock on SQLite
        ledger.sweep(session, account=standing.account, now=now)
        for job_id, info in jobs:
            duration = info.duration if info is not None else None
            seconds = math.ceil(duration) if duration else UNKNOWN_SECONDS
            size = max(int(info.filesize or 0) if info is not None else 0, 1)
            asks = [
                Ask("videos", 1, standing.plan.limit("videos")),
                Ask("minutes", seconds, standing.plan.limit("minutes")),
                Ask("storage", size, standing.plan.limit("storage")),
            ]
            try:
                ledger.reserve(session, standing.account, user, asks, ttl=self.ingest_hold, job_id=job_id,
                               ref=collection_id, now=now)  # fmt: skip
            except OverLimit as over:
                raise self.refusal(standing, over, user, now) from None

    def reserve_job(self, session: Session, job_id: str) -> None:
        """A retried job reserves again (its first reservation was released when it failed)."""
        from vidrag_kernel.catalog import IngestJob, Video

        row = session.get(IngestJob, job_id)
        video = session.get(Video, row.video_id) if row.video_id else None
        info = None
        if video is not None:
            from vidrag_kernel.records import MediaInfo

            info = MediaInfo(source_key=video.source_key, url=row.source, title=row.title or "",
                             duration=video.duration)  # fmt: skip
        for reservation in ledger.of_job(session, job_id):
            ledger.release(session, reservation.id)
        self.reserve_jobs(session, row.collection_id, row.owner, [(job_id, info)])

    def _media(self, video_id: str | None) -> Path | None:
        return self.service.kernel_settings.home / "media" / video_id if video_id else None

    def admit(self, job_id: str, prepared: Prepared) -> None:
        """Before a finished job is committed: hold what its real duration and size need
        beyond the reservation, or stop it at the limit (``QuotaExceeded``; nothing of it
        is committed, and ``settle`` gives the reservation back)."""
        from vidrag_kernel.catalog import IngestJob

        now = datetime.now(UTC)
        with self._write() as s:
            held = {r.metric: r for r in ledger.of_job(s, job_id)}
            if not held:
                return  # expired meanwhile (a very long run): settle records the real figures
            job = s.get(IngestJob, job_id)
            owner = self._owner(s, job.collection_id)
            standing = self.standing(s, owner)
            real = {}
            if prepared.duration:
                real["minutes"] = math.ceil(prepared.duration)
            if job.video_id:
                real["storage"] = media_bytes(self._media(job.video_id))
            for metric, amount in real.items():
                reservation = held.get(metric)
                if reservation is None or amount <= reservation.amount:
                    continue
                limit = standing.plan.limit(metric)
                if not ledger.extend(s, reservation.id, amount - reservation.amount, limit):
                    row = ledger.counter(s, standing.account, metric)
                    over = OverLimit(standing.account, metric, limit, row.used, row.reserved,
                                     amount - reservation.amount)  # fmt: skip
                    refusal = self.refusal(standing, over, job.owner, now)
                    raise QuotaExceeded(
                        f"Stopped at the limit: this video needs {_show(metric, amount)} {UNIT_WORDS[metric]}, "
                        f"more than the {_show(metric, reservation.amount)} reserved for it. {refusal.message}",
                        **{k: v for k, v in refusal.to_dict().items() if k in QuotaExceeded.FIELDS},
                    )

    def settle(self, job_id: str) -> None:
        """At a job's end: commit the real figures if it is done, else release. Never
        raises into the job runner: what fails here, ``ledger.sweep`` settles later."""
        try:
            self._settle(job_id)
        except Exception:
            log.exception("could not settle the quota reservations of ingest job %s", job_id)

    def _settle(self, job_id: str) -> None:
        from vidrag_kernel.catalog import IngestJob, Video

        with self._write() as s:
            job = s.get(IngestJob, job_id)
            held = ledger.of_job(s, job_id)
            if job is None or job.state != "done":
                for reservation in held:
                    ledger.release(s, reservation.id)
                return
            video = s.get(Video, job.video_id) if job.video_id else None
            real: dict[str, int | None] = {"videos": 1, "minutes": None, "storage": None}
            if video is not None and video.duration:
                real["minutes"] = math.ceil(video.duration)
            if job.video_id:
                real["storage"] = media_bytes(self._media(job.video_id))
            if not held:
                # settled already, or its reservation expired while the job ran on: then
                # (and only then) count what it used anyway
                kinds = set(s.scalars(select(ledger.Event.kind).where(ledger.Event.job_id == job_id)))
                if "expire" not in kinds or "commit" in kinds:
                    return
                owner = self._owner(s, job.collection_id) if job.collection_id else job.owner
                standing = self.standing(s, owner)
                for metric, amount in real.items():
                    if amount:
                        ledger.record(s, standing.account, job.owner, metric, amount, job_id=job_id)
                return
            for reservation in held:
                ledger.commit(s, reservation.id, real.get(reservation.metric), ref=job.video_id)

    def give_back(self, collection_id: str, video_id: str | None = None) -> None:
        """A video left the collection (or, with ``video_id`` None, the collection is
        being deleted): its committed videos, minutes and storage are the owner's again.
        Never raises into the request: the removal itself is what the user asked for."""
        try:
            self._give_back(collection_id, video_id)
        except Exception:
            log.exception("could not give back the quota of %s in collection %s", video_id, collection_id)

    def _give_back(self, collection_id: str, video_id: str | None) -> None:
        from vidrag_kernel.catalog import IngestJob

        with self._write() as s:
            query = select(IngestJob.id).where(
                IngestJob.collection_id == collection_id, IngestJob.state == "done"
            )
            if video_id is not None:
                query = query.where(IngestJob.video_id == video_id)
            jobs = list(s.scalars(query))
            if not jobs:
                return
            events = s.execute(
                select(ledger.Event.job_id, ledger.Event.account, ledger.Event.user, ledger.Event.metric,
                       ledger.Event.kind, ledger.Event.amount, ledger.Event.ref)
                .where(ledger.Event.job_id.in_(jobs), ledger.Event.kind.in_(("commit", "return")))
            ).all()  # fmt: skip
            returned = {(e.job_id, e.metric) for e in events if e.kind == "return"}
            for e in events:
                if (
                    e.kind == "commit"
                    and e.metric != ledger.PERIODIC
                    and (e.job_id, e.metric) not in returned
                ):
                    ledger.give_back(s, e.account, e.user, e.metric, e.amount, job_id=e.job_id, ref=e.ref)
                    returned.add((e.job_id, e.metric))

    # -- views ---------------------------------------------------------------------------
    def view(self, session: Session, user: HubUser | str, standing: Standing | None = None) -> dict:
        """Used, reserved and limit per metric, the reset time, the plan and its source."""
        now = datetime.now(UTC)
        standing = standing or self.standing(session, user)
        start, end = plans.period_bounds(standing.period_start, now)
        metrics = {}
        for metric in PLAN_METRICS:
            row = ledger.counter(session, standing.account, metric)
            used, held = (row.used, row.reserved) if row is not None else (0, 0)
            if metric == ledger.PERIODIC and row is not None and row.period_start is not None:
                used = 0 if plans._aware(row.period_start) < start else used
            limit = standing.plan.limit(metric)
            scale = 60 if metric == "minutes" else 1
            metrics[metric] = {
                "used": used / scale if scale != 1 else used,
                "reserved": held / scale if scale != 1 else held,
                "limit": None if limit is None else (limit / scale if scale != 1 else limit),
                "unit": {"minutes": "minutes", "storage": "bytes"}.get(metric, metric),
                "resets": metric == ledger.PERIODIC,
            }
        return {
            "user": standing.user,
            "account": standing.account,
            "plan": {**standing.plan.to_dict(), "source": standing.source},
            "period_start": _iso(start),
            "resets_at": _iso(end),
            "metrics": metrics,
            "upgrade": self.upgrade_url(),
        }
