"""Hybrid retrieval over real ingested speech: paraphrases, comparable scores, filters,
near-duplicates, merged neighbours and the trace needed to reproduce a search."""

from __future__ import annotations

import re
import shutil

import pytest

from tests.support.settings import make_settings
from vidrag_kernel import Workbench

PARAPHRASES = [
    ("Which green pigment in leaves absorbs sunlight?", "chlorophyll"),
    ("What gas do plants give off?", "oxygen"),
    ("When did Parisians attack the old prison?", "paris"),  # ASR may mishear "Bastille"
    ("How was the French monarch put to death?", "guillotine"),
    ("How does searching a sorted array by splitting it in two work?", "sorted list"),
]
UNRELATED = [
    "What is the capital of Australia?",
    "How do I bake sourdough bread at home?",
    "Who won the football world cup in 2014?",
    "How many moons does Jupiter have?",
    "Explain the rules of chess.",
]


def test_paraphrased_questions_find_the_passage(ingested):
    for question, word in PARAPHRASES:
        hits = ingested.wb.search(question, "Lectures", k=3)
        # the passage is first or second: neighbouring passages of one topic score closely
        assert any(word in h.text.lower() for h in hits[:2]), (question, [h.text for h in hits])
        assert hits == sorted(hits, key=lambda h: h.rank_score, reverse=True)


def test_scores_tell_relevant_from_unrelated(ingested):
    """The dense cosine score means the same for every question: the calibrated threshold
    separates questions the lecture answers from questions it does not."""
    wb = ingested.wb
    threshold = wb.settings.min_relevance
    relevant = [wb.search(q, "Lectures", k=1)[0].score for q, _ in PARAPHRASES]
    unrelated = [wb.search(q, "Lectures", k=1)[0].score for q in UNRELATED]
    assert min(relevant) >= threshold > max(unrelated), (relevant, unrelated)


def test_video_filter_and_retrieval_trace(ingested):
    wb = ingested.wb
    scope = wb.retriever.scope("Lectures", videos=[ingested.video_id])
    result = wb.retriever.retrieve("Who stormed the Bastille?", scope, 4)
    assert result.hits and {h.video_id for h in result.hits} == {ingested.video_id}
    trace = result.trace()
    [(collection_id, generation)] = trace["generations"].items()
    assert generation >= 1 and wb.collections.get("Lectures").id == collection_id
    assert [c["chunk_ids"] for c in trace["chunks"]] == [h.chunk_ids for h in result.hits]
    assert all({"score", "dense", "lexical", "rrf"} <= set(c) for c in trace["chunks"])


@pytest.fixture(scope="module")
def library(tmp_path_factory, media_server, media_root):
    """Its own Workbench: the lecture (captions) in collections A and B, and a copy of the
    same lecture under another address in A (a near-duplicate video)."""
    for suffix in ("mp4", "vtt"):
        shutil.copy(media_root / f"lecture.{suffix}", media_root / f"lecture_copy.{suffix}")
    page = (media_root / "lecture.html").read_text()
    (media_root / "lecture_copy.html").write_text(page.replace('"lecture.', '"lecture_copy.'))
    home = tmp_path_factory.mktemp("retrieve")
    wb = Workbench(make_settings(home))
    wb.collections.create("A")
    wb.collections.create("B")
    [first] = wb.ingest(media_server.url("lecture.html"), "A", captions="only")
    [copy] = wb.ingest(media_server.url("lecture_copy.html"), "A", captions="only")
    [linked] = wb.ingest(media_server.url("lecture.html"), "B", captions="only")
    assert first.status == "done" and copy.status == "done" and linked.status == "exists"
    wb.videos.set_tags(copy.video_id, ["copy"])
    yield wb, first.video_id, copy.video_id
    wb.close()


def test_near_duplicates_and_shared_chunks_are_returned_once(library):
    wb, first, copy = library
    # the same chunks live in A and B; the copy repeats every sentence under another video
    hits = wb.search("Who stormed the Bastille?", ["A", "B"], k=6)
    texts = [re.sub(r"\W+", " ", h.text.lower()).strip() for h in hits]
    assert len(texts) == len(set(texts)), texts
    assert len({h.chunk_id for h in hits}) == len(hits)
    assert "bastille" in texts[0]


def test_tag_filter(library):
    wb, first, copy = library
    hits = wb.search("binary search", "A", tags=["copy"], k=3)
    assert hits and {h.video_id for h in hits} == {copy}
    assert wb.search("binary search", "A", tags=["no-such-tag"], k=3) == []


def test_merged_passages_are_whole_sentences(library):
    wb, first, copy = library
    plain = wb.search("photosynthesis in plants", "B", k=6)
    merged = wb.search("photosynthesis in plants", "B", k=6, merge=True)
    assert merged and len(merged) <= len(plain)
    for h in merged:
        assert re.search(r"[.!?]$", h.text.strip()), h.text
        assert h.link.endswith(f"#t={int(h.start)}")
    best = merged[0]
    # neighbours that both match are joined, in time order, without repeating words
    if len(best.chunk_ids) > 1:
        parts = [p for p in plain if p.chunk_id in best.chunk_ids]
        assert best.start == min(p.start for p in parts) and best.end >= max(p.end for p in parts)
    assert "chlorophyll" in best.text.lower()


