"""Answer engines behind one small interface, chosen by settings.

An engine turns a question, numbered sources (retrieved passages) and the recent
conversation into text that cites the sources as ``[n]``:

- ``complete(question, sources, history) -> Generation``
- ``stream(question, sources, history)`` yields text pieces, then one ``Generation``

Engines: ``llm`` (litellm, any provider; chosen when ``VIDRAG_LLM_MODEL`` is set) and
``extractive`` (no LLM; the default, and the fallback when the LLM fails). The whole
question-to-answer flow (retrieval, no-answer detection, fallback, citation checks,
storing the conversation) lives in ``vidrag_kernel.answer.pipeline``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from ..settings import Settings
from .types import Answer, Citation, Generation

__all__ = ["Answer", "Answerer", "Citation", "Generation", "get_answerer"]


class Answerer(Protocol):
    """What an answer engine provides."""

    mode: str
    model: str | None

    def complete(self, question: str, sources: Sequence, history: Sequence[dict] = ()) -> Generation: ...

    def stream(
        self, question: str, sources: Sequence, history: Sequence[dict] = ()
    ) -> Iterator[str | Generation]: ...


def get_answerer(settings: Settings, embed=None) -> Answerer:
    """The configured engine: the LLM if ``llm_model`` is set, else extractive.

    ``embed`` (texts -> normalized vectors) is what the extractive engine ranks
    sentences with; by default the configured embedder.
    """
    if settings.llm_model:
        from .llm import LLMAnswerer

        return LLMAnswerer(settings)
    from .extractive import ExtractiveAnswerer

    if embed is None:
        from ..embed import get_embedder

        embed = get_embedder(settings).embed
    return ExtractiveAnswerer(embed)
