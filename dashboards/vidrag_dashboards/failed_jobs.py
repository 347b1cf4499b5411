"""The Failed ingests card: each failed job with its error, and **Retry** (with progress)."""

from __future__ import annotations

import pandas as pd
import panel as pn

from .add_videos import IngestProgress
from .background import run_in_background
from .card import Card
from .controls import button, table
from .feedback import user_message

COLUMNS = ["title", "error", "source", "when", "id"]


class FailedJobsCard(Card):
    """Failed ingests of this user; select one and retry it."""

    title = "Failed ingests"

    def __init__(self, state, notices=None, **params) -> None:
        super().__init__(state, notices, **params)
        self.note = pn.pane.HTML("", sizing_mode="stretch_width")
        self.table = table(
            pd.DataFrame(columns=COLUMNS),
            selectable=1,
            max_height=220,
            layout="fit_data_stretch",
            hidden_columns=["id"],
            css_classes=["vidrag-failed-jobs"],
        )
        self.retry_button = button("Retry", "warning", disabled=True)
        self.progress = IngestProgress(state)
        self.table.param.watch(lambda e: setattr(self.retry_button, "disabled", not e.new), "selection")
        self.retry_button.on_click(lambda e: self.guard(self.retry))
        state.param.watch(lambda e: self.guard(self.refresh), "revision")
        self.refresh()

    def body(self) -> list:
        return [self.note, self.table, self.retry_button, self.progress]

    def refresh(self) -> None:
        """Reload the failed jobs."""
        jobs = self.wb.jobs.list(state="failed", limit=50)
        self.table.value = pd.DataFrame(
            [
                {
                    "title": j.title or j.source,
                    "error": j.error or "",
                    "source": j.source,
                    "when": j.updated_at.strftime("%Y-%m-%d %H:%M") if j.updated_at else "",
                    "id": j.id,
                }
                for j in jobs
            ],
            columns=COLUMNS,
        )
        self.note.object = (
            f"<small>{len(jobs)} ingest(s) failed. Select one and press Retry.</small>"
            if jobs
            else "<small>No failed ingests.</small>"
        )
        self.retry_button.disabled = True

    def retry(self) -> None:
        """Run the selected job again on a worker thread."""
        if not self.table.selection:
            return
        job_id = self.table.value.iloc[self.table.selection[0]]["id"]
        self.retry_button.disabled = True
        self.state.ingesting += 1
        self.progress.clear()
        progress = self.progress.callback()

        def done(results):
            self.state.ingesting -= 1
            bad = [r for r in results if r.status == "failed"]
            self.say(
                f"Retry failed again: {bad[0].error}" if bad else "Retry succeeded.",
                "warning" if bad else "success",
            )
            self.state.changed()

        def failed(exc):
            self.state.ingesting -= 1
            self.say(f"Retry failed: {user_message(exc)}", "danger")
            self.state.changed()

        run_in_background(
            self.state.ui,
            lambda: self.wb.jobs.retry(job_id, progress=progress),
            on_done=done,
            on_error=failed,
            kind="ingest",
        )
