"""The fetch stage's entry points: plan a source, download its audio."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

from ..errors import InvalidInput
from ..records import MediaInfo
from ..settings import Settings
from .local import check_decodes, check_duration, plan_local
from .local import probe_duration as _audio_duration
from .remote import download_remote, plan_url

_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def plan_source(source: str, settings: Settings) -> list[MediaInfo]:
    """What a source holds, without downloading media.

    ``source`` is a path to an existing local media file (one MediaInfo keyed
    ``file:<sha256>``) or an http(s) URL of a video, page, playlist or channel
    (playlists are expanded up to ``settings.playlist_limit``). Raises ``InvalidInput``
    (unsupported, no media), ``Forbidden`` (private address), ``TooLarge`` (longer than
    ``settings.max_duration``) or ``FetchFailed`` (HTTP or network errors).
    """
    if isinstance(source, Path):
        return [plan_local(source, settings)]
    if not isinstance(source, str) or not source.strip():
        raise InvalidInput("Expected a URL or a file path, got an empty value")
    source = source.strip()
    if _SCHEME.match(source):
        # file:// is refused too: only plain paths name local files.
        return plan_url(source, settings)
    path = Path(source).expanduser()
    if path.exists():
        return [plan_local(path, settings)]
    if "." in source.split("/", 1)[0] and " " not in source:
        raise InvalidInput(f"{source!r} is neither an existing file nor a URL; URLs start with https://")
    raise InvalidInput(f"No such file: {source}")


def download_audio(
    info: MediaInfo,
    dest_dir: Path,
    settings: Settings,
    report: Callable[[float, str], None] | None = None,
) -> Path:
    """The audio of ``info`` as a local file that PyAV can decode.

    URLs: yt-dlp downloads the best audio (``bestaudio/best``) to ``dest_dir/audio.<ext>``
    under the size limit, reporting ``report(fraction, message)``; the duration is
    checked after download when it was unknown (``TooLarge``, the file is deleted).
    Local files: the original path is returned once it is known to decode.
    Raises ``InvalidInput`` for media that cannot be decoded.
    """
    if info.local_path:
        path = Path(info.local_path)
        if not path.is_file():
            raise InvalidInput(f"{path.name} no longer exists")
        check_duration(info.title, check_decodes(path), settings)
        if report is not None:
            report(1.0, "local file")
        return path
    return download_remote(info, Path(dest_dir), settings, report)


def probe_duration(path: str | Path) -> float | None:
    """The duration in seconds of the local media file at ``path`` (PyAV), or None.

    None when the file is missing, is not media, has no audio track or states no
    duration, so callers can fill a gap (yt-dlp reports none for HTML5 media) without a
    failure path. Only local files are read: PyAV would open a URL itself, outside the
    fetch guard.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        return _audio_duration(path)
    except InvalidInput:
        return None
