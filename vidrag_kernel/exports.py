"""Exports: transcripts (TXT, JSON, SRT, WebVTT), conversations (Markdown, notebook) and a
collection's catalog (CSV, Parquet).

Transcripts are rendered by ``vidrag_kernel.transcripts`` (the one implementation);
this module adds conversations. The notebook export replays a conversation: for each
turn the question, the answer, its citations with links, and the retrieval trace
(query, chunk ids, scores, index generation, model). When the notebook runs where the
original data directory is reachable, it re-runs each retrieval and compares; anywhere
else it shows the stored trace, so it always executes.
"""

from __future__ import annotations

import json

from .errors import InvalidInput
from .links import format_time
from .transcripts import FORMATS as TRANSCRIPT_FORMATS
from .transcripts import render as render_transcript

CONVERSATION_FORMATS = ("markdown", "md", "ipynb")
CATALOG_FORMATS = ("csv", "parquet")
#: the catalog export's columns, in order (one row per video of the collection)
CATALOG_COLUMNS = (
    "collection", "video_id", "title", "url", "uploader", "upload_date", "duration_s",
    "transcript_source", "chunks", "tags", "status", "added_at",
)  # fmt: skip

__all__ = [
    "CATALOG_COLUMNS",
    "CATALOG_FORMATS",
    "CONVERSATION_FORMATS",
    "TRANSCRIPT_FORMATS",
    "catalog_rows",
    "conversation_markdown",
    "conversation_notebook",
    "export_conversation",
    "render_transcript",
    "write_catalog",
]


def export_conversation(
    conversation, fmt: str = "markdown", *, home: str | None = None, owner: str | None = None
) -> str:
    """A ``ConversationInfo`` (with messages) as ``markdown``/``md`` or ``ipynb`` text."""
    fmt = (fmt or "").lower()
    if fmt in ("markdown", "md"):
        return conversation_markdown(conversation)
    if fmt == "ipynb":
        return conversation_notebook(conversation, home=home, owner=owner)
    raise InvalidInput(f"Unknown conversation format {fmt!r}; choose markdown or ipynb")


def _turns(conversation) -> list[tuple]:
    """(question message or None, answer message) pairs in order."""
    turns, question = [], None
    for m in conversation.messages:
        if m.role == "user":
            question = m
        else:
            turns.append((question, m))
            question = None
    return turns


def _meta_line(m) -> str:
    bits = [m.mode or "?"]
    if m.model:
        bits.append(m.model)
    if m.latency_ms is not None:
        bits.append(f"{m.latency_ms:.0f} ms")
    if m.usage and m.usage.get("total_tokens"):
        bits.append(f"{m.usage.get('prompt_tokens', 0)} + {m.usage.get('completion_tokens', 0)} tokens")
    return " · ".join(bits)


def _citation_lines(m) -> list[str]:
    lines = []
    for c in m.citations:
        quote = " ".join(c.text.split())
        if len(quote) > 240:
            quote = quote[:237] + "..."
        span = f"{format_time(c.start)}–{format_time(c.end)}"
        target = f"[{c.title} {span}]({c.link})" if c.link else f"{c.title} {span}"
        lines.append(f"[{c.n}] {target} (score {c.score:.2f}): “{quote}”")
    return lines


def _trace_lines(trace: dict | None) -> list[str]:
    if not trace:
        return ["(no trace stored)"]
    gens = ", ".join(f"{cid}: generation {g}" for cid, g in (trace.get("generations") or {}).items())
    lines = [
        f"query: {trace.get('query')!r}",
        f"model: {trace.get('model') or 'none (extractive)'}; index: {gens or 'none'}",
    ]
    for i, c in enumerate(trace.get("chunks") or [], 1):
        ids = ",".join(c.get("chunk_ids") or [])
        lines.append(
            f"{i}. score {c.get('score')} dense {c.get('dense')} lexical {c.get('lexical')} "
            f"{format_time(c.get('start') or 0)}–{format_time(c.get('end') or 0)} chunks {ids}"
        )
    return lines


