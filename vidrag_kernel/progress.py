"""Progress reporting for long work.

The library reports through a plain callback so that the CLI (tqdm), notebooks
(tqdm.auto) and dashboards (live widgets) can each show it their own way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

STAGES = ("queued", "fetching", "transcribing", "chunking", "embedding", "indexing", "done", "failed")


@dataclass(frozen=True)
class ProgressEvent:
    """One step of progress: which stage, how far (0..1) and for what."""

    stage: str
    fraction: float
    message: str = ""
    video_id: str | None = None
    title: str | None = None


ProgressCallback = Callable[[ProgressEvent], None]
#: What one stage reports through: ``report(fraction, message)``.
Reporter = Callable[[float, str], None]


def silent(_event: ProgressEvent) -> None:
    """The default callback: report nothing."""


def scaled(callback: ProgressCallback, stage: str, **fields) -> Reporter:
    """A ``report(fraction, message)`` helper bound to one stage and video."""

    def report(fraction: float, message: str = "") -> None:
        callback(ProgressEvent(stage, max(0.0, min(1.0, fraction)), message, **fields))

    return report


def tqdm_progress(*, notebook: bool | None = None) -> ProgressCallback:
    """A callback drawing one tqdm bar per video and stage (tqdm.auto picks notebook widgets)."""
    if notebook is None or notebook:
        from tqdm.auto import tqdm
    else:
        from tqdm import tqdm

    state: dict = {"bar": None, "key": None}

    def report(event: ProgressEvent) -> None:
        key = (event.video_id or event.title, event.stage)
        if key != state["key"]:
            if state["bar"] is not None:
                state["bar"].close()
            state["bar"] = tqdm(total=100, desc=f"{(event.title or '')[:40]} · {event.stage}", unit="%")
            state["key"] = key
        state["bar"].n = int(event.fraction * 100)
        state["bar"].refresh()
        if event.stage in {"done", "failed"}:
            state["bar"].close()
            state["bar"], state["key"] = None, None

    return report
