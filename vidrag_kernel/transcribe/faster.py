"""The default engine: faster-whisper (CTranslate2) with VAD and batched inference."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from pathlib import Path

from ..errors import InvalidInput, ModelError
from ..links import format_time
from ..progress import Reporter
from ..records import Segment, Transcript, Word
from ..settings import Settings

log = logging.getLogger(__name__)

WINDOW = 600.0  # seconds of audio decoded and transcribed at a time
_models: dict[tuple, object] = {}
_lock = threading.Lock()


def default_model_path() -> str:
    """The default speech model's directory (``base``, joined from its wheels on first use)."""
    from .models import resolve

    return resolve(None)


def spoken_language(settings: Settings) -> str | None:
    """The language to decode in, or None to let a multilingual model detect it
    (``auto``; an English-only model then decodes English)."""
    language = (settings.whisper_language or "").strip().lower()
    return None if language in ("", "auto") else language


def load_model(settings: Settings):
    """The ``WhisperModel`` for these settings, loaded once per process."""
    from .models import resolve

    name = resolve(settings.whisper_model)
    key = (name, settings.whisper_compute_type, settings.whisper_threads)
    with _lock:
        model = _models.get(key)
        if model is None:
            from faster_whisper import WhisperModel

            local_only = Path(name).is_dir()
            try:
                model = WhisperModel(
                    name,
                    device="cpu",
                    compute_type=settings.whisper_compute_type,
                    cpu_threads=settings.whisper_threads,
                    local_files_only=local_only,
                )
            except Exception as exc:
                raise ModelError(f"could not load the speech model {name!r}: {exc}") from exc
            _models[key] = model
        return model


def glossary_options(glossary: Sequence[str] | None, how: str = "prompt") -> dict:
    """The decoding options that tell whisper to expect a collection's course terms.

    ``hotwords`` are put before every 30-second window (in the batched and the
    sequential decoder alike); ``initial_prompt`` reads like earlier text and, in the
    sequential decoder, only leads the first window. ``how`` is "hotwords", "prompt"
    or "both"; no terms give no options.
    """
    terms = [t.strip() for t in glossary or () if t and t.strip()]
    if not terms:
        return {}
    text = ", ".join(terms)
    options: dict = {}
    if how in ("hotwords", "both"):
        options["hotwords"] = text
    if how in ("prompt", "both"):
        # written as a sentence so the model continues in the same style and spelling
        options["initial_prompt"] = f"Terms in this lecture: {text}."
    if not options:
        raise InvalidInput(f"Unknown glossary mode {how!r}: hotwords, prompt or both")
    return options


