"""Shared fixtures: generated lecture speech, media served on 127.0.0.1, a Workbench on a
temporary directory. Everything here is real: espeak-ng speech, real files, real servers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.media_server import MediaServer
from tests.support.speech import LECTURE, Lecture, encode, speak

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def lecture(tmp_path_factory) -> Lecture:
    """The test lecture as a 16 kHz WAV with the true time of every sentence."""
    root = tmp_path_factory.mktemp("speech")
    return speak(LECTURE, root / "lecture.wav")


@pytest.fixture(scope="session")
def media_root(tmp_path_factory, lecture) -> Path:
    """A folder of media the media server serves: audio, video, a page, captions, a feed."""
    root = tmp_path_factory.mktemp("media")
    encode(lecture.wav, root / "lecture.m4a")
    encode(lecture.wav, root / "lecture.webm")
    encode(lecture.wav, root / "lecture.mp4", video=True)
    (root / "lecture.vtt").write_text(lecture.vtt())
    (root / "lecture.html").write_text(
        "<!doctype html><html><head><title>Three topics lecture</title></head><body>"
        "<h1>Three topics lecture</h1>"
        '<video controls src="lecture.mp4">'
        '<track kind="captions" srclang="en" label="English" src="lecture.vtt" default>'
        "</video></body></html>"
    )
    (root / "notmedia.html").write_text(
        "<!doctype html><html><head><title>No media here</title></head><body><p>Just text.</p></body></html>"
    )
    (root / "corrupt.m4a").write_bytes(b"this is not audio at all" * 400)
    return root


@pytest.fixture(scope="session")
def media_server(media_root):
    server = MediaServer(media_root)
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path):
    """Settings on a fresh data directory that may fetch from 127.0.0.1."""
    from vidrag_kernel.settings import Settings

    return Settings(home=tmp_path / "home", fetch_allow_hosts=("127.0.0.1",), user="tester")
