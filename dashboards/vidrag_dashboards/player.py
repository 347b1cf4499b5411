"""A video player that can be told "play this video from second N".

:class:`MediaElement` is a small JSComponent around an HTML5 ``<video>`` (also used for
audio-only lectures) or a YouTube embed. Python sets ``src`` and ``start`` and bumps
``seek``; the browser seeks (once metadata is loaded, if need be) and plays. The element
reports ``current_time`` back, throttled. :class:`Player` adds a title line and the
fallback link for videos that cannot be embedded.
"""

from __future__ import annotations

import panel as pn
import param
from panel.custom import JSComponent

from vidrag_kernel import format_time

from .format import esc
from .media import playable


class MediaElement(JSComponent):
    """``<video>`` or YouTube ``<iframe>`` that seeks to ``start`` whenever ``seek`` changes."""

    kind = param.Selector(default="none", objects=["none", "video", "youtube"])
    src = param.String(default="")
    start = param.Number(default=0.0)
    seek = param.Integer(default=0, doc="Bump to seek to ``start`` again (same second twice).")
    autoplay = param.Boolean(default=True)
    current_time = param.Number(default=0.0, doc="Where the browser's player is (throttled).")

    _esm = """
    export function render({ model, el }) {
      const box = document.createElement("div")
      box.className = "vidrag-player"
      box.style.width = "100%"
      let media = null
      let pending = null
      let last = 0

      function seekNow() {
        if (!media || pending === null) { return }
        if (model.kind === "youtube") { return }
        try { media.currentTime = pending } catch (e) { return }
        if (media.readyState >= 1) { pending = null }
        if (model.autoplay) {
          // browsers may refuse to start sound without a user gesture: seeking still works
          const p = media.play()
          if (p && p.catch) { p.catch(() => {}) }
        }
      }

      function build() {
        box.innerHTML = ""
        media = null
        if (model.kind === "video" && model.src) {
          media = document.createElement("video")
          media.controls = true
          media.preload = "metadata"
          media.playsInline = true
          media.style.width = "100%"
          media.style.maxHeight = "360px"
          media.style.background = "#000"
          media.addEventListener("loadedmetadata", seekNow)
          media.addEventListener("timeupdate", () => {
            const now = Date.now()
            if (now - last > 500) { last = now; model.current_time = media.currentTime }
          })
          media.addEventListener("seeked", () => { model.current_time = media.currentTime })
          media.src = model.src
          box.appendChild(media)
        } else if (model.kind === "youtube" && model.src) {
          const frame = document.createElement("iframe")
          const start = Math.max(0, Math.floor(model.start))
          frame.src = `${model.src}?start=${start}&autoplay=${model.autoplay ? 1 : 0}`
          frame.allow = "autoplay; encrypted-media; picture-in-picture"
          frame.allowFullscreen = true
          frame.style.width = "100%"
          frame.style.aspectRatio = "16 / 9"
          frame.style.border = "0"
          box.appendChild(frame)
        }
      }

      function go() {
        if (model.kind === "youtube") { build(); return }
        pending = model.start
        seekNow()
      }

      model.on("src", () => { build(); go() })
      model.on("kind", () => { build(); go() })
      model.on("seek", go)
      model.on("start", go)
      build()
      pending = model.start
      seekNow()
      return box
    }
    """


class Player(pn.viewable.Viewer):
    """A titled player for the Workbench's videos: ``play(video_id, seconds)``."""

    video_id = param.String(default=None, allow_None=True)
    time = param.Number(default=0.0, doc="The second last asked for.")

    def __init__(self, wb, name: str = "player", **params) -> None:
        super().__init__(name=name, **params)
        self._wb = wb
        # the class names the player for tests and custom CSS: vidrag-player-chat, -transcript
        self.element = MediaElement(
            sizing_mode="stretch_width", min_height=60, css_classes=[f"vidrag-player-{self.name}"]
        )
        self.caption = pn.pane.HTML(
            "<em>Pick a citation or a transcript line to play the video from there.</em>",
            sizing_mode="stretch_width",
            css_classes=["vidrag-player-caption"],
        )
        self._layout = pn.Column(self.element, self.caption, sizing_mode="stretch_width")

    def __panel__(self):
        return self._layout

    def play(self, video_id: str, seconds: float, *, title: str | None = None) -> None:
        """Show ``video_id`` and seek it to ``seconds``."""
        video = self._wb.videos.get(video_id)
        where = playable(self._wb, video, rel_path=pn.state.rel_path)
        seconds = max(0.0, float(seconds))
        link = video.link(seconds) if where.page else ""
        title_html = f"<strong>{esc(title or video.title)}</strong> at {format_time(seconds)}"
        if link:
            title_html += f' · <a href="{esc(link)}" target="_blank" rel="noopener">open the source</a>'
        if where.kind == "none":
            title_html += f"<br><em>{esc(where.note)}</em>"
        self.caption.object = title_html
        el = self.element
        if (el.kind, el.src) != (where.kind, where.src):
            el.param.update(kind=where.kind, src=where.src, start=seconds)
        else:
            el.start = seconds
            el.seek += 1
        self.param.update(video_id=video_id, time=seconds)
