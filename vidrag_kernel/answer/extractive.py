"""The extractive answer engine: no LLM, just the transcript sentences that best answer.

It is the default when no LLM is configured and the fallback when the LLM fails. It
never writes anything the lecturer did not say: the answer is a short list of quoted
transcript sentences, best-supported first, each cited, under a line that says plainly
that this is a no-LLM answer (and why, when it is a fallback).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Sequence

import numpy as np

from ..overlap import overlap, words
from .types import Generation

NO_LLM = "No language model is configured, so this is an extractive (no-LLM) answer"
FALLBACK = "The language model could not answer ({reason}), so this is an extractive (no-LLM) answer"
# word overlap (Jaccard) above which a sentence repeats one already quoted
REPEATED = 0.8
SUFFIX = ": the passages of the videos that best answer the question, quoted word for word."

Embed = Callable[[list[str]], np.ndarray]


def _sentences(text: str) -> list[str]:
    from ..citations import split_sentences

    return [s for s in split_sentences(text) if len(re.findall(r"\w+", s)) >= 3]


class ExtractiveAnswerer:
    """Composes answers from the best-supported transcript sentences."""

    mode = "extractive"
    model = None

    def __init__(self, embed: Embed, *, max_sentences: int = 3, min_similarity: float = 0.2) -> None:
        self._embed = embed
        self.max_sentences = max_sentences
        self.min_similarity = min_similarity

    def select(self, question: str, sources: Sequence) -> list[tuple[int, str, float]]:
        """(source number, sentence, score) of the sentences to quote, best first."""
        candidates = [(n, s) for n, src in enumerate(sources, 1) for s in _sentences(src.text)]
        if not candidates:
            # passages too short to split: quote them whole
            candidates = [(n, src.text.strip()) for n, src in enumerate(sources, 1) if src.text.strip()]
        if not candidates:
            return []
        vectors = self._embed([question] + [s for _, s in candidates])
        sims = vectors[1:] @ vectors[0]
        # a small prior for the retriever's order, which also saw the lexical match
        prior = {n: 0.05 * (1 - (n - 1) / max(1, len(sources))) for n in range(1, len(sources) + 1)}
        scored = sorted(
            ((n, s, float(sim) + prior[n]) for (n, s), sim in zip(candidates, sims, strict=True)),
            key=lambda t: t[2],
            reverse=True,
        )
        chosen: list[tuple[int, str, float]] = []
        for n, sentence, score in scored:
            if len(chosen) >= self.max_sentences:
                break
            if chosen and score < self.min_similarity:
                break
            said = words(sentence)
            # overlapping chunks repeat sentences: quote each once
            if any(overlap(said, words(c[1])) > REPEATED for c in chosen):
                continue
            chosen.append((n, sentence, round(score, 4)))
        return chosen

    def compose(self, question: str, sources: Sequence, reason: str | None = None) -> tuple[str, list[int]]:
        """The answer text, its quotes numbered ``[1]``, ``[2]``...; and each quote's source number."""
        head = (FALLBACK.format(reason=reason) if reason else NO_LLM) + SUFFIX
        chosen = self.select(question, sources)
        lines = [f'- "{sentence}" [{k}]' for k, (_, sentence, _) in enumerate(chosen, 1)]
        return "\n".join([head, *lines]), [n for n, _, _ in chosen]

    def complete(
        self, question: str, sources: Sequence, history: Sequence[dict] = (), *, reason: str | None = None
    ) -> Generation:
        """The extractive answer to ``question`` from ``sources`` (numbered from 1)."""
        text, quotes = self.compose(question, sources, reason)
        return Generation(text, self.mode, None, quotes=quotes)

    def stream(
        self, question: str, sources: Sequence, history: Sequence[dict] = (), *, reason: str | None = None
    ) -> Iterator[str | Generation]:
        """The same answer line by line, then the ``Generation``."""
        generation = self.complete(question, sources, history, reason=reason)
        lines = generation.text.split("\n")
        for i, line in enumerate(lines):
            yield line + ("\n" if i < len(lines) - 1 else "")
        yield generation
