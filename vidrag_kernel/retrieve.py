"""Retrieval: dense (FAISS) and lexical (BM25) search over collections, fused by rank.

Ordering comes from reciprocal rank fusion; the reported ``score`` is the dense cosine
similarity, which means the same thing for every question and so can tell "nothing
relevant here" apart from a weak best match.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from sqlalchemy import select

from .catalog import Chunk, Collection, CollectionVideo, Video
from .context import Context
from .errors import InvalidInput
from .links import deep_link

RRF_K = 60


@dataclass
class SearchHit:
    """One retrieved passage with where it was said."""

    chunk_id: str
    video_id: str
    title: str
    start: float
    end: float
    text: str
    score: float
    link: str
    url: str
    collection_id: str
    chapter: str | None = None
    vector_id: int = 0
    dense_score: float = 0.0
    lexical_score: float = 0.0
    rank_score: float = 0.0
    generation: int = 0

    def to_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class Scope:
    """Which collections, and within them which videos, a search may return."""

    collection_ids: list[str]
    video_ids: list[str] | None = None


class Retriever:
    """Searches the current user's collections."""

    def __init__(self, ctx: Context, collections) -> None:
        self._ctx = ctx
        self._collections = collections

    def scope(
        self,
        collection: str | Sequence[str] | None = None,
        videos: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
    ) -> Scope:
        """Resolve names/ids into a search scope; None means all the user's collections."""
        with self._ctx.catalog.session() as s:
            if collection is None:
                ids = list(s.scalars(select(Collection.id).where(Collection.owner == self._ctx.owner)))
            else:
                refs = [collection] if isinstance(collection, str) else list(collection)
                ids = [self._collections.resolve(s, r).id for r in refs]
            video_ids = None
            if videos or tags:
                q = (
                    select(Video.id, Video.tags)
                    .join(CollectionVideo, CollectionVideo.video_id == Video.id)
                    .where(CollectionVideo.collection_id.in_(ids))
                )
                if videos:
                    q = q.where(Video.id.in_(list(videos)))
                rows = s.execute(q.distinct()).all()
                if tags:
                    wanted = set(tags)
                    rows = [r for r in rows if wanted & set(r[1] or [])]
                video_ids = [r[0] for r in rows]
                if videos and not video_ids:
                    raise InvalidInput("None of the selected videos is in your collections")
        return Scope(ids, video_ids)

    def search(
        self,
        query: str,
        collection: str | Sequence[str] | None = None,
        videos: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        k: int = 5,
    ) -> list[SearchHit]:
        """The ``k`` best passages for ``query`` within the scope."""
        query = (query or "").strip()
        if not query:
            raise InvalidInput("The question is empty")
        if k < 1 or k > 200:
            raise InvalidInput("k must be between 1 and 200")
        return self.search_scope(query, self.scope(collection, videos, tags), k)

    def search_scope(self, query: str, scope: Scope, k: int) -> list[SearchHit]:
        from .embed import get_embedder
        from .indexing import open_index

        qvec = get_embedder(self._ctx.settings).embed_query(query)
        fused: dict[int, dict] = {}
        depth = max(k * 4, 20)
        for collection_id in scope.collection_ids:
            reader = open_index(self._ctx, collection_id).reader()
            if len(reader) == 0:
                continue
            allowed = self._allowed(scope.video_ids) if scope.video_ids is not None else None
            if allowed is not None and len(allowed) == 0:
                continue
            for rank, (vid, score) in enumerate(reader.dense(qvec, depth, allowed)):
                entry = fused.setdefault(vid, {"rrf": 0.0, "dense": None, "lex": 0.0, "c": collection_id})
                entry["rrf"] += 1.0 / (RRF_K + rank + 1)
                entry["dense"] = score
                entry["gen"] = reader.generation
            for rank, (vid, score) in enumerate(reader.lexical(query, depth, allowed)):
                entry = fused.setdefault(vid, {"rrf": 0.0, "dense": None, "lex": 0.0, "c": collection_id})
                entry["rrf"] += 1.0 / (RRF_K + rank + 1)
                entry["lex"] = score
                entry["gen"] = reader.generation
        if not fused:
            return []
        hits = self._hydrate(fused, qvec)
        hits.sort(key=lambda h: h.rank_score, reverse=True)
        return hits[:k]

    def _allowed(self, video_ids: list[str]) -> np.ndarray:
        with self._ctx.catalog.session() as s:
            ids = s.scalars(select(Chunk.vector_id).where(Chunk.video_id.in_(video_ids)))
            return np.fromiter(ids, dtype=np.int64)

    def _hydrate(self, fused: dict[int, dict], qvec: np.ndarray) -> list[SearchHit]:
        with self._ctx.catalog.session() as s:
            rows = s.execute(
                select(Chunk, Video)
                .join(Video, Video.id == Chunk.video_id)
                .where(Chunk.vector_id.in_(list(fused)), Video.status == "ready")
            ).all()
        missing = [c for c, _ in rows if fused[c.vector_id]["dense"] is None]
        if missing:
            # lexical-only hits still get a comparable dense score
            from .embed import get_embedder

            vecs = get_embedder(self._ctx.settings).embed([c.text for c in missing])
            for c, v in zip(missing, vecs, strict=True):
                fused[c.vector_id]["dense"] = float(np.dot(v, qvec))
        hits = []
        for chunk, video in rows:
            entry = fused[chunk.vector_id]
            page = video.webpage_url or video.url
            hits.append(
                SearchHit(
                    chunk_id=chunk.id,
                    video_id=video.id,
                    title=video.title,
                    start=chunk.start,
                    end=chunk.end,
                    text=chunk.text,
                    score=round(float(entry["dense"]), 4),
                    link=deep_link(page, chunk.start, source_key=video.source_key),
                    url=page,
                    collection_id=entry["c"],
                    chapter=chunk.chapter,
                    vector_id=chunk.vector_id,
                    dense_score=round(float(entry["dense"]), 4),
                    lexical_score=round(float(entry["lex"]), 4),
                    rank_score=entry["rrf"],
                    generation=entry.get("gen", 0),
                )
            )
        return hits