class FasterWhisperTranscriber:
    """Speech recognition with faster-whisper.

    With ``whisper_batch_size`` above 1 the audio is cut at silences by the silero VAD
    and the pieces are decoded in batches (``BatchedInferencePipeline``), which is
    several times faster on CPU; with 1 it runs the sequential decoder (VAD still on
    when ``whisper_vad``).
    """

    engine = "faster-whisper"
    #: how a glossary reaches the model (see ``glossary_options``). Measured with
    #: ``benchmarks/transcribe.py --modes``, the development set's tuning lectures, each
    #: lecture's names as its glossary, WER / names heard / numbers heard: tiny.en (beam 1)
    #: none 0.149 / 0.72 / 0.95, prompt 0.135 / 0.97 / 0.86; base (beam 5) prompt 0.082 /
    #: 0.97 / 0.95, hotwords 0.095 / 0.99 / 0.90, both 0.090 / 0.96 / 0.95. The prompt hears
    #: the names for the fewest word errors with either model. The batched pipeline puts it
    #: before every window; the sequential decoder (batch size 1, which conditions on
    #: earlier text and falls back to higher temperatures) measured worse for base, WER
    #: 0.099, names 0.88, at 60 % of the speed.
    glossary_as = "prompt"
    #: further faster-whisper options for every call (``benchmarks/transcribe.py --option``
    #: sets them to measure one; none is needed by default)
    decode_options: dict = {}

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.decode_options = dict(type(self).decode_options)
        self.model = load_model(settings)  # once per process; a missing model fails here

    def transcribe(
        self, audio: str | Path, report: Reporter | None = None, glossary: Sequence[str] | None = None
    ) -> Transcript:
        """Transcribe ``audio`` window by window (``WINDOW`` seconds, cut at pauses), so
        memory stays flat however long the lecture is. ``glossary``: course terms and
        names the model is told to expect (the collection's glossary)."""
        from faster_whisper import BatchedInferencePipeline

        from .audio import probe_duration, windows

        st, model = self.settings, self.model
        expected = probe_duration(audio)
        options = dict(
            language=spoken_language(st),
            beam_size=st.whisper_beam_size,
            # word times always: the batched pipeline gives one segment per VAD window (up to
            # 30 s), which ``sentence_segments`` cuts into sentences timed by their words
            word_timestamps=True,
            vad_filter=st.whisper_vad,
            **glossary_options(glossary, self.glossary_as),
        )
        options.update(self.decode_options)
        pipeline = BatchedInferencePipeline(model=model) if st.whisper_batch_size > 1 else None
        segments: list[Segment] = []
        language, done = None, 0.0
        for offset, samples in windows(audio, WINDOW):
            length = len(samples) / 16000
            try:
                if pipeline is not None:
                    pieces, info = pipeline.transcribe(samples, batch_size=st.whisper_batch_size, **options)
                else:
                    pieces, info = model.transcribe(samples, **options)
                for piece in pieces:  # a generator: decoding happens as we iterate
                    segments.extend(sentence_segments(piece, st.word_timestamps, offset))
                    if report is not None and expected:
                        at = offset + piece.end
                        report(min(0.99, at / expected), f"{format_time(at)} of {format_time(expected)}")
            except Exception as exc:
                raise ModelError(f"speech recognition failed on {Path(audio).name}: {exc}") from exc
            language = language or info.language
            done = offset + length
            if report is not None and not expected:
                report(0.5, f"{format_time(done)} transcribed")
            del samples
        if done == 0:
            raise InvalidInput(f"{Path(audio).name} has no audio")
        if report is not None:
            report(1.0, "transcribed")
        return Transcript(segments, language, round(done, 3), "asr", self.engine)


_SENTENCE_END = (".", "?", "!", "…")
# seconds between words that end a sentence in a window the model left unpunctuated
# (it does so for some windows; its word times absorb most of a pause, so a gap of
# 0.15 s already marks one: measured on espeak lectures with 0.6 s pauses)
PAUSE = 0.15
LONGEST = 20.0  # seconds: a run without punctuation or pauses is cut here


def sentence_segments(piece, keep_words: bool, offset: float = 0.0) -> list[Segment]:
    """Cut one recognised segment into sentences, each timed by its own words.

    A sentence ends at end punctuation; in a window the model left unpunctuated, at a
    pause of ``PAUSE`` seconds after at least three words; and always after ``LONGEST``
    seconds.
    """

    def at(t: float) -> float:
        return round(float(offset + t), 3)

    # whisper's word texts start with a space when a new word begins; one without it
    # ("-tronly", ",800") continues the word before, so the text is joined from the raw
    # texts (joining the stripped ones with spaces wrote "1 ,800", which no reader or
    # number match recognises as 1800)
    pairs = [(Word(w.word.strip(), at(w.start), at(w.end), w.probability), w.word) for w in piece.words or []]
    pairs = [(w, raw) for w, raw in pairs if w.text]
    words, raws = [w for w, _ in pairs], [raw for _, raw in pairs]
    if not words:
        text = piece.text.strip()
        return [Segment(at(piece.start), at(piece.end), text)] if text else []

    def closes(w: Word) -> bool:
        return w.text.rstrip("\"')]").endswith(_SENTENCE_END)

    unpunctuated = not any(closes(w) for w in words[:-1])
    out, first = [], 0  # the sentence under way is words[first : i + 1]
    for i, w in enumerate(words):
        nxt = words[i + 1] if i + 1 < len(words) else None
        ends = (
            nxt is None
            or closes(w)
            or (unpunctuated and i + 1 - first >= 3 and nxt.start - w.end >= PAUSE)
            or nxt.end - words[first].start > LONGEST
        )
        if ends:
            text = " ".join("".join(raws[first : i + 1]).split())
            out.append(Segment(words[first].start, w.end, text, words[first : i + 1] if keep_words else None))
            first = i + 1
    return out