def conversation_markdown(conversation) -> str:
    """The conversation as Markdown: each question, answer, citations with links, trace."""
    out = [
        f"# {conversation.title}",
        "",
        f"Scope: {conversation.scope}. {len(_turns(conversation))} turn(s).",
        "",
    ]
    for i, (q, a) in enumerate(_turns(conversation), 1):
        out += [f"## {i}. {q.content if q else '(question missing)'}", "", f"*{_meta_line(a)}*", ""]
        if a.fallback_reason:
            out += [f"> Fell back to the extractive engine: {a.fallback_reason}", ""]
        out += [a.content, ""]
        if a.flagged:
            out += ["**Not supported by the cited passages:**", ""] + [f"- {s}" for s in a.flagged] + [""]
        if a.citations:
            out += ["**Sources**", ""] + [f"- {line}" for line in _citation_lines(a)] + [""]
        out += ["<details><summary>Retrieval trace</summary>", "", "```"]
        out += _trace_lines(a.trace) + ["```", "", "</details>", ""]
    return "\n".join(out).rstrip() + "\n"


_REPLAY_CODE = '''\
import json
from pathlib import Path


def show_trace(turn):
    """Print the stored retrieval trace of one turn."""
    t = turn["trace"] or {}
    print("query:", repr(t.get("query")))
    print("model:", t.get("model") or "none (extractive)", "| mode:", turn["mode"])
    print("index generations:", t.get("generations"))
    for i, c in enumerate(t.get("chunks") or [], 1):
        print(f"  {i}. score={c.get('score')} dense={c.get('dense')} lexical={c.get('lexical')} "
              f"{c.get('start'):.1f}-{c.get('end'):.1f}s chunks={c.get('chunk_ids')}")


def _workbench():
    """A Workbench on the original data directory, or None if it is not reachable here."""
    if not VIDRAG_HOME or not Path(VIDRAG_HOME).is_dir():
        return None
    try:
        from vidrag_kernel import Workbench
        from vidrag_kernel.settings import Settings

        return Workbench(Settings.from_env(home=Path(VIDRAG_HOME), user=OWNER))
    except Exception as exc:  # the replay must run anywhere: fall back to the stored trace
        print("cannot open", VIDRAG_HOME, "-", exc)
        return None


def replay(n):
    """Show turn n's stored trace, and re-run its retrieval when the data is here."""
    turn = TURNS[n - 1]
    show_trace(turn)
    t = turn["trace"] or {}
    wb = _workbench() if RERUN else None
    if wb is None or not t.get("query") or not t.get("generations"):
        print("(stored trace only: the original data directory is not available here)")
        return None
    try:
        from vidrag_kernel.retrieve import Scope

        scope = Scope(list(t["generations"]), turn.get("video_ids"))
        again = wb.retriever.retrieve(t["query"], scope, t.get("k") or 6, merge=True)
    except Exception as exc:
        print("(could not re-run the retrieval:", exc, ")")
        return None
    before = [cid for c in t.get("chunks") or [] for cid in c.get("chunk_ids") or []]
    after = [cid for h in again.hits for cid in (h.chunk_ids or [h.chunk_id])]
    same = len(set(before) & set(after))
    print(f"re-run: {same} of {len(before)} stored chunks retrieved again; generations now {again.generations}")
    if again.generations != t.get("generations"):
        print("note: the index changed since this answer, so results may differ")
    return again
'''


