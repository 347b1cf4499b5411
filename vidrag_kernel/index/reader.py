"""A read-only snapshot of one index generation."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InvalidInput
from . import dense as _dense
from . import lexical as _lexical

_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _lexical_pool() -> ThreadPoolExecutor:
    """One small thread pool per process for the lexical half of hybrid searches."""
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vidrag-bm25")
        return _pool


class IndexReader:
    """Searches one generation; it keeps working after newer generations are committed.

    Everything is opened when the reader is built (memory-mapped where possible), so a
    generation deleted later by a writer stays readable through the open mappings.
    """

    generation: int

    def __init__(
        self, generation: int = 0, directory: Path | None = None, manifest: dict | None = None
    ) -> None:
        self.generation = generation
        manifest = manifest or {}
        self.dim: int = int(manifest.get("dim", 0))
        self.kind: str = manifest.get("kind", "empty")
        self._n = int(manifest.get("size", 0))
        if directory is None or self._n == 0:
            self._ids = np.empty(0, dtype=np.int64)
            self._sorted = self._ids
            self._order = self._ids
            return
        self._ids = np.load(directory / "ids.npy", mmap_mode="r")
        self._order = np.load(directory / "order.npy", mmap_mode="r")
        # the sorted ids are read on every filtered query: one 8-byte-per-row copy in memory
        self._sorted = np.ascontiguousarray(self._ids[self._order])
        self._vectors = np.load(directory / "vectors.npy", mmap_mode="r")
        self._faiss: Any = _dense.load(directory / "faiss.index", self.kind)
        self._ef_search = int((manifest.get("hnsw") or {}).get("efSearch", _dense.HNSW_EF_SEARCH))
        lexical = manifest.get("lexical") or {}
        self._lexical = _lexical.Lexical(
            directory / "bm25", self._n, lexical.get("stemmer"), lexical.get("stopwords", _lexical.STOPWORDS)
        )

    def __len__(self) -> int:
        return self._n

    def __repr__(self) -> str:
        return f"<IndexReader generation={self.generation} size={self._n} kind={self.kind}>"

    def ids(self) -> np.ndarray:
        """Every chunk id in this generation, ascending."""
        return np.array(self._sorted, dtype=np.int64)

    def _rows(self, allowed: np.ndarray) -> np.ndarray:
        """Rows of the ``allowed`` ids that are present (unknown ids are ignored)."""
        wanted = np.unique(np.asarray(allowed, dtype=np.int64).ravel())
        at = np.searchsorted(self._sorted, wanted)
        at = at[at < self._n]
        hit = at[self._sorted[at] == wanted[: len(at)]]
        return np.asarray(self._order[hit], dtype=np.int64)

    def dense(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The ``k`` chunks nearest ``query`` by inner product (cosine), best first.

        ``allowed`` restricts the search to those chunk ids; it is applied inside FAISS
        (a row bitmap selector). An HNSW generation with few allowed rows (see
        ``dense.EXACT_SUBSET_MAX``) scores them exactly instead, which is faster and
        loses nothing to the graph walk.
        """
        q = np.ascontiguousarray(np.asarray(query, dtype=np.float32).reshape(1, -1))
        if self._n and q.shape[1] != self.dim:
            raise InvalidInput(f"query vector has {q.shape[1]} dimensions, the index has {self.dim}")
        if self._n == 0 or k <= 0:
            return []
        rows = None
        if allowed is not None:
            rows = self._rows(allowed)
            if len(rows) == 0:
                return []
        k = min(k, self._n if rows is None else len(rows))
        if rows is not None and self.kind == "hnsw" and len(rows) <= _dense.EXACT_SUBSET_MAX:
            found, scores = _dense.exact_subset(self._vectors, rows, q, k)
        else:
            found, scores = _dense.search(self._faiss, self.kind, q, k, rows, self._n, self._ef_search)
        ids = self._ids[found]
        return [(int(i), float(s)) for i, s in zip(ids, scores, strict=True)]

    def lexical(self, query: str, k: int, allowed: np.ndarray | None = None) -> list[tuple[int, float]]:
        """The ``k`` best chunks for ``query`` by BM25, best first; zero scores are dropped.

        English stopwords are removed (and words stemmed if PyStemmer was installed when
        the generation was built). ``allowed`` restricts the result to those chunk ids.
        """
        if self._n == 0 or k <= 0 or not query.strip():
            return []
        rows = None
        if allowed is not None:
            rows = self._rows(allowed)
            if len(rows) == 0:
                return []
        rows, scores = self._lexical.scores(query, rows)
        hits = np.flatnonzero(scores > 0)
        if len(hits) > k:
            hits = hits[np.argpartition(-scores[hits], k - 1)[:k]]
        # ties broken by row so that results are reproducible
        hits = hits[np.lexsort((rows[hits], -scores[hits]))]
        ids = self._ids[rows[hits]]
        return [(int(i), float(s)) for i, s in zip(ids, scores[hits], strict=True)]

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
