"""The per-collection index: real FAISS and bm25s on small random collections."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vidrag_kernel.errors import Conflict, InvalidInput
from vidrag_kernel.index import CollectionIndex, IndexReader
from vidrag_kernel.index import dense as dense_module

DIM = 384
ROOT = Path(__file__).resolve().parents[1]
WORDS = ["gradient", "descent", "entropy", "matrix", "eigenvalue", "fourier", "bayes", "kernel", "tensor"]


def unit(n: int, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, DIM)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def texts_for(ids: np.ndarray) -> list[str]:
    # every chunk names one topic word, and its own id as a unique word
    return [f"today we discuss {WORDS[int(i) % len(WORDS)]} in lecture number{int(i)}" for i in ids]


def write(index: CollectionIndex, ids, vectors, texts=None, remove=()) -> int:
    ids = np.asarray(ids, dtype=np.int64)
    with index.writer(timeout=5) as w:
        if len(remove):
            w.remove(remove)
        if len(ids):
            w.add(ids, vectors, texts if texts is not None else texts_for(ids))
        return w.commit()


def gen_dirs(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir() if p.name.startswith("gen-"))


@pytest.fixture
def index(tmp_path) -> CollectionIndex:
    return CollectionIndex(tmp_path / "collections" / "c1" / "index")


def test_a_never_written_index_reads_empty_and_creates_nothing(index):
    reader = index.reader()
    assert isinstance(reader, IndexReader)
    assert (index.generation, reader.generation, len(reader)) == (0, 0, 0)
    assert reader.dense(unit(1)[0], 5) == []
    assert reader.lexical("gradient", 5) == []
    assert reader.ids().dtype == np.int64 and len(reader.ids()) == 0
    assert not index.root.exists()


def test_add_search_remove_and_replace(index):
    ids = np.arange(1000, 1040, dtype=np.int64) * 7919
    vecs = unit(40)
    assert write(index, ids, vecs) == 1
    reader = index.reader()
    assert len(reader) == 40
    assert sorted(reader.ids().tolist()) == sorted(ids.tolist())

    hits = reader.dense(vecs[3], 5)
    assert hits[0][0] == ids[3] and hits[0][1] == pytest.approx(1.0, abs=1e-5)
    assert [s for _, s in hits] == sorted((s for _, s in hits), reverse=True)
    assert all(type(i) is int and type(s) is float for i, s in hits)

    lex = reader.lexical(f"what was number{ids[5]} about", 5)
    assert lex[0][0] == ids[5] and lex[0][1] > 0
    topic = reader.lexical("Eigenvalue", 100)
    assert {i for i, _ in topic} == {int(i) for i in ids if i % len(WORDS) == WORDS.index("eigenvalue")}
    assert reader.lexical("the and of", 5) == []  # stopwords only
    assert reader.lexical("unheardofword", 5) == []

    # replace chunk 3 (new vector and text), remove chunk 5 and an unknown id
    new = unit(1, seed=99)
    with index.writer() as w:
        assert w.remove([int(ids[5]), 123456789, int(ids[5])]) == 1
        w.add(ids[3:4], new, ["a replacement about quaternions"])
    assert index.generation == 2
    reader = index.reader()
    assert len(reader) == 39 and int(ids[5]) not in reader.ids()
    assert reader.dense(new[0], 1)[0][0] == ids[3]
    assert reader.dense(vecs[3], 1)[0][0] != ids[3]
    assert reader.lexical("quaternions", 5) == [
        (int(ids[3]), pytest.approx(reader.lexical("quaternions", 1)[0][1]))
    ]
    assert reader.lexical(f"number{ids[5]}", 5) == []
    assert reader.lexical(f"number{ids[3]}", 5) == []

    # re-adding the same chunks is idempotent
    write(index, ids[:5], vecs[:5])
    assert len(index.reader()) == 39


def test_staged_add_then_remove_and_remove_then_add(index):
    ids = np.arange(10, dtype=np.int64)
    write(index, ids, unit(10))
    with index.writer() as w:
        w.add(np.array([50]), unit(1, 5), ["staged"])
        assert w.remove([50, 1]) == 2  # a staged add counts as present
        assert w.remove([1]) == 0
        w.add(np.array([1]), unit(1, 6), ["back again"])
    assert sorted(index.reader().ids().tolist()) == list(range(10))
    assert index.reader().lexical("back again", 3)[0][0] == 1


def test_generation_numbers_no_op_writers_and_discarded_writes(index):
    ids = np.arange(20, dtype=np.int64)
    assert write(index, ids, unit(20)) == 1
    assert write(index, ids[:5] + 100, unit(5, 1)) == 2
    with index.writer() as w:
        assert w.remove([999]) == 0
        assert w.commit() == 2  # nothing changed: no new generation
    with index.writer():
        pass
    assert index.generation == 2 and gen_dirs(index.root) == ["gen-000001", "gen-000002"]

    with pytest.raises(RuntimeError, match="boom"), index.writer() as w:
        w.add(np.array([500]), unit(1), ["lost"])
        raise RuntimeError("boom")
    assert index.generation == 2 and 500 not in index.reader().ids()

    manifest = json.loads((index.root / "manifest.json").read_text())
    assert manifest["generation"] == 2 and manifest["dir"] == "gen-000002" and manifest["previous"] == 1
    assert (manifest["size"], manifest["dim"], manifest["kind"]) == (25, 384, "flat")
    assert manifest["created"]

    # removing everything is a generation too, and it reads as empty
    assert write(index, [], None, remove=index.reader().ids()) == 3
    assert len(index.reader()) == 0 and index.reader().generation == 3
    assert index.reader().dense(unit(1)[0], 3) == []


def test_a_reader_keeps_its_generation_across_commits(index):
    ids = np.arange(30, dtype=np.int64)
    vecs = unit(30)
    write(index, ids, vecs)
    old = index.reader()
    expected_dense = old.dense(vecs[7], 5)
    expected_lex = old.lexical("gradient descent", 5)

    write(index, [], None, remove=ids[:15])  # generation 2
    assert old.generation == 1 and len(old) == 30
    assert old.dense(vecs[7], 5) == expected_dense
    assert index.reader().generation == 2 and len(index.reader()) == 15

    write(index, [1000], unit(1, 3))  # generation 3: generation 1 leaves the disk
    assert gen_dirs(index.root) == ["gen-000002", "gen-000003"]
    assert old.dense(vecs[7], 5) == expected_dense
    assert old.lexical("gradient descent", 5) == expected_lex
    assert old.dense(vecs[7], 5, allowed=ids[7:8]) == [(7, pytest.approx(1.0, abs=1e-5))]
    assert sorted(old.ids().tolist()) == list(range(30))


@pytest.mark.parametrize("threshold", [10_000, 10], ids=["flat", "hnsw"])
def test_allowed_ids_filter_dense_and_lexical(tmp_path, threshold, monkeypatch):
    index = CollectionIndex(tmp_path / "index", hnsw_threshold=threshold)
    ids = np.arange(200, dtype=np.int64) * 3 + 1
    vecs = unit(200)
    write(index, ids, vecs)
    reader = index.reader()
    assert reader.kind == ("flat" if threshold > 200 else "hnsw")
    allowed = np.array([ids[10], ids[20], ids[30], 2, -5], dtype=np.int64)  # 2, -5: not in the index

    hits = reader.dense(vecs[10], 10, allowed)
    assert {i for i, _ in hits} == {ids[10], ids[20], ids[30]}
    assert hits[0] == (ids[10], pytest.approx(1.0, abs=1e-5))
    exact = sorted(
        ((int(i), float(vecs[10] @ vecs[j])) for j, i in enumerate(ids) if i in allowed), key=lambda h: -h[1]
    )
    assert [i for i, _ in hits] == [i for i, _ in exact]

    if threshold < 200:
        # a large allowed set goes through the HNSW walk with a FAISS selector
        monkeypatch.setattr(dense_module, "EXACT_SUBSET_MAX", 0)
        wide = ids[::2]
        hits = reader.dense(vecs[10], 20, wide)
        assert hits[0][0] == ids[10] and {i for i, _ in hits} <= set(wide.tolist())

    # every chunk i has topic WORDS[i % 9]; allow two chunks of "gradient", one of another word
    grad = [int(i) for i in ids if i % len(WORDS) == 0][:2]
    other = next(int(i) for i in ids if i % len(WORDS) == 1)
    lex = reader.lexical("gradient", 10, np.array(grad + [other]))
    assert sorted(i for i, _ in lex) == sorted(grad)
    assert reader.lexical("gradient", 10, np.array([other])) == []
    assert reader.dense(vecs[0], 5, np.array([], dtype=np.int64)) == []
    assert reader.lexical("gradient", 5, np.array([424242])) == []


def test_flat_switches_to_hnsw_at_the_threshold(tmp_path):
    index = CollectionIndex(tmp_path / "index", hnsw_threshold=100)
    vecs = unit(300)
    write(index, np.arange(60), vecs[:60])
    assert index.manifest()["kind"] == "flat" and index.manifest()["hnsw"] is None
    write(index, np.arange(60, 120), vecs[60:120])
    manifest = index.manifest()
    assert manifest["kind"] == "hnsw" and manifest["hnsw"]["M"] == dense_module.HNSW_M
    reader = index.reader()
    assert reader.kind == "hnsw" and len(reader) == 120
    for i in (0, 77, 119):
        assert reader.dense(vecs[i], 3)[0] == (i, pytest.approx(1.0, abs=1e-4))

    write(index, np.arange(120, 300), vecs[120:300])  # additions grow the HNSW graph
    grown = index.reader()
    assert len(grown) == 300 and grown.dense(vecs[250], 1)[0][0] == 250
    assert grown.dense(vecs[5], 1)[0][0] == 5

    write(index, [], None, remove=np.arange(250))  # below the threshold again: flat
    assert index.manifest()["kind"] == "flat"
    assert index.reader().dense(vecs[260], 1)[0][0] == 260
    write(index, [1000], unit(1, 1))  # the grown HNSW generation leaves the disk
    assert not (index.root / "gen-000003").exists()
    assert grown.dense(vecs[250], 2, allowed=np.arange(240, 260))[0][0] == 250  # still mapped
    assert grown.lexical("gradient", 3)


def test_a_second_writer_waits_then_conflicts(index):
    write(index, np.arange(5), unit(5))
    other = CollectionIndex(index.root)
    with index.writer() as w:
        w.add(np.array([10]), unit(1, 1), ["first writer"])
        t0 = time.monotonic()
        with pytest.raises(Conflict, match="being written by another ingest"), other.writer(timeout=0.3):
            pass
        assert time.monotonic() - t0 >= 0.25
    assert index.generation == 2

    # a waiting writer gets the lock once the first one is done
    held = index.writer()
    held.__enter__()
    threading.Timer(0.3, held.__exit__, (None, None, None)).start()
    with other.writer(timeout=10) as w:
        w.add(np.array([11]), unit(1, 2), ["second writer"])
    assert index.generation == 3 and {10, 11} <= set(index.reader().ids().tolist())


def test_a_writer_killed_mid_commit_leaves_the_previous_generation(index, tmp_path):
    ids = np.arange(50, dtype=np.int64)
    vecs = unit(50)
    write(index, ids, vecs)
    write(index, [50], unit(1, 1))  # generation 2, previous 1
    before = index.reader().dense(vecs[4], 5)
    ready = tmp_path / "ready"
    child = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        import numpy as np
        from vidrag_kernel.index import CollectionIndex, store

        def hook(stage, path):
            Path({str(ready)!r}).write_text(str(path))
            time.sleep(60)

        store.commit_hook = hook
        with CollectionIndex(Path({str(index.root)!r})).writer() as w:
            w.remove(range(25))
            w.add(np.array([777]), np.eye(1, 384, dtype=np.float32), ["never committed"])
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child], cwd=ROOT)
    try:
        deadline = time.monotonic() + 15
        while not ready.exists():
            assert proc.poll() is None, "writer process died before the commit hook"
            assert time.monotonic() < deadline, "writer process never reached the commit hook"
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    partial = Path(ready.read_text())
    assert partial.name == "gen-000003" and partial.exists()

    assert index.generation == 2
    reader = index.reader()
    assert len(reader) == 51 and 777 not in reader.ids()
    assert reader.dense(vecs[4], 5) == before

    # the lock died with the process: the next writer gets it, removes the partial generation
    assert write(index, [900], unit(1, 2), remove=[0]) == 3
    assert gen_dirs(index.root) == ["gen-000002", "gen-000003"]
    reader = index.reader()
    assert len(reader) == 51 and 900 in reader.ids() and 0 not in reader.ids() and 777 not in reader.ids()
    assert not [p for p in os.listdir(index.root) if ".tmp" in p]


def test_a_failing_commit_discards_and_the_next_writer_cleans_up(index, monkeypatch):
    from vidrag_kernel.index import store

    write(index, np.arange(10), unit(10))

    def fail(stage, path):
        raise OSError("disk full")

    monkeypatch.setattr(store, "commit_hook", fail)
    with pytest.raises(OSError, match="disk full"):
        write(index, [10], unit(1, 1))
    assert index.generation == 1 and "gen-000002" in gen_dirs(index.root)
    monkeypatch.setattr(store, "commit_hook", None)
    assert write(index, [11], unit(1, 2)) == 2
    assert sorted(index.reader().ids().tolist()) == [*range(10), 11]


def test_bad_input_is_refused(index):
    with index.writer() as w:
        with pytest.raises(InvalidInput, match="shape"):
            w.add(np.array([1]), np.ones((1, 12), dtype=np.float32), ["x"])
        with pytest.raises(InvalidInput, match="length"):
            w.add(np.array([1, 2]), unit(1), ["x"])
    assert index.generation == 0
    write(index, [1], unit(1))
    with pytest.raises(InvalidInput, match="dimensions"):
        index.reader().dense(np.ones(12, dtype=np.float32), 3)
    with pytest.raises(RuntimeError, match="context manager"):
        index.writer().add(np.array([1]), unit(1), ["x"])


def test_destroy_removes_everything(index):
    write(index, np.arange(10), unit(10))
    write(index, np.arange(10, 20), unit(10, 1))
    old = index.reader()
    index.destroy()
    assert not index.root.exists()
    assert index.generation == 0 and len(index.reader()) == 0
    assert len(old) == 20  # a reader still open keeps its snapshot
    index.destroy()  # destroying twice is harmless

    # a new index in the same place starts again at generation 1, with no stale reader
    write(index, [5], unit(1, 9), ["fresh start"])
    reader = index.reader()
    assert reader.generation == 1 and reader.ids().tolist() == [5]


def test_manifests_record_the_embedder_and_removals_keep_it(tmp_path):
    model = {"engine": "sentence-transformers", "model": "all-MiniLM-L6-v2", "dim": DIM}
    index = CollectionIndex(tmp_path / "index", embedder=model)
    write(index, np.arange(6), unit(6))
    assert index.manifest()["embedder"] == model and index.manifest()["dim"] == DIM
    # a writer that knows nothing of the model (a removal) keeps what the manifest says
    bare = CollectionIndex(tmp_path / "index")
    write(bare, [], None, remove=[0, 1])
    assert bare.manifest()["embedder"] == model and bare.manifest()["size"] == 4


def test_reset_rebuilds_in_another_dimension_and_old_readers_keep_theirs(tmp_path):
    old = CollectionIndex(tmp_path / "index", embedder={"engine": "e", "model": "a", "dim": DIM})
    write(old, np.arange(10), unit(10))
    reader = old.reader()
    small = np.random.default_rng(1).standard_normal((10, 16)).astype(np.float32)
    small /= np.linalg.norm(small, axis=1, keepdims=True)
    new = CollectionIndex(tmp_path / "index", dim=16, embedder={"engine": "e", "model": "b", "dim": 16})

    # without a reset, vectors of another dimension are refused and nothing is written
    with pytest.raises(Conflict, match="384-dimension"), new.writer(timeout=5) as w:
        w.add(np.arange(10), small, texts_for(np.arange(10)))
    assert new.generation == 1

    with new.writer(timeout=5) as w:
        assert w.base_ids().tolist() == list(range(10))
        w.reset()
        assert w.base_ids().tolist() == []
        w.add(np.arange(5, 15), np.concatenate([small, small])[:10], texts_for(np.arange(5, 15)))
        assert w.commit() == 2
    manifest = new.manifest()
    assert (manifest["dim"], manifest["size"], manifest["previous"]) == (16, 10, 1)
    assert manifest["embedder"] == {"engine": "e", "model": "b", "dim": 16}
    fresh = new.reader()
    assert fresh.ids().tolist() == list(range(5, 15))
    assert fresh.dense(small[0], 1)[0][0] == 5
    # the reader of generation 1 still searches its 384-d rows
    assert reader.generation == 1 and reader.dense(unit(10)[3], 1)[0][0] == 3
    assert gen_dirs(new.root) == ["gen-000001", "gen-000002"]


def test_a_reset_with_nothing_added_commits_an_empty_generation(index):
    write(index, np.arange(4), unit(4))
    with index.writer(timeout=5) as w:
        w.reset()
        assert w.commit() == 2
    assert index.manifest()["kind"] == "empty" and len(index.reader()) == 0


def test_a_generation_holds_one_copy_of_the_vectors(tmp_path):
    for threshold in (10_000, 50):
        index = CollectionIndex(tmp_path / str(threshold) / "index", hnsw_threshold=threshold)
        vecs = unit(120)
        write(index, np.arange(120), vecs)
        manifest = index.manifest()
        gen = index.root / manifest["dir"]
        assert manifest["format"] == 2 and not (gen / "vectors.npy").exists()
        found, got = index.reader().vectors(np.array([7, 3, 999]))
        assert found.tolist() == [3, 7] and np.array_equal(got, vecs[[3, 7]])
        # a removal rebuilds from the FAISS file's vectors: nothing re-embedded, nothing lost
        write(index, [], None, remove=[3])
        found, got = index.reader().vectors(np.arange(120))
        assert 3 not in found and np.array_equal(got, vecs[found])


def _format_1_generation(root: Path, ids: np.ndarray, vecs: np.ndarray) -> None:
    """A generation as vidrag wrote them before format 2: vectors.npy beside faiss.index,
    BM25 built by bm25s."""
    import bm25s
    import faiss

    gen = root / "gen-000001"
    gen.mkdir(parents=True)
    np.save(gen / "ids.npy", ids)
    np.save(gen / "order.npy", np.argsort(ids, kind="stable"))
    np.save(gen / "vectors.npy", vecs)
    texts = texts_for(ids)
    (gen / "texts.jsonl").write_text("".join(json.dumps(t) + "\n" for t in texts))
    flat = faiss.IndexFlatIP(DIM)
    flat.add(vecs)
    faiss.write_index(flat, str(gen / "faiss.index"))
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en_plus", show_progress=False), show_progress=False)
    retriever.save(str(gen / "bm25"), show_progress=False)
    manifest = {
        "format": 1, "generation": 1, "dir": "gen-000001", "previous": None, "size": len(ids), "dim": DIM,
        "kind": "flat", "created": "2024-01-01T00:00:00Z", "uid": "old", "hnsw": None,
        "lexical": {"engine": "bm25s", "stopwords": "en_plus", "stemmer": None},
    }  # fmt: skip
    (root / "manifest.json").write_text(json.dumps(manifest))


def test_format_1_generations_still_open_and_are_rewritten_by_the_next_commit(index):
    ids = np.arange(30, dtype=np.int64) * 11
    vecs = unit(30)
    _format_1_generation(index.root, ids, vecs)
    reader = index.reader()
    assert len(reader) == 30 and reader.dense(vecs[4], 1)[0][0] == ids[4]
    assert reader.lexical(f"number{ids[6]}", 3)[0][0] == ids[6]
    assert {i for i, _ in reader.lexical("eigenvalue", 50)} == {int(i) for i in ids if i % 9 == 4}

    assert write(index, [5], unit(1, 3)) == 2
    manifest = index.manifest()
    assert manifest["format"] == 2 and not (index.root / "gen-000002" / "vectors.npy").exists()
    fresh = index.reader()
    assert len(fresh) == 31 and fresh.dense(vecs[4], 1)[0][0] == ids[4]
    assert fresh.lexical(f"number{ids[6]}", 3)[0][0] == ids[6]
    assert reader.dense(vecs[9], 1)[0][0] == ids[9]  # the old reader still reads generation 1


def test_large_indexes_commit_small_deltas_and_merge_them(tmp_path):
    index = CollectionIndex(tmp_path / "index", hnsw_threshold=50, delta_min=100)
    vecs = unit(400)
    write(index, np.arange(300), vecs[:300])
    base = index.root / "gen-000001" / "faiss.index"
    stamp = base.stat().st_mtime_ns
    before = index.reader()

    # one "video" of 10 chunks: a delta segment beside the untouched base
    write(index, np.arange(300, 310), vecs[300:310], [f"delta talk about zyzzyva {i}" for i in range(10)])
    manifest = index.manifest()
    assert [s["dir"] for s in manifest["segments"]] == ["gen-000001", "gen-000002"]
    assert [s["kind"] for s in manifest["segments"]] == ["hnsw", "flat"] and manifest["size"] == 310
    assert (
        base.stat().st_mtime_ns == stamp
        and not (index.root / "gen-000002" / "faiss.index").stat().st_size > 10**6
    )
    reader = index.reader()
    assert reader.segments == 2 and len(reader) == 310
    assert reader.dense(vecs[305], 1)[0] == (305, pytest.approx(1.0, abs=1e-4))
    assert reader.dense(vecs[5], 1)[0][0] == 5
    assert {i for i, _ in reader.lexical("zyzzyva", 20)} == set(range(300, 310))
    # the delta's BM25 counts the base's documents: a word in every delta chunk is still rare
    assert reader.lexical("gradient", 400)[0][1] < reader.lexical("zyzzyva", 5)[0][1]
    assert reader.ids().tolist() == list(range(310))
    assert reader.dense(vecs[7], 3, allowed=np.array([7, 303, 5000]))[:2] == [
        (7, pytest.approx(1.0, abs=1e-4)),
        (303, pytest.approx(float(vecs[7] @ vecs[303]), abs=1e-4)),
    ]

    # removing and replacing base rows records them as deleted rows of the base
    new = unit(1, seed=77)
    with index.writer() as w:
        w.remove([4, 301])
        w.add(np.array([6]), new, ["a replacement about quaternions"])
    manifest = index.manifest()
    assert manifest["segments"][0]["dir"] == "gen-000001" and manifest["segments"][0]["deleted"]
    reader = index.reader()
    assert len(reader) == 308 and 4 not in reader.ids() and 301 not in reader.ids()
    assert reader.dense(vecs[4], 1)[0][0] != 4 and reader.dense(new[0], 1)[0][0] == 6
    assert reader.dense(vecs[6], 1)[0][0] != 6
    assert [i for i, _ in reader.lexical("quaternions", 5)] == [6]
    assert reader.lexical("number4", 5) == [] and 4 not in {i for i, _ in reader.lexical("eigenvalue", 400)}
    assert 4 not in [i for i, _ in reader.dense(vecs[4], 5, allowed=np.array([4, 5]))]
    assert gen_dirs(index.root) == ["gen-000001", "gen-000002", "gen-000003"]

    # a delta past a tenth of the base is merged into one new base segment
    write(index, np.arange(310, 340), vecs[310:340])
    manifest = index.manifest()
    assert [s["dir"] for s in manifest["segments"]] == ["gen-000004"] and manifest["size"] == 338
    merged = index.reader()
    assert (
        merged.segments == 1
        and merged.dense(vecs[335], 1)[0][0] == 335
        and merged.dense(new[0], 1)[0][0] == 6
    )
    assert [i for i, _ in merged.lexical("quaternions", 5)] == [6] and 4 not in merged.ids()
    assert before.dense(vecs[4], 1)[0][0] == 4 and len(before) == 300  # generation 1 still mapped
    write(index, [1000], unit(1, 5))  # the base of generations 1-3 leaves the disk with them
    assert gen_dirs(index.root) == ["gen-000004", "gen-000005"]
    assert before.dense(vecs[4], 1)[0][0] == 4


def test_a_failed_delta_commit_leaves_the_previous_generation(tmp_path, monkeypatch):
    from vidrag_kernel.index import store

    index = CollectionIndex(tmp_path / "index", hnsw_threshold=50, delta_min=100)
    vecs = unit(200)
    write(index, np.arange(150), vecs[:150])
    write(index, np.arange(150, 155), vecs[150:155])

    def fail(stage, path):
        raise OSError("disk full")

    monkeypatch.setattr(store, "commit_hook", fail)
    with pytest.raises(OSError, match="disk full"):
        write(index, np.arange(155, 160), vecs[155:160], remove=[0])
    monkeypatch.setattr(store, "commit_hook", None)
    reader = index.reader()
    assert index.generation == 2 and len(reader) == 155 and reader.dense(vecs[0], 1)[0][0] == 0
    assert write(index, [170], vecs[170:171]) == 3
    assert gen_dirs(index.root) == ["gen-000001", "gen-000002", "gen-000003"]
    assert index.reader().ids().tolist() == [*range(155), 170]


def test_the_compressed_index_keeps_8_bit_vectors(tmp_path):
    with pytest.raises(InvalidInput, match="compression"):
        CollectionIndex(tmp_path / "x", compression="pq")
    vecs = unit(600)
    sizes = {}
    for compression in ("none", "sq8"):
        index = CollectionIndex(tmp_path / compression, hnsw_threshold=50, compression=compression)
        write(index, np.arange(600), vecs)
        manifest = index.manifest()
        sizes[compression] = (index.root / manifest["dir"] / "faiss.index").stat().st_size
        reader = index.reader()
        hits = [reader.dense(vecs[i], 1)[0] for i in range(0, 600, 10)]
        assert sum(h[0] == i * 10 for i, h in enumerate(hits)) >= 58
        assert all(h[1] == pytest.approx(1.0, abs=0.02) for h in hits)
    assert manifest["kind"] == "hnsw-sq8" and manifest["hnsw"]["M"] == dense_module.HNSW_M
    assert sizes["sq8"] < sizes["none"] * 0.45
    # a removal rebuilds from the decoded 8-bit vectors
    write(index, [], None, remove=[1])
    assert index.reader().dense(vecs[2], 1)[0][0] == 2 and 1 not in index.reader().ids()


def test_staged_rows_count_their_latest_add_until_a_remove(index):
    write(index, np.arange(5), unit(5))
    with index.writer() as w:
        w.add(np.array([60, 61]), unit(2, 1), ["first sixty", "first sixtyone"])
        w.add(np.array([61, 60]), unit(2, 2), ["second sixtyone", "second sixty"])
        assert w.remove([60]) == 1 and w.remove([60]) == 0  # both adds of 60 are gone
        w.add(np.array([62, 62]), unit(2, 3), ["twice once", "twice twice"])
    reader = index.reader()
    assert reader.ids().tolist() == [0, 1, 2, 3, 4, 61, 62]
    assert reader.lexical("second", 5) == reader.lexical("sixtyone", 5)[:1]
    assert reader.lexical("first", 5) == []
    found, got = reader.vectors(np.array([61, 62]))
    assert np.array_equal(got, np.stack([unit(2, 2)[0], unit(2, 3)[1]]))


@pytest.mark.parametrize("kind", dense_module.KINDS)
def test_a_new_faiss_index_is_allocated_once_at_its_final_size(kind):
    # FAISS grows its vectors and graph with std::vector::resize, which doubles and copies:
    # at 1M rows the old and new buffers were resident at once. Sized up front, every
    # batch lands in the first buffer.
    import faiss

    vecs = unit(3000, 9)
    index = dense_module._new(kind, DIM)
    if not index.is_trained:
        index.train(vecs)
    dense_module._presize(index, len(vecs))
    graph = dense_module.is_graph(kind)
    storage = faiss.downcast_index(index.storage) if graph else index

    def buffers() -> tuple:
        return (storage.codes.data(), index.hnsw.neighbors.data()) if graph else (storage.codes.data(),)

    before = buffers()
    for start in range(0, len(vecs), 500):
        index.add(vecs[start : start + 500])
    assert buffers() == before and index.ntotal == len(vecs)
    _, labels = index.search(vecs[:100], 1)
    assert (labels.ravel() == np.arange(100)).mean() >= 0.97


def test_the_writer_sizes_each_segment_it_builds(tmp_path, monkeypatch):
    sized = []
    real = dense_module._presize

    def recording(index, total):
        sized.append((type(index).__name__, total))
        real(index, total)

    monkeypatch.setattr(dense_module, "_presize", recording)
    index = CollectionIndex(tmp_path / "index", hnsw_threshold=100)
    write(index, np.arange(150), unit(150))
    write(index, np.arange(150, 160), unit(10, 1), remove=[0, 1])
    assert sized == [("IndexHNSWFlat", 150), ("IndexHNSWFlat", 158)]


def test_a_search_uses_the_index_query_threads_and_restores_the_callers(tmp_path, monkeypatch):
    import faiss

    seen = []
    real = dense_module.search

    def recording(*args, **kwargs):
        seen.append(faiss.omp_get_max_threads())
        return real(*args, **kwargs)

    monkeypatch.setattr(dense_module, "search", recording)
    root = tmp_path / "index"
    write(CollectionIndex(root), np.arange(50), unit(50))
    caller = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(2)
        for threads in (1, 0, 3):  # the default, FAISS's own (every core), and more
            hits = CollectionIndex(root, query_threads=threads).reader().dense(unit(50)[7], 1)
            assert hits[0][0] == 7 and faiss.omp_get_max_threads() == 2
        assert seen == [1, 2, 3]
        assert CollectionIndex(root).reader().threads == dense_module.QUERY_THREADS == 1
    finally:
        faiss.omp_set_num_threads(caller)


@pytest.mark.parametrize("kind", dense_module.KINDS)
def test_an_index_read_to_grow_holds_its_vectors_once_with_room_for_the_new_rows(tmp_path, kind):
    # read plainly, a base held its vectors at their exact size and the first add copied
    # them into a buffer twice as large; read to grow, they are copied from the memory
    # map into one buffer of the final size, and adding fills it in place
    import faiss

    vecs = unit(3000, 4)

    def batches(upto: int):
        return lambda: (vecs[i : min(i + 500, upto)] for i in range(0, upto, 500))

    base = tmp_path / "base.index"
    dense_module.build(base, kind, DIM, batches(2000), total=2000)
    grown = dense_module._read_growable(base, 3000)
    graph = dense_module.is_graph(kind)
    storage = faiss.downcast_index(grown.storage) if graph else grown
    vectors = [storage.codes] + ([grown.hnsw.neighbors] if graph else [])
    assert all(v.is_owned for v in vectors)
    before = [v.data() for v in vectors]
    grown.add(vecs[2000:])
    assert [v.data() for v in vectors] == before and grown.ntotal == 3000
    _, labels = grown.search(vecs[::30], 1)
    assert (labels.ravel() == np.arange(0, 3000, 30)).mean() >= 0.97
    # build() grows a base the same way (graph inserts run in parallel: not bit-identical)
    dense_module.build(tmp_path / "grown.index", kind, DIM, batches(3000), base=base, total=3000)
    again = faiss.read_index(str(tmp_path / "grown.index"))
    _, labels = again.search(vecs[1990:2100], 1)
    assert again.ntotal == 3000 and (labels.ravel() == np.arange(1990, 2100)).mean() >= 0.97
