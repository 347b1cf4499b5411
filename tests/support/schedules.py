"""Helpers for the schedules tests: the service on uvicorn, and a schedule with one finished run."""

from __future__ import annotations

import json
from datetime import timedelta


def seed_schedule(service, collection_id: str, owner: str) -> tuple[str, str]:
    """A paused schedule of ``collection_id`` with one finished run and its notebook on disk."""
    import nbformat
    from vidrag_hub.models import utcnow
    from vidrag_hub.scheduler import Schedule, ScheduleRun, runs_root

    with service.catalog.session() as s:
        schedule = Schedule(
            collection_id=collection_id,
            owner=owner,
            sources=["https://example.edu/feed.xml"],
            cron="0 3 * * *",
            timezone="UTC",
            captions="auto",
            paused=True,
        )
        s.add(schedule)
        s.flush()
        start = utcnow() - timedelta(minutes=5)
        run = ScheduleRun(
            schedule_id=schedule.id,
            trigger="cron",
            state="done",
            started_at=start,
            finished_at=start + timedelta(minutes=1),
            summary={"collection": collection_id, "added": [], "skipped": [], "failed": [], "stopped": None},
        )
        s.add(run)
        s.flush()
        run.notebook = f"{schedule.id}/{run.id}/notebook.ipynb"
        ids = schedule.id, run.id
    folder = runs_root(service) / ids[0] / ids[1]
    folder.mkdir(parents=True, exist_ok=True)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print('ran')")])
    (folder / "notebook.ipynb").write_text(json.dumps(nb))
    return ids
