"""FAISS indexes over a generation's vectors: exact flat below a size, HNSW above.

Labels are row numbers of the generation (no IDMap): rows map to chunk ids through
``ids.npy``, which keeps the FAISS file small and lets filters be row bitmaps.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

#: HNSW graph degree. 32 keeps recall@10 high on 384-d sentence embeddings at 1M rows
#: for about 1.6 KiB of vectors + 0.3 KiB of graph per row.
HNSW_M = 32
#: build-time beam; higher buys recall at the cost of build time
HNSW_EF_CONSTRUCTION = 64
#: search-time beam; raised to k when k is larger
HNSW_EF_SEARCH = 128
#: below this many allowed rows an HNSW generation answers a filtered query exactly over
#: the allowed vectors: a graph walk that may only collect 1% of the nodes it visits
#: misses many of them, while 32k dot products take a few milliseconds
EXACT_SUBSET_MAX = 32_768


def hnsw_params() -> dict[str, int]:
    """The HNSW parameters recorded in the manifest."""
    return {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH}


def build(vectors: np.ndarray, kind: str, base: Path | None = None) -> Any:
    """A FAISS index of ``kind`` over ``vectors`` (rows are labels).

    With ``base`` (an HNSW index file whose rows are the first rows of ``vectors``), only
    the new rows are added to a copy of that graph instead of rebuilding it.
    """
    import faiss

    dim = vectors.shape[1]
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
        index.add(vectors)
        return index
    if base is not None:
        index = faiss.read_index(str(base))
        index.add(vectors[index.ntotal :])
        return index
    index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    index.add(vectors)
    return index


def write(index: Any, path: Path) -> None:
    """Save a FAISS index."""
    import faiss

    faiss.write_index(index, str(path))


def load(path: Path, kind: str) -> Any:
    """Load a FAISS index with its vectors memory-mapped (the HNSW graph is read in).

    ``IO_FLAG_MMAP_IFC`` is the flag that really maps the vectors in FAISS 1.15: with
    plain ``IO_FLAG_MMAP`` a flat or HNSW-flat index is still read into memory.
    """
    import faiss

    return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)


def search(
    index: Any, kind: str, query: np.ndarray, k: int, rows: np.ndarray | None, n: int, ef_search: int
) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` rows by inner product, optionally only among ``rows`` (a FAISS selector)."""
    import faiss

    params = None
    keep = None
    if rows is not None:
        mask = np.zeros(n, dtype=bool)
        mask[rows] = True
        keep = np.packbits(mask, bitorder="little")
        selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(keep))
    if kind == "hnsw":
        params = faiss.SearchParametersHNSW()
        ef = max(ef_search, k)
        if rows is not None:
            # a filtered walk collects only allowed nodes: widen the beam as the allowed
            # share shrinks, so the beam still holds about as many allowed nodes
            ef = min(4096, max(ef, math.ceil(ef * math.sqrt(n / max(len(rows), 1)))))
            params.sel = selector
        params.efSearch = ef
    elif rows is not None:
        params = faiss.SearchParameters()
        params.sel = selector
    scores, labels = index.search(query, k, params=params)
    del keep  # the bitmap had to outlive the search: FAISS holds only a raw pointer
    found = labels[0] >= 0
    return labels[0][found].astype(np.int64), scores[0][found]


def exact_subset(vectors: np.ndarray, rows: np.ndarray, query: np.ndarray, k: int) -> tuple:
    """Exact best ``k`` among ``rows``, scored from the memory-mapped vectors."""
    import faiss

    rows = np.sort(rows)
    subset = np.ascontiguousarray(vectors[rows], dtype=np.float32)
    scores, labels = faiss.knn(query, subset, min(k, len(rows)), metric=faiss.METRIC_INNER_PRODUCT)
    found = labels[0] >= 0
    return rows[labels[0][found]], scores[0][found]
