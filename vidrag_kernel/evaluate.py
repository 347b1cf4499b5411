"""Evaluation of a collection: how well retrieval finds the right moment, how often
answers are right.

A QA set is JSON Lines, one question per line::

    {"question": "How do plants make sugar from light?",
     "video": "lecture", "start": 3.1, "end": 12.4,
     "keywords": ["chlorophyll"]}
    {"question": "What is the capital of Australia?", "answerable": false}

- ``video`` names the expected video by id, title or URL (or ``video_id``); ``start``
  and ``end`` give the span in seconds. Several acceptable spans go in
  ``"expected": [{"video": ..., "start": ..., "end": ...}, ...]``.
- Retrieval: a hit is a retrieved chunk of an expected video whose time span overlaps
  an expected span. Reported: Recall@1/5/10 (share of questions with a hit in the first
  1/5/10 chunks) and MRR (mean of 1/rank of the first hit, 0 if none in the first 10).
- Answers: with ``keywords`` an answer is right when every keyword appears in it (case
  insensitive, a number however it is written: "fifty" is said by "50"); ``"answerable": false`` is right when the answer says nothing relevant
  was found. Answer accuracy is the share of such questions answered right.
- Where the answer points (``answer_measures``, for questions with spans): citation hit
  (the first citation, or any, overlaps an expected span), seek accuracy (the first
  citation starts within ``SEEK_SECONDS`` of an expected span's start, so the player
  lands on the supporting sentence) and that distance; refusal accuracy (unanswerable
  questions marked ``no_answer``) and the false-refusal rate (answerable ones marked so).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from .errors import InvalidInput, NotFound

KS = (1, 5, 10)
#: a citation starting this close to the supporting sentence's start seeks to the right moment
SEEK_SECONDS = 5.0


@dataclass
class Span:
    video: str
    start: float
    end: float


@dataclass
class QAItem:
    """One question of a QA set."""

    question: str
    spans: list[Span] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    answerable: bool = True


@dataclass
class EvalReport:
    """Metrics of one evaluation and what each question got."""

    collection: str | None
    questions: int
    retrieval: dict
    answers: dict
    items: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def table(self) -> str:
        """The figures as an aligned text table for the terminal."""
        r, a = self.retrieval, self.answers
        rows = [("questions", str(self.questions)), ("retrieval questions", str(r["n"]))]
        rows += [(f"Recall@{k}", _pct(r.get(f"recall@{k}"))) for k in KS]
        rows += [("MRR", "-" if r.get("mrr") is None else f"{r['mrr']:.3f}")]
        rows += [("answer questions", str(a["n"])), ("answer accuracy", _pct(a.get("accuracy")))]
        if a.get("modes"):
            rows.append(("answer modes", ", ".join(f"{m}: {c}" for m, c in sorted(a["modes"].items()))))
        width = max(len(k) for k, _ in rows)
        head = f"Evaluation of {self.collection or 'all collections'}"
        return "\n".join([head, "-" * len(head)] + [f"{k.ljust(width)}  {v}" for k, v in rows])


def _pct(v) -> str:
    return "-" if v is None else f"{v * 100:.1f}%"


def parse_item(raw: dict, line: int = 0) -> QAItem:
    """One QA record (see the module doc); raises ``InvalidInput`` naming the line."""
    where = f"QA line {line}" if line else "QA item"
    question = str(raw.get("question") or "").strip()
    if not question:
        raise InvalidInput(f"{where}: no question")
    expected = raw.get("expected")
    if expected is None and (raw.get("video") or raw.get("video_id")):
        expected = [raw]
    spans = []
    for e in expected or []:
        video = e.get("video_id") or e.get("video")
        try:
            start, end = float(e["start"]), float(e["end"])
        except (KeyError, TypeError, ValueError) as exc:
            raise InvalidInput(f"{where}: an expected span needs numeric start and end") from exc
        if not video or end < start:
            raise InvalidInput(f"{where}: an expected span needs a video and start <= end")
        spans.append(Span(str(video), start, end))
    keywords = [str(k) for k in raw.get("keywords") or []]
    return QAItem(question, spans, keywords, bool(raw.get("answerable", True)))


def load_qa(source: str | Path | Sequence[dict]) -> list[QAItem]:
    """Read a QA set from a JSONL file or a list of dicts."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if not path.is_file():
            raise NotFound(f"No QA file at {path}")
        items = []
        for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            try:
                raw = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InvalidInput(f"QA line {i} is not JSON: {exc.msg}") from exc
            items.append(parse_item(raw, i))
    else:
        items = [parse_item(raw, i) for i, raw in enumerate(source, 1)]
    if not items:
        raise InvalidInput("The QA set has no questions")
    return items


