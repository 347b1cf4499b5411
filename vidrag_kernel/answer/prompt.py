"""The prompt an LLM answers from: numbered sources with titles and times, and history.

A source is a passage; when its sentences carry times (``SearchHit.sentences``) each
sentence is on its own line with the moment it is said, so the passage reads as what it
is, and the answer's citation is then resolved to the sentence that supports the claim.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..links import format_time

SYSTEM = (
    "You are a teaching assistant answering a student's questions about lecture videos. "
    "Answer only from the numbered sources, which are passages of the videos' transcripts. "
    "Cite the source of every claim with its number in square brackets, like [1] or [2][3], "
    "right after the sentence it supports. Never cite a number that is not in the list. "
    "If the sources do not say what the question asks (the name, number, date or fact it "
    "wants), answer only that these videos do not cover it, cite nothing, and do not guess, "
    "even when the sources are about the same topic. Be concise."
)


def format_sources(sources: Sequence) -> str:
    """``[n] Title (m:ss–m:ss)`` then the passage, for each source (objects with
    ``title``, ``start``, ``end`` and ``text``), numbered from 1."""
    blocks = []
    for n, s in enumerate(sources, 1):
        timed = getattr(s, "sentences", None)
        if timed:
            body = "\n".join(f"{t.text.strip()} (at {format_time(t.start)})" for t in timed)
        else:
            body = s.text.strip()
        blocks.append(f"[{n}] {s.title} ({format_time(s.start)}–{format_time(s.end)})\n{body}")
    return "\n\n".join(blocks)


def build_messages(question: str, sources: Sequence, history: Sequence[dict] = ()) -> list[dict]:
    """Chat messages for an OpenAI-style API.

    ``history`` is the conversation so far as ``{"role", "content"}`` dicts, already cut
    to the last few messages; it goes between the instructions and the new question so
    follow-ups ("and when did it happen?") make sense to the model.
    """
    from ..citations import strip_markers

    messages = [{"role": "system", "content": SYSTEM}]
    for m in history:
        content = m.get("content") or ""
        if m["role"] == "assistant":
            # earlier answers cite earlier source lists; their numbers mean nothing now
            content = strip_markers(content)
        if content:
            messages.append({"role": m["role"], "content": content})
    messages.append(
        {
            "role": "user",
            "content": f"Sources:\n{format_sources(sources)}\n\nQuestion: {question.strip()}",
        }
    )
    return messages
