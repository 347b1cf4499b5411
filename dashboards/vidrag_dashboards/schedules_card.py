"""The Schedules card: scheduled batch ingests of the shared collection in focus.

Shown to the owner and editors of a shared collection (``wb.service.schedules``): its
schedules (when, time zone, paused or active, next run), a form to make one (sources,
cron expression, time zone, captions), pause or resume, run now, and the selected
schedule's history (start, end, added, skipped, failed, where a run stopped) with each
run's log, the executed notebook, to download as a page or a notebook. The service runs
them, so they keep running while this server is culled.
"""

from __future__ import annotations

import io

import pandas as pd
import panel as pn

from .card import Card, flex
from .controls import button, download, table
from .format import esc

SCHEDULE_COLUMNS = ["when", "time zone", "state", "next run", "sources", "id"]
RUN_COLUMNS = ["started", "trigger", "state", "added", "skipped", "failed", "why", "id"]
CAPTIONS = {
    "captions when published, else speech": "auto",
    "captions first": "prefer",
    "captions only": "only",
    "speech only": "never",
}
EXAMPLES = "0 3 * * * = every night at 03:00; 0 8 * * 1 = Mondays at 08:00"


def _when(value: str | None) -> str:
    return (value or "")[:16].replace("T", " ") or "-"


