"""The Videos card: the videos of the collection in focus; select some to delete, tag, move
or add to another collection, or open one's transcript (click a line to play from there)."""

from __future__ import annotations

import pandas as pd
import panel as pn

from vidrag_kernel import format_time

from .card import Card, flex
from .controls import button, table
from .format import esc
from .transcript import TranscriptView

COLUMNS = ["title", "duration", "status", "transcript", "tags", "collections", "id"]


class VideosCard(Card):
    """The collection's videos with bulk actions; the transcript opens in ``transcript``."""

    title = "Videos in this collection"

    def __init__(self, state, notices=None, *, transcript: TranscriptView | None = None, **params) -> None:
        super().__init__(state, notices, **params)
        self.transcript = transcript or TranscriptView(self.wb)
        self.search = pn.widgets.TextInput(
            label="Filter videos", placeholder="title or tag", sizing_mode="stretch_width"
        )
        self.table = table(
            pd.DataFrame(columns=COLUMNS),
            selectable="checkbox",
            max_height=320,
            layout="fit_data_stretch",
            hidden_columns=["id"],
            css_classes=["vidrag-videos"],
        )
        self.delete_button = button("Delete selected", "danger")
        self.tags_input = pn.widgets.TextInput(
            label="Tags for selected", placeholder="week1, exam", sizing_mode="stretch_width"
        )
        self.tags_button = button("Set tags")
        self.target = pn.widgets.Select(label="Other collection", options={}, sizing_mode="stretch_width")
        self.move_button = button("Move there")
        self.add_to_button = button("Add there too")
        self.transcript_button = button("Transcript", "primary")
        self._tagging = flex(
            self.tags_input, pn.Column(pn.Spacer(height=18), self.tags_button), basis="160px"
        )
        self._moving = flex(
            self.target,
            pn.Column(pn.Spacer(height=18), pn.Row(self.move_button, self.add_to_button)),
            basis="200px",
        )

        self.search.param.watch(lambda e: self.guard(self.refresh), "value_input")
        self.delete_button.on_click(lambda e: self.guard(self.ask_delete))
        self.tags_button.on_click(lambda e: self.guard(self.set_tags))
        self.move_button.on_click(lambda e: self.guard(self.move, keep=False))
        self.add_to_button.on_click(lambda e: self.guard(self.move, keep=True))
        self.transcript_button.on_click(lambda e: self.guard(self.show_transcript))
        state.param.watch(lambda e: self.guard(self.refresh), ["revision", "collection"])
        state.param.watch(lambda e: self.show_controls(), "role")
        self.show_controls()
        self.refresh()

    def body(self) -> list:
        return [
            self.search,
            self.table,
            pn.FlexBox(self.transcript_button, self.delete_button, flex_wrap="wrap"),
            self._tagging,
            self._moving,
        ]

    def show_controls(self) -> None:
        """Only reading (the transcript) on a collection shared with me as a viewer."""
        editable = self.state.may_edit
        for control in (self.delete_button, self._tagging, self._moving):
            control.visible = editable

    def refresh(self) -> None:
        """Reload the videos of the collection in focus and the other collections."""
        self.target.options = {c.name: c.id for c in self.wb.collections.list()}
        if not self.state.collection:
            self.table.value = pd.DataFrame(columns=COLUMNS)
            return
        videos = self.wb.videos.list(self.state.collection, search=self.search.value_input or None)
        self.table.value = pd.DataFrame(
            [
                {
                    "title": v.title,
                    "duration": format_time(v.duration),
                    "status": v.status,
                    "transcript": v.transcript_source or "",
                    "tags": ", ".join(v.tags),
                    "collections": ", ".join(v.collections),
                    "id": v.id,
                }
                for v in videos
            ],
            columns=COLUMNS,
        )
        self.table.selection = []

    def selected_ids(self) -> list[str]:
        """The ids of the videos ticked in the table."""
        table = self.table
        if table.value is None or table.value.empty:
            return []
        return [table.value.iloc[i]["id"] for i in table.selection if i < len(table.value)]

    def _need_selection(self) -> list[str]:
        ids = self.selected_ids()
        if not ids:
            self.say("Select one or more videos in the table first.", "warning")
        return ids

    def ask_delete(self) -> None:
        """Ask to confirm deleting the selected videos everywhere."""
        ids = self._need_selection()
        if not ids:
            return
        titles = ", ".join(esc(self.wb.videos.get(v).title) for v in ids[:5])
        self.notices.confirm(
            f"Delete {len(ids)} video(s) ({titles}) everywhere, with their transcripts and index entries?",
            lambda: self._delete(ids),
        )

    def _delete(self, ids: list[str]) -> None:
        n = self.wb.videos.delete(ids)
        self.state.changed()
        self.say(f"Deleted {n} video(s).", "success")

    def set_tags(self) -> None:
        """Give the selected videos the tags typed."""
        ids = self._need_selection()
        tags = [t.strip() for t in self.tags_input.value.split(",") if t.strip()]
        for vid in ids:
            self.wb.videos.set_tags(vid, tags)
        if ids:
            self.state.changed()
            self.say(f"Tagged {len(ids)} video(s): {', '.join(tags) or '(no tags)'}.", "success")

    def move(self, keep: bool) -> None:
        """Move the selected videos to the other collection (``keep``: add them there too)."""
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

    def show_transcript(self) -> None:
        """Open the first selected video's transcript."""
        ids = self._need_selection()
        if ids:
            self.transcript.show(ids[0])
