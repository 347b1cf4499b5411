"""Class insights: what a collection's askers asked, in aggregate only.

    questions (with their answers' citations) ──► over time, topics, cited moments,
                                                  questions with no good answer

One implementation for both places it runs: the vidrag service computes it for the
owners and editors of a shared collection (``GET api/collections/{id}/insights``, every
student an asker), and ``03_class_insights.ipynb`` computes the same figures from a
personal collection's own conversations when no service is there (each conversation
then counts as one asker, and the result says so).

Privacy rules, applied here so no caller can forget them:
- no asker is ever named: askers are only counted;
- a group (a time period, a topic, a stretch of a video's timeline, a group of
  unanswered questions) is shown only when at least ``MIN_GROUP`` distinct askers are
  in it; smaller groups are counted as hidden, never shown.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
from sqlalchemy import select
from sqlalchemy.orm import Session

from .catalog import Conversation, Message, Video

#: the fewest distinct askers a shown group may have
MIN_GROUP = 5
#: average cosine similarity between the questions of one topic (all-MiniLM-L6-v2:
#: paraphrases of one question score 0.6-0.9, questions on one lecture topic 0.4-0.7,
#: unrelated questions below 0.2)
TOPIC_SIMILARITY = 0.4
#: stretches each video's timeline is cut into for the cited-moments heatmap
TIMELINE_BINS = 24
_WORD = re.compile(r"[a-z][a-z']{2,}")
_STOP_WORDS = (
    "the and for are but not you all any can her was one our out day get has him his how man new now "
    "old see two way who boy did its let put say she too use what when where which why with does this "
    "that from they there their them then than into about would could should will your have been were "
    "some more most much very also just like only over such make made many each other these those after "
    "before while being because through during without within again between doing done"
)
_STOP = frozenset(_STOP_WORDS.split())


@dataclass
class Question:
    """One question asked in a collection, and how its answer went."""

    text: str
    asked_at: datetime | None
    asker: str  # a key to count distinct askers by; never shown
    answered: bool  # a good answer: something relevant found, cited, nothing flagged
    citations: list[tuple[str, float, float]] = field(default_factory=list)  # (video id, start, end)


def good_answer(trace: dict | None, citations: int) -> bool:
    """Whether a stored answer counts as a good one (see ``Question.answered``)."""
    trace = trace or {}
    return citations > 0 and not trace.get("no_answer") and not trace.get("flagged")


def questions_of(
    session: Session, collection_id: str, *, asker: str = "owner", owner: str | None = None
) -> list[Question]:
    """The questions of every conversation about ``collection_id`` (only ``owner``'s when
    given). ``asker`` says what counts as one asker: ``"owner"`` (the user) or
    ``"conversation"`` (each conversation, for one person's own collection)."""
    q = select(Conversation).where(Conversation.collection_id == collection_id)
    if owner is not None:
        q = q.where(Conversation.owner == owner)
    out: list[Question] = []
    for conv in session.scalars(q):
        key = conv.owner if asker == "owner" else conv.id
        pending: Message | None = None
        for m in conv.messages:
            if m.role == "user":
                pending = m
                continue
            if pending is None:
                continue
            cites = [(c.video_id, float(c.start), float(c.end)) for c in m.citations if c.video_id]
            out.append(
                Question(
                    pending.content, _aware(pending.created_at), key, good_answer(m.trace, len(cites)), cites
                )
            )
            pending = None
    return out


def videos_of(session: Session, video_ids: Sequence[str]) -> dict[str, tuple[str, float | None]]:
    """Title and duration of each video id."""
    rows = session.execute(select(Video.id, Video.title, Video.duration).where(Video.id.in_(list(video_ids))))
    return {vid: (title, duration) for vid, title, duration in rows}


def _aware(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)  # SQLite hands back naive datetimes; all are UTC
    return value


def aggregate(
    questions: Sequence[Question],
    videos: dict[str, tuple[str, float | None]],
    embed: Callable[[list[str]], np.ndarray] | None,
    *,
    min_group: int = MIN_GROUP,
    unit: str = "student",
) -> dict:
    """The insights figures of ``questions`` (see the module docstring for what is hidden).

    ``embed`` turns texts into normalised vectors (the collection's embedder) for the
    topic clusters; None leaves topics out. ``unit`` names what one asker is, for the
    reader ("student", or "conversation" in the local fallback).
    """
    min_group = max(MIN_GROUP, int(min_group))  # never fewer than the rule
    askers = {q.asker for q in questions}
    out: dict = {
        "min_group": min_group,
        "asker_unit": unit,
        "questions": len(questions) if len(askers) >= min_group else None,
        "askers": len(askers) if len(askers) >= min_group else None,
        "over_time": _over_time(questions, min_group),
        "topics": {"groups": [], "hidden": 0},
        "moments": _moments(questions, videos, min_group),
        "unanswered": {"questions": None, "share": None, "groups": [], "hidden": 0},
    }
    unanswered = [q for q in questions if not q.answered]
    if len({q.asker for q in unanswered}) >= min_group:
        out["unanswered"]["questions"] = len(unanswered)
        out["unanswered"]["share"] = round(len(unanswered) / len(questions), 3)
    if embed is not None and questions:
        topics, unanswered_groups = _topics(questions, embed, min_group)
        out["topics"] = topics
        out["unanswered"].update(unanswered_groups)
    return out


def _over_time(questions: Sequence[Question], min_group: int) -> dict:
    dated = [q for q in questions if q.asked_at is not None]
    if not dated:
        return {"bucket": "day", "periods": [], "hidden": 0}
    span = max(q.asked_at for q in dated) - min(q.asked_at for q in dated)
    bucket = "day" if span.days >= 2 else "hour"
    fmt = "%Y-%m-%d" if bucket == "day" else "%Y-%m-%dT%H:00"
    groups: dict[str, list[Question]] = defaultdict(list)
    for q in dated:
        groups[q.asked_at.strftime(fmt)].append(q)
    periods, hidden = [], 0
    for period in sorted(groups):
        members = groups[period]
        if len({q.asker for q in members}) >= min_group:
            periods.append(
                {
                    "period": period,
                    "questions": len(members),
                    "unanswered": sum(not q.answered for q in members),
                }
            )
        else:
            hidden += 1
            periods.append({"period": period, "questions": None, "unanswered": None})
    return {"bucket": bucket, "periods": periods, "hidden": hidden}


def _moments(
    questions: Sequence[Question], videos: dict[str, tuple[str, float | None]], min_group: int
) -> list[dict]:
    """Per video: citations per stretch of its timeline, stretches with too few askers at 0."""
    askers: dict[str, list[set]] = {}
    counts: dict[str, list[int]] = {}
    ends: dict[str, float] = {}
    for q in questions:
        for vid, _start, end in q.citations:
            ends[vid] = max(ends.get(vid, 0.0), end)
    out = []
    for vid in sorted(ends, key=lambda v: (videos.get(v, ("", None))[0] or "", v)):
        title, duration = videos.get(vid, ("(removed video)", None))
        length = max(float(duration or 0.0), ends[vid], 1.0)
        width = length / TIMELINE_BINS
        askers[vid] = [set() for _ in range(TIMELINE_BINS)]
        counts[vid] = [0] * TIMELINE_BINS
        for q in questions:
            for cvid, start, end in q.citations:
                if cvid != vid:
                    continue
                first = min(TIMELINE_BINS - 1, int(start // width))
                last = min(TIMELINE_BINS - 1, int(max(start, end - 1e-6) // width))
                for b in range(first, last + 1):
                    askers[vid][b].add(q.asker)
                    counts[vid][b] += 1
        shown = [c if len(a) >= min_group else 0 for c, a in zip(counts[vid], askers[vid], strict=True)]
        hidden = sum(1 for c, a in zip(counts[vid], askers[vid], strict=True) if c and len(a) < min_group)
        if not any(shown) and not hidden:
            continue
        out.append(
            {
                "video_id": vid,
                "title": title,
                "duration": round(length, 1),
                "bin_seconds": round(width, 2),
                "citations": shown,
                "hidden_bins": hidden,
            }
        )
    return out


def _terms(texts: Sequence[str], background: Counter, n: int = 4) -> list[str]:
    counts = Counter(w for t in texts for w in set(_WORD.findall(t.lower())) if w not in _STOP)
    total = max(1, sum(background.values()))
    scored = sorted(counts, key=lambda w: (-counts[w] * np.log(1 + total / (1 + background[w])), w))
    return scored[:n]


def _topics(questions: Sequence[Question], embed, min_group: int) -> tuple[dict, dict]:
    """Clusters of question embeddings (average linkage on cosine distance: deterministic,
    and a topic is not split by the order its questions came in)."""
    vectors = np.asarray(embed([q.text for q in questions]), dtype=np.float32)
    if len(questions) > 1:
        from scipy.cluster.hierarchy import fcluster, linkage  # scipy comes with sentence-transformers

        labels = fcluster(linkage(vectors, "average", metric="cosine"), 1.0 - TOPIC_SIMILARITY, "distance")
    else:
        labels = np.ones(len(questions), dtype=int)
    members = [list(np.flatnonzero(labels == label)) for label in sorted(set(labels.tolist()))]
    centres = []
    for idx in members:
        centre = vectors[idx].mean(axis=0)
        centres.append(centre / (np.linalg.norm(centre) or 1.0))
    background = Counter(w for q in questions for w in set(_WORD.findall(q.text.lower())))
    groups, hidden = [], 0
    unanswered_groups, unanswered_hidden = [], 0

    def example(idx: list[int], centre: np.ndarray) -> str:
        best = max(idx, key=lambda i: float(vectors[i] @ centre))
        return questions[best].text

    for centre, idx in sorted(zip(centres, members, strict=True), key=lambda cm: -len(cm[1])):
        group = [questions[i] for i in idx]
        if len({q.asker for q in group}) < min_group:
            hidden += 1
        else:
            groups.append(
                {
                    "terms": _terms([q.text for q in group], background),
                    "questions": len(group),
                    "unanswered": sum(not q.answered for q in group),
                    "example": example(idx, centre),
                }
            )
        missed = [i for i in idx if not questions[i].answered]
        if missed:
            if len({questions[i].asker for i in missed}) < min_group:
                unanswered_hidden += 1
            else:
                unanswered_groups.append(
                    {
                        "terms": _terms([questions[i].text for i in missed], background),
                        "questions": len(missed),
                        "example": example(missed, centre),
                    }
                )
    return {"groups": groups, "hidden": hidden}, {"groups": unanswered_groups, "hidden": unanswered_hidden}


def collection_insights(
    session: Session, collection_id: str, settings, *, asker: str = "owner", owner: str | None = None
) -> dict:
    """``aggregate`` of a collection's questions, with its embedder for the topics."""
    from .embed import get_embedder

    questions = questions_of(session, collection_id, asker=asker, owner=owner)
    videos = videos_of(session, sorted({c[0] for q in questions for c in q.citations}))
    embedder = get_embedder(settings) if questions else None
    return aggregate(
        questions,
        videos,
        embedder.embed if embedder is not None else None,
        unit="student" if asker == "owner" else "conversation",
    )


def local_insights(wb, collection: str) -> dict:
    """The local fallback: the same figures from your own conversations on a personal
    collection, each conversation counted as one asker (``"local_fallback": true``)."""
    lib = wb.local
    with lib.ctx.catalog.session() as s:
        row = lib.collections.resolve(s, collection, "read")
        cid, name = row.id, row.name
        data = collection_insights(s, cid, wb.settings, asker="conversation", owner=lib.ctx.owner)
    return {"collection": {"id": cid, "name": name}, "local_fallback": True, **data}
