"""Commands for questions and answers: ask, chat, conversations, eval."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import InvalidInput
from ..links import format_time
from . import emit_json, workbench


def _csv(value: str | None) -> list[str]:
    return [v.strip() for v in (value or "").split(",") if v.strip()]


def _print_sources(answer, out=sys.stdout) -> None:
    if answer.fallback_reason:
        print(f"(fallback: {answer.fallback_reason})", file=out)
    for s in answer.flagged:
        print(f"(unsupported by its sources: {s})", file=out)
    for c in answer.citations:
        print(f"[{c.n}] {c.title}  {format_time(c.start)}–{format_time(c.end)}  {c.link}", file=out)
    meta = [answer.mode] + ([answer.model] if answer.model else [])
    meta.append(f"{answer.latency_ms:.0f} ms")
    if answer.usage.get("total_tokens"):
        meta.append(f"{answer.usage['total_tokens']} tokens")
    print(f"({', '.join(meta)}; conversation {answer.conversation_id})", file=out)


def _stream(wb, question: str, **kwargs):
    """Print the answer as it is written; return the final Answer."""
    answer, shown = None, []
    for item in wb.ask_stream(question, **kwargs):
        if isinstance(item, str):
            shown.append(item)
            print(item, end="", flush=True)
        else:
            answer = item
    print()
    if answer is not None and " ".join("".join(shown).split()) != " ".join(answer.text.split()):
        # the checks changed the text (a citation of a missing source, an LLM failure)
        print(f"\n(checked answer)\n{answer.text}")
    return answer


def cmd_ask(args) -> int:
    wb = workbench()
    kwargs = dict(
        collection=args.collection,
        videos=_csv(args.videos) or None,
        conversation=args.conversation,
        save=not args.no_save,
    )
    if args.json:
        # the one JSON shape of an answer, the same as the library's and the service's
        emit_json(wb.ask(args.question, **kwargs).to_dict())
        return 0
    answer = _stream(wb, args.question, **kwargs)
    _print_sources(answer)
    return 0


def cmd_chat(args) -> int:
    wb = workbench()
    conversation = args.conversation
    videos = _csv(args.videos) or None
    print("Ask a question about the videos. /new starts a new conversation, /quit or Ctrl-D ends.")
    while True:
        try:
            question = input("you> ").strip()
        except EOFError:
            print()
            return 0
        if not question:
            continue
        if question in {"/quit", "/exit"}:
            return 0
        if question == "/new":
            conversation = None
            print("(new conversation)")
            continue
        print("vidrag> ", end="", flush=True)
        answer = _stream(
            wb,
            question,
            collection=None if conversation else args.collection,
            videos=None if conversation else videos,
            conversation=conversation,
        )
        conversation = answer.conversation_id
        _print_sources(answer)


def cmd_conversations(args) -> int:
    wb = workbench()
    convs = wb.conversations
    if args.action == "list":
        items = convs.list(collection=args.collection)
        if args.json:
            emit_json([c.to_dict() for c in items])
            return 0
        if not items:
            print("no conversations")
        for c in items:
            when = c.updated_at.strftime("%Y-%m-%d %H:%M") if c.updated_at else ""
            print(f"{c.id}  {when}  {c.message_count:3d} msgs  {c.title}  [{c.scope}]")
        return 0
    if not args.id:
        raise InvalidInput(f"'conversations {args.action}' needs a conversation id")
    if args.action == "show":
        info = convs.get(args.id)
        if args.json:
            emit_json(info.to_dict())
            return 0
        print(convs.export(args.id, "markdown"))
        return 0
    if args.action == "export":
        text = convs.export(args.id, args.format)
        if args.output:
            Path(args.output).write_text(text, encoding="utf-8")
            print(f"wrote {args.output}")
        else:
            sys.stdout.write(text)
        return 0
    if args.action == "rename":
        if not args.title:
            raise InvalidInput("'conversations rename' needs --title")
        info = convs.rename(args.id, args.title)
        print(f"renamed {info.id}: {info.title}")
        return 0
    convs.delete(args.id)
    print(f"deleted {args.id}")
    return 0


def cmd_eval(args) -> int:
    report = workbench().evaluate(args.qa, args.collection, answers=not args.no_answers)
    if args.json:
        emit_json(report.to_dict())
        return 0
    print(report.table())
    if args.verbose:
        for item in report.items:
            rank = item.get("rank", "-")
            ok = {True: "right", False: "WRONG"}.get(item.get("correct"), "")
            print(f"  rank {rank!s:>4}  {ok:5}  {item['question']}")
    return 0


def register(sub) -> None:
    """Add the answer commands to the parser."""
    p = sub.add_parser("ask", help="answer a question from the videos, with timestamped citations")
    p.add_argument("question")
    p.add_argument("--collection", "-c", help="collection name or id (default: all your collections)")
    p.add_argument("--videos", help="comma-separated video ids to limit the question to")
    p.add_argument("--conversation", help="continue this conversation (its scope and history)")
    p.add_argument("--no-save", action="store_true", help="do not store the question and answer")
    p.add_argument("--json", action="store_true", help="print the answer as one JSON object")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser("chat", help="an interactive conversation, streaming the answers")
    p.add_argument("--collection", "-c")
    p.add_argument("--videos", help="comma-separated video ids")
    p.add_argument("--conversation", help="continue this conversation")
    p.set_defaults(func=cmd_chat)

    p = sub.add_parser("conversations", help="list, show, export, rename or delete conversations")
    p.add_argument("action", choices=["list", "show", "export", "rename", "delete"])
    p.add_argument("id", nargs="?", metavar="CONVERSATION_ID")
    p.add_argument("--collection", "-c", help="list only this collection's conversations")
    p.add_argument("--format", "-f", choices=["markdown", "md", "ipynb"], default="markdown")
    p.add_argument("--output", "-o", help="write the export to this file")
    p.add_argument("--title", help="new title (rename)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_conversations)

    p = sub.add_parser("eval", help="measure retrieval (Recall@k, MRR) and answer accuracy on a QA set")
    p.add_argument("qa", metavar="QA.jsonl")
    p.add_argument("--collection", "-c")
    p.add_argument("--no-answers", action="store_true", help="judge retrieval only (no answers)")
    p.add_argument("--verbose", "-v", action="store_true", help="one line per question")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_eval)
