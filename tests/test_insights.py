"""Class insights (``vidrag_kernel.insights``): aggregates only, small groups hidden.

Questions are stored the way ``ask`` stores them (real conversations in a real catalog,
real MiniLM embeddings for the topics); the figures are read back as the service and
the notebooks' local fallback read them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from vidrag_kernel.insights import MIN_GROUP, Question, aggregate

VIDEO = "v" * 36


def _embedder(settings):
    from vidrag_kernel.embed import get_embedder

    return get_embedder(settings).embed


def test_a_group_is_shown_only_with_five_askers_and_nobody_is_named(settings):
    day = datetime(2026, 11, 2, 10, tzinfo=UTC)
    photosynthesis = [
        "How do plants make sugar from sunlight?",
        "What does chlorophyll do in photosynthesis?",
        "How does photosynthesis turn light into sugar?",
        "Why do plants need sunlight to make glucose?",
        "What gas do plants release in photosynthesis?",
    ]
    revolution = ["When was the Bastille stormed?", "Why was the Bastille stormed in 1789?"]
    questions = [
        # five students on photosynthesis, cited around 10 s: shown
        Question(q, day, f"zed{i}x", True, [(VIDEO, 8.0, 14.0)])
        for i, q in enumerate(photosynthesis)
    ] + [
        # two students (one asking twice) on the revolution, unanswered, a day later: hidden
        Question(q, day + timedelta(days=3), name, False, [(VIDEO, 40.0, 44.0)])
        for q, name in zip(revolution * 2, ["ada", "ada", "bob", "bob"], strict=True)
    ]
    data = aggregate(questions, {VIDEO: ("Three topics", 60.0)}, _embedder(settings))
    assert data["min_group"] == MIN_GROUP and data["askers"] == 7 and data["questions"] == 9
    # over time: the photosynthesis day has 5 askers, the revolution day 2
    periods = {p["period"]: p for p in data["over_time"]["periods"]}
    assert data["over_time"]["bucket"] == "day"
    assert periods["2026-11-02"]["questions"] == 5
    assert periods["2026-11-05"]["questions"] is None and data["over_time"]["hidden"] == 1
    # topics: the photosynthesis cluster is shown (with words, not people), the other hidden
    (topic,) = data["topics"]["groups"]
    assert topic["questions"] == 5 and {"photosynthesis", "plants"} & set(topic["terms"])
    assert topic["example"] in photosynthesis and data["topics"]["hidden"] >= 1
    # the heatmap counts the citations of five askers near 10 s; the revolution's are hidden
    (moments,) = data["moments"]
    width = moments["bin_seconds"]
    assert moments["citations"][int(10 // width)] == 5
    assert moments["citations"][int(42 // width)] == 0 and moments["hidden_bins"] >= 1
    # unanswered: only two askers, so neither the figure nor the group is shown
    assert data["unanswered"]["questions"] is None and data["unanswered"]["groups"] == []
    assert data["unanswered"]["hidden"] == 1
    text = json.dumps(data)
    assert not any(name in text for name in ("zed", "ada", "bob"))


def test_fewer_than_five_askers_shows_nothing_at_all(settings):
    now = datetime.now(UTC)
    questions = [
        Question(f"What is photosynthesis, part {i}?", now, f"s{i % 4}", True, [(VIDEO, 1, 2)])
        for i in range(12)
    ]
    data = aggregate(questions, {VIDEO: ("Lecture", 30.0)}, _embedder(settings), min_group=2)
    assert data["min_group"] == MIN_GROUP  # a caller cannot lower the rule
    assert data["questions"] is None and data["askers"] is None
    assert data["topics"]["groups"] == [] and data["moments"][0]["citations"] == [0] * len(
        data["moments"][0]["citations"]
    )
    assert all(p["questions"] is None for p in data["over_time"]["periods"])


@pytest.mark.slow
def test_the_local_fallback_reads_a_personal_collections_conversations(settings, media_server):
    from vidrag_kernel import Workbench
    from vidrag_kernel.insights import local_insights

    with Workbench(settings, libraries=()) as wb:
        wb.collections.create("Lectures")
        [result] = wb.ingest(media_server.url("lecture.html"), "Lectures", captions="only")
        assert local_insights(wb, "Lectures")["questions"] is None  # nobody asked yet
        asked = [
            "How do plants capture sunlight?",
            "What do chloroplasts do?",
            "How do plants turn carbon dioxide into glucose?",
            "Which pigment captures light in leaves?",
            "What do plants release during photosynthesis?",
            "What is the capital of Australia?",
        ]
        for q in asked:
            wb.ask(q, "Lectures")
        data = local_insights(wb, "Lectures")
    assert data["local_fallback"] is True and data["asker_unit"] == "conversation"
    assert data["collection"]["name"] == "Lectures" and data["questions"] == len(asked)
    (moments,) = data["moments"]
    assert moments["video_id"] == result.video_id and max(moments["citations"]) >= MIN_GROUP
    assert any("plants" in t["terms"] or "photosynthesis" in t["terms"] for t in data["topics"]["groups"])
