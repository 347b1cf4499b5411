"""Re-embedding a collection with the current embedder: ``vidrag reindex`` and ``wb.reindex``.

The catalog keeps every chunk's text, so a collection whose index was built by another
embedding model is rebuilt from it with no download and no transcription: the chunks of
its ready videos are embedded again and written as one new index generation, which may
have another dimension than the one before. Readers keep the old generation until they
reopen, as with every commit.

The long part (embedding everything) runs without the collection's write lock, so an
ingest into the collection is not held up for minutes; under the lock the chunk list is
read again and only what changed meanwhile is embedded before the commit.
"""

from __future__ import annotations

import numpy as np
from sqlalchemy import select

from .catalog import Chunk, Collection, CollectionVideo, Video
from .context import Context
from .errors import NotFound
from .progress import ProgressCallback, ProgressEvent, scaled, silent


def _wanted(ctx: Context, collection_id: str, indexed: np.ndarray) -> dict[int, str]:
    """vector id -> text of the chunks the new generation must hold.

    The chunks of the collection's ready videos, and the indexed chunks of videos not yet
    ready: an ingest writes a video's index rows just before it marks the video ready and
    links it, and a reindex in between must not drop them.
    """
    with ctx.catalog.session() as s:
        ready = s.execute(
            select(Chunk.vector_id, Chunk.text)
            .join(CollectionVideo, CollectionVideo.video_id == Chunk.video_id)
            .join(Video, Video.id == Chunk.video_id)
            .where(CollectionVideo.collection_id == collection_id, Video.status == "ready")
        ).all()
        unready = s.execute(
            select(Chunk.vector_id, Chunk.text)
            .join(Video, Video.id == Chunk.video_id)
            .where(Video.status != "ready")
        ).all()
    wanted = {int(i): t for i, t in ready}
    if unready and len(indexed):
        ids = np.fromiter((int(i) for i, _ in unready), dtype=np.int64, count=len(unready))
        held = set(ids[np.isin(ids, indexed)].tolist())
        wanted.update((int(i), t) for i, t in unready if int(i) in held)
    return wanted


def reindex(ctx: Context, collection_id: str, progress: ProgressCallback | None = None) -> int:
    """Re-embed a collection's stored chunks with the configured embedder; the new generation.

    Progress is reported as ``embedding`` (fraction of the chunks), then ``indexing`` and
    ``done``. The new manifest records the embedder, so the collection can be searched
    again with it. Raises ``NotFound`` for an unknown collection id.
    """
    from .embed import get_embedder
    from .indexing import open_index

    progress = progress or silent
    with ctx.catalog.session() as s:
        row = s.get(Collection, collection_id)
        if row is None:
            raise NotFound(f"No collection with id {collection_id!r}")
        name = row.name
    embedder = get_embedder(ctx.settings)
    index = open_index(ctx, collection_id, embedder=embedder, check=False)

    reader = index.reader()
    first = _wanted(ctx, collection_id, reader.ids())
    del reader
    ids = sorted(first)
    report = scaled(progress, "embedding", title=name)
    report(0.0, f"{len(ids)} passages with {getattr(embedder, 'model_name', None) or ctx.settings.embedder}")
    vectors = embedder.embed([first[i] for i in ids], report) if ids else None
    embedded = {i: (first[i], vectors[row]) for row, i in enumerate(ids)}

    progress(ProgressEvent("indexing", 0.0, "writing a new index generation", title=name))
    with index.writer() as writer:
        wanted = _wanted(ctx, collection_id, writer.base_ids())
        # what an ingest or a removal changed while the rest was being embedded
        late = sorted(i for i, text in wanted.items() if i not in embedded or embedded[i][0] != text)
        if late:
            for i, vector in zip(late, embedder.embed([wanted[i] for i in late]), strict=True):
                embedded[i] = (wanted[i], vector)
        writer.reset()
        keep = sorted(wanted)
        if keep:
            writer.add(
                np.asarray(keep, dtype=np.int64),
                np.stack([embedded[i][1] for i in keep]).astype(np.float32),
                [wanted[i] for i in keep],
            )
        generation = writer.commit()
    progress(ProgressEvent("done", 1.0, f"{len(keep)} passages, generation {generation}", title=name))
    return generation
