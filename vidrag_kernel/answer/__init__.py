"""Answer engines behind one small interface, chosen by settings.

An engine turns a question, numbered sources (retrieved passages) and the recent
conversation into text that cites the sources as ``[n]``:

- ``complete(question, sources, history) -> Generation``
- ``stream(question, sources, history)`` yields text pieces, then one ``Generation``

Engines are chosen by name through the ``vidrag_kernel.backends.ANSWERERS`` registry
(other packages add engines by entry point, group ``vidrag.answerers``). Built in:
``llm`` (litellm, any provider; chosen when ``VIDRAG_LLM_MODEL`` is set) and
``extractive`` (no LLM; the default, and the fallback when the LLM fails).
``VIDRAG_ANSWERER`` names one explicitly. The whole
question-to-answer flow (retrieval, no-answer detection, fallback, citation checks,
storing the conversation) lives in ``vidrag_kernel.answer.pipeline``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

from ..settings import Settings
from .types import Answer, Citation, Generation

__all__ = ["Answer", "Answerer", "Citation", "Generation", "answerer_name", "get_answerer"]


class Answerer(Protocol):
    """What an answer engine provides."""

    mode: str
    model: str | None

    def complete(self, question: str, sources: Sequence, history: Sequence[dict] = ()) -> Generation: ...

    def stream(
        self, question: str, sources: Sequence, history: Sequence[dict] = ()
    ) -> Iterator[str | Generation]: ...


def answerer_name(settings: Settings) -> str:
    """The engine the settings choose: ``answerer`` if set, else llm with a model, else extractive."""
    # getattr: the ``answerer`` setting is optional for Settings-like objects
    name = getattr(settings, "answerer", None)
    if name:
        return name
    return "llm" if settings.llm_model else "extractive"


def get_answerer(settings: Settings, embed=None) -> Answerer:
    """The configured engine, by name (see ``answerer_name``).

    ``embed`` (texts -> normalized vectors) is what the extractive engine ranks
    sentences with; by default the configured embedder.
    """
    from ..backends import ANSWERERS

    return ANSWERERS.create(answerer_name(settings), settings, embed=embed)


def llm_answerer(settings: Settings, embed=None) -> Answerer:
    """The ``llm`` engine (litellm); ``embed`` is not needed."""
    from .llm import LLMAnswerer

    return LLMAnswerer(settings)


def extractive_answerer(settings: Settings, embed=None) -> Answerer:
    """The ``extractive`` engine, ranking sentences with ``embed`` (default: the configured embedder)."""
    from .extractive import ExtractiveAnswerer

    if embed is None:
        from ..embed import get_embedder

        embed = get_embedder(settings).embed
    return ExtractiveAnswerer(embed)
