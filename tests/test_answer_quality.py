"""Answer quality on the development set's ten lectures (captions path, real ingest):
floors on every figure of both splits, citations start where the supporting sentence
starts, questions the videos do not answer are refused with related passages, a question
spanning two lectures cites both, and an LLM's citation resolves to the sentence that
supports its claim. The development set's own integrity is checked too. Full figures,
the speech path included: ``python -m benchmarks.answer``."""

from __future__ import annotations

import json
from collections import Counter

import pytest

from tests.support import devset
from tests.support.fake_llm import FakeLLM
from tests.support.media_server import MediaServer
from tests.support.settings import make_settings
from vidrag_kernel import Workbench
from vidrag_kernel.citations import resolve
from vidrag_kernel.evaluate import summarize_answers
from vidrag_kernel.retrieve import SearchHit


def _question(qid: str) -> devset.DevQuestion:
    return next(q for q in devset.questions() if q.id == qid)


def test_the_development_set_is_whole_and_split_by_lecture():
    lectures = {lec.id: lec for lec in devset.lectures()}
    questions = devset.questions()
    assert len(lectures) >= 8 and len(questions) >= 130
    assert len({q.id for q in questions}) == len(questions)
    kinds = Counter(q.kind for q in questions)
    assert kinds["unanswerable"] >= 20 and kinds["cross"] >= 10 and kinds["cue"] >= 10
    assert kinds["name"] >= 10 and kinds["number"] >= 10
    for q in questions:
        # a question belongs to the split of every lecture it is about: no leak between splits
        assert {lectures[lec].split for lec in q.lectures} == {q.split}, q.id
        if q.answerable:
            said = " ".join(lectures[lec].sentences[i].text for lec, i in q.support).lower()
            assert q.keywords and all(k.lower() in said for k in q.keywords), q.id
        else:
            assert not q.support and q.topic in lectures
    assert {q.split for q in questions} == set(devset.SPLITS)
    assert all(len(q.lectures) == 2 for q in questions if q.kind == "cross")
    for lec in lectures.values():
        assert all(a.end <= b.start for a, b in zip(lec.sentences, lec.sentences[1:], strict=False))


@pytest.fixture(scope="module")
def course(request, tmp_path_factory):
    """The ten lectures ingested from their pages' captions tracks, with their true times
    (each split's questions see the other lectures as distractors)."""
    media = tmp_path_factory.mktemp("devset-media")
    timed = devset.build_media(request.config.cache.mkdir("vidrag-devset") / "audio", media)
    server = MediaServer(media)
    wb = Workbench(
        make_settings(tmp_path_factory.mktemp("devset-home"), chunk_tokens=256, chunk_min_tokens=16)
    )
    ids = {}
    try:
        for lec in timed:
            [result] = wb.ingest(server.url(lec.page), collection="Course", captions="only")
            assert result.status == "done", result.error
            ids[lec.id] = result.video_id
    finally:
        server.stop()
    yield wb, {lec.id: lec for lec in timed}, ids
    wb.close()


def test_generated_speech_keeps_the_stored_sentence_times(course):
    _, timed, _ = course
    stored = {lec.id: lec for lec in devset.lectures()}
    for lid, lec in timed.items():
        for got, want in zip(lec.sentences, stored[lid].sentences, strict=True):
            assert got.text == want.text and abs(got.start - want.start) < 0.05


# floors for the extractive answerer on the captions path, a little under what this
# fixture measures (the held-back split was never tuned on; the speech path's figures are
# benchmarks/answer.py's): a change that makes answers worse on either split fails here
FLOORS = {
    # measured (ten lectures, these settings): 0.954, 0.874, 0.874, 1.0 (17 of 17)
    "tuning": {
        "keyword_accuracy": 0.94,
        "first_citation_hit": 0.86,
        "seek_accuracy": 0.86,
        "refusal_accuracy": 0.94,
    },
    # measured: 0.921, 0.905, 0.905, 0.769 (10 of 13)
    "heldback": {
        "keyword_accuracy": 0.9,
        "first_citation_hit": 0.89,
        "seek_accuracy": 0.89,
        "refusal_accuracy": 0.69,
    },
}
# measured: 1 of 87 and 2 of 63; one more false refusal on either still passes
CEILINGS = {"tuning": {"false_refusal_rate": 0.025}, "heldback": {"false_refusal_rate": 0.05}}


@pytest.mark.slow
@pytest.mark.parametrize("split", devset.SPLITS)
def test_answer_quality_floors_on_each_split(course, split):
    wb, timed, ids = course
    rows = devset.answer_rows(wb, devset.questions(split), list(timed.values()), ids)
    figures = summarize_answers(rows)
    for key, floor in FLOORS[split].items():
        assert figures[key] >= floor, (key, figures)
    for key, ceiling in CEILINGS[split].items():
        assert figures[key] <= ceiling, (key, figures)


