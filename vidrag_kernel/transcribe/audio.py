"""Decode audio as a stream of windows, so a long lecture never sits in memory whole.

PyAV decodes and resamples to 16 kHz mono; windows of about ``window`` seconds are cut
at the quietest moment of their last ``search`` seconds (a pause between sentences, not
the middle of a word), and each comes with its offset in the file.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from ..errors import InvalidInput

RATE = 16000


def probe_duration(path: str | Path) -> float | None:
    """The container's duration in seconds, when it states one."""
    import av

    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if container.duration:
                return container.duration / 1_000_000
            stream = container.streams.audio[0]
            if stream.duration and stream.time_base:
                return float(stream.duration * stream.time_base)
    except Exception:  # noqa: BLE001 - decoding reports the real error
        return None
    return None


def quiet_cut(samples: np.ndarray, search: float, frame: float = 0.2) -> int:
    """Where to cut ``samples``: the centre of the quietest ``frame`` in its last ``search`` s."""
    n = int(frame * RATE)
    start = max(0, len(samples) - int(search * RATE))
    tail = samples[start:]
    usable = len(tail) // n * n
    if usable < n:
        return len(samples)
    energy = np.square(tail[:usable].reshape(-1, n)).mean(axis=1)
    return start + int(np.argmin(energy)) * n + n // 2


def windows(
    path: str | Path, window: float = 600.0, search: float = 30.0
) -> Iterator[tuple[float, np.ndarray]]:
    """Yield ``(offset_seconds, float32 samples)`` covering the whole file in order."""
    import av

    limit = int(window * RATE)
    pending: list[np.ndarray] = []
    size = 0
    offset = 0
    decoded = False
    try:
        container = av.open(str(path), metadata_errors="ignore")
    except Exception as exc:
        raise InvalidInput(f"cannot decode the audio of {Path(path).name}: {exc}") from exc
    resampler = av.AudioResampler(format="s16", layout="mono", rate=RATE)
    try:
        if not container.streams.audio:
            raise InvalidInput(f"{Path(path).name} has no audio track")
        frames = container.decode(audio=0)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                frame = None
            except av.error.InvalidDataError:
                continue  # a damaged packet: skip it, as players do
            except Exception as exc:
                if not decoded:
                    raise InvalidInput(f"cannot decode the audio of {Path(path).name}: {exc}") from exc
                break  # a truncated file: keep what was decoded
            for out in resampler.resample(frame):
                chunk = out.to_ndarray().reshape(-1)
                pending.append(chunk)
                size += len(chunk)
                decoded = True
            if frame is None:
                break
            if size >= limit:
                samples = np.concatenate(pending).astype(np.float32) / 32768.0
                cut = quiet_cut(samples, search)
                yield offset / RATE, samples[:cut]
                offset += cut
                rest = (samples[cut:] * 32768.0).astype(np.int16)
                pending, size = [rest], len(rest)
    finally:
        container.close()
        del resampler
        gc.collect()  # PyAV's resampler holds buffers until collected (faster-whisper#390)
    if size:
        yield offset / RATE, np.concatenate(pending).astype(np.float32) / 32768.0
    elif not decoded:
        raise InvalidInput(f"{Path(path).name} has no audio")
