"""The Add videos card: a URL (video, playlist, channel, page) or an uploaded file, the
captions choice, **Check** (the dry-run plan as a table: titles, durations, captions,
estimated time), then **Ingest** with one live progress line per video.

Planning and ingesting run on a worker thread; results come back through the session's
UI queue (see ``background``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import panel as pn

from vidrag_kernel import format_time

from .background import Throttle, run_in_background
from .card import Card
from .controls import button, table
from .feedback import user_message
from .format import esc
from .uploads import MAX_UPLOAD_MB, safe_filename, save_upload

UPLOAD_HINT = (
    f"<small>…or upload a file (up to {MAX_UPLOAD_MB} MB; for a longer lecture paste its URL, "
    "or run <code>vidrag ingest FILE</code> in a terminal)</small>"
)
MEDIA_TYPES = ".mp4,.m4v,.webm,.mkv,.mov,.m4a,.mp3,.wav,.ogg,.opus,.flac"

CAPTION_CHOICES = {
    "auto: published captions if hand-made, else speech recognition": "auto",
    "prefer: any published captions, else speech recognition": "prefer",
    "only: published captions or nothing": "only",
    "never: always speech recognition": "never",
}
STAGE_LABELS = {
    "queued": "queued",
    "fetching": "downloading",
    "transcribing": "transcribing",
    "chunking": "cutting into passages",
    "embedding": "embedding",
    "indexing": "indexing",
    "done": "done",
    "failed": "failed",
}
PLAN_COLUMNS = ["title", "duration", "captions", "transcript from", "estimate", "note"]


class IngestLine(pn.viewable.Viewer):
    """One video's live progress: title, stage, percentage, message."""

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title
        self.stage = "queued"
        self.text = pn.pane.HTML(self._html("queued", 0, ""), sizing_mode="stretch_width", margin=(0, 5))
        self.bar = pn.indicators.Progress(
            value=0, max=100, sizing_mode="stretch_width", height=12, margin=(0, 5), name=f"{title} progress"
        )
        self._layout = pn.Column(
            self.text, self.bar, sizing_mode="stretch_width", css_classes=["vidrag-ingest-line"]
        )

    def __panel__(self):
        return self._layout

    def _html(self, stage: str, pct: int, message: str) -> str:
        label = STAGE_LABELS.get(stage, stage)
        color = {"done": "#1a7f37", "failed": "#cf222e"}.get(stage, "inherit")  # both 5:1 on white
        msg = f" · {esc(message)}" if message else ""
        return (
            f'<div class="vidrag-progress" data-stage="{esc(stage)}"><strong>{esc(self.title)}</strong> — '
            f'<span style="color:{color}">{esc(label)}</span> {pct}%{msg}</div>'
        )

    def update(self, event) -> None:
        """Show a ProgressEvent."""
        self.stage = event.stage
        pct = int(round(float(event.fraction) * 100))
        self.text.object = self._html(event.stage, pct, event.message or "")
        self.bar.value = pct
        self.bar.bar_color = {"done": "success", "failed": "danger"}.get(event.stage, "primary")


class IngestProgress(pn.viewable.Viewer):
    """The progress lines of one ingest run, fed from the worker thread."""

    def __init__(self, state) -> None:
        super().__init__()
        self.state = state
        self.lines: dict[str, IngestLine] = {}
        self.column = pn.Column(sizing_mode="stretch_width", css_classes=["vidrag-progress-list"])

    def __panel__(self):
        return self.column

    def clear(self) -> None:
        self.column.clear()
        self.lines.clear()

    def _line(self, event) -> IngestLine:
        key = event.video_id or event.title or "?"
        line = self.lines.get(key)
        if line is None:
            line = IngestLine(event.title or "video")
            line._throttle = Throttle(self.state.ui, line.update)
            self.lines[key] = line
            self.column.append(line)
        return line

    def callback(self):
        """A ProgressEvent callback for the worker thread: lines are made and updated on the UI side."""

        def report(event) -> None:
            def apply():
                # every event goes through the line's throttle: the latest one always lands last,
                # so a queued "indexing" can never overwrite "done"
                self._line(event)._throttle.push(event)

            self.state.ui.put(apply)

        return report


