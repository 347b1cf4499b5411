"""Local media files: validation, identity and duration with PyAV (no ffmpeg binary)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import InvalidInput, TooLarge
from ..records import MediaInfo
from ..settings import Settings

SUPPORTED_EXTENSIONS = (
    ".mp3",
    ".m4a",
    ".aac",
    ".wav",
    ".flac",
    ".ogg",
    ".opus",
    ".webm",
    ".mp4",
    ".mkv",
    ".mov",
    ".avi",
)

# A few seconds of packets prove the audio decodes without reading a whole lecture.
_DECODE_PACKETS = 64


def format_duration(seconds: float) -> str:
    """``1:02:03`` / ``2:03`` for messages."""
    seconds = int(round(seconds))
    h, rem = divmod(seconds, 3600)
    m, s = divmod(rem, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


def check_duration(title: str, duration: float | None, settings: Settings) -> None:
    """TooLarge when a known duration exceeds ``settings.max_duration``."""
    if duration is not None and duration > settings.max_duration:
        raise TooLarge(
            f"{title!r} is {format_duration(duration)} long ({duration:.0f} s); the limit is "
            f"{format_duration(settings.max_duration)} ({settings.max_duration:.0f} s, VIDRAG_MAX_DURATION)"
        )


def _undecodable(path: Path, why: str = "") -> InvalidInput:
    return InvalidInput(f"could not decode audio from {path.name}" + (f": {why}" if why else ""))


def _open(path: Path):
    import av

    try:
        return av.open(str(path), mode="r")
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise _undecodable(path, str(exc).split(": '", 1)[0]) from None


def probe_duration(path: Path) -> float:
    """The duration in seconds of the audio in ``path`` (PyAV).

    Raises ``InvalidInput`` when the file is not media or has no audio track.
    """
    import av

    path = Path(path)
    with _open(path) as container:
        audio = next(iter(container.streams.audio), None)
        if audio is None:
            raise _undecodable(path, "it has no audio track")
        if audio.duration is not None and audio.time_base is not None:
            return float(audio.duration * audio.time_base)
        if container.duration is not None:
            return container.duration / av.time_base
        # Some streams carry no duration in their headers: read the packets' times.
        end = 0.0
        try:
            for packet in container.demux(audio):
                if packet.pts is not None and packet.time_base is not None:
                    end = max(end, float((packet.pts + (packet.duration or 0)) * packet.time_base))
        except av.FFmpegError as exc:
            raise _undecodable(path, str(exc)) from None
        if end <= 0:
            raise _undecodable(path, "its duration is unknown")
        return end


def check_decodes(path: Path) -> float:
    """Decode the first audio packets of ``path``; return its duration.

    Opening a container succeeds for some broken files, so a few packets are really
    decoded to be sure transcription will not fail later.
    """
    import av

    path = Path(path)
    duration = probe_duration(path)
    with _open(path) as container:
        audio = container.streams.audio[0]
        try:
            for i, packet in enumerate(container.demux(audio)):
                if any(frame.samples for frame in packet.decode()):
                    return duration
                if i >= _DECODE_PACKETS:
                    break
        except (av.FFmpegError, ValueError) as exc:
            raise _undecodable(path, str(exc)) from None
    raise _undecodable(path, "no audio samples decoded")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        while block := fh.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def plan_local(path: Path, settings: Settings) -> MediaInfo:
    """One MediaInfo for a local media file, keyed by the hash of its content."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise InvalidInput(f"{path.name or path} is not a file")
    if path.suffix.lower() not in SUPPORTED_EXTENSIONS:
        raise InvalidInput(
            f"{path.name}: unsupported file type {path.suffix or '(none)'}; "
            f"supported: {', '.join(e.lstrip('.') for e in SUPPORTED_EXTENSIONS)}"
        )
    resolved = path.resolve()
    duration = probe_duration(resolved)
    check_duration(path.name, duration, settings)
    return MediaInfo(
        source_key=f"file:{_sha256(resolved)}",
        url=str(resolved),
        title=path.stem,
        duration=round(duration, 3),
        extractor="file",
        filesize=resolved.stat().st_size,
        local_path=str(resolved),
    )
