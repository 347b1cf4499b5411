"""Transcript corrections: an editor fixes a line; search, exports and a later
transcript of the video all carry the fix. The captions ingest, catalog, chunker,
MiniLM and FAISS are real; no audio is transcribed.
"""

from __future__ import annotations

import json

import pytest
from sqlalchemy import or_

from tests.support.settings import make_settings
from vidrag_kernel import stages
from vidrag_kernel.access import Access
from vidrag_kernel.catalog import Catalog, Collection
from vidrag_kernel.corrections import apply, match
from vidrag_kernel.errors import Forbidden, InvalidInput, NotFound
from vidrag_kernel.library import LocalLibrary
from vidrag_kernel.records import Segment

LINE = 7  # "The king, Louis the sixteenth, was later executed by guillotine."
FIXED = "The king, Louis the sixteenth, was later executed in the Place de la Concorde by Sanson."


class Grants(Access):
    """Ownership plus roles on other people's collections (as the service's policy adds)."""

    def __init__(self, user: str, grants: dict[str, str]) -> None:
        super().__init__(user)
        self.grants = grants

    def visible(self):
        return or_(Collection.owner == self.user, Collection.id.in_(list(self.grants)))

    def role(self, session, collection):
        return "owner" if collection.owner == self.user else self.grants.get(collection.id)


@pytest.fixture
def course(tmp_path, media_server):
    """Ada's "CS101" holding the captioned test lecture."""
    settings = make_settings(tmp_path / "home", user="ada")
    catalog = Catalog(settings.resolved_database_url)
    ada = LocalLibrary(settings, catalog=catalog)
    cs101 = ada.collections.create("CS101")
    [result] = ada.ingest(media_server.url("lecture.html"), "CS101", captions="only")
    assert result.status == "done", result.error
    yield ada, cs101.id, result.video_id, media_server.url("lecture.html")
    catalog.close()


def as_user(ada: LocalLibrary, collection_id: str, user: str, role: str) -> LocalLibrary:
    return LocalLibrary(
        ada.ctx.settings.with_(user=user), catalog=ada.ctx.catalog, access=Grants(user, {collection_id: role})
    )


def texts(hits) -> str:
    return " ".join(h.text for h in hits)


def test_matching_by_time():
    segments = [Segment(0.0, 2.0, "a"), Segment(2.5, 5.0, "b"), Segment(5.5, 6.0, "c")]
    assert match(segments, 2.4, 5.1) == 1  # re-timed a little: the same line
    assert match(segments, 1.8, 2.6) is None  # straddles two lines: belongs to neither
    fixed, changed = apply(segments, [Segment(2.6, 4.9, "B!")])
    assert [s.text for s in fixed] == ["a", "B!", "c"] and changed == 1
    assert apply(fixed, [Segment(2.6, 4.9, "B!")])[1] == 0


def test_an_editor_corrects_a_line_and_search_and_exports_show_it(course):
    ada, collection_id, video_id, _ = course
    original = ada.videos.segments(video_id)[LINE].text
    assert "Sanson" not in texts(ada.search("Sanson Concorde", "CS101", k=5))
    before = {s.start for s in ada.videos.segments(video_id)}

    bob = as_user(ada, collection_id, "bob", "editor")
    done = bob.videos.correct(video_id, LINE, FIXED)
    assert (done.original, done.text, done.author) == (original, FIXED, "bob")

    lines = ada.videos.segments(video_id)
    assert lines[LINE].text == FIXED and {s.start for s in lines} == before  # times kept
    hits = ada.search("Sanson Concorde", "CS101", k=3)
    assert "Sanson" in hits[0].text and hits[0].video_id == video_id
    assert "guillotine" not in texts(ada.search("guillotine", "CS101", k=10))  # the old words are gone
    for fmt in ("txt", "srt", "vtt"):
        assert FIXED in ada.videos.transcript(video_id, fmt)
    exported = json.loads(ada.videos.transcript(video_id, "json"))
    assert exported["segments"][LINE]["text"] == FIXED
    assert [c.text for c in ada.videos.corrections(video_id)] == [FIXED]

    # by start time too; correcting back to what was recognised drops the correction
    ada.videos.correct(video_id, float(lines[LINE].start) + 0.2, original)
    assert ada.videos.corrections(video_id) == []
    assert "guillotine" in texts(ada.search("guillotine", "CS101", k=3))


def test_a_viewer_is_refused_and_bad_lines_are_errors(course):
    ada, collection_id, video_id, _ = course
    carol = as_user(ada, collection_id, "carol", "viewer")
    with pytest.raises(Forbidden):
        carol.videos.correct(video_id, LINE, FIXED)
    stranger = LocalLibrary(ada.ctx.settings.with_(user="eve"), catalog=ada.ctx.catalog)
    with pytest.raises(NotFound):
        stranger.videos.correct(video_id, LINE, FIXED)
    with pytest.raises(NotFound, match="No line 99"):
        ada.videos.correct(video_id, 99, FIXED)
    with pytest.raises(NotFound, match="near"):
        ada.videos.correct(video_id, 9999.0, FIXED)
    with pytest.raises(InvalidInput):
        ada.videos.correct(video_id, LINE, "   ")
    assert ada.videos.corrections(video_id) == []
    assert FIXED not in ada.videos.transcript(video_id)