def conversation_notebook(
    conversation, *, home: str | None = None, owner: str | None = None, rerun: bool = True
) -> str:
    """The conversation as a replay notebook (nbformat 4 JSON text).

    ``home`` is the data directory the notebook re-runs retrievals against (if it is
    reachable when the notebook runs); ``rerun=False`` only shows the stored traces.
    """
    import nbformat
    from nbformat import v4

    turns = []
    for q, a in _turns(conversation):
        turns.append(
            {
                "question": q.content if q else "",
                "answer": a.content,
                "mode": a.mode,
                "model": a.model,
                "usage": a.usage,
                "latency_ms": a.latency_ms,
                "citations": [c.to_dict() for c in a.citations],
                "trace": a.trace,
                "video_ids": conversation.video_ids,
            }
        )
    cells = [
        v4.new_markdown_cell(
            f"# {conversation.title}\n\nA replay of a vidrag conversation ({conversation.scope}). "
            "Each turn shows the question, the answer with its cited moments, and the retrieval "
            "trace. Run all cells: where the original data directory is reachable, each retrieval "
            "is run again and compared with the stored one."
        ),
        v4.new_code_cell(
            f"VIDRAG_HOME = {home!r}\nOWNER = {owner!r}\nRERUN = {rerun!r}\n"
            f"TURNS = json.loads({json.dumps(turns, ensure_ascii=False, default=str)!r})",
            metadata={"tags": ["parameters"]},
        ),
        v4.new_code_cell(_REPLAY_CODE),
    ]
    # the data cell needs json before the helpers run
    cells[1].source = "import json\n\n" + cells[1].source
    for i, (q, a) in enumerate(_turns(conversation), 1):
        body = [f"## {i}. {q.content if q else '(question missing)'}", "", f"*{_meta_line(a)}*", ""]
        if a.fallback_reason:
            body += [f"> Fell back to the extractive engine: {a.fallback_reason}", ""]
        body += [a.content, ""]
        if a.flagged:
            body += ["**Not supported by the cited passages:**", ""] + [f"- {s}" for s in a.flagged] + [""]
        if a.citations:
            body += ["**Sources**", ""] + [f"- {line}" for line in _citation_lines(a)]
        cells.append(v4.new_markdown_cell("\n".join(body)))
        cells.append(v4.new_code_cell(f"replay({i})"))
    nb = v4.new_notebook(
        cells=cells,
        metadata={
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
            "language_info": {"name": "python"},
            "vidrag": {"conversation_id": conversation.id, "exported_from": home},
        },
    )
    nbformat.validate(nb)
    return nbformat.writes(nb)


def catalog_rows(videos, collection: str = "") -> list[dict]:
    """One plain row per video (``VideoInfo`` objects, e.g. ``wb.videos.list(name)``),
    with the columns of ``CATALOG_COLUMNS``; tags joined with commas."""
    return [
        {
            "collection": collection,
            "video_id": v.id,
            "title": v.title,
            "url": v.webpage_url or v.url,
            "uploader": v.uploader,
            "upload_date": v.upload_date,
            "duration_s": None if v.duration is None else round(float(v.duration), 3),
            "transcript_source": v.transcript_source,
            "chunks": int(v.chunk_count or 0),
            "tags": ",".join(v.tags or []),
            "status": v.status,
            "added_at": v.created_at.isoformat() if v.created_at else None,
        }
        for v in videos
    ]


def write_catalog(rows: list[dict], path, fmt: str | None = None) -> str:
    """Write catalog rows to ``path`` as CSV or Parquet (by ``fmt`` or the file's suffix);
    returns the path. Parquet needs pyarrow (``vidrag[hub]``)."""
    import csv
    from pathlib import Path

    path = Path(path)
    fmt = (fmt or path.suffix.lstrip(".")).lower()
    if fmt not in CATALOG_FORMATS:
        raise InvalidInput(f"Unknown catalog format {fmt!r}; choose csv or parquet")
    path.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "csv":
        with path.open("w", newline="", encoding="utf-8") as f:
            writer = csv.DictWriter(f, fieldnames=list(CATALOG_COLUMNS))
            writer.writeheader()
            writer.writerows(rows)
        return str(path)
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        from .errors import MissingDependency

        raise MissingDependency.for_extra("Parquet exports", "hub", "pyarrow") from None
    schema = pa.schema(
        [
            (c, pa.float64() if c == "duration_s" else pa.int64() if c == "chunks" else pa.string())
            for c in CATALOG_COLUMNS
        ]
    )
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path)
    return str(path)
