"""Deep links that open a video at a given second."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


def youtube_id(source_key: str | None) -> str | None:
    """The YouTube id of a ``youtube:<id>`` source key, else None."""
    if source_key and source_key.startswith("youtube:"):
        return source_key.split(":", 1)[1]
    return None


def deep_link(url: str, seconds: float, *, source_key: str | None = None) -> str:
    """``url`` opened at ``seconds``: YouTube's ``&t=Ns``, the media fragment ``#t=N`` otherwise."""
    t = max(0, int(seconds))
    vid = youtube_id(source_key)
    if vid:
        return f"https://www.youtube.com/watch?v={vid}&t={t}s"
    if not url:
        return ""
    parts = urlsplit(url)
    host = parts.netloc.lower()
    if host.endswith("youtube.com") or host.endswith("youtu.be"):
        query = [(k, v) for k, v in parse_qsl(parts.query) if k != "t"] + [("t", f"{t}s")]
        return urlunsplit(parts._replace(query=urlencode(query)))
    return urlunsplit(parts._replace(fragment=f"t={t}"))


def format_time(seconds: float | None, unknown: str = "—") -> str:
    """``1:02:03`` or ``2:03`` for display; ``unknown`` (an em dash) when there is no figure."""
    if seconds is None:
        return unknown
    s = max(0, int(round(float(seconds))))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"
