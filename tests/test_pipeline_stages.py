"""Each ingest stage on its own, with the real engines: faster-whisper, the MiniLM
tokenizer and embedder, and the chunker's time and chapter rules."""

from __future__ import annotations

import numpy as np
import pytest

from vidrag_kernel.chunking import chunk_segments, count_tokens
from vidrag_kernel.embed import HashingEmbedder, get_embedder
from vidrag_kernel.errors import InvalidInput, MissingDependency, ModelError
from vidrag_kernel.records import Chapter, Segment, Word
from vidrag_kernel.settings import Settings
from vidrag_kernel.transcribe import get_transcriber


def _segments(n: int, length: float = 4.0) -> list[Segment]:
    return [
        Segment(i * length, (i + 1) * length, f"Sentence {i} talks about topic number {i}.") for i in range(n)
    ]


# -- chunking --------------------------------------------------------------------------
def test_chunks_follow_sentences_and_sizes():
    chunks = chunk_segments(_segments(30), target_tokens=40, min_tokens=8, overlap_tokens=0)
    assert len(chunks) > 3
    assert [c.index for c in chunks] == list(range(len(chunks)))
    for c in chunks:
        assert c.token_count <= 40 and c.token_count == count_tokens(c.text)
        assert c.text.endswith(".")  # whole sentences only
    # consecutive chunks tile the time line without gaps when there is no overlap
    assert all(a.end == pytest.approx(b.start) for a, b in zip(chunks, chunks[1:], strict=False))
    assert chunks[0].start == 0 and chunks[-1].end == 120


def test_overlap_repeats_whole_trailing_sentences():
    chunks = chunk_segments(_segments(30), target_tokens=48, min_tokens=8, overlap_tokens=12)
    for a, b in zip(chunks, chunks[1:], strict=False):
        last_sentence = a.text.rsplit(". ", 1)[-1]
        assert b.text.startswith(last_sentence)
        assert b.start < a.end  # the overlap is visible in time too
        assert b.token_count <= 48


def test_chapters_split_chunks_and_label_them():
    chapters = [Chapter("Intro", 0, 40), Chapter("Main part", 40, None)]
    chunks = chunk_segments(_segments(20), chapters, target_tokens=200, min_tokens=8, overlap_tokens=20)
    assert [c.chapter for c in chunks] == ["Intro", "Main part"]
    assert chunks[1].start == 40 and "Sentence 9" not in chunks[1].text


def test_short_transcript_gives_one_chunk_and_empty_gives_none():
    [only] = chunk_segments([Segment(1.0, 2.5, "Hello.")], target_tokens=256, min_tokens=16)
    assert only.text == "Hello." and (only.start, only.end) == (1.0, 2.5)
    assert chunk_segments([Segment(0, 1, "   ")]) == []


def test_a_small_tail_joins_the_previous_chunk():
    segs = _segments(4) + [Segment(16, 17, "Bye.")]
    chunks = chunk_segments(segs, target_tokens=24, min_tokens=8, overlap_tokens=0)
    assert chunks[-1].text.endswith("Bye.") and chunks[-1].token_count >= 8


def test_unpunctuated_captions_are_joined_and_long_sentences_cut():
    words = " ".join(f"word{i}" for i in range(300))
    segs = [Segment(0, 100, words)]
    chunks = chunk_segments(segs, target_tokens=64, min_tokens=8, overlap_tokens=0)
    # a tail under min_tokens joins its neighbour, so a chunk may exceed the target by that much
    assert len(chunks) > 3 and all(c.token_count <= 64 + 8 for c in chunks)
    assert chunks[0].start == 0 and chunks[-1].end == pytest.approx(100)
    assert " ".join(c.text for c in chunks) == words


def test_word_timestamps_time_each_sentence():
    seg = Segment(
        0,
        10,
        "One two. Three four.",
        [Word("One", 0.0, 0.5), Word("two.", 0.5, 1.0), Word("Three", 8.0, 8.5), Word("four.", 8.5, 9.0)],
    )
    chunks = chunk_segments([seg], target_tokens=3, min_tokens=1, overlap_tokens=0)
    assert [(c.start, c.end) for c in chunks] == [(0.0, 1.0), (8.0, 9.0)]


# -- embedding -------------------------------------------------------------------------
def test_minilm_embeddings_are_normalised_and_meaningful():
    emb = get_embedder(Settings())
    assert emb is not None and emb.dim == 384
    vecs = emb.embed(["Plants make glucose from sunlight.", "Photosynthesis in leaves.", "The French king."])
    assert vecs.shape == (3, 384) and vecs.dtype == np.float32
    assert np.allclose(np.linalg.norm(vecs, axis=1), 1.0, atol=1e-5)
    assert vecs[0] @ vecs[1] > vecs[0] @ vecs[2]
    assert get_embedder(Settings()).model is emb.model  # loaded once per process
    q = emb.embed_query("how do plants feed")
    assert q.shape == (384,)


