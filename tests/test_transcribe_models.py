"""Speech models by name: the multilingual ``base`` joined once from its two wheels."""

from __future__ import annotations

import json

import pytest

from tests.support.speech import speak
from vidrag_kernel.errors import ModelError
from vidrag_kernel.transcribe import models


@pytest.fixture(scope="module")
def cache(tmp_path_factory):
    return tmp_path_factory.mktemp("model-cache")


def test_base_is_joined_once_and_checked(cache):
    first, _ = models._part(models.BASE_PARTS[0])
    second, _ = models._part(models.BASE_PARTS[1])
    halves = (first / "model.bin.part1").stat().st_size + (second / "model.bin.part2").stat().st_size

    target = models.multilingual_base(cache)
    manifest = json.loads((target / models.MANIFEST).read_text())
    assert (target / "model.bin").stat().st_size == halves == manifest["sizes"]["model.bin"]
    assert {"config.json", "tokenizer.json", "vocabulary.txt"} <= {p.name for p in target.iterdir()}
    joined_at = (target / "model.bin").stat().st_mtime_ns
    assert models.multilingual_base(cache) == target
    assert (target / "model.bin").stat().st_mtime_ns == joined_at  # not joined again

    # a truncated file (a full disk, an interrupted copy) is noticed and joined again
    with (target / "model.bin").open("r+b") as f:
        f.truncate(1024)
    assert models.multilingual_base(cache) == target
    assert (target / "model.bin").stat().st_size == halves
    assert not list(cache.glob("*.partial-*"))


def test_a_missing_extra_names_the_pip_command():
    with pytest.raises(ModelError, match=r"pip install 'vidrag\[multilingual\]'"):
        models._part("vidrag-no-such-model-part")


def test_a_half_that_does_not_match_its_wheel_is_refused(tmp_path):
    damaged = tmp_path / "config.json"
    damaged.write_text("{}")
    with pytest.raises(ModelError, match="checksum"):
        models._check(damaged, ("not-the-digest", 2), "config.json")


def test_model_names_resolve_offline():
    assert models.resolve(None) == models.resolve("tiny.en") == models.bundled_tiny_en()
    assert models.resolve("/some/model/dir") == "/some/model/dir"


@pytest.mark.slow
def test_base_detects_a_lecture_that_is_not_in_english(tmp_path, cache, monkeypatch):
    from tests.support.settings import make_settings
    from vidrag_kernel.transcribe import get_transcriber

    monkeypatch.setenv("VIDRAG_MODEL_CACHE", str(cache))
    # espeak-ng's Spanish voice is the one base hears reliably (its German and French are
    # heard as English and Latin); the sentences are a geology lecture's
    lecture = speak(
        [
            "La deriva continental fue propuesta por Alfred Wegener.",
            "Las placas se mueven unos centímetros cada año.",
            "Los terremotos ocurren en los bordes de las placas.",
        ],
        tmp_path / "es.wav",
        voice="es",
        speed=140,
    )
    settings = make_settings(tmp_path / "home", whisper_model="base", whisper_language="auto")
    transcript = get_transcriber(settings).transcribe(lecture.wav)
    assert transcript.language == "es"
    text = " ".join(s.text for s in transcript.segments).lower()
    assert "continental" in text and "placas" in text
