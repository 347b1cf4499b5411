"""The per-collection search index: dense FAISS and lexical BM25 kept in step.

One index lives at ``<home>/collections/<collection id>/index/``. Both halves are
written together as one immutable *generation*; ``manifest.json`` names the current one.

Layout on disk (names are ids and numbers only, never user strings)::

    index/
      manifest.json      current generation: number, dir, previous, size, dim,
                         embedder ({"engine", "model", "dim"} of the vectors' model; absent
                         in manifests written before it was recorded), kind, created, uid,
                         HNSW and BM25 parameters
      write.lock         the writer's file lock (one writer per collection)
      gen-000006/        the previous generation, kept for readers that still hold it
      gen-000007/        the current generation
        ids.npy          int64 (n,) chunk ids in row order; row i is FAISS label i and
                         BM25 document i
        order.npy        int64 (n,) argsort of ids, to map ids to rows by binary search
        vectors.npy      float32 (n, dim) L2-normalised vectors: lets a writer rebuild
                         or update without re-embedding, and serves exact search over a
                         small allowed subset
        texts.jsonl      one JSON string per row: the chunk texts BM25 was built from
        faiss.index      IndexFlatIP (exact inner product) below ``hnsw_threshold`` rows,
                         IndexHNSWFlat (inner product) at or above it; labels are rows
        bm25/            the bm25s index (CSC score matrix as .npy, vocab, params)

A generation with no rows (everything removed) has only the manifest entry
(``kind: "empty"``) and an empty directory.

Writes: a writer takes ``write.lock``, deletes any directory the manifest does not name
(the partial output of a killed writer, and generations older than the previous one),
builds generation N+1 in ``gen-<N+1>/``, fsyncs every file and the directory, then
replaces ``manifest.json`` atomically (temporary file, fsync, ``os.replace``, fsync of
the index directory). A writer killed at any point before that rename leaves generation
N untouched and readable.

A writer's ``reset()`` starts the new generation from nothing, so that it may hold
vectors of another dimension (re-embedding a collection with another model); otherwise
added vectors must have the dimension of the rows already there.

Reads: ``CollectionIndex.reader()`` loads the generation the manifest names, memory-
mapping the FAISS vectors (``IO_FLAG_MMAP_IFC``; only the HNSW graph, about 0.3 KiB a row,
is read into memory), the BM25 matrix, ids and vectors, and keeps using it until the
caller asks for a new reader. Writers delete a generation only when it is two behind;
on POSIX a deleted generation stays readable through the mappings of readers that hold it. Readers of a generation are
cached per process (keyed by the manifest's ``uid``), so asking for a reader per query
costs one small JSON read.

Costs to know: every commit rebuilds BM25 from all texts, and any commit that removes
or replaces rows of an HNSW generation rebuilds the HNSW graph (about 4-5 minutes per
million 384-d rows on 2 cores); pure additions to an HNSW generation are appended to a
copy of the previous graph.

Test hook: ``vidrag_kernel.index.store.commit_hook`` is a module-level callable (None by
default) called as ``commit_hook(stage, path)`` at ``"files-written"`` (the new generation
is complete but not yet named by the manifest). Tests set it to stop a writer process
there and kill it.
"""

from __future__ import annotations

from .reader import IndexReader
from .store import CollectionIndex, IndexWriter

__all__ = ["CollectionIndex", "IndexReader", "IndexWriter"]
