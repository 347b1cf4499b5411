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


def silent(_event: ProgressEvent) -> None:
    """The default callback: report nothing."""


def scaled(callback: ProgressCallback, stage: str, **fields) -> Callable[[float, str], None]:
    """A ``report(fraction, message)`` helper bound to one stage and video."""

    def report(fraction: float, message: str = "") -> None:
        callback(ProgressEvent(stage, max(0.0, min(1.0, fraction)), message, **fields))

    return report
