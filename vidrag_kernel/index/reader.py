"""A read-only snapshot of one index generation: its segments, searched together."""

from __future__ import annotations

import threading
import weakref
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput
from . import dense as _dense
from . import lexical as _lexical

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()

# Segments never change once written, and a commit that adds one video keeps the large
# base segment of the generation before: sharing its loaded files between the readers of
# both generations saves reading the HNSW graph again (seconds at 1M rows) and holding
# it twice. Keyed by the segment's uid, which is new whenever a segment is written.
_segments: weakref.WeakValueDictionary[tuple[str, str], Segment] = weakref.WeakValueDictionary()
_segments_lock = threading.Lock()


def _lexical_pool() -> ThreadPoolExecutor:
    """One small thread pool per process for the lexical half of hybrid searches."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vidrag-bm25")
        return _pool


def segments_of(manifest: dict) -> list[dict]:
    """The segment entries of a manifest (a format-1 manifest is one segment, its ``dir``)."""
    if "segments" in manifest:
        return list(manifest["segments"])
    if not manifest.get("size"):
        return []
    return [
        {"dir": manifest["dir"], "size": manifest["size"], "kind": manifest["kind"], "uid": manifest["uid"]}
    ]


class Segment:
    """The immutable files of one segment, opened (memory-mapped where possible)."""

    def __init__(self, directory: Path, entry: dict, lexical: dict) -> None:
        self.n = int(entry["size"])
        self.kind: str = entry["kind"]
        self.ids = np.load(directory / "ids.npy", mmap_mode="r")
        self.order = np.load(directory / "order.npy", mmap_mode="r")
        # the sorted ids are read on every filtered query: one 8-byte-per-row copy in memory
        self.sorted = np.ascontiguousarray(self.ids[self.order])
        self.faiss: Any = _dense.load(directory / "faiss.index")
        self.lexical = _lexical.Lexical(
            directory / "bm25", self.n, lexical.get("stemmer"), lexical.get("stopwords", _lexical.STOPWORDS)
        )

    @classmethod
    def open(cls, root: Path, entry: dict, lexical: dict) -> Segment:
        """The shared open segment for ``entry`` of the index at ``root``."""
        key = (str(root.resolve()), entry.get("uid") or entry["dir"])
        with _segments_lock:
            segment = _segments.get(key)
        if segment is None:
            segment = cls(root / entry["dir"], entry, lexical)
            with _segments_lock:
                _segments[key] = segment
        return segment


class _View:
    """A segment as one generation sees it: the segment and the rows this generation deleted."""

    def __init__(self, segment: Segment, deleted: np.ndarray | None) -> None:
        self.seg = segment
        self.n = segment.n
        self.dead: np.ndarray | None = None
        self.live_bitmap: np.ndarray | None = None
        if deleted is not None and len(deleted):
            self.dead = np.zeros(self.n, dtype=bool)
            self.dead[deleted] = True
            self.live_bitmap = np.packbits(~self.dead, bitorder="little")
        self.live = self.n - (0 if self.dead is None else int(self.dead.sum()))

    def rows(self, wanted: np.ndarray) -> np.ndarray:
        """Live rows of the ``wanted`` ids (sorted, unique) that this segment holds."""
        s = self.seg.sorted
        at = np.searchsorted(s, wanted)
        inside = at < self.n
        at, w = at[inside], wanted[inside]
        hit = at[s[at] == w]
        rows = np.asarray(self.seg.order[hit], dtype=np.int64)
        if self.dead is not None:
            rows = rows[~self.dead[rows]]
        return rows

    def live_ids(self) -> np.ndarray:
        if self.dead is None:
            return np.asarray(self.seg.sorted)
        return np.asarray(self.seg.sorted[~self.dead[np.asarray(self.seg.order)]])


class IndexReader:
    """Searches one generation; it keeps working after newer generations are committed.

    A generation is one or more segments (a large base and a small delta of recent
    additions) and the rows of them it deleted; queries search every segment and merge.
    Everything is opened when the reader is built (memory-mapped where possible), so a
    generation deleted later by a writer stays readable through the open mappings.
    """

    generation: int
    #: OpenMP threads one search may use (``dense.QUERY_THREADS``; 0: FAISS's default, every
    #: core). ``CollectionIndex.reader()`` sets it from the index's ``query_threads``.
    threads: int = _dense.QUERY_THREADS

    def __init__(self, generation: int = 0, root: Path | None = None, manifest: dict | None = None) -> None:
        self.generation = generation
        manifest = manifest or {}
        self.dim: int = int(manifest.get("dim", 0))
        self.kind: str = manifest.get("kind", "empty")
        self._n = int(manifest.get("size", 0))
        self._views: list[_View] = []
        self._ef_search = int((manifest.get("hnsw") or {}).get("efSearch", _dense.HNSW_EF_SEARCH))
        if root is None or self._n == 0:
            return
        lexical = manifest.get("lexical") or {}
        for entry in segments_of(manifest):
            deleted = np.load(root / entry["deleted"]) if entry.get("deleted") else None
            self._views.append(_View(Segment.open(root, entry, lexical), deleted))

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"<IndexReader generation={self.generation} size={self._n} kind={self.kind} segments={len(self._views)}>"

    @property
    def segments(self) -> int:
        """How many segments this generation searches."""
        return len(self._views)

    def ids(self) -> np.ndarray:
        """Every chunk id in this generation, ascending."""
        if not self._views:
            return np.empty(0, dtype=np.int64)
        if len(self._views) == 1:
            return np.array(self._views[0].live_ids(), dtype=np.int64)
        return np.sort(np.concatenate([v.live_ids() for v in self._views])).astype(np.int64)

    def vectors(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(found ids, their vectors)`` for the given chunk ids (unknown ids are left out)."""
        wanted = np.unique(np.asarray(ids, dtype=np.int64).ravel())
        found, vecs = [], []
        for v in self._views:
            rows = np.sort(v.rows(wanted))
            if len(rows):
                found.append(np.asarray(v.seg.ids[rows], dtype=np.int64))
                vecs.append(_dense.take(v.seg.faiss, rows))
        if not found:
            return np.empty(0, dtype=np.int64), np.empty((0, self.dim), dtype=np.float32)
        return np.concatenate(found), np.concatenate(vecs)

    def _merge(self, parts: list[tuple[np.ndarray, np.ndarray]], k: int) -> list[tuple[int, float]]:
        if len(parts) == 1:
            ids, scores = parts[0]
            return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True)]
        ids = np.concatenate([p[0] for p in parts])
        scores = np.concatenate([p[1] for p in parts])
        # best first, ties broken by id so that results are reproducible
        best = np.lexsort((ids, -scores))[:k]
        return [(int(ids[i]), float(scores[i])) for i in best]

    def dense(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The ``k`` chunks nearest ``query`` by inner product (cosine), best first.

        ``allowed`` restricts the search to those chunk ids; it is applied inside FAISS
        (a row bitmap selector). An HNSW segment with few allowed rows (see
        ``dense.EXACT_SUBSET_MAX``) scores them exactly instead, which is faster and
        loses nothing to the graph walk.
        """
        q = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))
        if self._n and q.shape[1] != self.dim:
            raise InvalidInput(f"query vector has {q.shape[1]} dimensions, the index has {self.dim}")
        if self._n == 0 or k <= 0:
            return []
        wanted = None if allowed is None else np.unique(np.asarray(allowed, dtype=np.int64).ravel())
        with _dense.threads(self.threads):
            parts = self._dense_parts(q, k, wanted)
        return self._merge(parts, k) if parts else []

    def _dense_parts(self, q: np.ndarray, k: int, wanted: np.ndarray | None) -> list:
        parts = []
        for v in self._views:
            seg = v.seg
            if wanted is None:
                if v.live == 0:
                    continue
                found, scores = _dense.search(
                    seg.faiss, seg.kind, q, min(k, v.live), v.live_bitmap, v.n, v.live, self._ef_search
                )
            else:
                rows = v.rows(wanted)
                if len(rows) == 0:
                    continue
                kk = min(k, len(rows))
                if _dense.is_graph(seg.kind) and len(rows) <= _dense.EXACT_SUBSET_MAX:
                    found, scores = _dense.exact_subset(seg.faiss, rows, q, kk)
                else:
                    found, scores = _dense.search(
                        seg.faiss, seg.kind, q, kk, _dense.bitmap(rows, v.n), v.n, len(rows), self._ef_search
                    )
            parts.append((np.asarray(seg.ids[found], dtype=np.int64), scores))
        return parts

    def lexical(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The ``k`` best chunks for ``query`` by BM25, best first; zero scores are dropped.

        English stopwords are removed (and words stemmed if PyStemmer was installed when
        the generation was built). ``allowed`` restricts the result to those chunk ids.
        """
        if self._n == 0 or k <= 0 or not query.strip():
            return []
        wanted = None if allowed is None else np.unique(np.asarray(allowed, dtype=np.int64).ravel())
        parts = []
        for v in self._views:
            rows = None
            if wanted is not None:
                rows = v.rows(wanted)
                if len(rows) == 0:
                    continue
            rows, scores = v.seg.lexical.scores(query, rows)
            if v.dead is not None and wanted is None and len(rows):
                scores = np.where(v.dead, 0.0, scores)
            hits = np.flatnonzero(scores > 0)
            if len(hits) > k:
                hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
            # ties broken by row so that results are reproducible
            hits = hits[np.lexsort((rows[hits], -scores[hits]))]
            parts.append((np.asarray(v.seg.ids[rows[hits]], dtype=np.int64), scores[hits]))
        parts = [p for p in parts if len(p[0])]
        return self._merge(parts, k) if parts else []

    def hybrid(
        self, query_vector: np.ndarray, query: str, k: int, allowed: np.ndarray | None = None
    ) -> tuple[list[tuple[int, float]], list[tuple[int, float]]]:
        """``dense`` and ``lexical`` for one question, run side by side.

        FAISS and the BM25 matrix products release the GIL, so on two cores the pair
        costs about the slower of the two rather than their sum.
        """
        if self._n == 0:
            return [], []
        lexical = _lexical_pool().submit(self.lexical, query, k, allowed)
        dense = self.dense(query_vector, k, allowed)
        return dense, lexical.result()
