"""Transcript exports: TXT, JSON, SRT and WebVTT (the one implementation)."""

from __future__ import annotations

import json
from collections.abc import Sequence

from .errors import InvalidInput
from .links import format_time

FORMATS = ("txt", "json", "srt", "vtt")


def _stamp(seconds: float, sep: str) -> str:
    ms = int(round(max(0.0, seconds) * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def render(segments: Sequence, fmt: str, *, title: str = "", meta: dict | None = None) -> str:
    """Render segments (objects with start, end, text) in ``fmt``: txt, json, srt or vtt."""
    if fmt not in FORMATS:
        raise InvalidInput(f"Unknown transcript format {fmt!r}; choose one of {', '.join(FORMATS)}")
    if fmt == "txt":
        head = [title, ""] if title else []
        return "\n".join(head + [f"[{format_time(s.start)}] {s.text.strip()}" for s in segments]) + "\n"
    if fmt == "json":
        body = {
            **(meta or {}),
            "title": title,
            "segments": [{"start": s.start, "end": s.end, "text": s.text.strip()} for s in segments],
        }
        return json.dumps(body, indent=2, ensure_ascii=False) + "\n"
    if fmt == "srt":
        blocks = [
            f"{i}\n{_stamp(s.start, ',')} --> {_stamp(s.end, ',')}\n{s.text.strip()}\n"
            for i, s in enumerate(segments, 1)
        ]
        return "\n".join(blocks)
    lines = ["WEBVTT", ""]
    for s in segments:
        lines += [f"{_stamp(s.start, '.')} --> {_stamp(s.end, '.')}", s.text.strip(), ""]
    return "\n".join(lines)
