"""The LLM engine through real litellm against an OpenAI-compatible server on 127.0.0.1."""

from __future__ import annotations

import time

import pytest

from tests.support.fake_llm import FakeLLM
from vidrag_kernel.answer.llm import LLMAnswerer
from vidrag_kernel.answer.types import Generation
from vidrag_kernel.citations import resolve
from vidrag_kernel.errors import ModelError
from vidrag_kernel.retrieve import SearchHit
from vidrag_kernel.settings import Settings

SOURCES = [
    SearchHit(
        chunk_id=f"c{i}",
        video_id="v1",
        title="Three topics lecture",
        start=start,
        end=start + 8,
        text=text,
        score=0.6,
        link=f"http://127.0.0.1/lecture.m4a#t={int(start)}",
        url="http://127.0.0.1/lecture.m4a",
        collection_id="col",
    )
    for i, (start, text) in enumerate(
        [
            (3.0, "Plants capture sunlight with chlorophyll in their leaves. They make glucose."),
            (21.0, "The revolution began in 1789 when the people of Paris stormed the Bastille."),
            (40.0, "Binary search halves the search range at every step."),
        ]
    )
]


@pytest.fixture(scope="module")
def server():
    with FakeLLM() as s:
        yield s


def engine(server, **changes) -> LLMAnswerer:
    settings = Settings(
        llm_model="openai/fake-model",
        llm_api_base=server.api_base,
        llm_api_key="sk-test",
        llm_timeout=5,
        llm_retries=0,
    ).with_(**changes)
    return LLMAnswerer(settings)


def test_non_streaming_answer_cites_sources_and_reports_usage(server):
    server.behaviour = "cite"
    history = [
        {"role": "user", "content": "What is chlorophyll?"},
        {"role": "assistant", "content": "A green pigment [1]."},
    ]
    gen = engine(server).complete("How do plants get energy?", SOURCES, history)
    assert gen.mode == "llm" and gen.model == "openai/fake-model"
    assert "[1]" in gen.text and "[2]" in gen.text and "chlorophyll" in gen.text
    assert gen.usage["prompt_tokens"] > 0 and gen.usage["total_tokens"] == (
        gen.usage["prompt_tokens"] + gen.usage["completion_tokens"]
    )
    body = server.last
    assert body["model"] == "fake-model" and not body.get("stream")
    assert {k.lower(): v for k, v in server.requests[-1]["headers"].items()}[
        "authorization"
    ] == "Bearer sk-test"
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    prompt = body["messages"][-1]["content"]
    # numbered sources with titles and times, then the question
    assert "[1] Three topics lecture (0:03–0:11)" in prompt
    assert "[3] Three topics lecture (0:40–0:48)" in prompt
    assert prompt.rstrip().endswith("Question: How do plants get energy?")


def test_streaming_yields_pieces_then_generation_with_usage(server):
    server.behaviour = "cite"
    items = list(engine(server).stream("When did the revolution start?", SOURCES))
    pieces, final = items[:-1], items[-1]
    assert len(pieces) > 3 and all(isinstance(p, str) for p in pieces)
    assert isinstance(final, Generation) and final.text == "".join(pieces).strip()
    assert server.last["stream"] is True and server.last["stream_options"] == {"include_usage": True}
    # usage came from the server's last chunk, not from an estimate
    assert final.usage["completion_tokens"] == len(final.text.split()) and "estimated" not in final.usage


@pytest.mark.parametrize("streaming", [False, True])
def test_timeout_is_a_model_error(server, streaming):
    server.behaviour, server.delay = "slow", 3.0
    llm = engine(server, llm_timeout=0.5)
    t0 = time.perf_counter()
    with pytest.raises(ModelError, match="LLM unavailable: timeout"):
        if streaming:
            list(llm.stream("q", SOURCES))
        else:
            llm.complete("q", SOURCES)
    assert time.perf_counter() - t0 < 2.5


@pytest.mark.parametrize("streaming", [False, True])
def test_http_500_is_a_model_error(server, streaming):
    server.behaviour = "error500"
    with pytest.raises(ModelError, match="LLM unavailable: HTTP 500") as err:
        if streaming:
            list(engine(server).stream("q", SOURCES))
        else:
            engine(server).complete("q", SOURCES)
    assert err.value.status == 503


@pytest.mark.parametrize("streaming", [False, True])
def test_malformed_reply_is_a_model_error(server, streaming):
    server.behaviour = "malformed"
    with pytest.raises(ModelError, match="LLM unavailable: malformed reply"):
        if streaming:
            list(engine(server).stream("q", SOURCES))
        else:
            engine(server).complete("q", SOURCES)


def test_empty_reply_is_a_model_error(server):
    server.behaviour, server.reply_text = "reply", "   "
    with pytest.raises(ModelError, match="empty reply"):
        engine(server).complete("q", SOURCES)


def test_unreachable_server_is_a_model_error():
    server = FakeLLM()
    server.stop()  # nothing listens on that port any more
    with pytest.raises(ModelError, match="LLM unavailable"):
        engine(server).complete("q", SOURCES)


def test_citation_of_a_missing_source_is_removed(server):
    server.behaviour = "cite_missing"
    gen = engine(server).complete("q", SOURCES)
    assert "[7]" in gen.text
    checked = resolve(gen.text, SOURCES)
    assert "[7]" not in checked.text and checked.removed == [7]
    assert [c.n for c in checked.citations] == [1, 2]
    assert checked.citations[1].link.endswith("#t=21") and checked.citations[1].chunk_id == "c1"


def test_no_model_configured_is_refused():
    with pytest.raises(ModelError, match="VIDRAG_LLM_MODEL"):
        LLMAnswerer(Settings())