class AddVideosCard(Card):
    """Add videos to the collection in focus: plan first, then ingest with progress."""

    title = "Add videos"

    def __init__(self, state, notices=None, **params) -> None:
        super().__init__(state, notices, **params)
        self._plan_key: tuple | None = None
        self._upload_path: Path | None = None
        self._upload_fresh = False  # saved under a name that a following filename event may correct

        self.source = pn.widgets.TextInput(
            label="Video, playlist or channel URL",
            placeholder="https://www.youtube.com/watch?v=…",
            sizing_mode="stretch_width",
        )
        self.upload_note = pn.pane.HTML(UPLOAD_HINT, sizing_mode="stretch_width")
        self.upload = pn.widgets.FileInput(
            label="Lecture file to upload", accept=MEDIA_TYPES, sizing_mode="stretch_width"
        )
        self.captions = pn.widgets.Select(
            label="Transcript from",
            options=CAPTION_CHOICES,
            value=self.wb.settings.captions,
            sizing_mode="stretch_width",
        )
        self.plan_button = button("Check", "primary")
        self.ingest_button = button("Ingest", "success", disabled=True)
        self.plan_summary = pn.pane.HTML("", sizing_mode="stretch_width")
        self.plan_table = table(
            pd.DataFrame(columns=PLAN_COLUMNS),
            max_height=240,
            layout="fit_data_stretch",
            css_classes=["vidrag-plan-table"],
        )
        # always shown (empty until the first Check): a Tabulator first drawn while hidden
        # shows no rows once it is shown and given data
        self.plan_view = pn.Column(
            self.plan_summary, self.plan_table, sizing_mode="stretch_width", css_classes=["vidrag-plan"]
        )
        self.progress = IngestProgress(state)

        # on a collection shared with me as a viewer: this note instead of the form
        self.read_only = pn.pane.HTML(
            "<p>You can view this shared collection and ask it questions; only its owner and "
            "editors add videos.</p>",
            visible=False,
            sizing_mode="stretch_width",
            css_classes=["vidrag-read-only"],
        )
        self._form = pn.Column(
            self.source,
            self.upload_note,
            self.upload,
            self.captions,
            pn.Row(self.plan_button, self.ingest_button),
            self.plan_view,
            sizing_mode="stretch_width",
        )

        state.param.watch(lambda e: self.show_controls(), "role")
        self.show_controls()
        self.upload.param.watch(self._uploaded, ["value", "filename"])
        self.source.param.watch(self._source_typed, "value_input")
        self.source.param.watch(lambda e: self.guard(self.plan), "enter_pressed")
        self.plan_button.on_click(lambda e: self.guard(self.plan))
        self.ingest_button.on_click(lambda e: self.guard(self.ingest))

    def body(self) -> list:
        return [self.read_only, self._form, self.progress]

    def show_controls(self) -> None:
        """Show the form only where I may add videos (not as a viewer of a shared collection)."""
        editable = self.state.may_edit
        self._form.visible = editable
        self.read_only.visible = not editable

    # -- the upload receiver ----------------------------------------------------------------
    def _source_typed(self, event) -> None:
        if event.new and self._upload_path is not None:
            self._upload_path = None
            self.upload_note.object = UPLOAD_HINT
        self.ingest_button.disabled = True

    def _uploaded(self, *events) -> None:
        """Save a file the browser sent, then plan it.

        Served by ``panel serve`` a file's bytes and name come together; in a notebook or
        Voila (jupyter_bokeh) they come one after the other, bytes first, and the name only
        if it changed. So bytes with a name already known are saved and planned at once, and
        a name that follows is saved again under that name (the first copy, never ingested,
        is removed); the extension decides how the file is read.
        """
        changed = {e.name for e in events}
        data, name = self.upload.value, self.upload.filename
        if not data:
            return
        if len(data) > MAX_UPLOAD_MB * 1e6:
            self.say(
                f"{name or 'The file'} is {len(data) / 1e6:.0f} MB; uploads are limited to "
                f"{MAX_UPLOAD_MB} MB. Paste the lecture's URL instead, or run `vidrag ingest FILE` "
                "in a terminal.",
                "danger",
            )
            return
        if "value" not in changed and self._upload_path is not None:  # a name for bytes already here
            if self._upload_fresh:
                shutil.rmtree(self._upload_path.parent, ignore_errors=True)  # the copy under the old name
            elif self._upload_path.name == safe_filename(name or ""):
                return
        if not name:
            self.upload_note.object = "<small>Receiving the file…</small>"
            self._upload_path, self._upload_fresh = None, False
            return
        path = save_upload(Path(self.wb.settings.home), name, data)
        self._upload_path = path
        self._upload_fresh = changed == {"value"}
        self.source.value = ""
        self.upload_note.object = (
            f"<small>Uploaded <strong>{esc(path.name)}</strong> ({len(data) / 1e6:.1f} MB).</small>"
        )
        self.ingest_button.disabled = True
        self.guard(self.plan)

    def current_source(self) -> str | None:
        """The uploaded file's path, else the URL typed."""
        if self._upload_path is not None:
            return str(self._upload_path)
        text = (self.source.value_input or self.source.value or "").strip()
        return text or None

    # -- plan and ingest ----------------------------------------------------------------------
    def plan(self) -> None:
        """Check the source (a dry run on a worker thread) and show what would be added."""
        source = self.current_source()
        if not source:
            self.say("Paste a URL or upload a file first.", "warning")
            return
        captions = self.captions.value
        self.plan_summary.object = f"<em>Checking {esc(source)}…</em>"
        self.plan_table.value = pd.DataFrame(columns=PLAN_COLUMNS)  # no stale rows under "Checking"
        self.plan_button.disabled = True
        self.ingest_button.disabled = True

        def done(items):
            if self.current_source() != source:
                return  # the source changed meanwhile: its own plan is on its way
            self.plan_button.disabled = False
            self.show_plan(source, captions, items)

        def failed(exc):
            if self.current_source() != source:
                return
            self.plan_button.disabled = False
            self.plan_summary.object = (
                '<div class="vidrag-plan-error"><strong>Cannot add this:</strong> '
                f"{esc(user_message(exc))}</div>"
            )

        run_in_background(
            self.state.ui, lambda: self.wb.plan(source, captions), on_done=done, on_error=failed
        )

    def show_plan(self, source: str, captions: str, items) -> None:
        """Show the plan's items in the table, with the total estimate."""
        self._plan_key = (source, captions)
        rows = []
        total = 0.0
        for item in items:
            if item.captions:
                caps = "hand-made captions"
            elif item.auto_captions:
                caps = "automatic captions"
            else:
                caps = "no captions"
            notes = ["already ingested"] if item.already_ingested else []
            if item.error:
                notes.append(item.error)
            total += item.estimated_seconds or 0.0
            rows.append(
                {
                    "title": item.title,
                    "duration": format_time(item.duration),
                    "captions": caps,
                    "transcript from": item.transcript_source or "",
                    "estimate": f"~{item.estimated_seconds:.0f} s"
                    if item.estimated_seconds is not None
                    else "unknown",
                    "note": " · ".join(notes),
                }
            )
        self.plan_summary.object = (
            f"<div><strong>{len(items)} video(s)</strong> · estimated {format_time(total)} of work</div>"
        )
        self.plan_table.value = pd.DataFrame(rows, columns=PLAN_COLUMNS)
        self.ingest_button.label = f"Ingest {len(items)} video(s)"
        self.ingest_button.disabled = not items

    def ingest(self) -> None:
        """Ingest the planned source into the collection in focus, with live progress."""
        source = self.current_source()
        if not source or self._plan_key != (source, self.captions.value):
            self.say("Press Check first to see what will be added.", "warning")
            return
        collection = self.state.collection
        captions = self.captions.value
        self.ingest_button.disabled = True
        self.state.ingesting += 1
        self.progress.clear()
        self.say("Ingest started: you can keep working, progress shows below.", "info")
        progress = self.progress.callback()

        def done(results):
            self.state.ingesting -= 1
            ok = [r for r in results if r.status in ("done", "exists")]
            bad = [r for r in results if r.status == "failed"]
            msg = f"Ingest finished: {len(ok)} video(s) ready"
            if bad:
                msg += f", {len(bad)} failed ({esc(bad[0].error or '')})"
            self.say(msg + ".", "warning" if bad else "success")
            self.state.changed()

        def failed(exc):
            self.state.ingesting -= 1
            self.say(f"Ingest failed: {user_message(exc)}", "danger")
            self.state.changed()

        run_in_background(
            self.state.ui,
            lambda: self.wb.ingest(source, collection, captions=captions, progress=progress),
            on_done=done,
            on_error=failed,
            kind="ingest",
        )
