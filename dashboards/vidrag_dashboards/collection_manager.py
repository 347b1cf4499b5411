"""The collection manager: collections, adding videos with live progress, failed jobs, videos.

Sections, top to bottom (they wrap into one column on a phone):

- Collections: pick one, search, the table (videos, duration, role, owner, metadata), and
  a form to create, edit or delete (with confirmation).
- Add videos: a URL (video, playlist, channel, page) or an uploaded file, the captions
  choice, **Check** (the dry-run plan: titles, durations, captions, estimated time),
  then **Ingest** with one progress line per video.
- Failed ingests: the error of each, and **Retry**.
- Videos of the collection: select some to delete, tag, move or add to another
  collection, or open the transcript (click a line to play from there).

Slow calls (plan, ingest, retry) run on a worker thread; their results come back through
the session's UI queue (see ``background``).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import panel as pn

from .background import Throttle, run_in_background
from .format import clock, error_text, esc
from .state import AppState
from .transcript import TranscriptView
from .uploads import MAX_UPLOAD_MB, safe_filename, save_upload

UPLOAD_HINT = (
    f"<small>…or upload a file (up to {MAX_UPLOAD_MB} MB; for a longer lecture paste its URL, "
    "or run <code>vidrag ingest FILE</code> in a terminal)</small>"
)

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


def _card(title: str, *objects, **kwargs) -> pn.Card:
    return pn.Card(*objects, title=title, sizing_mode="stretch_width", collapsible=False, **kwargs)


def _flex(*objects, basis: str = "420px") -> pn.FlexBox:
    """Children side by side on wide screens, stacked on narrow ones."""
    for obj in objects:
        obj.styles = {**(obj.styles or {}), "flex": f"1 1 {basis}", "min-width": "0"}
    return pn.FlexBox(*objects, flex_wrap="wrap", gap="12px", sizing_mode="stretch_width")


class IngestLine(pn.viewable.Viewer):
    """One video's live progress: title, stage, percentage, message."""

    def __init__(self, title: str) -> None:
        super().__init__()
        self.title = title
        self.stage = "queued"
        self.text = pn.pane.HTML(self._html("queued", 0, ""), sizing_mode="stretch_width", margin=(0, 5))
        self.bar = pn.indicators.Progress(
            value=0, max=100, sizing_mode="stretch_width", height=12, margin=(0, 5)
        )
        self._layout = pn.Column(
            self.text, self.bar, sizing_mode="stretch_width", css_classes=["vidrag-ingest-line"]
        )

    def __panel__(self):
        return self._layout

    def _html(self, stage: str, pct: int, message: str) -> str:
        label = STAGE_LABELS.get(stage, stage)
        color = {"done": "#1a7f37", "failed": "#cf222e"}.get(stage, "inherit")
        msg = f" · {esc(message)}" if message else ""
        return (
            f'<div class="vidrag-progress" data-stage="{esc(stage)}"><strong>{esc(self.title)}</strong> — '
            f'<span style="color:{color}">{esc(label)}</span> {pct}%{msg}</div>'
        )

    def update(self, event) -> None:
        self.stage = event.stage
        pct = int(round(float(event.fraction) * 100))
        self.text.object = self._html(event.stage, pct, event.message or "")
        self.bar.value = pct
        self.bar.bar_color = {"done": "success", "failed": "danger"}.get(event.stage, "primary")


