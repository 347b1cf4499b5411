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
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from types import TracebackType

import numpy as np

from ..errors import Conflict, InvalidInput
from . import dense as _dense
from . import lexical as _lexical
from .reader import IndexReader

MANIFEST = "manifest.json"
LOCK = "write.lock"
FORMAT = 1
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
    count from which a generation is built as HNSW rather than exact flat search. ``dim``
    is the dimension of the vectors writers add; ``embedder`` describes their model.
    """

    def __init__(
        self, root: Path, *, dim: int = 384, hnsw_threshold: int = 50_000, embedder: dict | None = None
    ) -> None:
        self.root = Path(root)
        self.dim = dim
        self.hnsw_threshold = hnsw_threshold
        #: recorded in the manifests this index's writers commit (engine, model, dim of the
        #: vectors); None keeps what the previous manifest recorded
        self.embedder = embedder

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
                    return reader
            try:
                reader = IndexReader(int(manifest["generation"]), self.root / manifest["dir"], manifest)
                break
            except FileNotFoundError:
                # two commits landed between reading the manifest and opening its
                # generation, and the second deleted it: the manifest now names a newer one
                if attempt == 2:
                    raise
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


class IndexWriter:
    """Adds and removes chunks, then commits them as one new generation.

    Changes are staged in memory; nothing on disk changes before ``commit``.
    """

    def __init__(self, index: CollectionIndex, timeout: float) -> None:
        self._index = index
        self._timeout = timeout
        self._lock: _lock | None = None
        self._manifest: dict | None = None
        self._base_ids = np.empty(0, dtype=np.int64)
        self._base_sorted = self._base_ids
        self._removed: set[int] = set()
        self._pending: dict[int, tuple[np.ndarray, str]] = {}
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
                self._base_ids = np.load(self._dir(self._manifest) / "ids.npy")
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
        keep = {MANIFEST, LOCK}
        if self._manifest:
            keep.add(self._manifest["dir"])
            if self._manifest.get("previous"):
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

    def reset(self) -> None:
        """Stage the removal of every row and change, so that the commit holds only what is
        added afterwards, in vectors of any dimension: a rebuild with another embedder.

        Readers keep the current generation until they reopen, as with any commit.
        """
        self._require_lock()
        self._reset = True
        self._pending.clear()
        self._removed.clear()
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
        for i, vector, text in zip(ids.tolist(), vectors, texts, strict=True):
            self._pending[i] = (vector, str(text))
        self._changed = self._changed or len(ids) > 0

    def remove(self, ids: Iterable[int]) -> int:
        """Stage removal of ``ids``; returns how many of them were present."""
        self._require_lock()
        wanted = np.unique(np.fromiter((int(i) for i in ids), dtype=np.int64))
        in_base = self._in_base(wanted)
        present = 0
        for i, based in zip(wanted.tolist(), in_base.tolist(), strict=True):
            staged = self._pending.pop(i, None) is not None
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
        current = int(self._manifest["generation"]) if self._manifest else 0
        if not self._changed:
            self._committed = current
            return current
        generation = current + 1
        target = self._index.root / _gen_name(generation)
        if target.exists():
            shutil.rmtree(target)
        target.mkdir()
        manifest = self._build(target, generation)
        _fsync_tree(target)
        if commit_hook is not None:
            commit_hook("files-written", target)
        self._write_manifest(manifest)
        self._committed = generation
        self._manifest = manifest
        # the generation before the previous one may go: readers hold at most the last two
        self._clean()
        return generation

    def _build(self, target: Path, generation: int) -> dict:
        base = self._manifest if self._manifest and self._manifest["size"] and not self._reset else None
        # rows kept from the base keep their dimension (a removal needs no embedder at all)
        dim = int(base["dim"]) if base and not self._pending else self._index.dim
        if base and int(base["dim"]) != dim:
            raise Conflict(
                f"this index holds {base['dim']}-dimension vectors, not {dim}: "
                "rebuild it with the current embedder (reindex)"
            )
        embedder = self._index.embedder
        if embedder is None and base is not None:
            embedder = base.get("embedder")
        drop = np.zeros(len(self._base_ids), dtype=bool)
        if base:
            gone = np.fromiter(set(self._pending) | self._removed, dtype=np.int64)
            drop = np.isin(self._base_ids, gone)
        new_ids = np.fromiter(self._pending, dtype=np.int64, count=len(self._pending))
        new_vectors = (
            np.stack([v for v, _ in self._pending.values()])
            if self._pending
            else np.empty((0, dim), dtype=np.float32)
        )
        new_texts = [t for _, t in self._pending.values()]
        if base:
            base_dir = self._dir(base)
            keep = ~drop
            ids = np.concatenate([self._base_ids[keep], new_ids])
            old_vectors = np.load(base_dir / "vectors.npy", mmap_mode="r")
            vectors = np.concatenate([old_vectors[keep], new_vectors])
            with open(base_dir / "texts.jsonl", encoding="utf-8") as f:
                texts = [json.loads(line) for line, k in zip(f, keep, strict=True) if k]
            texts += new_texts
        else:
            ids, vectors, texts = new_ids, new_vectors, new_texts
        n = len(ids)
        kind = "empty" if n == 0 else ("hnsw" if n >= self._index.hnsw_threshold else "flat")
        stemmer = _lexical.stemmer_name()
        if n:
            np.save(target / "ids.npy", ids)
            np.save(target / "order.npy", np.argsort(ids, kind="stable"))
            np.save(target / "vectors.npy", vectors)
            with open(target / "texts.jsonl", "w", encoding="utf-8") as f:
                for text in texts:
                    f.write(json.dumps(text, ensure_ascii=False) + "\n")
            # pure additions to an HNSW generation extend a copy of its graph: rebuilding
            # a million-row graph for one new video would take minutes
            grow = base is not None and base["kind"] == "hnsw" and kind == "hnsw" and not drop.any()
            index = _dense.build(vectors, kind, base_dir / "faiss.index" if grow else None)
            _dense.write(index, target / "faiss.index")
            del index
            _lexical.build(texts, target / "bm25", stemmer)
        return {
            "format": FORMAT,
            "generation": generation,
            "dir": target.name,
            "previous": int(self._manifest["generation"]) if self._manifest else None,
            "size": n,
            "dim": dim,
            "embedder": embedder,
            "kind": kind,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "uid": uuid.uuid4().hex,
            "hnsw": _dense.hnsw_params() if kind == "hnsw" else None,
            "lexical": {"engine": "bm25s", "stopwords": _lexical.STOPWORDS, "stemmer": stemmer},
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
