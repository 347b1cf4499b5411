"""A video's transcript with timestamps; clicking a line plays the video from there."""

from __future__ import annotations

import pandas as pd
import panel as pn
import param

from vidrag_kernel import format_time

from .controls import table
from .feedback import user_message
from .player import Player


class TranscriptView(pn.viewable.Viewer):
    """The transcript of ``video_id`` beside a player. ``show(video_id)`` loads one."""

    video_id = param.String(default=None, allow_None=True)

    def __init__(self, wb, player: Player | None = None, **params) -> None:
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
        self._layout = pn.Column(self.title, self.player, self.table, sizing_mode="stretch_width")

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

    def _clicked(self, event) -> None:
        if self.video_id is None or event.row is None or event.row >= len(self._starts):
            return
        self.player.play(self.video_id, self._starts[event.row])
