"""Conversations: scope rules, storage of answers with citations and traces, list/show/
rename/delete, and the Markdown and replay-notebook exports."""

from __future__ import annotations

import json

import pytest

from vidrag_kernel import Workbench
from vidrag_kernel.answer.types import Answer, Citation
from vidrag_kernel.errors import InvalidInput, NotFound


def _answer(n: int = 1) -> Answer:
    return Answer(
        text=f"Plants use chlorophyll to capture light [{n}].",
        citations=[
            Citation(
                n=n,
                video_id="v-1",
                title="Lecture",
                url="http://127.0.0.1/lecture.m4a",
                start=3.2,
                end=11.0,
                score=0.61,
                text="Plants capture sunlight with chlorophyll in their leaves.",
                link="http://127.0.0.1/lecture.m4a#t=3",
                chunk_id="chunk-1",
            )
        ],
        mode="llm",
        model="openai/fake",
        usage={"prompt_tokens": 120, "completion_tokens": 12, "total_tokens": 132},
        latency_ms=42.0,
        trace={
            "query": "How do plants capture light?",
            "generations": {"col-1": 3},
            "chunks": [
                {
                    "chunk_ids": ["chunk-1"],
                    "score": 0.61,
                    "dense": 0.61,
                    "lexical": 2.1,
                    "start": 3.2,
                    "end": 11.0,
                }
            ],
            "model": "openai/fake",
        },
        flagged=["An unsupported sentence."],
    )


@pytest.fixture
def wb(settings):
    wb = Workbench(settings)
    wb.collections.create("Biology")
    yield wb
    wb.close()


def test_create_list_get_rename_delete(wb):
    convs = wb.conversations
    first = convs.create(collection="Biology")
    assert first.title == "New conversation" and first.collection_id and first.video_ids is None
    assert first.collection_name == "Biology" and first.message_count == 0
    message_id = convs.add_turn(first.id, "How do plants capture light?", _answer())
    second = convs.create(title="Empty one")

    listed = convs.list()
    # most recently active first; the first question became the title
    assert [c.id for c in listed] == [second.id, first.id]
    got = convs.get(first.id)
    assert got.title == "How do plants capture light?" and got.message_count == 2
    user, reply = got.messages
    assert user.role == "user" and user.content == "How do plants capture light?"
    assert reply.id == message_id and reply.role == "assistant" and reply.mode == "llm"
    assert reply.model == "openai/fake" and reply.usage["total_tokens"] == 132 and reply.latency_ms == 42.0
    assert reply.citations[0].chunk_id == "chunk-1" and reply.citations[0].link.endswith("#t=3")
    assert reply.trace["generations"] == {"col-1": 3} and reply.flagged == ["An unsupported sentence."]
    assert [c.id for c in convs.list(collection="Biology")] == [first.id]
    convs.add_turn(first.id, "And what do they release?", _answer())
    assert [c.id for c in convs.list()] == [first.id, second.id]
    assert convs.get(first.id).message_count == 4
    json.dumps(got.to_dict())  # plain data, ready for JSON and dashboards

    assert convs.rename(first.id, "  Light   and plants ").title == "Light and plants"
    with pytest.raises(InvalidInput):
        convs.rename(first.id, "   ")
    convs.delete(first.id)
    with pytest.raises(NotFound):
        convs.get(first.id)
    assert [c.id for c in convs.list()] == [second.id]


def test_history_returns_the_last_messages_in_order(wb):
    convs = wb.conversations
    conv = convs.create(collection="Biology")
    for i in range(4):
        convs.add_turn(conv.id, f"question {i}", _answer())
    history = convs.history(conv.id, 5)
    assert len(history) == 5
    assert history[0] == {"role": "assistant", "content": _answer().text}
    assert [m["content"] for m in history if m["role"] == "user"] == ["question 2", "question 3"]
    assert convs.history(conv.id, 0) == []


def test_scope_is_a_collection_or_videos_not_both(wb):
    with pytest.raises(InvalidInput, match="not both"):
        wb.conversations.create(collection="Biology", videos=["x"])
    with pytest.raises(NotFound):
        wb.conversations.create(videos=["no-such-video"])
    with pytest.raises(NotFound):
        wb.conversations.create(collection="No such collection")


def test_other_users_conversations_are_invisible(wb, settings):
    conv = wb.conversations.create(collection="Biology")
    other = Workbench(settings.with_(user="someone-else"))
    try:
        assert other.conversations.list() == []
        with pytest.raises(NotFound):
            other.conversations.get(conv.id)
        with pytest.raises(NotFound):
            other.conversations.delete(conv.id)
    finally:
        other.close()


def test_markdown_export(wb):
    conv = wb.conversations.create(collection="Biology")
    wb.conversations.add_turn(conv.id, "How do plants capture light?", _answer())
    md = wb.conversations.export(conv.id, "markdown")
    assert md.startswith("# How do plants capture light?")
    assert "## 1. How do plants capture light?" in md
    assert "Plants use chlorophyll to capture light [1]." in md
    assert "[1] [Lecture 0:03–0:11](http://127.0.0.1/lecture.m4a#t=3)" in md
    assert "llm · openai/fake · 42 ms · 120 + 12 tokens" in md
    assert "An unsupported sentence." in md and "generation 3" in md and "chunk-1" in md
    with pytest.raises(InvalidInput):
        wb.conversations.export(conv.id, "pdf")


def test_notebook_export_executes_with_stored_trace_only(wb, tmp_path):
    import nbformat
    from nbclient import NotebookClient

    conv = wb.conversations.create(collection="Biology")
    wb.conversations.add_turn(conv.id, "How do plants capture light?", _answer())
    text = wb.conversations.export(conv.id, "ipynb")
    nb = nbformat.reads(text, as_version=4)
    nbformat.validate(nb)
    # pretend the notebook was moved to another machine: the data directory is gone
    nb.cells[1].source = nb.cells[1].source.replace(repr(str(wb.settings.home)), repr(str(tmp_path / "gone")))
    NotebookClient(nb, timeout=120, kernel_name="python3").execute()
    outputs = "".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "query: 'How do plants capture light?'" in outputs
    assert "stored trace only" in outputs and "chunk-1" in outputs
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    assert "Plants use chlorophyll to capture light [1]." in markdown
    assert "(http://127.0.0.1/lecture.m4a#t=3)" in markdown