class SchedulesCard(Card):
    """Schedules and their run history for the shared collection in focus."""

    title = "Schedules"
    css_class = "vidrag-schedules"

    def __init__(self, state, notices=None, **params) -> None:
        super().__init__(state, notices, **params)
        self.heading = pn.pane.HTML("", sizing_mode="stretch_width")
        self.schedules = table(
            pd.DataFrame(columns=SCHEDULE_COLUMNS),
            selectable=1,
            max_height=200,
            hidden_columns=["id"],
            css_classes=["vidrag-schedules-table"],
        )
        self.pause_button = button("Pause or resume selected", "light", disabled=True)
        self.run_button = button("Run selected now", "primary", disabled=True)
        self.delete_button = button("Delete selected", "danger", disabled=True)

        self.sources = pn.widgets.TextAreaInput(
            label="Sources to watch (one URL a line: playlists, channels, feeds, videos)",
            placeholder="https://www.youtube.com/playlist?list=...",
            rows=3,
            sizing_mode="stretch_width",
        )
        self.cron = pn.widgets.TextInput(
            label="When (cron: minute hour day month weekday)",
            value="0 3 * * *",
            sizing_mode="stretch_width",
        )
        # examples as text, not a tooltip: Bokeh's tooltip icon has no accessible name
        self.cron_hint = pn.pane.HTML(f"<p>{esc(EXAMPLES)}</p>", sizing_mode="stretch_width")
        self.timezone = pn.widgets.TextInput(
            label="Time zone", value="UTC", placeholder="Europe/Berlin", sizing_mode="stretch_width"
        )
        self.captions = pn.widgets.Select(label="Transcripts", options=CAPTIONS, sizing_mode="stretch_width")
        self.create_button = button("Create schedule", "primary")

        self.history_heading = pn.pane.HTML("<h3>History</h3>", margin=(0, 5))
        self.runs = table(
            pd.DataFrame(columns=RUN_COLUMNS),
            selectable=1,
            max_height=220,
            hidden_columns=["id"],
            css_classes=["vidrag-runs-table"],
        )
        self.log_page = download("Download run log (page)", self._log_html, "run-log.html", disabled=True)
        self.log_notebook = download(
            "Download run log (notebook)", self._log_ipynb, "run-log.ipynb", disabled=True
        )

        self.schedules.param.watch(lambda e: self.guard(self._selected_schedule), "selection")
        self.runs.param.watch(lambda e: self._selected_run(), "selection")
        self.pause_button.on_click(lambda e: self.guard(self.toggle_pause))
        self.run_button.on_click(lambda e: self.guard(self.run_now))
        self.delete_button.on_click(lambda e: self.guard(self.ask_delete))
        self.create_button.on_click(lambda e: self.guard(self.create))
        state.param.watch(lambda *e: self.guard(self.refresh), ["role", "library", "revision", "collection"])
        self.refresh()

    # ------------------------------------------------------------------ plumbing
    @property
    def client(self):
        """The service's schedules client (None without the service)."""
        service = getattr(self.wb, "service", None)
        return getattr(service, "schedules", None) if service is not None else None

    @property
    def applies(self) -> bool:
        """Shown for a shared collection I own or edit."""
        return self.client is not None and self.state.may_share

    def body(self) -> list:
        return [
            self.heading,
            self.schedules,
            pn.Row(self.pause_button, self.run_button, self.delete_button, sizing_mode="stretch_width"),
            pn.pane.HTML("<h3>New schedule</h3>", margin=(0, 5)),
            self.sources,
            flex(self.cron, self.timezone, self.captions, basis="160px"),
            self.cron_hint,
            self.create_button,
            self.history_heading,
            self.runs,
            pn.Row(self.log_page, self.log_notebook, sizing_mode="stretch_width"),
        ]

    def __panel__(self):
        section = super().__panel__()
        section.visible = self.applies
        return section

    def selected_schedule(self) -> str | None:
        value = self.schedules.value
        if value is None or value.empty or not self.schedules.selection:
            return None
        return value.iloc[self.schedules.selection[0]]["id"]

    def selected_run(self) -> str | None:
        value = self.runs.value
        if value is None or value.empty or not self.runs.selection:
            return None
        return value.iloc[self.runs.selection[0]]["id"]

    # ------------------------------------------------------------------ views
    def refresh(self) -> None:
        """Reload the collection's schedules (nothing when the card does not apply)."""
        if self._section is not None:
            self._section.visible = self.applies
        if not self.applies:
            return
        keep = self.selected_schedule()
        items = self.client.list(self.state.collection)
        self.heading.object = (
            "<p>The vidrag service ingests new videos from these sources on schedule, "
            "even while your server is stopped. Each run's notebook is its log.</p>"
        )
        rows = [
            {
                "when": s.cron,
                "time zone": s.timezone,
                "state": "paused" if s.paused else ("running" if s.running_run_id else "active"),
                "next run": _when(s.next_run_at),
                "sources": ", ".join(s.sources)[:120],
                "id": s.id,
            }
            for s in items
        ]
        self.schedules.value = pd.DataFrame(rows, columns=SCHEDULE_COLUMNS)
        ids = [s.id for s in items]
        self.schedules.selection = [ids.index(keep)] if keep in ids else []
        self._selected_schedule()

    def _selected_schedule(self) -> None:
        chosen = self.selected_schedule()
        for control in (self.pause_button, self.run_button, self.delete_button):
            control.disabled = chosen is None
        self.refresh_runs()

    def refresh_runs(self) -> None:
        """Reload the history of the selected schedule, newest first."""
        chosen = self.selected_schedule()
        rows = []
        if chosen is not None:
            for r in self.client.runs(chosen):
                why = (r.error or "").splitlines()[0] if r.error else ""
                rows.append(
                    {
                        "started": _when(r.started_at),
                        "trigger": r.trigger,
                        "state": r.state,
                        "added": r.added,
                        "skipped": r.skipped,
                        "failed": r.failed,
                        "why": why[:160],
                        "id": r.id,
                    }
                )
        self.runs.value = pd.DataFrame(rows, columns=RUN_COLUMNS)
        self.runs.selection = []
        self._selected_run()

    def _selected_run(self) -> None:
        none = self.selected_run() is None
        self.log_page.disabled = none
        self.log_notebook.disabled = none

    # ------------------------------------------------------------------ actions
    def create(self) -> None:
        """Make a schedule of the sources, cron expression, time zone and captions typed."""
        text = self.sources.value_input or self.sources.value or ""
        sources = [line.strip() for line in text.splitlines() if line.strip()]
        if not sources:
            self.say("Give at least one source URL to watch.", "warning")
            return
        made = self.client.create(
            self.state.collection,
            sources,
            (self.cron.value_input or self.cron.value or "").strip(),
            timezone=(self.timezone.value_input or self.timezone.value or "UTC").strip(),
            captions=self.captions.value,
        )
        self.sources.value = ""
        self.say(
            f"Schedule created: next run {esc(_when(made.next_run_at))} ({esc(made.timezone)}).", "success"
        )
        self.refresh()

    def toggle_pause(self) -> None:
        chosen = self.selected_schedule()
        if chosen is None:
            self.say("Select a schedule first.", "warning")
            return
        current = self.client.get(chosen)
        done = self.client.resume(chosen) if current.paused else self.client.pause(chosen)
        self.say("Schedule paused." if done.paused else "Schedule resumed.", "success")
        self.refresh()

    def run_now(self) -> None:
        chosen = self.selected_schedule()
        if chosen is None:
            self.say("Select a schedule first.", "warning")
            return
        self.client.run_now(chosen)
        self.say("Run started; its history updates when you refresh.", "success")
        self.refresh()

    def ask_delete(self) -> None:
        chosen = self.selected_schedule()
        if chosen is None:
            self.say("Select a schedule first.", "warning")
            return
        self.notices.confirm("Delete this schedule and its history?", lambda: self._delete(chosen))

    def _delete(self, schedule_id: str) -> None:
        self.client.delete(schedule_id)
        self.say("Schedule deleted.", "success")
        self.refresh()

    def _log(self, fmt: str) -> io.BytesIO:
        chosen, run = self.selected_schedule(), self.selected_run()
        if chosen is None or run is None:
            return io.BytesIO(b"")
        return io.BytesIO(self.client.notebook(chosen, run, fmt).encode())

    def _log_html(self) -> io.BytesIO:
        return self._log("html")

    def _log_ipynb(self) -> io.BytesIO:
        return self._log("ipynb")