def test_the_correction_survives_a_new_transcript_and_reaches_every_collection(course):
    ada, collection_id, video_id, url = course
    ada.collections.create("Revision")
    ada.videos.add_to("Revision", video_id)
    ada.videos.correct(video_id, LINE, FIXED)
    assert "Sanson" in ada.search("Sanson Concorde", "Revision", k=3)[0].text

    # the video is transcribed again (a re-run ingest, a retried job): the new transcript
    # knows nothing of the fix, and the commit puts it back over the same line
    from vidrag_kernel.fetch import plan_source

    [info] = plan_source(url, ada.ctx.settings)
    prepared = stages.prepare(info, ada.ctx.layout.media_dir(video_id), ada.ctx.settings, "only")
    assert FIXED not in [s.text for s in prepared.transcript.segments]
    stages.commit(ada.ctx, collection_id, video_id, prepared)

    assert ada.videos.segments(video_id)[LINE].text == FIXED
    assert FIXED in ada.videos.transcript(video_id, "srt")
    assert "Sanson" in ada.search("Sanson Concorde", "CS101", k=3)[0].text


def test_the_transcript_view_corrects_the_clicked_line(course):
    from panel.models.tabulator import CellClickEvent
    from vidrag_dashboards.transcript import TranscriptView

    ada, collection_id, video_id, _ = course
    view = TranscriptView(ada)
    view.show(video_id)
    assert view.save_line.disabled  # nothing clicked yet
    model = view.table.get_root()
    view.table._process_event(CellClickEvent(model=model, column="text", row=LINE))
    assert "guillotine" in view.line_text.value and not view.save_line.disabled
    view.line_text.value = FIXED
    view.save_line.clicks += 1  # what a browser's click sends: runs the on_click handlers
    assert "Saved" in view.said.object, view.said.object
    assert view.table.value.iloc[LINE]["text"] == FIXED
    assert "Sanson" in ada.search("Sanson Concorde", "CS101", k=3)[0].text

    viewer = TranscriptView(as_user(ada, collection_id, "carol", "viewer"))
    viewer.show(video_id)
    viewer.table._process_event(CellClickEvent(model=viewer.table.get_root(), column="text", row=LINE))
    viewer.line_text.value = "Something else."
    viewer.save_line.clicks += 1
    assert "Not saved" in viewer.said.object and "viewer" in viewer.said.object
    assert ada.videos.segments(video_id)[LINE].text == FIXED


@pytest.mark.hub
@pytest.mark.slow
def test_through_the_service_an_editor_corrects_and_a_viewer_is_refused(tmp_path, media_server):
    """The same calls on a shared course: a real JupyterHub for tokens, the service app
    in-process; the glossary travels through the service's collection API too."""
    from fastapi.testclient import TestClient
    from vidrag_hub.app import make_app
    from vidrag_hub.auth import HubUser

    from tests.support.service import ServiceHub
    from vidrag_kernel import Workbench
    from vidrag_kernel.shared import ServiceLibrary

    hub = ServiceHub(tmp_path / "hub").start()
    try:
        for name in ("ada", "lee", "sam"):
            hub.user(name)
        hub.group("instructors", ["ada"])
        app = make_app(hub.settings(tmp_path / "root"))
        with TestClient(app, raise_server_exceptions=False) as http:

            def workbench(user: str) -> Workbench:
                shared = ServiceLibrary("http://testserver/services/vidrag/api/", hub.token(user), http=http)
                return Workbench(make_settings(tmp_path / user, user=user), libraries=[shared])

            ada = workbench("ada")
            course = ada.collections.create("History", library="shared", glossary="Sanson, Concorde")
            assert course.glossary == ["Sanson", "Concorde"] and course.library == "shared"
            assert ada.collections.update("History", glossary=["Sanson"]).glossary == ["Sanson"]
            # ingested by the service's own library (no Dask workers in this test)
            owner = app.state.service.library(HubUser("ada", groups=frozenset({"instructors"})))
            [result] = owner.ingest(media_server.url("lecture.html"), course.id, captions="only")
            assert result.status == "done", result.error
            sharing = ada.libraries.named("shared").collections
            sharing.share("History", user="lee", role="editor")
            sharing.share("History", user="sam", role="viewer")

            lee, sam = workbench("lee"), workbench("sam")
            done = lee.videos.correct(result.video_id, LINE, FIXED)
            assert done.text == FIXED and done.author == "lee" and done.created_at is not None
            assert FIXED in sam.transcript(result.video_id, "srt")
            assert "Sanson" in sam.search("Sanson Concorde", "History", k=3)[0].text
            assert [c.text for c in sam.videos.corrections(result.video_id)] == [FIXED]
            with pytest.raises(Forbidden):
                sam.videos.correct(result.video_id, LINE, "The king was not executed.")
            assert FIXED in sam.transcript(result.video_id)
    finally:
        assert hub.stop() == []