@pytest.mark.parametrize("qid", ["c03", "c06", "o05", "o10", "k05"])
def test_the_first_citation_starts_at_the_supporting_sentence(course, qid):
    wb, timed, ids = course
    q = _question(qid)
    answer = wb.ask(q.question, "Course", save=False)
    assert not answer.no_answer and answer.citations, answer.text
    first = answer.citations[0]
    (lec, i), *_ = q.support
    said = timed[lec].sentences[i]
    assert first.video_id == ids[lec]
    # the span is that one sentence, not the passage around it
    assert abs(first.start - said.start) < 0.5 and abs(first.end - said.end) < 0.5, (first, said)
    assert first.quote == said.text and first.link.endswith(f"#t={int(first.start)}")
    assert all(k.lower() in answer.text.lower() for k in q.keywords)


@pytest.mark.parametrize(
    "question",
    [
        _question("ou1").question,
        # a date the lecture gives for other events of that man's life, not this one
        _question("pu2").question,
        # "Hubble" is in a passage, but only as the telescope's own name, not the astronaut's
        _question("su2").question,
        # the best sentence gives names, but not Fleming's: it is about Florey and Chain
        _question("au1").question,
        "What is the capital of Australia?",
    ],
    ids=["on-topic", "on-topic-date", "on-topic-name", "on-topic-other-person", "off-topic"],
)
def test_questions_the_videos_do_not_answer_are_refused(course, question):
    wb, _, ids = course
    answer = wb.ask(question, "Course", save=False)
    assert answer.no_answer and answer.citations == [], answer.text
    assert "Related, but not an answer" in answer.text
    # the closest sentences are shown, with their own moments, and in the JSON
    assert answer.related and all(c.quote and c.video_id in ids.values() for c in answer.related)
    shape = json.loads(json.dumps(answer.to_dict()))
    assert shape["no_answer"] is True and shape["related"][0]["quote"]


@pytest.mark.parametrize("qid", ["x01", "x05"])
def test_a_question_spanning_two_lectures_cites_both(course, qid):
    wb, timed, ids = course
    # "In which years were the first battery and the first Gulf Stream map made?"
    # "What is a current in a wire, and what is a current in the sea?"
    q = _question(qid)
    answer = wb.ask(q.question, "Course", save=False)
    cited = {c.video_id for c in answer.citations}
    assert cited >= {ids[lec] for lec, _ in q.support}, answer.text
    assert all(k in answer.text for k in q.keywords)
    for lec, i in q.support:
        said = timed[lec].sentences[i]
        assert any(c.video_id == ids[lec] and abs(c.start - said.start) < 0.5 for c in answer.citations)


@pytest.fixture(scope="module")
def llm():
    with FakeLLM("reply") as server:
        yield server


def test_an_llm_citation_resolves_to_the_supporting_sentence(course, llm):
    wb, timed, ids = course
    llm_wb = Workbench(wb.settings.with_(llm_model="openai/x", llm_api_base=llm.api_base, llm_api_key="k"))
    try:
        llm.reply_text = "Surface currents at sea are mostly pushed along by the wind [1]."
        answer = llm_wb.ask("What drives the currents at the surface of the sea?", "Course", save=False)
        assert answer.mode == "llm" and not answer.no_answer and not answer.flagged
        said = timed["oceans"].sentences[2]
        [c] = answer.citations
        assert c.video_id == ids["oceans"] and abs(c.start - said.start) < 0.5 and c.quote == said.text
        # the prompt's sources list their sentences with the moment each is said
        assert "(at 0:" in llm.last_prompt() and said.text in llm.last_prompt()

        llm.reply_text = "These videos do not cover that."
        answer = llm_wb.ask("What was the name of the ship that lost the rubber ducks?", "Course", save=False)
        assert answer.no_answer and answer.citations == [] and answer.related

        llm.reply_text = "Penguins raise their chicks on the ice of the South Pole every winter [1]."
        answer = llm_wb.ask("Who mapped the Gulf Stream?", "Course", save=False)
        assert answer.flagged == [answer.text]  # no cited sentence says it
    finally:
        llm_wb.close()


def test_the_support_check_compares_claims_with_single_sentences(course):
    from vidrag_kernel.chunking import TimedSentence
    from vidrag_kernel.embed import get_embedder

    wb, _, _ = course
    sentences = [
        TimedSentence("Tides are caused by the pull of the Moon and the Sun.", 10.0, 14.0),
        TimedSentence("The Bay of Fundy has the highest tides in the world.", 14.5, 18.0),
    ]
    hit = SearchHit("c", "v", "Oceans", 10.0, 18.0, " ".join(s.text for s in sentences), 0.5, "u", "u", "col")
    hit.sentences = sentences
    embed = get_embedder(wb.settings).embed
    checked = resolve(
        "The highest tides on Earth are in the Bay of Fundy [1].", [hit], embed=embed, threshold=0.55
    )
    assert checked.flagged == []
    best = checked.support[0]["best"][1]
    assert best[1] == sentences[1].text and (best[2], best[3]) == (14.5, 18.0)
