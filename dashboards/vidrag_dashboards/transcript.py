"""A video's transcript with timestamps; clicking a line plays the video from there.

An owner or editor of the collection in focus can correct the line they clicked: the
kernel (``wb.videos.correct``) stores the fix and rebuilds the video's passages, so the
corrected words are searchable at once and stay over later transcripts.
"""

from __future__ import annotations

import pandas as pd
import panel as pn
import param

from vidrag_kernel import format_time

from .controls import button, table
from .feedback import user_message
from .player import Player


class TranscriptView(pn.viewable.Viewer):
    """The transcript of ``video_id`` beside a player. ``show(video_id)`` loads one."""

    video_id = param.String(default=None, allow_None=True)

    #: whether the correction box is offered (owners and editors; follows ``state.role``)
    editable = param.Boolean(default=True)

    def __init__(self, wb, player: Player | None = None, *, state=None, **params) -> None:
        super().__init__(**params)
        self._wb = wb
        self.player = player or Player(wb, name="transcript")
        self.title = pn.pane.Markdown("Select a video and press **Transcript** to read it here.")
        self.table = table(
            pd.DataFrame({"time": [], "text": []}),
            selectable=False,
            height=320,
            layout="fit_columns",
            widths={"time": 70},
            hidden_columns=["start"],
            css_classes=["vidrag-transcript"],
        )
        self.table.on_click(self._clicked)
        self._starts: list[float] = []
        self._line: int | None = None  # the line clicked last, offered for correction
        self.line_text = pn.widgets.TextAreaInput(
            label="Correct the line you clicked", placeholder="Click a line, fix its words here", disabled=True,
            sizing_mode="stretch_width", height=80,
        )  # fmt: skip
        self.save_line = button("Save correction", "primary", disabled=True)
        self.save_line.on_click(lambda e: self.save_correction())
        self.said = pn.pane.Markdown("", css_classes=["vidrag-correction-said"])
        self._editor = pn.Column(self.line_text, self.save_line, self.said, sizing_mode="stretch_width")
        self._layout = pn.Column(
            self.title, self.player, self.table, self._editor, sizing_mode="stretch_width"
        )
        if state is not None:
            state.param.watch(lambda e: self._follow(e.new), "role")
            self._follow(state.role)
        self.param.watch(lambda e: setattr(self._editor, "visible", e.new), "editable")

    def __panel__(self):
        return self._layout

    def show(self, video_id: str) -> None:
        """Load ``video_id``'s transcript (segments with start, end, text)."""
        try:
            video = self._wb.videos.get(video_id)
            rows = self._wb.videos.segments(video_id)
        except Exception as exc:  # a deleted video, a bad id: say so, keep the view alive
            self.title.object = f"**Transcript unavailable:** {user_message(exc)}"
            return
        self.video_id = video_id
        self._line = None
        self.line_text.value, self.line_text.disabled, self.save_line.disabled = "", True, True
        self._starts = [float(r.start) for r in rows]
        self.table.value = pd.DataFrame(
            {
                "time": [format_time(r.start) for r in rows],
                "text": [r.text for r in rows],
                "start": self._starts,
            }
        )
        if rows:
            self.title.object = f"### {video.title}\n{len(rows)} lines · click a line to play from there"
        else:
            self.title.object = f"### {video.title}\nNo transcript yet (status: {video.status})."

    def _follow(self, role: str | None) -> None:
        self.editable = role in ("owner", "editor")

    def _clicked(self, event) -> None:
        if self.video_id is None or event.row is None or event.row >= len(self._starts):
            return
        self._line = event.row
        self.line_text.value = str(self.table.value.iloc[event.row]["text"])
        self.line_text.disabled = self.save_line.disabled = False
        self.said.object = f"Correcting the line at {format_time(self._starts[event.row])}."
        self.player.play(self.video_id, self._starts[event.row])

    def save_correction(self) -> None:
        """Store the corrected text of the clicked line and show the transcript again."""
        if self.video_id is None or self._line is None:
            return
        line, video_id = self._line, self.video_id
        try:
            self._wb.videos.correct(video_id, line, self.line_text.value)
        except Exception as exc:  # a viewer, an empty line, a deleted video: said, not raised
            self.said.object = f"**Not saved:** {user_message(exc)}"
            return
        self.show(video_id)
        self.said.object = (
            f"Saved the line at {format_time(self._starts[line])}: search finds the corrected words now."
        )
