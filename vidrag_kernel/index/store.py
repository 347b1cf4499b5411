"""Generations on disk: the manifest, the single writer and the reader cache."""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np

from ..errors import Conflict, InvalidInput
from . import dense as _dense
from . import lexical as _lexical
from .reader import IndexReader, segments_of

MANIFEST = "manifest.json"
LOCK = "write.lock"
#: 2: the FAISS file is the only copy of the vectors (no vectors.npy), a generation is a
#: list of segments with per-segment deleted rows. Format 1 generations still open.
FORMAT = 2
#: a commit to an index of at least ``delta_min`` rows writes only a delta segment (the
#: new rows and the rows of the previous delta) and the deleted rows of the base, while
#: the delta stays within this share of the base and ``DELTA_MAX_ROWS`` (a flat segment:
#: exact search over it stays a few milliseconds)
DELTA_FRACTION = 0.1
DELTA_MAX_ROWS = 20_000
DELTA_MIN = 50_000
#: rows read back and added to FAISS at a time when a segment is written (29 MiB of
#: 384-d float32: beside a 1.7 GB index at 1M rows, every 50k rows held counted 5%)
BATCH = 20_000
COMPRESSIONS = ("none", "sq8")
_GEN_DIR = re.compile(r"^gen-(\d{6,})$")

#: Test hook, None in normal use: called as ``commit_hook(stage, path)`` at
#: ``"files-written"`` (the new generation directory is complete and fsynced, the manifest
#: does not name it yet), so a test can kill the writer exactly there.
commit_hook: Callable[[str, Path], None] | None = None

# Readers are immutable snapshots, so one per generation can be shared by every caller in
# the process; retrieval asks for a reader per query and a 1M-row HNSW graph takes
# seconds to load. Keyed by the manifest's uid, which is new on every commit (and after
# destroy + rewrite, where generation numbers start again).
_CACHE_SIZE = 4
_cache: OrderedDict[tuple[str, str], IndexReader] = OrderedDict()
_cache_lock = threading.Lock()


def _gen_name(generation: int) -> str:
    return f"gen-{generation:06d}"


def _fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(directory: Path) -> None:
    """fsync every file and directory under ``directory``, children before parents."""
    for dirpath, _dirs, files in os.walk(directory, topdown=False):
        for name in files:
            _fsync_path(Path(dirpath) / name)
        _fsync_path(Path(dirpath))


