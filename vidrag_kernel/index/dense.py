"""FAISS indexes over a segment's vectors: exact flat below a size, HNSW above.

Labels are row numbers of the segment (no IDMap): rows map to chunk ids through
``ids.npy``, which keeps the FAISS file small and lets filters be row bitmaps. The FAISS
file is the only copy of the vectors on disk: a writer that rebuilds reads them back
from it (a zero-copy view of the memory-mapped file for flat and HNSW-flat storage).

Kinds: ``flat`` (IndexFlatIP), ``hnsw`` (IndexHNSWFlat, float32 vectors) and
``hnsw-sq8`` (IndexHNSWSQ: the graph over 8-bit scalar-quantized vectors, a quarter of
the disk and memory of ``hnsw``, at some loss of recall).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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
#: OpenMP threads one query may use: a multi-user service runs many queries at once, and
#: a query fanned out over every core waits for the busiest one (0: FAISS's default)
QUERY_THREADS = 1
#: rows a scalar quantizer is trained on (it learns each dimension's range)
SQ_TRAIN_ROWS = 100_000
KINDS = ("flat", "hnsw", "hnsw-sq8")


@contextmanager
def threads(n: int) -> Iterator[None]:
    """Run the FAISS calls inside with at most ``n`` OpenMP threads (0: FAISS's default).

    OpenMP's thread count is a per-thread setting (each Python thread that calls FAISS
    has its own), so it is set around each search in the searching thread, and restored,
    rather than once per process: a service answers queries from a thread pool while
    its writer builds an index, which should keep every core.
    """
    if n <= 0:
        yield
        return
    import faiss

    before = faiss.omp_get_max_threads()
    if before == n:
        yield
        return
    faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


def hnsw_params() -> dict[str, int]:
    """The HNSW parameters recorded in the manifest."""
    return {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "efSearch": HNSW_EF_SEARCH}


def is_graph(kind: str) -> bool:
    """Whether ``kind`` is searched by an HNSW graph walk (approximate)."""
    return kind.startswith("hnsw")


def _new(kind: str, dim: int) -> Any:
    import faiss

    if kind == "flat":
        return faiss.IndexFlatIP(dim)
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    elif kind == "hnsw-sq8":
        index = faiss.IndexHNSWSQ(dim, faiss.ScalarQuantizer.QT_8bit, HNSW_M, faiss.METRIC_INNER_PRODUCT)
    else:
        raise ValueError(f"unknown index kind {kind!r}")
    index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
    return index


def _presize(index: Any, total: int) -> None:
    """Allocate the final size of a new index's vector storage and HNSW graph up front.

    FAISS grows them with ``std::vector::resize``, which doubles the capacity and copies:
    adding 1M rows in batches of 50k passes through a copy from 800k rows to room for
    1.6M, when the old and new buffers are both resident (about 2.5 GB for 384-d float32
    vectors where the vectors need 1.5 GB). Resizing an empty vector allocates exactly
    the size asked for, and shrinking it again keeps that capacity, so the adds that
    follow fill it in place.
    """
    import faiss

    if total <= 0:
        return
    hnsw = index.hnsw if isinstance(index, faiss.IndexHNSW) else None
    storage = faiss.downcast_index(index.storage) if hnsw is not None else index
    codes = getattr(storage, "codes", None)
    if codes is None or storage.ntotal or not codes.is_owned:
        return
    codes.resize(total * storage.code_size)
    codes.resize(0)
    if hnsw is None or hnsw.levels.size():
        return
    hnsw.neighbors.resize(_links_for(hnsw, total))
    hnsw.neighbors.resize(0)
    hnsw.levels.resize(total)
    hnsw.levels.resize(0)
    hnsw.offsets.resize(total + 1)
    hnsw.offsets.resize(1)  # offsets start with the 0 of the first vertex


def _links_for(hnsw: Any, total: int) -> int:
    """Room for the graph links of ``total`` vertices (see ``_presize``)."""
    # a vertex gets 2M links at level 0 and M more per upper level, and reaches level l
    # with probability M**-l: on average 2M + M/(M - 1) links, reserved with slack (the
    # spread over 1M vertices is a few thousand links)
    m0, m = hnsw.nb_neighbors(0), hnsw.nb_neighbors(1)
    return total * m0 + math.ceil(1.1 * total * m / max(m - 1, 1)) + 64 * m


def _drop_pages(view: np.ndarray) -> None:
    """Let go of the resident pages of a read-only file mapping under ``view`` (Linux and
    macOS ``madvise``; elsewhere nothing): they stay in the page cache, but no longer
    count in this process's memory. Pages are read again from the file if touched."""
    import ctypes
    import mmap

    advice = getattr(mmap, "MADV_DONTNEED", None)
    if advice is None or view.nbytes == 0:
        return
    page = mmap.PAGESIZE
    start = -(-view.ctypes.data // page) * page  # whole pages inside the view only
    end = (view.ctypes.data + view.nbytes) // page * page
    if end > start:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.madvise(ctypes.c_void_p(start), ctypes.c_size_t(end - start), advice)


def _own(vector: Any, empty: Any, capacity: int, np_type: type) -> None:
    """Make a FAISS ``MaybeOwnedVector`` own its data, with room for ``capacity`` items.

    A memory-mapped vector is copied a block at a time into a buffer allocated once at
    its final size, and each block's mapped pages are let go after the copy, so the
    process holds one copy and not two (read in, then doubled on the first add).
    """
    import faiss

    size = vector.size()
    capacity = max(capacity, size)
    if vector.is_owned and size == capacity:
        return
    fresh = empty
    fresh.resize(capacity)  # from empty: exactly this capacity
    if size:
        dst = faiss.rev_swig_ptr(fresh.data(), capacity)
        src = faiss.rev_swig_ptr(vector.data(), size)
        step = max(1, (64 << 20) // np.dtype(np_type).itemsize)
        for at in range(0, size, step):
            end = min(at + step, size)
            dst[at:end] = src[at:end]
            if not vector.is_owned:
                _drop_pages(src[at:end])
        del dst, src
    fresh.resize(size)  # keeps the capacity
    vector.is_owned = True
    vector.owned_data.swap(fresh)
    vector.resize(size)  # points the vector at its owned data


def _read_growable(path: Path, total: int) -> Any:
    """Read an index to add rows to, with room for ``total`` rows allocated once.

    Read plainly, its vectors and graph links would be held at their exact size, and the
    first add would copy them into buffers of twice the size (3 GB at 1M 384-d rows for
    1.7 GB of index). Memory-mapped and copied into final-size buffers instead, the
    process holds about the final index.
    """
    import faiss

    index = faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
    hnsw = index.hnsw if isinstance(index, faiss.IndexHNSW) else None
    storage = faiss.downcast_index(index.storage) if hnsw is not None else index
    total = max(total, index.ntotal)
    _own(storage.codes, faiss.UInt8Vector(), total * storage.code_size, np.uint8)
    if hnsw is not None:
        _own(hnsw.neighbors, faiss.Int32Vector(), _links_for(hnsw, total), np.int32)
    return index


def build(
    path: Path,
    kind: str,
    dim: int,
    batches: Callable[[], Iterator[np.ndarray]],
    base: Path | None = None,
    total: int = 0,
) -> None:
    """Write a FAISS index of ``kind`` to ``path`` over the rows ``batches()`` yields, in order.

    Rows are added a batch at a time, so only FAISS's own copy of the vectors is held;
    ``total`` (the rows ``batches()`` yields) lets a new index allocate that copy once.
    With ``base`` (an index file of the same kind whose rows are the first rows
    ``batches()`` yields), the base is read and only the rows after its own are added.
    """
    import faiss

    if base is not None:
        index = _read_growable(base, total)
        skip = index.ntotal
    else:
        index = _new(kind, dim)
        skip = 0
        if not index.is_trained:
            sample, have = [], 0
            for batch in batches():
                sample.append(batch[: SQ_TRAIN_ROWS - have])
                have += len(sample[-1])
                if have >= SQ_TRAIN_ROWS:
                    break
            if have:
                index.train(np.ascontiguousarray(np.concatenate(sample), dtype=np.float32))
            del sample
        _presize(index, total)
    seen = 0
    for batch in batches():
        start = max(skip - seen, 0)
        seen += len(batch)
        if start < len(batch):
            index.add(np.ascontiguousarray(batch[start:], dtype=np.float32))
        # let go before the next batch is read: the loop name would hold two at once
        del batch
    faiss.write_index(index, str(path))


def load(path: Path) -> Any:
    """Load a FAISS index with its vectors memory-mapped (the HNSW graph is read in).

    ``IO_FLAG_MMAP_IFC`` is the flag that really maps the vectors in FAISS 1.15: with
    plain ``IO_FLAG_MMAP`` a flat or HNSW-flat index is still read into memory.
    """
    import faiss

    return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC | faiss.IO_FLAG_READ_ONLY)


def stored(index: Any) -> np.ndarray | None:
    """A zero-copy (n, dim) view of the float32 vectors of a flat or HNSW-flat index.

    None for compressed storage. The view points into FAISS's memory: keep ``index``
    alive while it is used.
    """
    import faiss

    flat = index
    if isinstance(index, faiss.IndexHNSW):
        flat = faiss.downcast_index(index.storage)
    if not isinstance(flat, faiss.IndexFlat) or flat.ntotal == 0:
        return None
    return faiss.rev_swig_ptr(flat.get_xb(), flat.ntotal * flat.d).reshape(flat.ntotal, flat.d)


def take(index: Any, rows: np.ndarray) -> np.ndarray:
    """The vectors of ``rows`` (ascending row numbers), decoded if the storage is compressed."""
    view = stored(index)
    if view is not None:
        return np.asarray(view[rows], dtype=np.float32)
    return index.reconstruct_batch(np.asarray(rows, dtype=np.int64))


def bitmap(rows: np.ndarray, n: int) -> np.ndarray:
    """A FAISS row bitmap (little-endian bit order) with ``rows`` set."""
    mask = np.zeros(n, dtype=bool)
    mask[rows] = True
    return np.packbits(mask, bitorder="little")


def search(
    index: Any,
    kind: str,
    query: np.ndarray,
    k: int,
    keep: np.ndarray | None,
    n: int,
    n_keep: int,
    ef_search: int,
) -> tuple[np.ndarray, np.ndarray]:
    """Best ``k`` rows by inner product, optionally only rows set in ``keep`` (a ``bitmap``)."""
    import faiss

    params = None
    if keep is not None:
        selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(keep))
    if is_graph(kind):
        params = faiss.SearchParametersHNSW()
        ef = max(ef_search, k)
        if keep is not None:
            # a filtered walk collects only allowed nodes: widen the beam as the allowed
            # share shrinks, so the beam still holds about as many allowed nodes
            ef = min(4096, max(ef, math.ceil(ef * math.sqrt(n / max(n_keep, 1)))))
            params.sel = selector
        params.efSearch = ef
    elif keep is not None:
        params = faiss.SearchParameters()
        params.sel = selector
    scores, labels = index.search(query, k, params=params)
    del keep  # the bitmap had to outlive the search: FAISS holds only a raw pointer
    found = labels[0] >= 0
    return labels[0][found].astype(np.int64), scores[0][found]


def exact_subset(index: Any, rows: np.ndarray, query: np.ndarray, k: int) -> tuple:
    """Exact best ``k`` among ``rows``, scored from the index's (memory-mapped) vectors."""
    import faiss

    rows = np.sort(rows)
    subset = np.ascontiguousarray(take(index, rows), dtype=np.float32)
    scores, labels = faiss.knn(query, subset, min(k, len(rows)), metric=faiss.METRIC_INNER_PRODUCT)
    found = labels[0] >= 0
    return rows[labels[0][found]], scores[0][found]
