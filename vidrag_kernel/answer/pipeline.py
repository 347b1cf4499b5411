"""From a question to a stored, grounded answer.

retrieve (hybrid, neighbours merged) -> nothing relevant? say so -> engine (LLM, or
extractive; extractive again if the LLM fails) -> citation checks -> store the turn in
its conversation. ``Asker.stream`` yields the answer's text as it is written and then
the final ``Answer``; ``Asker.ask`` returns only the ``Answer``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence

from ..citations import DECLINES, pin_citations, resolve
from ..context import Context
from ..errors import InvalidInput, ModelError
from ..links import deep_link
from ..overlap import overlap, words
from .questions import parts
from .types import Answer, Generation, zero_usage

NO_ANSWER = (
    "I could not find anything about this in the selected videos, so I will not guess. "
    "Try rephrasing the question, or ask it of another collection."
)
MAX_QUESTION = 4000
# Passages down to this share of ``min_relevance`` reach the engine, which judges by
# sentence whether they answer: a 256-token passage's score is diluted by everything else
# it says, so a passage holding the exact answer often scores below the floor itself.
# Calibrated on the development set's tuning split.
CANDIDATE_SHARE = 0.5
# word overlap (Jaccard, of content words) a segment needs with the sentence citing it to
# count as where that sentence was said: a Dice coefficient of 0.3
SEGMENT_OVERLAP = 0.3 / 1.7
# passages retrieved for each part of a question that asks two things
PART_K = 2


class Asker:
    """Answers questions for one Workbench."""

    def __init__(self, ctx: Context, retriever, conversations) -> None:
        self._ctx = ctx
        self._retriever = retriever
        self._conversations = conversations

    def _embed(self, texts: list[str]):
        """Normalized vectors of ``texts``; transcript sentences come back in question after
        question, so their vectors come from the process's memo (``embed.embed_cached``)."""
        from ..embed import embed_cached, get_embedder

        return embed_cached(get_embedder(self._ctx.settings), texts)

    def ask(self, question: str, **kwargs) -> Answer:
        """The answer to ``question`` (see ``stream`` for the arguments)."""
        for item in self.stream(question, streaming=False, **kwargs):
            if isinstance(item, Answer):
                return item
        raise AssertionError("the answer pipeline ended without an answer")  # pragma: no cover

    def stream(
        self,
        question: str,
        collection: str | None = None,
        videos: Sequence[str] | None = None,
        tags: Sequence[str] | None = None,
        conversation: str | None = None,
        *,
        save: bool = True,
        streaming: bool = True,
    ) -> Iterator[str | Answer]:
        """Yield pieces of the answer's text, then the final ``Answer``.

        The final ``Answer.text`` is authoritative: markers of sources that do not exist
        are removed from it, and if the LLM fails part-way the pieces already yielded are
        followed by the extractive fallback.
        """
        t0 = time.perf_counter()
        settings = self._ctx.settings
        question = " ".join((question or "").split())
        if not question:
            raise InvalidInput("The question is empty")
        if len(question) > MAX_QUESTION:
            raise InvalidInput(f"Questions are at most {MAX_QUESTION} characters")
        if isinstance(collection, (list, tuple)):
            raise InvalidInput("Ask one collection at a time (or select videos)")

        history: list[dict] = []
        if conversation is not None:
            info = self._conversations.get(conversation)
            _same_scope(self._retriever, info, collection, videos)
            collection, videos = info.collection_id, info.video_ids
            history = self._conversations.history(conversation, settings.history_turns)
        scope = self._retriever.scope(collection, videos, tags)

        retrieval = self._retriever.retrieve(question, scope, settings.top_k, merge=True)
        if history and retrieval.best_score < settings.min_relevance:
            # a follow-up ("and when was that?") may only make sense with the previous question
            previous = next((m["content"] for m in reversed(history) if m["role"] == "user"), None)
            if previous:
                again = self._retriever.retrieve(f"{previous} {question}", scope, settings.top_k, merge=True)
                if again.best_score > retrieval.best_score:
                    retrieval = again
        asks = parts(question)
        if len(asks) > 1:
            retrieval.hits = self._part_hits(retrieval.hits, asks, scope)
        sources = [h for h in retrieval.hits if h.score >= settings.min_relevance * CANDIDATE_SHARE]
        # each passage's sentences with their own times: quotes and citations point at them
        self._retriever.attach_sentences(sources)
        if (
            sources
            and max(h.score for h in sources) < settings.min_relevance
            and not _sentence_judged(settings)
        ):
            # only weak passages: an LLM sees them only when one of their sentences answers
            # (the extractive engine's judgement); a 256-token passage holding the exact
            # answer often scores under the floor ("In what year was the first battery built?")
            from .extractive import ExtractiveAnswerer

            if not ExtractiveAnswerer(self._embed).judge(question, sources):
                sources = []
        t_retrieved = time.perf_counter()

        fallback_reason = None
        generate_ms = 0.0
        if not sources:
            # no engine runs, so nothing can be made up: mode extractive, no model, no tokens
            generation = Generation(NO_ANSWER, "extractive", None)
            if streaming:
                yield NO_ANSWER
        else:
            from . import get_answerer

            engine = get_answerer(settings, self._embed)
            g0 = time.perf_counter()
            try:
                generation = yield from self._generate(engine, question, sources, history, streaming)
            except ModelError as exc:
                fallback_reason = exc.message
                from .extractive import ExtractiveAnswerer

                if streaming:
                    yield "\n\n"
                reason = exc.message.removeprefix("LLM unavailable: ")
                generation = yield from self._generate(
                    ExtractiveAnswerer(self._embed), question, sources, history, streaming, reason=reason
                )
            generate_ms = (time.perf_counter() - g0) * 1000

        c0 = time.perf_counter()
        # an extractive answer numbers its quotes, several of which may come from one passage
        cited = [sources[n - 1] for n in generation.quotes] if generation.quotes else sources
        checked = resolve(
            generation.text,
            cited,
            # extractive answers quote the passages verbatim, so there is nothing to check
            embed=self._embed if generation.mode == "llm" else None,
            threshold=settings.support_threshold,
        )
        if generation.moments:
            # a quote is one transcript sentence: its citation spans exactly that sentence
            for c in checked.citations:
                start, end = generation.moments[c.n - 1]
                c.start, c.end, c.link = float(start), float(end), deep_link(c.url, start)
                c.quote = generation.quoted[c.n - 1] if generation.quoted else None
        elif any(getattr(src, "sentences", None) for src in cited) and checked.support:
            # an LLM's citation resolves to the sentence(s) of its passage that support the claim
            pin_citations(checked.citations, checked.support, deep_link)
        else:
            self._pinpoint(checked.citations, checked.text, narrow=bool(generation.quotes))
        declined = generation.mode == "llm" and not checked.citations and bool(DECLINES.search(checked.text))
        no_answer = not sources or generation.no_answer or declined
        related = self._related(generation, sources, retrieval.hits) if no_answer else []
        check_ms = (time.perf_counter() - c0) * 1000
        trace = retrieval.trace()
        trace.update(
            {
                "model": generation.model,
                "mode": generation.mode,
                "k": settings.top_k,
                "merge": True,
                "min_relevance": settings.min_relevance,
                "sources": len(sources),
                "history_messages": len(history),
                "removed_citations": checked.removed,
                "support": checked.support,
                "assessment": generation.assessment,
            }
        )
        answer = Answer(
            text=checked.text,
            citations=checked.citations,
            mode=generation.mode,
            model=generation.model,
            usage=generation.usage or zero_usage(),
            conversation_id=conversation,
            flagged=checked.flagged,
            no_answer=no_answer,
            fallback_reason=fallback_reason,
            trace=trace,
            related=related,
        )
        if save and answer.conversation_id is None:
            # a video selection (or the videos tags picked) is the narrower scope, so it is kept
            picked = scope.video_ids or None
            created = self._conversations.create(collection=None if picked else collection, videos=picked)
            answer.conversation_id = created.id
        timings = {
            "retrieve_ms": round((t_retrieved - t0) * 1000, 2),
            "generate_ms": round(generate_ms, 2),
            "check_ms": round(check_ms, 2),
        }
        answer.trace["timings"] = timings
        # the stored latency is what the reader waited for, up to storing the turn itself
        answer.latency_ms = round((time.perf_counter() - t0) * 1000, 2)
        if save:
            answer.message_id = self._conversations.add_turn(answer.conversation_id, question, answer)
        yield answer

    def _part_hits(self, hits: list, asks: Sequence[str], scope) -> list:
        """``hits`` and then each part's best passages that ``hits`` lacks: a question
        asking two things ("..., and who mapped the Gulf Stream?") needs the best passage
        for each, and the whole question's retrieval often ranks one part's lecture only."""
        out = list(hits)
        held = {c: h for h in hits for c in (h.chunk_ids or [h.chunk_id])}
        for ask in asks:
            for h in self._retriever.retrieve(ask, scope, PART_K, merge=True).hits:
                mine = h.chunk_ids or [h.chunk_id]
                already = next((held[c] for c in mine if c in held), None)
                if already is not None:
                    # relevant to a part, even if the whole question scored it low
                    already.score = max(already.score, h.score)
                    continue
                out.append(h)
                held.update(dict.fromkeys(mine, h))
        return out

    def _pinpoint(self, citations: list, text: str, *, narrow: bool = False) -> None:
        """Move each citation's start (and link) to the transcript segment that best matches
        the first answer sentence citing it, so the link opens at the supporting moment
        rather than at the start of a longer passage. With ``narrow`` (quotes, which are
        transcript sentences) the citation's span becomes the quoted sentence's own."""
        if not citations:
            return
        from sqlalchemy import or_, select

        from ..catalog import Segment
        from ..citations import cited_numbers, split_sentences, strip_markers
        from ..links import deep_link

        claims: dict[int, frozenset[str]] = {}
        for sentence in split_sentences(text):
            for n in cited_numbers(sentence):
                claims.setdefault(n, words(strip_markers(sentence), content=True))
        with self._ctx.catalog.session() as s:
            rows = s.execute(
                select(Segment.video_id, Segment.start, Segment.end, Segment.text).where(
                    or_(
                        *(
                            (Segment.video_id == c.video_id)
                            & (Segment.end > c.start)
                            & (Segment.start < c.end)
                            for c in citations
                        )
                    )
                )
            ).all()
        for c in citations:
            said = claims.get(c.n)
            if not said:
                continue
            segments = sorted(
                (r for r in rows if r.video_id == c.video_id and r.end > c.start and r.start < c.end),
                key=lambda r: r.start,
            )
            scores = [overlap(said, words(r.text, content=True)) for r in segments]
            if not scores or max(scores) < SEGMENT_OVERLAP:
                continue
            best = scores.index(max(scores))
            if narrow:
                # a quoted sentence may run over several segments (caption cues): take them all
                first = last = best
                while first > 0 and _inside(segments[first - 1].text, said):
                    first -= 1
                while last + 1 < len(segments) and _inside(segments[last + 1].text, said):
                    last += 1
                c.start = max(c.start, float(segments[first].start))
                c.end = min(c.end, float(segments[last].end))
            elif segments[best].start > c.start:
                c.start = float(segments[best].start)
            c.link = deep_link(c.url, c.start)

    @staticmethod
    def _related(generation: Generation, sources: Sequence, hits: Sequence) -> list:
        """The closest passages to show when the videos do not answer: the sentences the
        engine found closest, else the best retrieved passages (below the relevance floor
        when nothing reached it)."""
        from ..citations import make_citation

        out = []
        for k, (n, text, start, end) in enumerate(generation.related, 1):
            c = make_citation(k, sources[n - 1])
            if start is not None:
                c.start, c.end, c.link = float(start), float(end), deep_link(c.url, start)
            c.quote = text
            out.append(c)
        if not out:
            out = [make_citation(k, h) for k, h in enumerate((sources or hits)[:3], 1)]
        return out

    @staticmethod
    def _generate(engine, question, sources, history, streaming, **kw):
        """Run ``engine``, passing text pieces through when streaming; return the Generation."""
        if not streaming:
            return engine.complete(question, sources, history, **kw)
        generation = None
        for item in engine.stream(question, sources, history, **kw):
            if isinstance(item, Generation):
                generation = item
            else:
                yield item
        if generation is None:  # pragma: no cover - engines always end with one
            raise ModelError("LLM unavailable: no reply")
        return generation


def _sentence_judged(settings) -> bool:
    """Whether the configured engine judges answerability sentence by sentence (extractive)."""
    from . import answerer_name

    return answerer_name(settings) == "extractive"


def _inside(segment_text: str, said: frozenset[str]) -> bool:
    """Whether a segment is (almost all) part of the sentence whose content words are ``said``."""
    seg = words(segment_text, content=True)
    return bool(seg) and len(seg & said) >= 0.8 * len(seg)


def _same_scope(retriever, info, collection, videos) -> None:
    """A conversation keeps its scope: a different collection or video set is an error."""
    if collection is not None:
        wanted = retriever.scope(collection).collection_ids
        if info.collection_id is None or wanted != [info.collection_id]:
            raise InvalidInput("This conversation is about a different collection; start a new conversation")
    if videos and sorted(videos) != sorted(info.video_ids or []):
        raise InvalidInput("This conversation is about different videos; start a new conversation")
