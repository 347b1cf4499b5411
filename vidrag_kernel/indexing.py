"""Keeping a collection's search index in step with the catalog.

The catalog holds chunk text and times; the index holds their vectors and BM25 terms.
These helpers are the only place that writes an index, always under its file lock.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import numpy as np
from sqlalchemy import select

from .catalog import Chunk
from .context import Context


def open_index(ctx: Context, collection_id: str):
    """The ``CollectionIndex`` of one collection."""
    from .index import CollectionIndex

    return CollectionIndex(ctx.layout.index_dir(collection_id), hnsw_threshold=ctx.settings.hnsw_threshold)


def destroy_index(ctx: Context, collection_id: str) -> None:
    open_index(ctx, collection_id).destroy()


def write_chunks(
    ctx: Context,
    collection_id: str,
    *,
    add_ids: Sequence[int] = (),
    vectors: np.ndarray | None = None,
    texts: Sequence[str] = (),
    remove_ids: Iterable[int] = (),
) -> int:
    """Remove ``remove_ids`` then add the given vectors, as one new index generation."""
    index = open_index(ctx, collection_id)
    with index.writer() as writer:
        removing = [int(i) for i in remove_ids]
        if removing:
            writer.remove(removing)
        if len(add_ids):
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

    with ctx.catalog.session() as s:
        rows = s.execute(
            select(Chunk.vector_id, Chunk.text)
            .where(Chunk.video_id.in_(list(video_ids)))
            .order_by(Chunk.vector_id)
        ).all()
    if not rows:
        return open_index(ctx, collection_id).generation
    ids = [r[0] for r in rows]
    texts = [r[1] for r in rows]
    vectors = get_embedder(ctx.settings).embed(texts, report)
    return write_chunks(ctx, collection_id, add_ids=ids, vectors=vectors, texts=texts)


def vector_ids_of(ctx: Context, video_ids: Sequence[str]) -> list[int]:
    """The index ids of every stored chunk of ``video_ids``."""
    with ctx.catalog.session() as s:
        return list(s.scalars(select(Chunk.vector_id).where(Chunk.video_id.in_(list(video_ids)))))