def test_every_hit_scores_its_passage_against_the_question(ingested):
    """A hit's dense score is the cosine of its passage and the question, whether dense
    search found it or only the keywords did (then it comes from the stored vector)."""
    from vidrag_kernel.embed import get_embedder

    wb = ingested.wb
    embedder = get_embedder(wb.settings)
    for question in ("Who stormed the Bastille?", "chlorophyll oxygen sunlight"):
        hits = wb.search(question, "Lectures", k=8)
        assert hits
        q = embedder.embed_query(question)
        expected = embedder.embed([h.text for h in hits]) @ q
        assert [h.dense_score for h in hits] == pytest.approx(expected.tolist(), abs=2e-3)


def test_embed_cached_embeds_each_new_text_once_and_stays_bounded(monkeypatch):
    from vidrag_kernel import embed

    class Counting(embed.HashingEmbedder):
        model_name = "counting-test"

        def __init__(self):
            super().__init__()
            self.seen: list[str] = []

        def embed(self, texts, report=None):
            self.seen += list(texts)
            return super().embed(texts, report)

    monkeypatch.setattr(embed, "CACHE_SIZE", 3)
    counting = Counting()
    first = embed.embed_cached(counting, ["a b", "c d", "a b"])
    assert counting.seen == ["a b", "c d"]  # the repeat within one call is embedded once
    again = embed.embed_cached(counting, ["c d", "a b", "e f"])
    assert counting.seen == ["a b", "c d", "e f"]
    assert first[1] == pytest.approx(again[0]) and first[0] == pytest.approx(again[1])
    assert again == pytest.approx(embed.HashingEmbedder().embed(["c d", "a b", "e f"]))
    embed.embed_cached(counting, ["g h"])  # a fourth text pushes out the least recently used
    embed.embed_cached(counting, ["e f", "c d"])
    assert counting.seen[-2:] == ["g h", "c d"]  # "c d" had gone; "e f" had not
    assert len(embed._memos[("hashing", "counting-test", counting.dim)]) == 3
    assert embed.embed_cached(counting, []).shape == (0, counting.dim)


def test_concurrent_questions_share_forward_passes_and_get_their_own_vectors():
    """The service's threads embed questions at once: they share passes of the real
    MiniLM, and each caller gets the vector it would have got alone."""
    import threading

    from vidrag_kernel import embed
    from vidrag_kernel.settings import Settings

    embedder = embed.get_embedder(Settings())
    questions = [f"What did lecture {i} say about voltage and current?" for i in range(24)]
    alone = embedder.embed(questions)
    combiner = embedder._combined
    passes, calls = combiner.passes, combiner.calls
    got: dict[int, object] = {}
    start = threading.Barrier(8)

    def ask(worker: int) -> None:
        start.wait()
        for i in range(worker, len(questions), 8):
            got[i] = embedder.embed_query(questions[i])

    threads = [threading.Thread(target=ask, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert combiner.calls - calls == len(questions)
    assert combiner.passes - passes < len(questions)  # some callers shared a pass
    for i, question in enumerate(questions):
        # padding to the batch's longest text moves the figures in the sixth decimal only
        assert got[i] == pytest.approx(alone[i], abs=1e-4), question


def test_a_failed_combined_pass_reaches_every_caller_and_the_next_pass_runs():
    import threading

    from vidrag_kernel import embed

    inside = threading.Event()
    release = threading.Event()

    def encode(texts):
        if "slow" in texts:
            inside.set()
            release.wait(10)
        if "bad" in texts:
            raise ValueError("the model failed")
        return embed.HashingEmbedder().embed(texts)

    combiner = embed.Combiner(encode)
    results: dict[str, object] = {}

    def call(text: str) -> None:
        try:
            results[text] = combiner([text])
        except ValueError as exc:
            results[text] = exc

    first = threading.Thread(target=call, args=("slow",))
    first.start()
    assert inside.wait(10)
    # these two queue behind the pass in progress and share the next one, which fails
    waiting = [threading.Thread(target=call, args=(t,)) for t in ("bad", "good")]
    for t in waiting:
        t.start()
    while len(combiner._waiting) < 2:
        threading.Event().wait(0.01)
    release.set()
    for t in [first, *waiting]:
        t.join(10)
    assert results["slow"].shape == (1, embed.DIM)
    assert isinstance(results["bad"], ValueError) and isinstance(results["good"], ValueError)
    assert combiner.passes == 2 and not combiner._busy
    assert combiner(["after"]).shape == (1, embed.DIM)  # a failure does not wedge it


def test_a_retrieved_question_is_not_embedded_again_by_the_answerer():
    from vidrag_kernel import embed
    from vidrag_kernel.settings import Settings

    embedder = embed.get_embedder(Settings())
    question = "Which unit measures the resistance of a wire in this course?"
    combiner = embedder._combined
    first = embedder.embed_query(question)
    calls = combiner.calls
    [again] = embed.embed_cached(embedder, [question])  # the answerer's look-up
    assert combiner.calls == calls and again == pytest.approx(first)
    second = embedder.embed_query(question)  # retrieval always computes
    assert combiner.calls == calls + 1 and second == pytest.approx(first, abs=1e-5)
