"""Small display helpers shared by the dashboard views."""

from __future__ import annotations

import html


def clock(seconds: float | None) -> str:
    """``1:02:03`` or ``2:03``; an em dash for unknown."""
    if seconds is None:
        return "—"
    s = max(0, int(round(float(seconds))))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def span(start: float, end: float) -> str:
    return f"{clock(start)}–{clock(end)}"


def esc(text: object) -> str:
    """HTML-escape text that came from users or videos."""
    return html.escape(str(text or ""), quote=True)


def error_text(exc: BaseException) -> str:
    """What to show for an exception: a VidragError's message, else its type and text."""
    message = getattr(exc, "message", None)
    if message:
        return str(message)
    return f"{type(exc).__name__}: {exc}"
