"""Evaluation: metrics against hand-computed values, QA parsing, and a real collection."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vidrag_kernel.errors import InvalidInput, NotFound
from vidrag_kernel.evaluate import Span, first_hit, holds_keyword, load_qa, retrieval_metrics
from vidrag_kernel.retrieve import SearchHit

QA = Path(__file__).parent / "data" / "lecture_qa.jsonl"


def test_metrics_match_hand_computed_values():
    # first-hit ranks of five questions: 1, 3, missed, 7, 12 (beyond the depth of 10)
    m = retrieval_metrics([1, 3, None, 7, 12])
    assert m["n"] == 5
    assert m["recall@1"] == pytest.approx(1 / 5)
    assert m["recall@5"] == pytest.approx(2 / 5)
    assert m["recall@10"] == pytest.approx(3 / 5)
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 1 / 7) / 5)
    assert retrieval_metrics([])["mrr"] is None


def test_a_keyword_number_is_found_however_it_is_written():
    # speech recognition writes digits where the script said words, with thousands commas
    assert holds_keyword("It reverses 50 times in Europe.", "fifty")
    assert holds_keyword("In 1,800 Volta built the first battery.", "1800")
    assert holds_keyword("could kill 10 million people", "ten million")
    assert holds_keyword("Fifty times a second", "50") and holds_keyword("twenty-eight ducks", "28")
    # speech recognition's way of writing what the script said
    assert holds_keyword("reaches almost 11 ,000 meters", "eleven thousand metres")
    assert holds_keyword("about two and a half centimeters a year", "centimetres")
    assert not holds_keyword("reaches almost 12 ,000 meters", "eleven thousand")
    # a different number is not the keyword
    assert not holds_keyword("It reverses 60 times in Europe.", "fifty")
    assert not holds_keyword("In 1,700 he published a map.", "1770")
    assert not holds_keyword("twenty-nine ducks", "28")
    # two numbers joined by "and" stay two numbers; "and" after "hundred" joins one
    assert holds_keyword("between five and ten times", "10")
    assert holds_keyword("six hundred and eight", "608") and holds_keyword("nineteen hundred ninety", "1990")


def test_numbers_said_in_words_have_one_reading():
    from vidrag_kernel.answer.numbers import value

    assert value("nineteen hundred ninety") == 1990 and value("twenty-eight thousand") == 28000
    assert value("one thousand six hundred and eight") == 1608 and value("fifty") == 50
    assert value("and") is None and value("ducks") is None


def _hit(video_id: str, start: float, end: float) -> SearchHit:
    return SearchHit("c", video_id, "t", start, end, "x", 0.5, "", "", "col")


def test_a_hit_is_the_right_video_overlapping_the_span():
    spans = [Span("lecture", 10.0, 20.0)]
    ids = {"lecture": "v1"}
    assert first_hit([_hit("v1", 0, 9.9), _hit("v2", 12, 15), _hit("v1", 19, 25)], spans, ids) == 3
    assert first_hit([_hit("v1", 20, 30)], spans, ids) is None  # touching is not overlapping
    assert first_hit([_hit("v1", 5, 30)], spans, ids) == 1


def test_load_qa_reads_the_test_set_and_rejects_bad_lines(tmp_path):
    items = load_qa(QA)
    assert len(items) == 12 and sum(not i.answerable for i in items) == 3
    assert items[0].spans[0] == Span("lecture.m4a", 7.181, 16.535) and items[0].keywords == ["chlorophyll"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "ok", "video": "v", "start": 1, "end": 2}\n{not json\n')
    with pytest.raises(InvalidInput, match="line 2"):
        load_qa(bad)
    with pytest.raises(InvalidInput, match="start <= end"):
        load_qa([{"question": "q", "video": "v", "start": 5, "end": 1}])
    with pytest.raises(InvalidInput, match="no question"):
        load_qa([{"video": "v"}])
    with pytest.raises(NotFound):
        load_qa(tmp_path / "missing.jsonl")


def test_qa_spans_match_the_generated_lecture(lecture):
    """The spans in the QA file were taken from the espeak-ng timings; check they still hold."""
    starts = {round(s.start, 1) for s in lecture.sentences}
    for item in load_qa(QA):
        for span in item.spans:
            assert round(span.start, 1) in starts


def test_eval_on_the_test_lecture(ingested, capsys):
    wb = ingested.wb
    before = {c.id for c in wb.conversations.list()}
    report = wb.evaluate(str(QA), "Lectures")
    r, a = report.retrieval, report.answers
    assert report.questions == 12 and r["n"] == 9 and a["n"] == 11
    assert r["recall@5"] >= 0.85 and r["mrr"] >= 0.6 and r["recall@1"] <= r["recall@5"] <= r["recall@10"]
    # MRR is consistent with the per-question ranks the report lists
    ranks = [i["rank"] for i in report.items if "rank" in i]
    assert r["mrr"] == pytest.approx(retrieval_metrics(ranks)["mrr"])
    assert a["accuracy"] >= 0.8 and a["modes"] == {"extractive": 11}
    unanswerable = [
        i for i in report.items if i["question"].startswith(("What is the capital", "How do I bake"))
    ]
    assert all(i["no_answer"] and i["correct"] for i in unanswerable)
    # evaluation stores no conversations (other tests share this workbench: compare ids)
    assert {c.id for c in wb.conversations.list()} == before
    json.dumps(report.to_dict())


def test_eval_cli_table_and_json(ingested):
    from tests.support.cli import vidrag

    r = vidrag(
        ingested.wb.settings.home, "eval", str(QA), "--collection", "Lectures", "--no-answers", "--json"
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["retrieval"]["n"] == 9 and out["answers"]["n"] == 0 and len(out["items"]) == 12
    r = vidrag(ingested.wb.settings.home, "eval", str(QA), "--collection", "Lectures", "--no-answers")
    assert r.returncode == 0 and "Recall@5" in r.stdout and "MRR" in r.stdout
    r = vidrag(ingested.wb.settings.home, "eval", "/nonexistent.jsonl", "--collection", "Lectures")
    assert r.returncode == 4 and "No QA file" in r.stderr
