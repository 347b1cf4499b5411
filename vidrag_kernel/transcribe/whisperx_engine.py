"""The optional WhisperX engine (``pip install 'vidrag[whisperx]'``).

WhisperX adds forced word alignment (wav2vec2) on top of faster-whisper's batched
pipeline. It pins its own torch and pyannote versions, so install it in a separate
environment, with its alignment model available locally (``HF_HUB_OFFLINE`` machines
need the model in the Hugging Face cache). Select it with ``VIDRAG_TRANSCRIBER=whisperx``.
Where the package cannot be imported this engine raises ``MissingDependency`` naming the
extra, so users get one clear line instead of a traceback.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import MissingDependency, ModelError
from ..progress import Reporter
from ..records import Segment, Transcript, Word
from ..settings import Settings
from .faster import spoken_language
from .models import resolve


class WhisperXTranscriber:
    engine = "whisperx"

    def __init__(self, settings: Settings) -> None:
        try:
            import whisperx  # noqa: F401
        except Exception as exc:  # ImportError, or a broken torchaudio ABI (OSError)
            raise MissingDependency.for_extra("the whisperx transcriber", "whisperx", "whisperx") from exc
        self.settings = settings

    def transcribe(self, audio: str | Path, report: Reporter | None = None, glossary=None) -> Transcript:
        import whisperx

        from .faster import glossary_options

        st = self.settings
        try:
            model = whisperx.load_model(
                resolve(st.whisper_model),
                "cpu",
                compute_type=st.whisper_compute_type,
                language=spoken_language(st),
                threads=st.whisper_threads or 4,
                # whisperx's faster-whisper options take the collection's glossary the same way
                **({"asr_options": glossary_options(glossary)} if glossary else {}),
            )
            samples = whisperx.load_audio(str(audio))
            result = model.transcribe(samples, batch_size=st.whisper_batch_size)
            if report is not None:
                report(0.7, "aligning words")
            if st.word_timestamps:
                align_model, meta = whisperx.load_align_model(language_code=result["language"], device="cpu")
                result = whisperx.align(result["segments"], align_model, meta, samples, "cpu") | {
                    "language": result["language"]
                }
        except Exception as exc:
            raise ModelError(f"whisperx failed on {Path(audio).name}: {exc}") from exc
        segments = []
        for seg in result["segments"]:
            words = None
            if seg.get("words"):
                words = [
                    Word(w["word"], w["start"], w["end"], w.get("score"))
                    for w in seg["words"]
                    if "start" in w
                ]
            segments.append(Segment(seg["start"], seg["end"], seg["text"].strip(), words))
        if report is not None:
            report(1.0, "transcribed")
        return Transcript(segments, result.get("language"), len(samples) / 16000, "asr", self.engine)
