"""Citations: from ``[n]`` markers in an answer to checked, timestamped sources.

Three guarantees for whoever shows an answer:
- every ``[n]`` left in the text has exactly one citation, and every citation is cited;
- a marker that points at no retrieved passage (``[7]`` of six) is removed, not shown;
- an answer sentence that none of its cited passages supports is flagged, by the cosine
  similarity of sentence and passage embeddings (so paraphrases count as supported).

Marker numbers are the source numbers of the prompt and are not renumbered, so text
streamed to a reader before the checks ran still points at the right citations.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .answer.types import Citation

# [1], [1, 2], [1][2]
MARKER = re.compile(r"\s?\[(\d+(?:\s*,\s*\d+)*)\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[\"'(\[]?[A-Z0-9])")
_LEADING_MARKERS = re.compile(r"^((?:\s*\[\d+(?:\s*,\s*\d+)*\])+)\s*")
# sentences that decline to answer are not claims, so they need no support
DECLINES = re.compile(
    r"\b(do(es)? not (cover|mention|say)|not (covered|mentioned|discussed)|could ?n[o']t find|"
    r"no (relevant|information)|don't know|do not know)\b",
    re.I,
)

Embed = Callable[[list[str]], np.ndarray]


def split_sentences(text: str) -> list[str]:
    """Sentences of ``text``; markers written after the full stop stay with their sentence."""
    out: list[str] = []
    for line in text.splitlines():
        for piece in _SENTENCE_END.split(line.strip()):
            if not piece.strip():
                continue
            lead = _LEADING_MARKERS.match(piece)
            if lead and out:
                # "Claim. [1] Next claim." -> the [1] belongs to "Claim."
                out[-1] = out[-1] + " " + lead.group(1).strip()
                piece = piece[lead.end() :]
            if piece.strip():
                out.append(piece.strip())
    return out


def cited_numbers(text: str) -> list[int]:
    """Source numbers cited in ``text``, in order of first appearance."""
    seen: list[int] = []
    for m in MARKER.finditer(text):
        for part in m.group(1).split(","):
            n = int(part)
            if n not in seen:
                seen.append(n)
    return seen


def strip_markers(text: str) -> str:
    return MARKER.sub("", text).strip()


def clean_markers(text: str, valid: set[int]) -> tuple[str, list[int]]:
    """Drop markers of numbers not in ``valid`` and write groups as ``[1][2]``.

    Returns the new text and the removed numbers.
    """
    removed: list[int] = []

    def fix(m: re.Match) -> str:
        nums = [int(p) for p in m.group(1).split(",")]
        keep = [n for n in nums if n in valid]
        removed.extend(n for n in nums if n not in valid and n not in removed)
        if not keep:
            return ""
        lead = " " if m.group(0).startswith((" ", "\t")) else ""
        return lead + "".join(f"[{n}]" for n in keep)

    cleaned = MARKER.sub(fix, text)
    # a removed marker may leave "claim ." behind
    cleaned = re.sub(r"[ \t]+([.,;:!?])", r"\1", cleaned)
    return cleaned.strip(), removed


def make_citation(n: int, source) -> Citation:
    """The citation for source number ``n`` (a retrieved passage, i.e. a ``SearchHit``)."""
    return Citation(
        n=n,
        video_id=source.video_id,
        title=source.title,
        url=source.url,
        start=float(source.start),
        end=float(source.end),
        score=float(source.score),
        text=source.text,
        link=source.link,
        chunk_id=source.chunk_id,
    )


@dataclass
class Resolved:
    """An answer's text after the citation checks, with its citations."""

    text: str
    citations: list[Citation]
    flagged: list[str] = field(default_factory=list)
    removed: list[int] = field(default_factory=list)
    support: list[dict] = field(default_factory=list)


# a claim is pinned to two sentences only when the pair supports it clearly better than one
PAIR_MARGIN = 0.03


