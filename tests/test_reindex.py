"""Changing the embedding model: an index records the model that built it, another model
meets a clear Conflict, and ``reindex`` re-embeds the stored passages into a new
generation of another dimension, with no download or transcription. The other model is
a real sentence-transformers model: the bundled MiniLM with a 384 -> 128 ``Dense`` layer,
saved to disk and loaded by path."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sqlalchemy import func, select

from tests.support.cli import vidrag
from tests.support.settings import make_settings
from vidrag_kernel import Workbench
from vidrag_kernel.catalog import IngestJob
from vidrag_kernel.embed import get_embedder
from vidrag_kernel.errors import Conflict
from vidrag_kernel.indexing import add_videos_to_index, open_index, write_chunks

QUESTION = "How was the French king put to death?"


@pytest.fixture
def lectures(tmp_path, media_server):
    """A Workbench (the default MiniLM) whose "Lectures" holds the lecture, from its captions."""
    wb = Workbench(make_settings(tmp_path / "home"))
    wb.collections.create("Lectures")
    [result] = wb.ingest(media_server.url("lecture.html"), "Lectures", captions="only")
    assert result.status == "done", result.error
    yield wb
    wb.close()


def _manifest(wb: Workbench, collection: str = "Lectures") -> dict:
    index_dir = wb.ctx.layout.index_dir(wb.collections.get(collection).id)
    return json.loads((index_dir / "manifest.json").read_text())


def _untouched(wb: Workbench) -> tuple:
    """What an ingest would change: its jobs, and the media files on disk."""
    with wb.ctx.catalog.session() as s:
        jobs = s.scalar(select(func.count()).select_from(IngestJob))
    media = sorted(
        (p.relative_to(wb.settings.home), p.stat().st_mtime_ns) for p in wb.settings.home.rglob("media/**/*")
    )
    return jobs, media


def test_another_model_is_refused_until_reindex_rebuilds_the_index(lectures, dense128):
    wb = lectures
    before = _manifest(wb)
    assert before["embedder"] == {"engine": "sentence-transformers", "model": "all-MiniLM-L6-v2", "dim": 384}
    collection_id = wb.collections.get("Lectures").id
    [video] = wb.videos.list("Lectures")
    old_reader = open_index(wb.ctx, collection_id).reader()
    untouched = _untouched(wb)

    other = Workbench(make_settings(wb.settings.home, embedding_model=str(dense128)))
    try:
        # searching, asking and adding with the other model: one clear error, nothing written
        for attempt in (
            lambda: other.search(QUESTION, "Lectures"),
            lambda: other.ask(QUESTION, "Lectures", save=False),
            lambda: add_videos_to_index(other.ctx, collection_id, [video.id]),
        ):
            with pytest.raises(Conflict) as err:
                attempt()
            message = err.value.message
            assert "all-MiniLM-L6-v2 (sentence-transformers, 384 dimensions)" in message
            assert f"{dense128} (sentence-transformers, 128 dimensions)" in message
            assert 'vidrag reindex "Lectures"' in message and 'wb.reindex("Lectures")' in message
        assert _manifest(wb)["uid"] == before["uid"]

        events = []
        generation = other.reindex("Lectures", progress=events.append)
        after = _manifest(other)
        assert generation == before["generation"] + 1 == after["generation"]
        assert after["embedder"] == {"engine": "sentence-transformers", "model": str(dense128), "dim": 128}
        assert (after["dim"], after["size"], after["previous"]) == (128, before["size"], before["generation"])
        embedding = [e.fraction for e in events if e.stage == "embedding"]
        assert embedding[0] == 0.0 and embedding[-1] == 1.0 and embedding == sorted(embedding)
        assert [e.stage for e in events[-2:]] == ["indexing", "done"]
        assert _untouched(wb) == untouched  # no download, no transcription, no ingest job

        hits = other.search(QUESTION, "Lectures", k=3)
        assert any("guillotine" in h.text.lower() for h in hits), [h.text for h in hits]
        assert {h.generation for h in hits} == {generation}
        # a reader of the 384-d generation keeps searching it until it reopens
        qvec = get_embedder(wb.settings).embed_query(QUESTION)
        assert old_reader.generation == before["generation"] and len(old_reader.dense(qvec, 3)) == 3

        # now the MiniLM side is the one told to reindex, naming the 128-d model
        with pytest.raises(Conflict, match=r"minilm-dense-128 \(sentence-transformers, 128 dimensions\)"):
            wb.search(QUESTION, "Lectures")
    finally:
        other.close()
    assert wb.reindex("Lectures") == generation + 1
    assert _manifest(wb)["dim"] == 384 and wb.search(QUESTION, "Lectures", k=3)


def test_an_index_from_before_the_embedder_was_recorded_counts_as_minilm(lectures, dense128):
    wb = lectures
    index_dir = wb.ctx.layout.index_dir(wb.collections.get("Lectures").id)
    manifest = _manifest(wb)
    del manifest["embedder"]
    (index_dir / "manifest.json").write_text(json.dumps(manifest))

    assert wb.search(QUESTION, "Lectures", k=1)
    # vectors made elsewhere (a worker) say which model made them; no model is loaded to check
    foreign = {"engine": "sentence-transformers", "model": "another-384-d-model", "dim": 384}
    with pytest.raises(Conflict, match="another-384-d-model"):
        write_chunks(
            wb.ctx,
            wb.collections.get("Lectures").id,
            add_ids=[1],
            vectors=np.ones((1, 384), np.float32) / np.sqrt(384),
            texts=["a passage"],
            embedder=foreign,
        )
    assert _manifest(wb)["generation"] == manifest["generation"]
    other = Workbench(make_settings(wb.settings.home, embedding_model=str(dense128)))
    try:
        with pytest.raises(Conflict, match=r"all-MiniLM-L6-v2 \(sentence-transformers, 384 dimensions\)"):
            other.search(QUESTION, "Lectures")
    finally:
        other.close()


def test_vidrag_reindex_on_the_command_line(lectures, dense128):
    home = lectures.settings.home
    env = {"VIDRAG_EMBEDDING_MODEL": str(dense128)}
    r = vidrag(home, "search", QUESTION, "--collection", "Lectures", "--json", env=env)
    assert r.returncode == 5, r.stderr  # Conflict
    assert 'vidrag reindex "Lectures"' in r.stderr and "Traceback" not in r.stderr

    r = vidrag(home, "reindex", "Lectures", "--json", env=env)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["generation"] == 2 and out["embedder"]["dim"] == 128
    assert _manifest(lectures)["embedder"]["model"] == str(dense128)

    r = vidrag(home, "reindex", "Nope")
    assert r.returncode == 4 and r.stderr.startswith("vidrag: error:")
