"""Shared fixtures: generated lecture speech, media served on 127.0.0.1, a Workbench on a
temporary directory. Everything here is real: espeak-ng speech, real files, real servers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.support.media_server import MediaServer
from tests.support.settings import make_settings
from tests.support.speech import LECTURE, Lecture, encode, speak

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
# the suite transcribes with tiny.en, about twice as fast as the default model (base);
# the tests of base itself ask for it by name (tests/test_transcribe_models.py)
os.environ.setdefault("VIDRAG_WHISPER_MODEL", "tiny.en")


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
    """Settings on a fresh data directory that may fetch from 127.0.0.1 (small chunks)."""
    return make_settings(tmp_path / "home")


class Ingested:
    """A Workbench whose "Lectures" collection holds the test lecture, transcribed by ASR."""

    def __init__(self, wb, video_id: str, lecture: Lecture, url: str) -> None:
        self.wb = wb
        self.video_id = video_id
        self.lecture = lecture
        self.url = url


@pytest.fixture(scope="session")
def ingested(tmp_path_factory, media_server, lecture) -> Ingested:
    """Ingest the lecture once per test session (real yt-dlp, whisper, MiniLM, FAISS).

    Tests that change data must use their own Workbench; this one is shared read-only.
    """
    from vidrag_kernel import Workbench

    wb = Workbench(make_settings(tmp_path_factory.mktemp("ingested")))
    wb.collections.create("Lectures", "the shared test lecture", instructor="Test Instructor")
    url = media_server.url("lecture.m4a")
    results = wb.ingest(url, collection="Lectures", captions="never")
    assert results[0].status == "done", results[0].error
    yield Ingested(wb, results[0].video_id, lecture, url)
    wb.close()


@pytest.fixture(scope="session")
def postgres():
    """A real PostgreSQL server for this test session."""
    from tests.support.postgres import Postgres

    server = Postgres().start()
    yield server
    server.stop()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request, tmp_path):
    """Each catalog test runs on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'catalog.sqlite'}"
    server = request.getfixturevalue("postgres")
    return server.create_database(f"t{abs(hash(request.node.nodeid)) % 10**9}")


@pytest.fixture(scope="session")
def browser():
    """Headless Debian chromium, driven by Playwright (see tests/support/browser.py)."""
    from playwright.sync_api import sync_playwright

    from tests.support.browser import CHROMIUM, CHROMIUM_ARGS

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="session")
def dense128(tmp_path_factory):
    """A 128-dimension sentence-transformers model in a directory: the bundled MiniLM with
    a 384 -> 128 ``Dense`` layer (tests of another embedder's dimension, and of a pipeline
    ONNX Runtime does not run)."""
    import torch
    from sentence_transformers import SentenceTransformer, models

    from vidrag_kernel.embed import default_model_path

    torch.manual_seed(0)  # the projection is random: the same one on every run
    base = SentenceTransformer(default_model_path(), device="cpu")
    dense = models.Dense(384, 128, bias=False, activation_function=torch.nn.Identity())
    model = SentenceTransformer(modules=[*base, dense, models.Normalize()], device="cpu")
    path = tmp_path_factory.mktemp("models") / "minilm-dense-128"
    model.save(str(path))
    return path.resolve()