def retrieval_metrics(ranks: Sequence[int | None], ks: Sequence[int] = KS) -> dict:
    """Recall@k and MRR from the 1-based rank of each question's first hit (None = missed).

    MRR counts only ranks within the largest k, as the retrieval depth is that k.
    """
    n = len(ranks)
    if n == 0:
        return {"n": 0, **{f"recall@{k}": None for k in ks}, "mrr": None}
    depth = max(ks)
    out: dict = {"n": n}
    for k in ks:
        out[f"recall@{k}"] = sum(1 for r in ranks if r is not None and r <= k) / n
    out["mrr"] = sum(1.0 / r for r in ranks if r is not None and r <= depth) / n
    return out


def first_hit(hits: Sequence, spans: Sequence[Span], video_ids: dict[str, str]) -> int | None:
    """The 1-based rank of the first hit overlapping an expected span, else None."""
    for rank, h in enumerate(hits, 1):
        for span in spans:
            if video_ids.get(span.video) == h.video_id and h.start < span.end and h.end > span.start:
                return rank
    return None


def said_numbers(text: str) -> str:
    """``text`` in lower case with numbers written one way (``answer.numbers.digits``:
    "Fifty" and "50", "1,800" and "1800", "eleven thousand" and speech recognition's
    "11 ,000" read the same), and "metre" spelled "meter" (speech recognition writes
    American spelling)."""
    from .answer.numbers import digits

    return re.sub(r"(?<=[a-z][a-z])tre(s?)\b", r"ter\1", digits(text))


def holds_keyword(text: str, keyword: str) -> bool:
    """Whether ``text`` says ``keyword``, case aside and however a number in either is written
    (speech recognition writes "50" where the lecturer's script said "fifty")."""
    return keyword.lower() in text.lower() or said_numbers(keyword) in said_numbers(text)


def answer_correct(item: QAItem, answer) -> bool:
    if not item.answerable:
        return bool(answer.no_answer)
    if answer.no_answer:
        return False
    return all(holds_keyword(answer.text, k) for k in item.keywords)


def answer_measures(item: QAItem, answer, video_ids: dict[str, str]) -> dict:
    """Where ``answer`` points for ``item``: keyword, refusal, citation hit and seek figures.

    ``video_ids`` maps the QA set's video references to video ids. ``first_distance`` is
    the seconds between the first citation's start and the nearest expected span start in
    the same video (None when it cites another video or nothing).
    """
    row: dict = {"answerable": item.answerable, "no_answer": bool(answer.no_answer)}
    if not item.answerable:
        row["refused"] = bool(answer.no_answer)
        return row
    text = answer.text.lower()
    row["keywords_ok"] = not answer.no_answer and all(holds_keyword(answer.text, k) for k in item.keywords)
    # letter for letter, as the first development-set figures were measured
    row["keywords_exact"] = not answer.no_answer and all(k.lower() in text for k in item.keywords)
    cites = [] if answer.no_answer else list(answer.citations)

    def hits(c) -> bool:
        return any(
            video_ids.get(s.video) == c.video_id and c.start < s.end and c.end > s.start for s in item.spans
        )

    def distance(c) -> float | None:
        same = [abs(c.start - s.start) for s in item.spans if video_ids.get(s.video) == c.video_id]
        return min(same) if same else None

    first = cites[0] if cites else None
    row["first_hit"] = bool(first) and hits(first)
    row["any_hit"] = any(hits(c) for c in cites)
    row["first_distance"] = None if first is None else distance(first)
    row["seek_ok"] = row["first_distance"] is not None and row["first_distance"] <= SEEK_SECONDS
    # a question whose answer needs several videos: how many of them the citations reach
    wanted = {video_ids.get(s.video) for s in item.spans}
    row["videos_cited"] = len(wanted & {c.video_id for c in cites if hits(c)})
    row["videos_wanted"] = len(wanted)
    return row


