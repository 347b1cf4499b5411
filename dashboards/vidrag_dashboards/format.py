"""Small display helpers shared by the dashboard views."""

from __future__ import annotations

import html

from vidrag_kernel import format_time


def span(start: float | None, end: float | None) -> str:
    """``1:01–1:16``: a passage's time range."""
    return f"{format_time(start)}–{format_time(end)}"


def esc(text: object) -> str:
    """HTML-escape text that came from users or videos."""
    return html.escape(str(text or ""), quote=True)
