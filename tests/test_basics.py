"""Settings, deep links, transcript formats and the error tree."""

from __future__ import annotations

from pathlib import Path

import pytest

from vidrag_kernel.errors import InvalidInput, MissingDependency, NotFound, VidragError
from vidrag_kernel.layout import Layout
from vidrag_kernel.links import deep_link, format_time
from vidrag_kernel.records import Segment
from vidrag_kernel.settings import Settings
from vidrag_kernel.transcripts import render


def test_settings_from_env(tmp_path):
    s = Settings.from_env(
        {
            "VIDRAG_HOME": str(tmp_path),
            "VIDRAG_FETCH_ALLOW_HOSTS": "127.0.0.1, Media.Example ",
            "VIDRAG_MAX_DURATION": "60",
            "VIDRAG_WHISPER_VAD": "false",
            "VIDRAG_CHUNK_TOKENS": "128",
            "VIDRAG_MAX_FILESIZE_MB": "5",
        }
    )
    assert s.home == tmp_path and s.fetch_allow_hosts == ("127.0.0.1", "media.example")
    assert s.max_duration == 60.0 and s.whisper_vad is False and s.chunk_tokens == 128
    assert s.max_filesize_mb == 5.0
    assert s.resolved_database_url == f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    with pytest.raises(InvalidInput, match="VIDRAG_CHUNK_TOKENS"):
        Settings.from_env({"VIDRAG_CHUNK_TOKENS": "lots"})
    with pytest.raises(InvalidInput, match="VIDRAG_CAPTIONS"):
        Settings.from_env({"VIDRAG_CAPTIONS": "sometimes"})


def test_deep_links():
    assert deep_link("https://x.org/v.mp4", 75.9) == "https://x.org/v.mp4#t=75"
    assert (
        deep_link("https://www.youtube.com/watch?v=abc&t=3s", 10)
        == "https://www.youtube.com/watch?v=abc&t=10s"
    )
    assert deep_link("ignored", 61, source_key="youtube:dQw4w9WgXcQ").endswith("?v=dQw4w9WgXcQ&t=61s")
    assert format_time(3723) == "1:02:03" and format_time(65) == "1:05"


def test_transcript_formats():
    segs = [Segment(0.0, 1.5, "Hello there."), Segment(1.5, 3661.25, "Bye.")]
    assert "00:00:01,500" in render(segs, "srt") and render(segs, "srt").startswith("1\n")
    vtt = render(segs, "vtt")
    assert vtt.startswith("WEBVTT") and "01:01:01.250" in vtt
    assert '"text": "Bye."' in render(segs, "json")
    assert "[0:00] Hello there." in render(segs, "txt")
    with pytest.raises(InvalidInput):
        render(segs, "docx")


def test_error_tree():
    err = MissingDependency.for_extra("The whisperx engine", "whisperx", "whisperx")
    assert "pip install 'vidrag[whisperx]'" in err.message and err.status == 501
    assert isinstance(NotFound("x"), VidragError) and NotFound("x").to_dict()["status"] == 404


def test_layout_never_uses_user_strings(tmp_path):
    layout = Layout(tmp_path)
    with pytest.raises(InvalidInput):
        layout.media_dir("../../etc")
    good = layout.index_dir("6f1c3d6e-9c0f-4f7e-9a61-5b1f0c2d7a10")
    assert good.is_relative_to(Path(tmp_path))
