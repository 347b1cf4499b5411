"""The per-collection search index: dense FAISS and lexical BM25 kept in step.

One index lives at ``<home>/collections/<collection id>/index/``. Both halves are
written together as one immutable *generation*; ``manifest.json`` names the current one.
A generation is one or more *segments* (a large base and at most one small delta of
recent additions), searched together, and the rows of them it deleted.

Layout on disk (names are ids and numbers only, never user strings)::

    index/
      manifest.json      current generation (format 2): number, dir, previous, size, dim,
                         embedder ({"engine", "model", "dim"} of the vectors' model; absent
                         in manifests written before it was recorded), kind, created, uid,
                         HNSW and BM25 parameters, segments (dir, size, kind, tokens, uid,
                         deleted: a file of deleted row numbers), keep (the directories
                         the previous generation reads)
      write.lock         the writer's file lock (one writer per collection)
      gen-000005/        a base segment that generations 5-7 share
      gen-000006/        the previous generation, kept for readers that still hold it
      gen-000007/        the current generation: its own segment, if it wrote one, and
                         deleted-<k>.npy, the rows of segment k it deleted
        ids.npy          int64 (n,) chunk ids in row order; row i is FAISS label i and
                         BM25 document i
        order.npy        int64 (n,) argsort of ids, to map ids to rows by binary search
        texts.jsonl      one JSON string per row: the chunk texts BM25 was built from
        faiss.index      the only copy of the vectors: IndexFlatIP (exact inner product)
                         below ``hnsw_threshold`` rows, IndexHNSWFlat (kind ``hnsw``) or
                         IndexHNSWSQ over 8-bit vectors (kind ``hnsw-sq8``, with
                         ``compression="sq8"``) at or above it; labels are rows
        bm25/            BM25 scores as a CSC matrix (.npy), vocab and params, in the
                         file names of bm25s

Format 1 generations (one segment, with a ``vectors.npy`` copy of the vectors beside
the FAISS file) still open; the next commit rewrites them as format 2. A generation with
no rows (everything removed) has only the manifest entry (``kind: "empty"``) and an
empty directory.

Writes: a writer takes ``write.lock``, deletes any directory the manifest does not name
(the partial output of a killed writer, and generations older than the previous one),
stages added rows in files inside ``gen-<N+1>/`` (vectors as raw float32, texts as JSON
lines: not in memory), builds generation N+1 there, fsyncs every file and the directory,
then replaces ``manifest.json`` atomically (temporary file, fsync, ``os.replace``, fsync
of the index directory). A writer killed at any point before that rename leaves
generation N untouched and readable.

Commits to an index whose base segment holds at least ``delta_min`` rows write only a
delta: the base is kept as it is (its removed or replaced rows recorded as deleted), and
the new rows together with the previous delta's become one new flat segment, whose BM25
counts the base's document frequencies. A delta past ``DELTA_FRACTION`` of the base (or
``DELTA_MAX_ROWS``), or deleted rows past that share, makes the commit merge everything
into one new base. Smaller indexes are rewritten by every commit. Pure additions to an
HNSW base extend a copy of its graph; a merge that drops rows rebuilds it (about 4-5
minutes per million 384-d rows on 2 cores). Rows are read back and added to FAISS
``BATCH`` at a time, and BM25 is built from the texts file in batches. A new FAISS
index allocates its vectors and graph once at their final size, and a grown base is
memory-mapped and copied into such buffers (FAISS's own growth doubles and copies, which
held two copies of the vectors at once), so a writer holds about one index: at 1M 384-d
rows, 1.5 GB of vectors and 0.25 GB of graph.

A writer's ``reset()`` starts the new generation from nothing, so that it may hold
vectors of another dimension (re-embedding a collection with another model); otherwise
added vectors must have the dimension of the rows already there.

Reads: ``CollectionIndex.reader()`` opens the segments the manifest names, memory-
mapping the FAISS vectors (``IO_FLAG_MMAP_IFC``; only the HNSW graph, about 0.3 KiB a row,
is read into memory), the BM25 matrix and the ids, and keeps using them until the
caller asks for a new reader. One search runs on ``query_threads`` OpenMP threads
(default 1: a service answers many users at once). Open segments are shared by the readers of every
generation that uses them. Writers delete a generation only when it is two behind;
on POSIX a deleted generation stays readable through the mappings of readers that hold it. Readers of a generation are
cached per process (keyed by the manifest's ``uid``), so asking for a reader per query
costs one small JSON read.

Test hook: ``vidrag_kernel.index.store.commit_hook`` is a module-level callable (None by
default) called as ``commit_hook(stage, path)`` at ``"files-written"`` (the new generation
is complete but not yet named by the manifest). Tests set it to stop a writer process
there and kill it.
"""

from __future__ import annotations

from .reader import IndexReader
from .store import CollectionIndex, IndexWriter

__all__ = ["CollectionIndex", "IndexReader", "IndexWriter"]
