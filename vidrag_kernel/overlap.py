"""Word overlap: how much two texts say with the same words.

One measure for every part that needs it: retrieval drops near-duplicate passages, the
extractive engine quotes each sentence once, and the answer pipeline finds the
transcript segment a cited sentence came from.
"""

from __future__ import annotations

import re

_WORD = re.compile(r"[a-z0-9]+")

#: words too common to tell two sentences apart
STOPWORDS = frozenset(
    [
        "a",
        "an",
        "and",
        "are",
        "as",
        "at",
        "be",
        "by",
        "for",
        "from",
        "has",
        "have",
        "in",
        "is",
        "it",
        "its",
        "of",
        "on",
        "or",
        "that",
        "the",
        "their",
        "them",
        "they",
        "this",
        "to",
        "was",
        "were",
        "which",
        "with",
    ]
)


def words(text: str, *, content: bool = False) -> frozenset[str]:
    """The lower-cased words of ``text``; with ``content``, without ``STOPWORDS``."""
    found = _WORD.findall(text.lower())
    return frozenset(w for w in found if w not in STOPWORDS) if content else frozenset(found)


def overlap(a: frozenset[str] | set[str], b: frozenset[str] | set[str]) -> float:
    """The Jaccard similarity of two word sets, 0..1 (two empty sets are the same text: 1)."""
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)
