"""Retrieval: dense (FAISS) and lexical (BM25) search over collections, fused by rank.

Ordering comes from reciprocal rank fusion of the two rankings; the reported ``score``
is the dense cosine similarity of question and passage, which means the same thing for
every question and so can tell "nothing relevant here" from a weak best match (see
``Settings.min_relevance``).

After fusion, near-duplicate passages (the same chunk from two collections, a lecture
uploaded twice, overlapping chunks) are returned once, and with ``merge`` neighbouring
chunks of one video are joined into one passage and completed to whole sentences, so
an answer's context is not cut mid-sentence.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import select

from .catalog import Chunk, Collection, CollectionVideo, Video
from .context import Context
from .errors import InvalidInput
from .links import deep_link
from .overlap import overlap, words

RRF_K = 60
# word-set Jaccard above which two passages count as the same text
DUPLICATE_JACCARD = 0.85
# most chunks joined into one passage, so one topic cannot swallow the context
MAX_MERGED_CHUNKS = 3
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*$")


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
    #: every chunk in the passage (more than one when neighbours were merged)
    chunk_ids: list[str] = field(default_factory=list)
    #: position of the (first) chunk in its video
    chunk_index: int = 0
    #: the passage's sentences with their own times (``attach_sentences``), so an answer
    #: can cite the sentence that says it rather than the whole passage
    sentences: list = field(default_factory=list)
    #: "captions" or "asr": how exact the words are (answerers calibrate refusals by it)
    transcript_source: str | None = None

    def to_dict(self) -> dict:
        d = dict(self.__dict__)
        d["sentences"] = [{"text": t.text, "start": t.start, "end": t.end} for t in self.sentences]
        return d


@dataclass
class Scope:
    """Which collections, and within them which videos, a search may return."""

    collection_ids: list[str]
    video_ids: list[str] | None = None


@dataclass
class Retrieval:
    """What one retrieval returned and what it needs to be reproduced."""

    query: str
    hits: list[SearchHit]
    #: index generation read in each collection
    generations: dict[str, int] = field(default_factory=dict)
    candidates: int = 0
    elapsed_ms: float = 0.0

    @property
    def best_score(self) -> float:
        return max((h.score for h in self.hits), default=0.0)

    def trace(self) -> dict:
        """The JSON record kept with an answer."""
        return {
            "query": self.query,
            "generations": dict(self.generations),
            "candidates": self.candidates,
            "retrieve_ms": round(self.elapsed_ms, 2),
            "chunks": [
                {
                    "chunk_ids": h.chunk_ids or [h.chunk_id],
                    "video_id": h.video_id,
                    "collection_id": h.collection_id,
                    "start": h.start,
                    "end": h.end,
                    "score": h.score,
                    "dense": h.dense_score,
                    "lexical": h.lexical_score,
                    "rrf": round(h.rank_score, 6),
                }
                for h in self.hits
            ],
        }


def _join(first: str, second: str) -> str:
    """Join two consecutive chunk texts, dropping words repeated by chunk overlap."""
    a, b = first.split(), second.split()
    for size in range(min(len(a), len(b), 64), 0, -1):
        if [w.lower() for w in a[-size:]] == [w.lower() for w in b[:size]]:
            return " ".join(a + b[size:])
    return " ".join(a + b)


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
                ids = list(s.scalars(select(Collection.id).where(self._ctx.access.visible())))
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
        merge: bool = False,
    ) -> list[SearchHit]:
        """The ``k`` best passages for ``query`` within the scope."""
        query = _check(query, k)
        return self.retrieve(query, self.scope(collection, videos, tags), k, merge=merge).hits

    def search_scope(self, query: str, scope: Scope, k: int, merge: bool = False) -> list[SearchHit]:
        """Like ``search`` on an already resolved scope."""
        return self.retrieve(query, scope, k, merge=merge).hits

    def retrieve(self, query: str, scope: Scope, k: int, *, merge: bool = False) -> Retrieval:
        """The ``k`` best passages with the trace needed to reproduce them.

        With ``merge``, neighbouring chunks of one video that both rank join into one
        passage (up to three chunks) and passages are completed to whole sentences.
        """
        from .embed import get_embedder
        from .indexing import open_index

        t0 = time.perf_counter()
        embedder = get_embedder(self._ctx.settings)
        qvec = embedder.embed_query(query)
        depth = max(k * 4, 20)
        allowed = self._allowed(scope.video_ids) if scope.video_ids is not None else None
        dense: dict[int, float] = {}
        lexical_rank: dict[int, int] = {}
        lexical: dict[int, float] = {}
        where: dict[int, tuple[str, int]] = {}
        generations: dict[str, int] = {}
        for collection_id in scope.collection_ids:
            # an index built by another embedding model is a Conflict saying how to rebuild it
            reader = open_index(self._ctx, collection_id, embedder=embedder).reader()
            generations[collection_id] = int(reader.generation)
            if len(reader) == 0 or (allowed is not None and len(allowed) == 0):
                continue
            dense_hits, lexical_hits = reader.hybrid(qvec, query, depth, allowed)
            for vid, score in dense_hits:
                vid = int(vid)
                if score > dense.get(vid, -2.0):
                    dense[vid] = float(score)
                where.setdefault(vid, (collection_id, int(reader.generation)))
            # BM25 scores depend on each index's statistics, so only ranks are merged
            for rank, (vid, score) in enumerate(lexical_hits):
                vid = int(vid)
                if rank < lexical_rank.get(vid, depth + 1):
                    lexical_rank[vid] = rank
                    lexical[vid] = float(score)
                where.setdefault(vid, (collection_id, int(reader.generation)))
            # a keyword-only hit still gets a comparable dense score: from its stored
            # vector, not by embedding its text again
            found = {int(v) for v, _ in dense_hits}
            keyword_only = np.array([int(v) for v, _ in lexical_hits if int(v) not in found], dtype=np.int64)
            if len(keyword_only):
                ids, vecs = reader.vectors(keyword_only)
                for vid, score in zip(ids.tolist(), (vecs @ qvec).tolist(), strict=True):
                    dense[vid] = max(float(score), dense.get(vid, -2.0))
        if not where:
            return Retrieval(query, [], generations, 0, (time.perf_counter() - t0) * 1000)
        rrf: dict[int, float] = dict.fromkeys(where, 0.0)
        for rank, vid in enumerate(sorted(dense, key=dense.get, reverse=True)):
            rrf[vid] += 1.0 / (RRF_K + rank + 1)
        for vid, rank in lexical_rank.items():
            rrf[vid] += 1.0 / (RRF_K + rank + 1)
        # hydrate only what could make the cut: merging and de-duplication need some spare
        ranked = sorted(rrf, key=rrf.get, reverse=True)[: max(k * 3, 12)]
        hits = self._hydrate(ranked, rrf, dense, lexical, where, qvec)
        hits = self._dedupe(hits)
        hits = self._merge(hits, k) if merge else hits[:k]
        return Retrieval(query, hits, generations, len(rrf), (time.perf_counter() - t0) * 1000)

    def attach_sentences(self, hits: Sequence[SearchHit]) -> None:
        """Give each hit its transcript sentences with their times (one catalog query)."""
        if not hits:
            return
        from sqlalchemy import or_

        from .catalog import Segment
        from .chunking import timed_sentences

        with self._ctx.catalog.session() as s:
            rows = s.execute(
                select(Segment.video_id, Segment.start, Segment.end, Segment.text, Segment.words)
                .where(
                    or_(
                        *(
                            (Segment.video_id == h.video_id)
                            & (Segment.end > h.start)
                            & (Segment.start < h.end)
                            for h in hits
                        )
                    )
                )
                .order_by(Segment.video_id, Segment.start)
            ).all()
        for h in hits:
            mine = [r for r in rows if r.video_id == h.video_id and r.end > h.start and r.start < h.end]
            # a segment cut by the passage's edge may hold a sentence of the next passage
            h.sentences = [
                t for t in timed_sentences(mine) if t.end > h.start + 0.05 and t.start < h.end - 0.05
            ] or h.sentences

    def _allowed(self, video_ids: list[str]) -> np.ndarray:
        with self._ctx.catalog.session() as s:
            ids = s.scalars(select(Chunk.vector_id).where(Chunk.video_id.in_(video_ids)))
            return np.fromiter(ids, dtype=np.int64)

    def _hydrate(self, ranked, rrf, dense, lexical, where, qvec) -> list[SearchHit]:
        with self._ctx.catalog.session() as s:
            rows = s.execute(
                select(Chunk, Video)
                .join(Video, Video.id == Chunk.video_id)
                .where(Chunk.vector_id.in_(ranked), Video.status == "ready")
            ).all()
        missing = [c for c, _ in rows if c.vector_id not in dense]
        if missing:
            # only a row the index lost its vector for (never in a consistent generation)
            from .embed import get_embedder

            vecs = get_embedder(self._ctx.settings).embed([c.text for c in missing])
            for c, v in zip(missing, vecs, strict=True):
                dense[c.vector_id] = float(np.dot(v, qvec))
        hits = []
        for chunk, video in rows:
            vid = chunk.vector_id
            page = video.webpage_url or video.url
            collection_id, generation = where[vid]
            hits.append(
                SearchHit(
                    chunk_id=chunk.id,
                    video_id=video.id,
                    title=video.title,
                    start=chunk.start,
                    end=chunk.end,
                    text=chunk.text,
                    score=round(dense[vid], 4),
                    link=deep_link(page, chunk.start, source_key=video.source_key),
                    url=page,
                    collection_id=collection_id,
                    chapter=chunk.chapter,
                    vector_id=vid,
                    dense_score=round(dense[vid], 4),
                    lexical_score=round(lexical.get(vid, 0.0), 4),
                    rank_score=rrf[vid],
                    generation=generation,
                    chunk_ids=[chunk.id],
                    chunk_index=chunk.index,
                    transcript_source=video.transcript_source,
                )
            )
        hits.sort(key=lambda h: h.rank_score, reverse=True)
        return hits

    @staticmethod
    def _dedupe(hits: list[SearchHit]) -> list[SearchHit]:
        """Drop passages whose words nearly repeat a better-ranked passage's."""
        kept: list[tuple[SearchHit, frozenset[str]]] = []
        for hit in hits:
            seen = words(hit.text)
            if any(overlap(seen, w) >= DUPLICATE_JACCARD for _, w in kept):
                continue
            kept.append((hit, seen))
        return [h for h, _ in kept]

    def _merge(self, hits: list[SearchHit], k: int) -> list[SearchHit]:
        """Join neighbouring chunks of one video, keep ``k`` passages, complete sentences."""
        passages: list[dict] = []
        # an unrelated neighbour must not stretch a passage (and its link) away from the answer
        floor = self._ctx.settings.min_relevance
        per_video = max(1, (k + 1) // 2)
        spare: list[dict] = []
        for hit in hits:
            target = None
            for p in passages:
                if (
                    hit.score >= floor
                    and p["hits"][0].score >= floor
                    and p["video_id"] == hit.video_id
                    and len(p["hits"]) < MAX_MERGED_CHUNKS
                    and p["lo"] - 1 <= hit.chunk_index <= p["hi"] + 1
                ):
                    target = p
                    break
            if target is not None:
                target["hits"].append(hit)
                target["lo"] = min(target["lo"], hit.chunk_index)
                target["hi"] = max(target["hi"], hit.chunk_index)
            elif len(passages) < k:
                passage = {
                    "video_id": hit.video_id,
                    "lo": hit.chunk_index,
                    "hi": hit.chunk_index,
                    "hits": [hit],
                }
                if sum(p["video_id"] == hit.video_id for p in passages) >= per_video:
                    # one video may not take every slot: a question spanning two lectures
                    # needs the other's best passage too; spares fill slots left at the end
                    spare.append(passage)
                else:
                    passages.append(passage)
        for passage in spare:
            if len(passages) >= k:
                break
            passages.append(passage)
        # in rank order: a spare that filled a slot late keeps its own place
        passages.sort(key=lambda p: max(h.rank_score for h in p["hits"]), reverse=True)
        merged = []
        for p in passages:
            parts = sorted(p["hits"], key=lambda h: h.chunk_index)
            best = max(p["hits"], key=lambda h: h.score)
            text = parts[0].text
            for h in parts[1:]:
                text = _join(text, h.text)
            first = parts[0]
            merged.append(
                SearchHit(
                    **{
                        **best.__dict__,
                        "chunk_id": best.chunk_id,
                        "start": first.start,
                        "end": max(h.end for h in parts),
                        "text": text,
                        "link": first.link,
                        "lexical_score": max(h.lexical_score for h in parts),
                        "rank_score": max(h.rank_score for h in parts),
                        "chunk_ids": [h.chunk_id for h in parts],
                        "chunk_index": first.chunk_index,
                    }
                )
            )
        self._complete_sentences(merged, passages)
        return merged

    def _complete_sentences(self, merged: list[SearchHit], passages: list[dict]) -> None:
        """Extend passages that start or end mid-sentence with the neighbouring chunk's words."""
        wanted: set[tuple[str, int]] = set()
        for hit, p in zip(merged, passages, strict=True):
            if not _SENTENCE_END.search(hit.text.strip()):
                wanted.add((hit.video_id, p["hi"] + 1))
            if hit.text[:1].islower():
                wanted.add((hit.video_id, p["lo"] - 1))
        if not wanted:
            return
        with self._ctx.catalog.session() as s:
            rows = s.scalars(
                select(Chunk).where(
                    Chunk.video_id.in_({v for v, _ in wanted}), Chunk.index.in_({i for _, i in wanted})
                )
            ).all()
        near = {(c.video_id, c.index): c for c in rows if (c.video_id, c.index) in wanted}
        for hit, p in zip(merged, passages, strict=True):
            after = near.get((hit.video_id, p["hi"] + 1))
            if after is not None and not _SENTENCE_END.search(hit.text.strip()):
                m = re.search(r"^.*?[.!?](?=\s|$)", after.text.strip())
                if m:
                    hit.text = _join(hit.text, m.group(0))
                    hit.end = max(
                        hit.end, after.start + (after.end - after.start) * m.end() / len(after.text)
                    )
            before = near.get((hit.video_id, p["lo"] - 1))
            if before is not None and hit.text[:1].islower():
                pieces = re.split(r"(?<=[.!?])\s+", before.text.strip())
                if pieces and not _SENTENCE_END.search(pieces[-1]):
                    hit.text = _join(pieces[-1], hit.text)
                    share = len(pieces[-1]) / max(1, len(before.text))
                    hit.start = min(hit.start, before.end - (before.end - before.start) * share)
                    hit.link = deep_link(hit.url, hit.start)


def _check(query: str, k: int) -> str:
    query = (query or "").strip()
    if not query:
        raise InvalidInput("The question is empty")
    if k < 1 or k > 200:
        raise InvalidInput("k must be between 1 and 200")
    return query