def test_hashing_embedder_and_bad_names():
    h = HashingEmbedder()
    a, b = h.embed(["binary search", "binary search"])
    assert np.allclose(a, b) and np.linalg.norm(a) == pytest.approx(1.0)
    with pytest.raises(InvalidInput, match="unknown embedder"):
        get_embedder(Settings(embedder="nope"))
    with pytest.raises(ModelError, match="embedding model"):
        get_embedder(Settings(embedding_model="/nonexistent/model-dir"))


# -- transcription ---------------------------------------------------------------------
def test_faster_whisper_transcribes_with_times_and_progress(lecture):
    import jiwer

    reports = []
    t = get_transcriber(Settings(word_timestamps=True)).transcribe(
        lecture.wav, lambda f, m: reports.append(f)
    )
    assert t.source == "asr" and t.engine == "faster-whisper" and t.language == "en"
    assert t.duration == pytest.approx(lecture.duration, abs=0.1)
    heard = " ".join(s.text for s in t.segments).lower()
    assert jiwer.wer(lecture.text.lower(), heard) < 0.35
    assert reports and reports[-1] == 1.0 and reports == sorted(reports)
    words = [w for s in t.segments for w in (s.words or [])]
    assert words, "word timestamps were asked for"
    bastille = next(s for s in lecture.sentences if "Bastille" in s.text)
    paris = next(w for w in words if "paris" in w.text.lower())
    assert bastille.start - 1.0 <= paris.start <= bastille.end + 1.0


def test_transcriber_errors_are_clear(tmp_path):
    bad = tmp_path / "bad.m4a"
    bad.write_bytes(b"not audio" * 100)
    with pytest.raises(InvalidInput, match="cannot decode"):
        get_transcriber(Settings()).transcribe(bad)
    with pytest.raises(InvalidInput, match="unknown transcriber"):
        get_transcriber(Settings(transcriber="nope"))
    with pytest.raises(ModelError, match="speech model"):
        get_transcriber(Settings(whisper_model=str(tmp_path / "missing-model")))


def test_whisperx_engine_names_its_extra_when_missing():
    pytest.importorskip("faster_whisper")
    try:
        import whisperx  # noqa: F401
    except Exception:
        with pytest.raises(MissingDependency, match=r"vidrag\[whisperx\]"):
            get_transcriber(Settings(transcriber="whisperx"))
    else:  # pragma: no cover - only where the extra is installed
        assert get_transcriber(Settings(transcriber="whisperx")).engine == "whisperx"


@pytest.mark.whisperx
def test_whisperx_transcribes(lecture):  # pragma: no cover - opt-in: needs the extra and its models
    pytest.importorskip("whisperx")
    t = get_transcriber(Settings(transcriber="whisperx")).transcribe(lecture.wav)
    assert "bastille" in " ".join(s.text for s in t.segments).lower()


def test_long_audio_is_transcribed_in_windows_cut_at_pauses(lecture, monkeypatch):
    """Memory stays flat because audio is decoded in windows; cuts fall in pauses, and the
    times of later windows are offset correctly."""
    import jiwer

    from vidrag_kernel.transcribe import audio, faster

    parts = list(audio.windows(lecture.wav, window=20, search=8))
    assert len(parts) >= 3
    total = sum(len(s) for _, s in parts) / audio.RATE
    assert total == pytest.approx(lecture.duration, abs=0.7)  # the WAV ends with one pause
    for offset, _ in parts[1:]:  # every cut lies in a pause between two sentences
        assert any(
            a.end - 0.05 <= offset <= b.start + 0.05
            for a, b in zip(lecture.sentences, lecture.sentences[1:], strict=False)
        )

    monkeypatch.setattr(faster, "WINDOW", 20.0)
    t = get_transcriber(Settings()).transcribe(lecture.wav)
    heard = " ".join(s.text for s in t.segments).lower()
    assert jiwer.wer(lecture.text.lower(), heard) < 0.35
    king = next(s for s in lecture.sentences if "guillotine" in s.text)
    seg = next(s for s in t.segments if "guillotine" in s.text.lower() or "louis" in s.text.lower())
    assert king.start - 1.5 <= seg.start <= king.end


def test_audio_without_sound_track_is_refused(media_root, tmp_path):
    from vidrag_kernel.transcribe import audio

    with pytest.raises(InvalidInput):
        list(audio.windows(media_root / "corrupt.m4a"))
    assert audio.probe_duration(media_root / "lecture.m4a") == pytest.approx(
        audio.probe_duration(media_root / "lecture.webm"), abs=0.5
    )