def summarize_answers(rows: Sequence[dict]) -> dict:
    """The answer figures of ``answer_measures`` rows (shares of the questions they apply to)."""
    answerable = [r for r in rows if r["answerable"]]
    unanswerable = [r for r in rows if not r["answerable"]]

    def share(group: list[dict], key: str) -> float | None:
        return round(sum(bool(r[key]) for r in group) / len(group), 4) if group else None

    distances = sorted(r["first_distance"] for r in answerable if r.get("first_distance") is not None)

    def pct(q: float) -> float | None:
        if not distances:
            return None
        return round(distances[min(len(distances) - 1, int(round(q * (len(distances) - 1))))], 2)

    return {
        "answerable": len(answerable),
        "unanswerable": len(unanswerable),
        "keyword_accuracy": share(answerable, "keywords_ok"),
        "keyword_accuracy_exact": share(answerable, "keywords_exact"),
        "first_citation_hit": share(answerable, "first_hit"),
        "any_citation_hit": share(answerable, "any_hit"),
        "seek_accuracy": share(answerable, "seek_ok"),
        "refusal_accuracy": share(unanswerable, "refused"),
        "false_refusal_rate": share(answerable, "no_answer"),
        "first_distance_p50_s": pct(0.5),
        "first_distance_p90_s": pct(0.9),
    }


def _video_lookup(wb, collection: str | None, items: list[QAItem]) -> dict[str, str]:
    """Map each video reference of the QA set to a video id (by id, title or URL)."""
    videos = wb.videos.list(collection)
    lookup: dict[str, str] = {}
    for ref in {s.video for it in items for s in it.spans}:
        match = next((v.id for v in videos if v.id == ref), None)
        match = match or next((v.id for v in videos if v.title.lower() == ref.lower()), None)
        match = match or next(
            (v.id for v in videos if ref in (v.url, v.webpage_url) or v.url.endswith("/" + ref)), None
        )
        if match is None:
            raise NotFound(f"The QA set names a video {ref!r} that is not in the collection")
        lookup[ref] = match
    return lookup


def evaluate(
    wb, qa: str | Path | Sequence[dict], collection: str | None = None, *, k: int = 10, answers: bool = True
) -> EvalReport:
    """Evaluate ``wb``'s retrieval (and, with ``answers``, its answers) on a QA set.

    Retrieval is judged chunk by chunk (no neighbour merging), as the index returns it.
    Answers use the configured engine and are not saved as conversations.
    """
    items = load_qa(qa)
    k = max(k, max(KS))
    lookup = _video_lookup(wb, collection, items)
    scope = wb.retriever.scope(collection)
    ranks: list[int | None] = []
    measured: list[dict] = []
    correct = 0
    judged = 0
    modes: dict[str, int] = {}
    report_items = []
    for item in items:
        row: dict = {"question": item.question}
        if item.spans:
            retrieval = wb.retriever.retrieve(item.question, scope, k, merge=False)
            rank = first_hit(retrieval.hits, item.spans, lookup)
            ranks.append(rank)
            row.update(rank=rank, best_score=round(retrieval.best_score, 4))
        if answers and (item.keywords or not item.answerable):
            answer = wb.ask(item.question, collection, save=False)
            ok = answer_correct(item, answer)
            judged += 1
            correct += ok
            modes[answer.mode] = modes.get(answer.mode, 0) + 1
            row.update(correct=ok, no_answer=answer.no_answer, mode=answer.mode, answer=answer.text)
            if item.spans or not item.answerable:
                row.update(answer_measures(item, answer, lookup))
                measured.append(row)
        report_items.append(row)
    return EvalReport(
        collection=collection,
        questions=len(items),
        retrieval=retrieval_metrics(ranks),
        answers={
            "n": judged,
            "accuracy": correct / judged if judged else None,
            "modes": modes,
            **(summarize_answers(measured) if measured else {}),
        },
        items=report_items,
    )
