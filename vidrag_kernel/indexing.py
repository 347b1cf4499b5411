"""Keeping a collection's search index in step with the catalog.

The catalog holds chunk text and times; the index holds their vectors and BM25 terms.
These helpers (and ``reindexing.reindex``) are the only place that writes an index,
always under its file lock.

Each index manifest records the embedder that made its vectors (engine, model and
dimensions). Vectors of two models are not comparable, so reading or adding to an index
built by another embedder than the configured one is a ``Conflict`` that names the model
that built it and the command that rebuilds it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
from sqlalchemy import select

from .catalog import Chunk
from .context import Context
from .errors import Conflict


def index_root(ctx: Context, collection_id: str):
    """The ``CollectionIndex`` of a collection as it is on disk, with no embedder loaded.

    Its ``dim`` and ``embedder`` are the current manifest's: good for removing rows,
    destroying the index or reading its manifest, never for adding vectors.
    """
    from .index import CollectionIndex

    index = CollectionIndex(
        ctx.layout.index_dir(collection_id),
        hnsw_threshold=ctx.settings.hnsw_threshold,
        compression=ctx.settings.index_compression,
        query_threads=ctx.settings.index_query_threads,
    )
    manifest = index.manifest()
    if manifest:
        index.dim = int(manifest["dim"])
        index.embedder = built_by(manifest)
    return index


def built_by(manifest: dict) -> dict:
    """The embedder identity a manifest records (see ``embed.LEGACY_IDENTITY`` for old ones)."""
    from .embed import LEGACY_IDENTITY

    recorded = manifest.get("embedder")
    if recorded:
        return dict(recorded)
    return {**LEGACY_IDENTITY, "dim": int(manifest.get("dim", LEGACY_IDENTITY["dim"]))}


def open_index(
    ctx: Context, collection_id: str, *, embedder=None, identity: dict | None = None, check: bool = True
):
    """The ``CollectionIndex`` of one collection, for vectors of the configured embedder.

    ``embedder`` is the embedder whose vectors will be searched or added (default: the
    configured one, loaded once per process); or ``identity`` describes it (``engine``,
    ``model``, ``dim``, as ``embed.identity`` gives), and no model is loaded. With
    ``check``, an index that holds vectors of another embedder raises ``Conflict`` naming
    the model that built it and how to rebuild it (``vidrag reindex``); an empty index
    takes any embedder.
    """
    from .index import CollectionIndex

    if identity is not None:
        current = dict(identity)
    else:
        from .embed import get_embedder
        from .embed import identity as identity_of

        current = identity_of(embedder if embedder is not None else get_embedder(ctx.settings), ctx.settings)
    index = CollectionIndex(
        ctx.layout.index_dir(collection_id),
        dim=current["dim"],
        hnsw_threshold=ctx.settings.hnsw_threshold,
        compression=ctx.settings.index_compression,
        query_threads=ctx.settings.index_query_threads,
        embedder=current,
    )
    if check:
        manifest = index.manifest()
        if manifest and manifest["size"] and not same_embedder(built_by(manifest), current):
            raise mismatch(ctx, collection_id, built_by(manifest), current)
    return index


def same_embedder(built: dict, current: dict) -> bool:
    """Whether vectors of ``built`` and ``current`` can share an index."""
    return (built.get("engine"), built.get("model"), int(built.get("dim") or 0)) == (
        current.get("engine"),
        current.get("model"),
        int(current.get("dim") or 0),
    )


def mismatch(ctx: Context, collection_id: str, built: dict, current: dict) -> Conflict:
    """The error for an index built by another embedder than the configured one."""
    from .catalog import Collection
    from .embed import describe_identity

    with ctx.catalog.session() as s:
        row = s.get(Collection, collection_id)
        name = row.name if row is not None else collection_id
    return Conflict(
        f'The index of collection "{name}" was built with the embedding model '
        f"{describe_identity(built)}, but vidrag is set to use {describe_identity(current)}; "
        "their vectors cannot be compared. Rebuild the index with the current model "
        f'(no download or transcription): vidrag reindex "{name}" (in Python: wb.reindex("{name}")), '
        "or set VIDRAG_EMBEDDER / VIDRAG_EMBEDDING_MODEL back to the model that built it."
    )


def destroy_index(ctx: Context, collection_id: str) -> None:
    """Remove a collection's whole index (whichever embedder built it)."""
    index_root(ctx, collection_id).destroy()


def write_chunks(
    ctx: Context,
    collection_id: str,
    *,
    add_ids: Sequence[int] = (),
    vectors: np.ndarray | None = None,
    texts: Sequence[str] = (),
    remove_ids: Iterable[int] = (),
    embedder: dict | None = None,
) -> int:
    """Remove ``remove_ids`` then add the given vectors, as one new index generation.

    ``embedder`` is the identity of the model that made ``vectors`` (``embed.identity``;
    default: the configured embedder's, which loads it). Adding to an index built by
    another model is a ``Conflict``; a removal alone works on any index.
    """
    adding = len(add_ids) > 0
    index = open_index(ctx, collection_id, identity=embedder) if adding else index_root(ctx, collection_id)
    with index.writer() as writer:
        base = writer.manifest
        # checked again under the lock: a reindex may have committed since the index was opened
        if adding and base and base["size"] and not same_embedder(built_by(base), index.embedder):
            raise mismatch(ctx, collection_id, built_by(base), index.embedder)
        removing = [int(i) for i in remove_ids]
        if removing:
            writer.remove(removing)
        if adding:
            writer.add(np.asarray(add_ids, dtype=np.int64), vectors, list(texts))
        return writer.commit()


def add_videos_to_index(
    ctx: Context,
    collection_id: str,
    video_ids: Sequence[str],
    report: Callable[[float, str], None] | None = None,
) -> int:
    """Embed the stored chunks of ``video_ids`` and add them to a collection's index.

    Used when a video already in the catalog joins another collection: its text is
    re-embedded (cheap next to transcription) rather than copied between indexes.
    """
    from .embed import get_embedder

    embedder = get_embedder(ctx.settings)
    # before embedding: an index of another model refuses the vectors anyway
    index = open_index(ctx, collection_id, embedder=embedder)
    with ctx.catalog.session() as s:
        rows = s.execute(
            select(Chunk.vector_id, Chunk.text)
            .where(Chunk.video_id.in_(list(video_ids)))
            .order_by(Chunk.vector_id)
        ).all()
    if not rows:
        return index.generation
    ids = [r[0] for r in rows]
    texts = [r[1] for r in rows]
    vectors = embedder.embed(texts, report)
    return write_chunks(ctx, collection_id, add_ids=ids, vectors=vectors, texts=texts)


def vector_ids_of(ctx: Context, video_ids: Sequence[str]) -> list[int]:
    """The index ids of every stored chunk of ``video_ids``."""
    with ctx.catalog.session() as s:
        return list(s.scalars(select(Chunk.vector_id).where(Chunk.video_id.in_(list(video_ids)))))