class CollectionIndex:
    """The search index of one collection, rooted at its index directory.

    Nothing is created on disk until a writer commits. ``hnsw_threshold`` is the row
    count from which a generation is built as HNSW rather than exact flat search, over
    float32 vectors or, with ``compression="sq8"``, 8-bit ones. ``dim`` is the dimension
    of the vectors writers add; ``embedder`` describes their model. ``delta_min`` is the
    size from which a commit writes a small delta segment beside the base instead of
    rewriting the whole index. ``query_threads`` is how many OpenMP threads one search
    of its readers may use (0: FAISS's default, every core).
    """

    def __init__(
        self,
        root: Path,
        *,
        dim: int = 384,
        hnsw_threshold: int = 50_000,
        embedder: dict | None = None,
        compression: str = "none",
        delta_min: int = DELTA_MIN,
        query_threads: int = _dense.QUERY_THREADS,
    ) -> None:
        if compression not in COMPRESSIONS:
            raise InvalidInput(
                f"index compression must be one of {', '.join(COMPRESSIONS)}, not {compression!r}"
            )
        self.root = Path(root)
        self.dim = dim
        self.hnsw_threshold = hnsw_threshold
        #: "none" (HNSW over float32 vectors) or "sq8" (HNSW over 8-bit scalar-quantized
        #: vectors) for generations at or above ``hnsw_threshold`` rows
        self.compression = compression
        #: the row count from which commits write delta segments instead of everything
        self.delta_min = delta_min
        #: recorded in the manifests this index's writers commit (engine, model, dim of the
        #: vectors); None keeps what the previous manifest recorded
        self.embedder = embedder
        self.query_threads = query_threads

    def __repr__(self) -> str:
        return f"<CollectionIndex {self.root} generation={self.generation}>"

    def manifest(self) -> dict | None:
        """The current manifest, or None when the index was never written."""
        try:
            return json.loads((self.root / MANIFEST).read_text())
        except FileNotFoundError:
            return None

    @property
    def generation(self) -> int:
        """The current generation number; 0 when never written."""
        manifest = self.manifest()
        return int(manifest["generation"]) if manifest else 0

    def reader(self) -> IndexReader:
        """A snapshot of the current generation (an empty reader if there is none)."""
        for attempt in range(3):
            manifest = self.manifest()
            if manifest is None:
                return IndexReader()
            key = (str(self.root.resolve()), manifest["uid"])
            with _cache_lock:
                reader = _cache.get(key)
                if reader is not None:
                    _cache.move_to_end(key)
                    reader.threads = self.query_threads
                    return reader
            try:
                reader = IndexReader(int(manifest["generation"]), self.root, manifest)
                break
            except FileNotFoundError:
                # two commits landed between reading the manifest and opening its
                # generation, and the second deleted it: the manifest now names a newer one
                if attempt == 2:
                    raise
        reader.threads = self.query_threads
        with _cache_lock:
            _cache[key] = reader
            while len(_cache) > _CACHE_SIZE:
                _cache.popitem(last=False)
        return reader

    def writer(self, timeout: float = 600) -> IndexWriter:
        """The single writer, as a context manager: ``with index.writer() as w: ...``.

        Entering waits up to ``timeout`` seconds for another writer of this collection
        (in any process) and then raises ``Conflict``. A clean exit commits; an exception
        discards every change.
        """
        return IndexWriter(self, timeout)

    def destroy(self) -> None:
        """Remove the whole index directory (the collection is being deleted).

        Waits for a running writer (up to a minute, then ``Conflict``) so that its new
        generation is not written into a directory being removed.
        """
        if not self.root.exists():
            return
        with _lock(self.root, 60):
            # the manifest first: from here on readers see an index that was never written
            (self.root / MANIFEST).unlink(missing_ok=True)
            for child in self.root.iterdir():
                if child.name != LOCK:
                    if child.is_dir():
                        shutil.rmtree(child)
                    else:
                        child.unlink()
        shutil.rmtree(self.root, ignore_errors=True)
        root = str(self.root.resolve())
        with _cache_lock:
            for key in [key for key in _cache if key[0] == root]:
                del _cache[key]


class _lock:
    """The collection's write lock, with a timeout that raises ``Conflict``."""

    def __init__(self, root: Path, timeout: float) -> None:
        from filelock import FileLock

        root.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(root / LOCK), timeout=timeout)

    def __enter__(self) -> _lock:
        from filelock import Timeout

        try:
            self._lock.acquire()
        except Timeout:
            raise Conflict("collection is being written by another ingest") from None
        return self

    def __exit__(self, *exc: object) -> None:
        self._lock.release()


def _dirs_of(manifest: dict | None) -> set[str]:
    """Every directory a generation reads: its own and those of its segments."""
    if not manifest:
        return set()
    return {manifest["dir"], *(e["dir"] for e in segments_of(manifest))}


class _Source:
    """Rows that a new segment takes from an old segment or from the staged rows, in order."""

    def __init__(self, ids: np.ndarray, rows: np.ndarray, n: int, texts: Path, vectors: Callable) -> None:
        self.ids = ids  # the chunk ids of the taken rows
        self.rows = rows  # ascending row numbers in the source
        self.n = n  # rows in the source (lines in ``texts``)
        self.texts = texts
        self.vectors = vectors  # rows -> float32 (len(rows), dim)