class CollectionManager(pn.viewable.Viewer):
    """Manage collections and their videos. Build with an :class:`AppState`."""

    def __init__(self, state: AppState, **params) -> None:
        super().__init__(**params)
        self.state = state
        self.wb = state.wb
        self._plan_source: str | None = None
        self._plan_key: tuple | None = None
        self._upload_path: Path | None = None
        self._upload_fresh = False  # saved under a name that a following filename event may correct
        self._lines: dict[str, IngestLine] = {}
        self._confirm_action = None

        # -- collections ----------------------------------------------------------------
        self.status = pn.pane.Alert("", alert_type="info", visible=False, sizing_mode="stretch_width")
        self.picker = pn.widgets.Select(label="Collection", options={}, sizing_mode="stretch_width")
        self.search = pn.widgets.TextInput(
            label="Search collections",
            placeholder="name, instructor, subject, semester, tag…",
            sizing_mode="stretch_width",
        )
        self.collections_table = pn.widgets.Tabulator(
            pd.DataFrame(),
            show_index=False,
            disabled=True,
            selectable=1,
            sizing_mode="stretch_width",
            max_height=260,
            layout="fit_data_stretch",
            hidden_columns=["id"],
            css_classes=["vidrag-collections"],
        )
        self.f_name = pn.widgets.TextInput(label="Name", sizing_mode="stretch_width")
        self.f_description = pn.widgets.TextInput(label="Description", sizing_mode="stretch_width")
        self.f_instructor = pn.widgets.TextInput(label="Instructor", sizing_mode="stretch_width")
        self.f_subject = pn.widgets.TextInput(label="Subject", sizing_mode="stretch_width")
        self.f_semester = pn.widgets.TextInput(label="Semester", sizing_mode="stretch_width")
        self.f_tags = pn.widgets.TextInput(label="Tags (comma separated)", sizing_mode="stretch_width")
        self.new_button = pn.widgets.Button(label="New collection", color="default")
        self.create_button = pn.widgets.Button(label="Create collection", color="primary")
        self.save_button = pn.widgets.Button(label="Save changes", color="default")
        self.delete_collection_button = pn.widgets.Button(label="Delete collection", color="danger")
        self.confirm_text = pn.pane.HTML("", sizing_mode="stretch_width")
        self.confirm_button = pn.widgets.Button(label="Confirm", color="danger")
        self.cancel_button = pn.widgets.Button(label="Cancel")
        self.confirm_row = pn.Column(
            self.confirm_text,
            pn.Row(self.confirm_button, self.cancel_button),
            visible=False,
            sizing_mode="stretch_width",
            css_classes=["vidrag-confirm"],
        )

        # -- add videos -------------------------------------------------------------------
        self.source = pn.widgets.TextInput(
            label="Video, playlist or channel URL",
            placeholder="https://www.youtube.com/watch?v=…",
            sizing_mode="stretch_width",
        )
        self.upload = pn.widgets.FileInput(
            accept=".mp4,.m4v,.webm,.mkv,.mov,.m4a,.mp3,.wav,.ogg,.opus,.flac", sizing_mode="stretch_width"
        )
        self.upload_note = pn.pane.HTML(UPLOAD_HINT, sizing_mode="stretch_width")
        self.captions = pn.widgets.Select(
            label="Transcript from",
            options=CAPTION_CHOICES,
            value=self.wb.settings.captions,
            sizing_mode="stretch_width",
        )
        self.plan_button = pn.widgets.Button(label="Check", color="primary")
        self.ingest_button = pn.widgets.Button(label="Ingest", color="success", disabled=True)
        self.plan_view = pn.pane.HTML("", sizing_mode="stretch_width", css_classes=["vidrag-plan"])
        self.progress = pn.Column(sizing_mode="stretch_width", css_classes=["vidrag-progress-list"])

        # -- failed jobs ------------------------------------------------------------------
        self.jobs_table = pn.widgets.Tabulator(
            pd.DataFrame(),
            show_index=False,
            disabled=True,
            selectable=1,
            sizing_mode="stretch_width",
            max_height=220,
            layout="fit_data_stretch",
            hidden_columns=["id"],
            css_classes=["vidrag-failed-jobs"],
        )
        self.retry_button = pn.widgets.Button(label="Retry", color="warning", disabled=True)
        self.jobs_note = pn.pane.HTML("", sizing_mode="stretch_width")

        # -- videos -----------------------------------------------------------------------
        self.video_search = pn.widgets.TextInput(
            label="Filter videos", placeholder="title or tag", sizing_mode="stretch_width"
        )
        self.videos_table = pn.widgets.Tabulator(
            pd.DataFrame(),
            show_index=False,
            disabled=True,
            selectable="checkbox",
            sizing_mode="stretch_width",
            max_height=320,
            layout="fit_data_stretch",
            hidden_columns=["id"],
            css_classes=["vidrag-videos"],
        )
        self.delete_videos_button = pn.widgets.Button(label="Delete selected", color="danger")
        self.tags_input = pn.widgets.TextInput(
            label="Tags for selected", placeholder="week1, exam", sizing_mode="stretch_width"
        )
        self.tags_button = pn.widgets.Button(label="Set tags")
        self.target = pn.widgets.Select(label="Other collection", options={}, sizing_mode="stretch_width")
        self.move_button = pn.widgets.Button(label="Move there")
        self.add_to_button = pn.widgets.Button(label="Add there too")
        self.transcript_button = pn.widgets.Button(label="Transcript", color="primary")
        self.transcript = TranscriptView(self.wb)

        self._wire()
        self.refresh()
        self._layout = self._build()

    # -- layout -----------------------------------------------------------------------------
    def _build(self):
        collections = _card(
            "Collections",
            pn.FlexBox(self.picker, self.search, flex_wrap="wrap", sizing_mode="stretch_width"),
            self.collections_table,
            pn.pane.Markdown(
                "**Details** of the selected collection, to edit; or press *New collection*, fill in and create:",
                margin=(10, 5, 0, 5),
            ),
            _flex(self.f_name, self.f_description, basis="260px"),
            _flex(self.f_instructor, self.f_subject, self.f_semester, self.f_tags, basis="180px"),
            pn.FlexBox(
                self.new_button,
                self.create_button,
                self.save_button,
                self.delete_collection_button,
                flex_wrap="wrap",
            ),
        )
        add = _card(
            "Add videos",
            self.source,
            self.upload_note,
            self.upload,
            self.captions,
            pn.Row(self.plan_button, self.ingest_button),
            self.plan_view,
            self.progress,
        )
        failed = _card("Failed ingests", self.jobs_note, self.jobs_table, self.retry_button)
        videos = _card(
            "Videos in this collection",
            self.video_search,
            self.videos_table,
            pn.FlexBox(self.transcript_button, self.delete_videos_button, flex_wrap="wrap"),
            _flex(self.tags_input, pn.Column(pn.Spacer(height=18), self.tags_button), basis="160px"),
            _flex(
                self.target,
                pn.Column(pn.Spacer(height=18), pn.Row(self.move_button, self.add_to_button)),
                basis="200px",
            ),
        )
        transcript = _card("Transcript", self.transcript)
        left = pn.Column(collections, add, failed, sizing_mode="stretch_width")
        right = pn.Column(videos, transcript, sizing_mode="stretch_width")
        return pn.Column(
            self.status, self.confirm_row, _flex(left, right, basis="460px"), sizing_mode="stretch_width"
        )

    def __panel__(self):
        return self._layout

    # -- wiring -----------------------------------------------------------------------------
    def _wire(self) -> None:
        self.picker.param.watch(self._picked, "value")
        self.search.param.watch(lambda e: self.refresh_collections(), "value_input")
        self.collections_table.param.watch(self._table_selected, "selection")
        self.new_button.on_click(lambda e: self._clear_form())
        self.create_button.on_click(lambda e: self._guard(self._create))
        self.save_button.on_click(lambda e: self._guard(self._save))
        self.delete_collection_button.on_click(lambda e: self._guard(self._ask_delete_collection))
        self.confirm_button.on_click(lambda e: self._guard(self._confirmed))
        self.cancel_button.on_click(lambda e: self._hide_confirm())
        self.upload.param.watch(self._uploaded, ["value", "filename"])
        self.source.param.watch(self._source_typed, "value_input")
        self.source.param.watch(lambda e: self._guard(self._plan), "enter_pressed")
        self.plan_button.on_click(lambda e: self._guard(self._plan))
        self.ingest_button.on_click(lambda e: self._guard(self._ingest))
        self.jobs_table.param.watch(lambda e: setattr(self.retry_button, "disabled", not e.new), "selection")
        self.retry_button.on_click(lambda e: self._guard(self._retry))
        self.video_search.param.watch(lambda e: self.refresh_videos(), "value_input")
        self.delete_videos_button.on_click(lambda e: self._guard(self._ask_delete_videos))
        self.tags_button.on_click(lambda e: self._guard(self._set_tags))
        self.move_button.on_click(lambda e: self._guard(self._move, keep=False))
        self.add_to_button.on_click(lambda e: self._guard(self._move, keep=True))
        self.transcript_button.on_click(lambda e: self._guard(self._show_transcript))
        self.state.param.watch(lambda e: self.refresh(), "revision")

    def _guard(self, fn, *args, **kwargs) -> None:
        """Run a UI action; a VidragError (or anything else) becomes a message, never a traceback."""
        try:
            fn(*args, **kwargs)
        except Exception as exc:
            self.say(error_text(exc), "danger")

    def say(self, message: str, kind: str = "info") -> None:
        """Show a message above the manager (kind: info, success, warning, danger)."""
        self.status.param.update(object=message, alert_type=kind, visible=bool(message))

    # -- refresh ----------------------------------------------------------------------------
    def refresh(self) -> None:
        """Reload collections, videos and failed jobs from the catalog."""
        self.refresh_collections()
        self.refresh_videos()
        self.refresh_jobs()

    def refresh_collections(self) -> None:
        infos = self.wb.collections.list(search=self.search.value_input or None)
        everything = self.wb.collections.list()
        options = {c.name: c.id for c in everything}
        current = self.state.collection
        if current not in options.values():
            named = [c for c in everything if not c.is_default] or everything
            current = named[0].id if named else None
        self.picker.options = options
        self.target.options = options
        self.picker.value = current
        if self.state.collection != current:
            self.state.collection = current
        self.collections_table.value = pd.DataFrame(
            [
                {
                    "name": c.name,
                    "videos": c.video_count,
                    "duration": clock(c.total_duration),
                    "role": c.role,
                    "owner": c.owner,
                    "instructor": c.instructor or "",
                    "subject": c.subject or "",
                    "semester": c.semester or "",
                    "tags": ", ".join(c.tags),
                    "id": c.id,
                }
                for c in infos
            ],
            columns=[
                "name",
                "videos",
                "duration",
                "role",
                "owner",
                "instructor",
                "subject",
                "semester",
                "tags",
                "id",
            ],
        )
        self._fill_form()

    def _fill_form(self) -> None:
        if not self.state.collection:
            return
        info = self.wb.collections.get(self.state.collection)
        self.f_name.value = info.name
        self.f_description.value = info.description
        self.f_instructor.value = info.instructor or ""
        self.f_subject.value = info.subject or ""
        self.f_semester.value = info.semester or ""
        self.f_tags.value = ", ".join(info.tags)

    def _clear_form(self) -> None:
        """Empty the details, so a new collection does not start as a copy of the selected one."""
        for field in (
            self.f_name,
            self.f_description,
            self.f_instructor,
            self.f_subject,
            self.f_semester,
            self.f_tags,
        ):
            field.value = ""

    def refresh_videos(self) -> None:
        if not self.state.collection:
            self.videos_table.value = pd.DataFrame()
            return
        videos = self.wb.videos.list(self.state.collection, search=self.video_search.value_input or None)
        self._video_ids = [v.id for v in videos]
        self.videos_table.value = pd.DataFrame(
            [
                {
                    "title": v.title,
                    "duration": clock(v.duration),
                    "status": v.status,
                    "transcript": v.transcript_source or "",
                    "tags": ", ".join(v.tags),
                    "collections": ", ".join(v.collections),
                    "id": v.id,
                }
                for v in videos
            ],
            columns=["title", "duration", "status", "transcript", "tags", "collections", "id"],
        )
        self.videos_table.selection = []

    def refresh_jobs(self) -> None:
        jobs = self.wb.jobs.list(state="failed", limit=50)
        self.jobs_table.value = pd.DataFrame(
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
            columns=["title", "error", "source", "when", "id"],
        )
        self.jobs_note.object = (
            f"<small>{len(jobs)} ingest(s) failed. Select one and press Retry.</small>"
            if jobs
            else "<small>No failed ingests.</small>"
        )
        self.retry_button.disabled = True

    # -- collections ------------------------------------------------------------------------
    def _picked(self, event) -> None:
        if event.new and event.new != self.state.collection:
            self.state.collection = event.new
            self._fill_form()
            self.refresh_videos()

    def _table_selected(self, event) -> None:
        if not event.new:
            return
        row = self.collections_table.value.iloc[event.new[0]]
        self.picker.value = row["id"]

    def _meta(self) -> dict:
        tags = [t.strip() for t in self.f_tags.value.split(",") if t.strip()]
        return {
            "instructor": self.f_instructor.value or None,
            "subject": self.f_subject.value or None,
            "semester": self.f_semester.value or None,
            "tags": tags,
        }

    def _create(self) -> None:
        info = self.wb.collections.create(self.f_name.value, self.f_description.value, **self._meta())
        self.state.collection = info.id
        self.state.changed()
        self.say(f"Created collection “{info.name}”.", "success")

    def _save(self) -> None:
        if not self.state.collection:
            return
        info = self.wb.collections.update(
            self.state.collection,
            name=self.f_name.value,
            description=self.f_description.value,
            **self._meta(),
        )
        self.state.changed()
        self.say(f"Saved “{info.name}”.", "success")

    def _ask_delete_collection(self) -> None:
        if not self.state.collection:
            return
        info = self.wb.collections.get(self.state.collection)
        self._confirm(
            f"Delete the collection <strong>{esc(info.name)}</strong> with its index? "
            f"Its {info.video_count} video(s) are deleted too unless they also belong to another collection.",
            lambda: self._delete_collection(info.id, info.name),
        )

    def _delete_collection(self, collection_id: str, name: str) -> None:
        deleted = self.wb.collections.delete(collection_id)
        self.state.collection = None
        self.state.changed()
        self.say(f"Deleted “{name}” ({len(deleted)} video(s) removed).", "success")

    # -- confirmation -------------------------------------------------------------------------
    def _confirm(self, html: str, action) -> None:
        self._confirm_action = action
        self.confirm_text.object = html
        self.confirm_row.visible = True

    def _confirmed(self) -> None:
        action, self._confirm_action = self._confirm_action, None
        self._hide_confirm()
        if action is not None:
            action()

    def _hide_confirm(self) -> None:
        self.confirm_row.visible = False
        self._confirm_action = None

    # -- adding videos ----------------------------------------------------------------------
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
        self._plan()

    def _current_source(self) -> str | None:
        if self._upload_path is not None:
            return str(self._upload_path)
        text = (self.source.value_input or self.source.value or "").strip()
        return text or None

    def _plan(self) -> None:
        source = self._current_source()
        if not source:
            self.say("Paste a URL or upload a file first.", "warning")
            return
        captions = self.captions.value
        self.plan_view.object = f"<em>Checking {esc(source)}…</em>"
        self.plan_button.disabled = True
        self.ingest_button.disabled = True

        def done(items):
            if self._current_source() != source:
                return  # the source changed meanwhile: its own plan is on its way
            self.plan_button.disabled = False
            self._show_plan(source, captions, items)

        def failed(exc):
            if self._current_source() != source:
                return
            self.plan_button.disabled = False
            self.plan_view.object = f'<div class="vidrag-plan-error"><strong>Cannot add this:</strong> {esc(error_text(exc))}</div>'

        run_in_background(
            self.state.ui, lambda: self.wb.plan(source, captions), on_done=done, on_error=failed
        )

    def _show_plan(self, source: str, captions: str, items) -> None:
        self._plan_source = source
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
            note = " · already ingested" if item.already_ingested else ""
            if item.error:
                note += f' · <span style="color:#cf222e">{esc(item.error)}</span>'
            est = f"~{item.estimated_seconds:.0f} s" if item.estimated_seconds is not None else "unknown"
            total += item.estimated_seconds or 0.0
            rows.append(
                f"<tr><td>{esc(item.title)}</td><td>{clock(item.duration)}</td><td>{caps}</td>"
                f"<td>{esc(item.transcript_source)}</td><td>{est}{note}</td></tr>"
            )
        self.plan_view.object = (
            f"<div><strong>{len(items)} video(s)</strong> · estimated {clock(total)} of work</div>"
            '<div style="overflow-x:auto"><table class="vidrag-plan-table"><thead><tr><th>Title</th><th>Duration</th>'
            "<th>Captions</th><th>Transcript from</th><th>Estimate</th></tr></thead><tbody>"
            + "".join(rows)
            + "</tbody></table></div>"
        )
        self.ingest_button.label = f"Ingest {len(items)} video(s)"
        self.ingest_button.disabled = not items

    def _line(self, event) -> IngestLine:
        key = event.video_id or event.title or "?"
        line = self._lines.get(key)
        if line is None:
            line = IngestLine(event.title or "video")
            line._throttle = Throttle(self.state.ui, line.update)
            self._lines[key] = line
            self.progress.append(line)
        return line

    def _progress_callback(self):
        """A ProgressEvent callback for the worker thread: lines are created and updated on the UI side."""

        def report(event) -> None:
            def apply():
                # every event goes through the line's throttle: the latest one always lands last,
                # so a queued "indexing" can never overwrite "done"
                self._line(event)._throttle.push(event)

            self.state.ui.put(apply)

        return report

    def _ingest(self) -> None:
        source = self._current_source()
        if not source or self._plan_key != (source, self.captions.value):
            self.say("Press Check first to see what will be added.", "warning")
            return
        collection = self.state.collection
        captions = self.captions.value
        self.ingest_button.disabled = True
        self.state.ingesting += 1
        self.progress.clear()
        self._lines.clear()
        self.say("Ingest started: you can keep working, progress shows below.", "info")
        progress = self._progress_callback()

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
            self.say(f"Ingest failed: {error_text(exc)}", "danger")
            self.state.changed()

        run_in_background(
            self.state.ui,
            lambda: self.wb.ingest(source, collection, captions=captions, progress=progress),
            on_done=done,
            on_error=failed,
            kind="ingest",
        )

    def _retry(self) -> None:
        if not self.jobs_table.selection:
            return
        job_id = self.jobs_table.value.iloc[self.jobs_table.selection[0]]["id"]
        self.retry_button.disabled = True
        self.state.ingesting += 1
        progress = self._progress_callback()

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
            self.say(f"Retry failed: {error_text(exc)}", "danger")
            self.state.changed()

        run_in_background(
            self.state.ui,
            lambda: self.wb.jobs.retry(job_id, progress=progress),
            on_done=done,
            on_error=failed,
            kind="ingest",
        )

    # -- videos -----------------------------------------------------------------------------
    def selected_video_ids(self) -> list[str]:
        table = self.videos_table
        if table.value is None or table.value.empty:
            return []
        return [table.value.iloc[i]["id"] for i in table.selection if i < len(table.value)]

    def _need_selection(self) -> list[str]:
        ids = self.selected_video_ids()
        if not ids:
            self.say("Select one or more videos in the table first.", "warning")
        return ids

    def _ask_delete_videos(self) -> None:
        ids = self._need_selection()
        if not ids:
            return
        titles = ", ".join(esc(self.wb.videos.get(v).title) for v in ids[:5])
        self._confirm(
            f"Delete {len(ids)} video(s) ({titles}) everywhere, with their transcripts and index entries?",
            lambda: self._delete_videos(ids),
        )

    def _delete_videos(self, ids: list[str]) -> None:
        n = self.wb.videos.delete(ids)
        self.state.changed()
        self.say(f"Deleted {n} video(s).", "success")

    def _set_tags(self) -> None:
        ids = self._need_selection()
        tags = [t.strip() for t in self.tags_input.value.split(",") if t.strip()]
        for vid in ids:
            self.wb.videos.set_tags(vid, tags)
        if ids:
            self.state.changed()
            self.say(f"Tagged {len(ids)} video(s): {', '.join(tags) or '(no tags)'}.", "success")

    def _move(self, keep: bool) -> None:
        ids = self._need_selection()
        target = self.target.value
        if not ids or not target:
            return
        if target == self.state.collection:
            self.say("Pick a different collection to move or add to.", "warning")
            return
        name = self.wb.collections.get(target).name
        if keep:
            n = self.wb.videos.add_to(target, ids)
            self.say(f"Added {n} video(s) to “{name}”.", "success")
        else:
            n = self.wb.videos.move(ids, self.state.collection, target)
            self.say(f"Moved {n} video(s) to “{name}”.", "success")
        self.state.changed()

    def _show_transcript(self) -> None:
        ids = self._need_selection()
        if ids:
            self.transcript.show(ids[0])
