"""What an answer is made of: citations, the answer itself, and what engines produce."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field


def zero_usage() -> dict:
    return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


@dataclass
class Citation:
    """One source an answer cites: ``[n]`` in the text is this passage of this video."""

    n: int
    video_id: str
    title: str
    url: str
    start: float
    end: float
    score: float
    text: str
    link: str
    chunk_id: str | None = None
    #: the transcript sentence(s) that support the claim; ``start``/``end`` are theirs,
    #: while ``text`` is the whole passage around them (context, never the span)
    quote: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Answer:
    """A grounded answer.

    ``text`` cites sources as ``[n]``; every ``n`` in the text has exactly one entry in
    ``citations`` and every citation is cited in the text. ``mode`` is "llm" or
    "extractive"; ``fallback_reason`` says why an LLM answer fell back to extractive.
    ``flagged`` lists answer sentences that none of their cited passages supports;
    ``no_answer`` is True when the videos do not say what the question asks (nothing
    relevant was found, or no passage holds its specific ask): then ``citations`` is empty
    and ``related`` holds the closest passages, shown as "related, but not an answer".
    ``trace`` records how to reproduce the retrieval: query, chunk ids and scores,
    index generation per collection, model.
    """

    text: str
    citations: list[Citation] = field(default_factory=list)
    mode: str = "extractive"
    model: str | None = None
    usage: dict = field(default_factory=zero_usage)
    latency_ms: float = 0.0
    conversation_id: str | None = None
    message_id: str | None = None
    flagged: list[str] = field(default_factory=list)
    no_answer: bool = False
    fallback_reason: str | None = None
    trace: dict = field(default_factory=dict)
    related: list[Citation] = field(default_factory=list)

    def to_dict(self) -> dict:
        """The JSON shape of ``vidrag ask --json`` (``answer`` is the text)."""
        d = asdict(self)
        d["answer"] = d.pop("text")
        return d

    def __str__(self) -> str:
        return self.text


@dataclass
class Generation:
    """What an answer engine produced: text with ``[n]`` markers, model and token usage.

    ``[n]`` is source number ``n``, unless ``quotes`` is set: then ``[k]`` is quote ``k``,
    taken from source number ``quotes[k - 1]`` (the extractive engine quotes several
    sentences of one passage, and each gets its own citation and moment); ``moments``
    then gives each quote's (start, end) seconds. ``no_answer``: the engine judged that no
    source says what the question asks; ``related`` lists (source number, sentence, start,
    end) of the closest sentences to show instead.
    """

    text: str
    mode: str
    model: str | None = None
    usage: dict = field(default_factory=zero_usage)
    quotes: list[int] | None = None
    moments: list[tuple[float, float]] | None = None
    #: each quote's sentence, when ``quotes`` is set
    quoted: list[str] | None = None
    no_answer: bool = False
    related: list[tuple[int, str, float, float]] = field(default_factory=list)
    #: the figures an engine decided answerability on (kept in the answer's trace)
    assessment: dict = field(default_factory=dict)