def _units(source) -> list[tuple[str, float | None, float | None, bool]]:
    """What a claim citing ``source`` may rest on: each sentence and each pair of
    neighbouring sentences, with their times when the source has timed sentences."""
    timed = getattr(source, "sentences", None) or []
    pieces = [(t.text, t.start, t.end) for t in timed] or [
        (x, None, None) for x in split_sentences(source.text)
    ]
    pieces = [p for p in pieces if len(re.findall(r"\w+", p[0])) >= 3] or [(source.text, None, None)]
    units = [(*p, False) for p in pieces]
    for a, b in zip(pieces, pieces[1:], strict=False):
        units.append((f"{a[0]} {b[0]}", a[1], b[2], True))
    return units


def unsupported_sentences(
    text: str, sources: Sequence, embed: Embed, threshold: float
) -> tuple[list[str], list[dict]]:
    """Sentences of ``text`` that none of their cited sources' sentences supports.

    A sentence is checked against the sentences (and neighbouring pairs) of the sources it
    cites; a sentence citing nothing is checked against every source the answer cites.
    Returns the flagged sentences and, for the trace, each checked sentence with its best
    similarity and, per cited source, the best supporting sentence(s) (``best``: source
    number -> [similarity, text, start, end]).
    """
    all_cited = [n for n in cited_numbers(text) if 1 <= n <= len(sources)]
    checks: list[tuple[str, list[int]]] = []
    for sentence in split_sentences(text):
        claim = strip_markers(sentence)
        if len(re.findall(r"\w+", claim)) < 4 or DECLINES.search(claim):
            continue
        own = [n for n in cited_numbers(sentence) if 1 <= n <= len(sources)]
        checks.append((sentence, own or all_cited))
    if not checks:
        return [], []
    needed = sorted({n for _, ns in checks for n in ns})
    # single sentences rather than whole passages: a claim rests on what one or two
    # sentences say, and a long passage's average meaning supports almost anything
    units: list[tuple[int, tuple]] = [(n, u) for n in needed for u in _units(sources[n - 1])]
    vectors = embed([strip_markers(s) for s, _ in checks] + [u[0] for _, u in units])
    sent_vecs, unit_vecs = vectors[: len(checks)], vectors[len(checks) :]
    flagged, report = [], []
    for (sentence, ns), vec in zip(checks, sent_vecs, strict=True):
        sims = unit_vecs @ vec
        best: dict[int, list] = {}
        for (n, (unit, start, end, pair)), sim in zip(units, sims, strict=True):
            sim = float(sim) - (PAIR_MARGIN if pair else 0.0)
            if n in ns and (n not in best or sim > best[n][0]):
                best[n] = [round(sim, 4), unit, start, end]
        top = max((b[0] for b in best.values()), default=0.0)
        report.append({"sentence": sentence, "cites": ns, "similarity": round(top, 4), "best": best})
        if top < threshold:
            flagged.append(sentence)
    return flagged, report


def pin_citations(citations: Sequence[Citation], support: Sequence[dict], link: Callable) -> None:
    """Give each citation the span of the sentence(s) that best support a claim citing it.

    ``support`` is ``unsupported_sentences``' report; ``link(url, seconds)`` makes the
    deep link. A citation of a passage without timed sentences keeps the passage's span.
    """
    for c in citations:
        options = [r["best"][c.n] for r in support if c.n in r.get("best", {})]
        options = [o for o in options if o[2] is not None]
        if not options:
            continue
        sim, text, start, end = max(options, key=lambda o: o[0])
        c.start, c.end, c.quote = float(start), float(end), text
        c.link = link(c.url, c.start)


def resolve(text: str, sources: Sequence, *, embed: Embed | None = None, threshold: float = 0.35) -> Resolved:
    """Check an engine's text against the ``sources`` it was given (numbered from 1).

    Removes markers no source backs, builds one citation per cited source, and (with an
    ``embed`` function returning normalized vectors) flags unsupported sentences.
    """
    text, removed = clean_markers(text, set(range(1, len(sources) + 1)))
    numbers = cited_numbers(text)
    citations = [make_citation(n, sources[n - 1]) for n in numbers]
    flagged: list[str] = []
    support: list[dict] = []
    if embed is not None:
        flagged, support = unsupported_sentences(text, sources, embed, threshold)
    return Resolved(text, citations, flagged, removed, support)
