"""Commands for questions and answers: ask, chat, conversations, eval (see the retrieval issue)."""

from __future__ import annotations


def register(sub) -> None:
    """Add the answer commands to the parser."""
