"""The Workbench in front of several libraries: calls go to the library that holds what
they name, lists join them. The second library here is another real local library (on
its own data directory and catalog), standing where the service's client will stand."""

from __future__ import annotations

import pytest

from tests.support.settings import make_settings
from vidrag_kernel import Workbench
from vidrag_kernel.errors import InvalidInput, NotFound
from vidrag_kernel.library import Library, LocalLibrary


@pytest.fixture(scope="module")
def two(tmp_path_factory, media_server):
    """A Workbench on a personal home plus a "shared" library holding the course."""
    root = tmp_path_factory.mktemp("libraries")
    shared = LocalLibrary(make_settings(root / "shared"), name="shared")
    wb = Workbench(make_settings(root / "personal"), libraries=[shared])
    wb.collections.create("Course", library="shared", instructor="Ada")
    wb.collections.create("Notes")
    [result] = wb.ingest(media_server.url("lecture.html"), "Course", captions="only")
    assert result.status == "done", result.error
    yield wb, shared, result.video_id
    wb.close()


def test_both_kinds_of_library_fit_the_interface(two):
    wb, shared, _ = two
    assert isinstance(wb.local, Library) and isinstance(shared, Library)


def test_collections_of_every_library_are_listed_together(two):
    wb, _, _ = two
    listed = {(c.name, c.library) for c in wb.collections.list()}
    assert {("Course", "shared"), ("Notes", "local"), ("Uncategorized", "local")} <= listed
    assert wb.collections.get("Course").library == "shared"


def test_ingest_search_and_transcript_go_to_the_library_that_holds_the_collection(two):
    wb, shared, video_id = two
    assert shared.videos.get(video_id).collections == ["Course"]
    with pytest.raises(NotFound):
        wb.local.videos.get(video_id)  # nothing was written to the personal home
    hits = wb.search("how do plants capture sunlight", "Course", k=2)
    assert hits and all(h.video_id == video_id for h in hits)
    assert wb.videos.get(video_id).title == "Three topics lecture"
    assert "chlorophyll" in wb.transcript(video_id).lower()
    assert [v.id for v in wb.videos.list("Course")] == [video_id]
    assert [j.video_id for j in wb.jobs.list("Course")] == [video_id]


def test_conversations_live_where_their_collection_lives(two):
    wb, shared, _ = two
    answer = wb.ask("What do plants capture sunlight with?", "Course")
    assert answer.citations and answer.conversation_id
    assert shared.holds_conversation(answer.conversation_id)
    assert not wb.local.holds_conversation(answer.conversation_id)
    follow_up = wb.ask("And what do they release?", conversation=answer.conversation_id)
    assert follow_up.conversation_id == answer.conversation_id
    assert wb.conversations.get(answer.conversation_id).message_count == 4


def test_a_personal_collection_shadows_a_shared_one_of_the_same_name(two, tmp_path):
    wb, shared, _ = two
    shared.collections.create("Same name")
    wb.collections.create("Same name")
    assert wb.collections.get("Same name").library == "local"
    shared_id = shared.collections.get("Same name").id
    assert wb.collections.get(shared_id).library == "shared"  # an id is never ambiguous


def test_calls_that_would_span_libraries_are_refused(two):
    wb, _, video_id = two
    with pytest.raises(InvalidInput):
        wb.search("chlorophyll", ["Course", "Notes"])
    with pytest.raises(InvalidInput):
        wb.videos.move(video_id, "Course", "Notes")
    with pytest.raises(NotFound):
        wb.videos.get("00000000-0000-0000-0000-000000000000")
    with pytest.raises(NotFound):
        wb.collections.create("x", library="elsewhere")