class IndexWriter:
    """Adds and removes chunks, then commits them as one new generation.

    Nothing on disk that a reader uses changes before ``commit``. Staged vectors and
    texts are appended to files in the directory of the coming generation rather than
    held in memory (a writer killed meanwhile leaves only a directory the next writer
    deletes).
    """

    def __init__(self, index: CollectionIndex, timeout: float) -> None:
        self._index = index
        self._timeout = timeout
        self._lock: _lock | None = None
        self._manifest: dict | None = None
        self._segs: list[dict] = []
        self._base_ids = np.empty(0, dtype=np.int64)
        self._base_sorted = self._base_ids
        self._removed: set[int] = set()
        # staged rows: the ids of each add, in staging-file order, and the staging rows a
        # later remove dropped; arrays, not a dict per row (a dict of 1M ints is 100 MB)
        self._staged_ids: list[np.ndarray] = []
        self._killed: list[np.ndarray] = []
        self._n_staged = 0
        self._stage: Path | None = None
        self._vec_file: Any = None
        self._txt_file: Any = None
        self._changed = False
        self._reset = False
        self._committed: int | None = None

    def __enter__(self) -> IndexWriter:
        self._lock = _lock(self._index.root, self._timeout)
        self._lock.__enter__()
        try:
            self._manifest = self._index.manifest()
            self._clean()
            if self._manifest and self._manifest["size"]:
                for entry in segments_of(self._manifest):
                    ids = np.load(self._index.root / entry["dir"] / "ids.npy")
                    dead = np.zeros(len(ids), dtype=bool)
                    if entry.get("deleted"):
                        dead[np.load(self._index.root / entry["deleted"])] = True
                    self._segs.append({"entry": entry, "ids": ids, "dead": dead})
                live = [s["ids"][~s["dead"]] for s in self._segs]
                self._base_ids = np.concatenate(live) if live else self._base_ids
                self._base_sorted = np.sort(self._base_ids)
        except BaseException:
            self._release()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        try:
            if exc_type is None and self._committed is None:
                self.commit()
        finally:
            self._close_stage()
            self._release()

    @property
    def manifest(self) -> dict | None:
        """The manifest this writer builds on (read under the lock), None for a new index."""
        return self._manifest

    def base_ids(self) -> np.ndarray:
        """The ids of the generation this writer builds on, ascending (empty after ``reset``)."""
        return np.array(self._base_sorted, dtype=np.int64)

    def _release(self) -> None:
        if self._lock is not None:
            self._lock.__exit__()
            self._lock = None

    def _require_lock(self) -> None:
        if self._lock is None:
            raise RuntimeError("use the writer as a context manager: with index.writer() as w: ...")

    def _dir(self, manifest: dict) -> Path:
        return self._index.root / manifest["dir"]

    def _clean(self) -> None:
        """Delete everything the manifest does not name: partial and outdated generations."""
        keep = {MANIFEST, LOCK} | _dirs_of(self._manifest)
        if self._manifest:
            if "keep" in self._manifest:
                keep.update(self._manifest["keep"])
            elif self._manifest.get("previous"):
                keep.add(_gen_name(self._manifest["previous"]))
        for child in self._index.root.iterdir():
            if child.name in keep:
                continue
            if _GEN_DIR.match(child.name) and child.is_dir():
                shutil.rmtree(child)
            elif child.name.startswith(MANIFEST + ".tmp"):
                child.unlink()

    def _in_base(self, ids: np.ndarray) -> np.ndarray:
        if len(self._base_sorted) == 0:
            return np.zeros(len(ids), dtype=bool)
        at = np.searchsorted(self._base_sorted, ids).clip(max=len(self._base_sorted) - 1)
        return self._base_sorted[at] == ids

    def _base_dim(self) -> int | None:
        """The dimension of the rows this commit keeps (None when it keeps none)."""
        if self._reset or not self._manifest or not self._manifest["size"]:
            return None
        return int(self._manifest["dim"])

    def _current(self) -> int:
        return int(self._manifest["generation"]) if self._manifest else 0

    def _open_stage(self) -> None:
        if self._stage is None:
            self._stage = self._index.root / _gen_name(self._current() + 1)
            self._stage.mkdir(exist_ok=True)
            self._vec_file = open(self._stage / "staged.f32", "wb")  # noqa: SIM115 - closed in _close_stage
            self._txt_file = open(self._stage / "staged.jsonl", "w", encoding="utf-8")  # noqa: SIM115

    def _close_stage(self, delete: bool = False) -> None:
        for f in (self._vec_file, self._txt_file):
            if f is not None:
                f.close()
        self._vec_file = self._txt_file = None
        if delete and self._stage is not None:
            for name in ("staged.f32", "staged.jsonl"):
                (self._stage / name).unlink(missing_ok=True)

    def reset(self) -> None:
        """Stage the removal of every row and change, so that the commit holds only what is
        added afterwards, in vectors of any dimension: a rebuild with another embedder.

        Readers keep the current generation until they reopen, as with any commit.
        """
        self._require_lock()
        self._reset = True
        # rows staged so far may have another dimension than those added from now on
        self._close_stage(delete=True)
        self._stage = None
        self._staged_ids.clear()
        self._killed.clear()
        self._n_staged = 0
        self._removed.clear()
        self._segs = []
        self._base_ids = np.empty(0, dtype=np.int64)
        self._base_sorted = self._base_ids
        self._changed = True

    def add(self, ids: np.ndarray, vectors: np.ndarray, texts: Sequence[str]) -> None:
        """Stage chunks: int64 ids, float32 (n, dim) L2-normalised vectors, their texts.

        An id that is already in the index (or staged) is replaced. Vectors of another
        dimension than the rows already there are refused (``Conflict``): ``reset`` first.
        """
        self._require_lock()
        base_dim = self._base_dim()
        if base_dim is not None and base_dim != self._index.dim:
            raise Conflict(
                f"this index holds {base_dim}-dimension vectors, not {self._index.dim}: "
                "rebuild it with the current embedder (reindex)"
            )
        ids = np.asarray(ids, dtype=np.int64).ravel()
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] != self._index.dim:
            raise InvalidInput(f"vectors must have shape (n, {self._index.dim}), got {vectors.shape}")
        if not (len(ids) == len(vectors) == len(texts)):
            raise InvalidInput(
                f"ids, vectors and texts differ in length ({len(ids)}, {len(vectors)}, {len(texts)})"
            )
        if len(ids) == 0:
            return
        self._open_stage()
        self._vec_file.write(np.ascontiguousarray(vectors).tobytes())
        self._txt_file.writelines(json.dumps(str(t), ensure_ascii=False) + "\n" for t in texts)
        self._staged_ids.append(ids.copy())
        self._n_staged += len(ids)
        self._changed = True

    def remove(self, ids: Iterable[int]) -> int:
        """Stage removal of ``ids``; returns how many of them were present."""
        self._require_lock()
        wanted = np.unique(np.fromiter((int(i) for i in ids), dtype=np.int64))
        in_base = self._in_base(wanted)
        staged_ids, staged_rows = self._staged_live()
        hit = np.isin(staged_ids, wanted)
        if hit.any():
            self._killed.append(staged_rows[hit])
        was_staged = np.isin(wanted, staged_ids[hit])
        present = 0
        for i, based, staged in zip(wanted.tolist(), in_base.tolist(), was_staged.tolist(), strict=True):
            if staged or (based and i not in self._removed):
                present += 1
            if based:
                self._removed.add(i)
        self._changed = self._changed or present > 0
        return present

    def commit(self) -> int:
        """Write the staged changes as a new generation and return its number.

        With nothing staged no generation is made and the current number is returned.
        """
        self._require_lock()
        if self._committed is not None:
            raise RuntimeError("this writer has already committed")
        current = self._current()
        if not self._changed:
            self._committed = current
            return current
        generation = current + 1
        target = self._index.root / _gen_name(generation)
        target.mkdir(exist_ok=True)
        self._close_stage()
        manifest = self._build(target, generation)
        self._close_stage(delete=True)
        _fsync_tree(target)
        if commit_hook is not None:
            commit_hook("files-written", target)
        self._write_manifest(manifest)
        self._committed = generation
        self._manifest = manifest
        # generations older than the previous one may go: readers hold at most the last two
        self._clean()
        return generation

    def _kind(self, n: int) -> str:
        if n == 0:
            return "empty"
        if n < self._index.hnsw_threshold:
            return "flat"
        return "hnsw-sq8" if self._index.compression == "sq8" else "hnsw"

    def _segment_source(self, seg: dict, dead: np.ndarray) -> _Source:
        directory = self._index.root / seg["entry"]["dir"]
        rows = np.flatnonzero(~dead)
        holder: dict = {}

        def vectors(r: np.ndarray) -> np.ndarray:
            # opened on first use, memory-mapped: only the rows taken are read
            if "index" not in holder:
                holder["index"] = _dense.load(directory / "faiss.index")
            return _dense.take(holder["index"], r)

        return _Source(seg["ids"][rows], rows, len(seg["ids"]), directory / "texts.jsonl", vectors)

    def _staged_live(self) -> tuple[np.ndarray, np.ndarray]:
        """``(ids, ascending staging rows)`` of the staged rows a commit takes: the latest
        add of each id, unless a remove came after it."""
        if not self._n_staged:
            empty = np.empty(0, dtype=np.int64)
            return empty, empty
        if len(self._staged_ids) > 1:
            self._staged_ids = [np.concatenate(self._staged_ids)]
        ids = self._staged_ids[0]
        # np.unique gives the first index of each value: over the reversed ids, the last add
        _, last = np.unique(ids[::-1], return_index=True)
        rows = np.sort(len(ids) - 1 - last)
        if self._killed:
            rows = rows[~np.isin(rows, np.concatenate(self._killed))]
        return ids[rows], rows

    def _staged_source(self, dim: int, ids: np.ndarray, rows: np.ndarray) -> _Source | None:
        if not len(rows):
            return None
        path = self._stage / "staged.f32"
        return _Source(
            ids, rows, self._n_staged, self._stage / "staged.jsonl", lambda r: _read_rows(path, r, dim)
        )

    def _build(self, target: Path, generation: int) -> dict:
        base = self._manifest if self._manifest and self._manifest["size"] and not self._reset else None
        # rows kept from the base keep their dimension (a removal needs no embedder at all)
        staged_ids, staged_rows = self._staged_live()
        dim = int(base["dim"]) if base and not len(staged_ids) else self._index.dim
        if base and int(base["dim"]) != dim:
            raise Conflict(
                f"this index holds {base['dim']}-dimension vectors, not {dim}: "
                "rebuild it with the current embedder (reindex)"
            )
        embedder = self._index.embedder
        if embedder is None and base is not None:
            embedder = base.get("embedder")
        segs = self._segs if base else []
        gone = np.union1d(staged_ids, np.fromiter(self._removed, dtype=np.int64, count=len(self._removed)))
        deads = [s["dead"] | np.isin(s["ids"], gone) for s in segs]
        staged = self._staged_source(dim, staged_ids, staged_rows)
        n_new = 0 if staged is None else len(staged.ids)
        n = sum(int((~d).sum()) for d in deads) + n_new
        kind = self._kind(n)
        lexical = {
            "engine": "vidrag-bm25",
            "stopwords": _lexical.STOPWORDS,
            "stemmer": _lexical.stemmer_name(),
        }
        if segs and self._delta_fits(base, segs, deads, n_new, kind):
            # the stemmer of the base: one query tokenization serves every segment
            lexical = {**lexical, "stemmer": (base.get("lexical") or {}).get("stemmer")}
            entries = self._write_delta(target, segs, deads, staged, dim, lexical["stemmer"])
        elif n:
            sources = [self._segment_source(s, d) for s, d in zip(segs, deads, strict=True)]
            sources = [s for s in sources if len(s.rows)] + ([staged] if staged else [])
            # pure additions to a graph segment extend a copy of its graph: rebuilding a
            # million-row graph for one new video would take minutes
            first = segs[0] if segs else None
            grow = None
            if first and first["entry"]["kind"] == kind and _dense.is_graph(kind) and not deads[0].any():
                grow = self._index.root / first["entry"]["dir"] / "faiss.index"
            entries = [self._write_segment(target, sources, kind, dim, lexical["stemmer"], grow=grow)]
        else:
            entries = []
        return {
            "format": FORMAT,
            "generation": generation,
            "dir": target.name,
            "previous": int(self._manifest["generation"]) if self._manifest else None,
            "size": n,
            "dim": dim,
            "embedder": embedder,
            "kind": entries[0]["kind"] if entries else "empty",
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "uid": uuid.uuid4().hex,
            "hnsw": _dense.hnsw_params() if entries and _dense.is_graph(entries[0]["kind"]) else None,
            "lexical": lexical,
            "segments": entries,
            # what the previous generation reads: kept for its readers until the next commit
            "keep": sorted(_dirs_of(self._manifest)),
        }

    def _delta_fits(
        self, base: dict, segs: list[dict], deads: list[np.ndarray], n_new: int, kind: str
    ) -> bool:
        """Whether this commit may keep the base segment and write only a delta."""
        first = segs[0]["entry"]
        size = int(first["size"])
        if "segments" not in base or "tokens" not in first or size < self._index.delta_min:
            return False
        if first["kind"] != kind:  # crossing the HNSW threshold, or another compression
            return False
        limit = min(DELTA_MAX_ROWS, DELTA_FRACTION * size)
        delta_rows = sum(int((~d).sum()) for d in deads[1:]) + n_new
        return int(deads[0].sum()) <= DELTA_FRACTION * size and delta_rows <= limit

    def _write_delta(
        self,
        target: Path,
        segs: list[dict],
        deads: list[np.ndarray],
        staged: _Source | None,
        dim: int,
        stemmer: str | None,
    ) -> list[dict]:
        """Keep the base segment (and, with nothing new, the delta) with their deleted rows
        recorded in ``target``; new rows and the previous delta's become one flat delta."""
        keep = segs if staged is None else segs[:1]
        entries = []
        for k, (seg, dead) in enumerate(zip(keep, deads, strict=False)):
            entry = {key: v for key, v in seg["entry"].items() if key != "deleted"}
            if dead.any():
                np.save(target / f"deleted-{k}.npy", np.flatnonzero(dead))
                entry["deleted"] = f"{target.name}/deleted-{k}.npy"
            entries.append(entry)
        if staged is not None:
            sources = [self._segment_source(s, d) for s, d in zip(segs[1:], deads[1:], strict=True)]
            sources = [s for s in sources if len(s.rows)] + [staged]
            first = segs[0]["entry"]
            corpus = _lexical.Corpus.of(
                self._index.root / first["dir"] / "bm25", int(first["size"]), int(first["tokens"])
            )
            entries.append(self._write_segment(target, sources, "flat", dim, stemmer, corpus=corpus))
        return entries

    def _write_segment(
        self,
        target: Path,
        sources: list[_Source],
        kind: str,
        dim: int,
        stemmer: str | None,
        grow: Path | None = None,
        corpus: _lexical.Corpus | None = None,
    ) -> dict:
        """Write one segment into ``target`` from ``sources``, streaming rows and texts."""
        ids = np.concatenate([s.ids for s in sources])
        np.save(target / "ids.npy", ids)
        np.save(target / "order.npy", np.argsort(ids, kind="stable"))
        with open(target / "texts.jsonl", "w", encoding="utf-8") as out:
            for s in sources:
                taken = np.zeros(s.n, dtype=bool)
                taken[s.rows] = True
                with open(s.texts, encoding="utf-8") as f:
                    out.writelines(line for line, k in zip(f, taken, strict=False) if k)

        def batches() -> Iterator[np.ndarray]:
            for s in sources:
                for start in range(0, len(s.rows), BATCH):
                    yield s.vectors(s.rows[start : start + BATCH])

        _dense.build(target / "faiss.index", kind, dim, batches, base=grow, total=len(ids))
        stats = _lexical.build(_read_texts(target / "texts.jsonl"), target / "bm25", stemmer, corpus)
        return {
            "dir": target.name,
            "size": len(ids),
            "kind": kind,
            "tokens": stats["tokens"],
            "uid": uuid.uuid4().hex,
        }

    def _write_manifest(self, manifest: dict) -> None:
        root = self._index.root
        tmp = root / f"{MANIFEST}.tmp{os.getpid()}"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(manifest, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, root / MANIFEST)
        _fsync_path(root)


def _read_rows(path: Path, rows: np.ndarray, dim: int) -> np.ndarray:
    """Rows (ascending) of a raw float32 file, read with plain reads: pages of a memory map
    would count in the writer's resident memory for as long as the map stays open."""
    first, last = int(rows[0]), int(rows[-1]) + 1
    block = np.fromfile(path, dtype=np.float32, count=(last - first) * dim, offset=first * dim * 4)
    block = block.reshape(last - first, dim)
    if last - first == len(rows):
        return block
    return block[rows - first]


def _read_texts(path: Path) -> Iterator[str]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            yield json.loads(line)
