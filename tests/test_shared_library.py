"""The service's client as the Workbench's second library: a student's Workbench lists
personal and shared collections together and searches, reads and asks a shared one
through the same calls, with the service checking the role on each request.

Real JupyterHub (tokens and groups), the real service app in-process (``make_app``,
reached through FastAPI's TestClient, an httpx client), real catalog and index."""

from __future__ import annotations

import socket

import pytest
from fastapi.testclient import TestClient
from vidrag_hub.app import make_app
from vidrag_hub.auth import HubUser

from tests.support.media_server import MediaServer
from tests.support.service import ServiceHub
from tests.support.settings import make_settings
from vidrag_kernel import Workbench
from vidrag_kernel.errors import Forbidden, InvalidInput, NotFound, VidragError
from vidrag_kernel.ingest import IngestResult
from vidrag_kernel.shared import ServiceLibrary, api_base, parse_events

pytestmark = [pytest.mark.hub, pytest.mark.slow]


@pytest.fixture(scope="module")
def service(tmp_path_factory, media_server):
    hub = ServiceHub(tmp_path_factory.mktemp("shared-hub")).start()
    for name in ("ada", "sam", "kim", "lee", "max"):
        hub.user(name)
    hub.group("instructors", ["ada"])
    # on the Pro plan: these tests ingest more videos than the Free plan's two
    app = make_app(hub.settings(tmp_path_factory.mktemp("shared-root"), plans={"default_plan": "pro"}))
    with TestClient(app, raise_server_exceptions=False) as http:
        # the instructor's course, with the captioned test lecture (no whisper needed)
        lib = app.state.service.library(HubUser("ada", groups=frozenset({"instructors"})))
        lib.collections.create("Biology 101", instructor="Ada")
        [result] = lib.ingest(media_server.url("lecture.html"), "Biology 101", captions="only")
        assert result.status == "done", result.error
        yield hub, http, result.video_id, app
    assert hub.stop() == []


def workbench(service, tmp_path, user: str) -> Workbench:
    hub, http, _, _ = service
    shared = ServiceLibrary("http://testserver/services/vidrag/api/", hub.token(user), http=http)
    return Workbench(make_settings(tmp_path / user, user=user), libraries=[shared])


def test_the_api_base_is_found_from_either_form_of_the_service_url():
    assert api_base("http://127.0.0.1:9000") == "http://127.0.0.1:9000/services/vidrag/api/"
    assert api_base("https://hub.example/services/vidrag/") == "https://hub.example/services/vidrag/api/"


def test_a_student_sees_asks_and_reads_a_shared_course_through_the_workbench(service, tmp_path):
    _, _, video_id, _ = service
    ada = workbench(service, tmp_path, "ada")
    ada.collections.get("Biology 101")  # the owner finds it by name through the service
    assert ada.libraries.named("shared").collections.share("Biology 101", user="sam")["role"] == "viewer"

    sam = workbench(service, tmp_path, "sam")
    sam.collections.create("My notes")
    listed = {(c.name, c.library, c.role) for c in sam.collections.list()}
    assert {("Biology 101", "shared", "viewer"), ("My notes", "local", "owner")} <= listed

    hits = sam.search("what do plants capture sunlight with", "Biology 101", k=2)
    assert hits and hits[0].video_id == video_id and "chlorophyll" in " ".join(h.text for h in hits).lower()
    assert "chlorophyll" in sam.transcript(video_id).lower()
    assert [v.id for v in sam.videos.list("Biology 101")] == [video_id]

    answer = sam.ask("What do plants capture sunlight with?", "Biology 101")
    assert answer.citations and answer.citations[0].video_id == video_id and answer.conversation_id
    follow_up = sam.ask("What do they release?", conversation=answer.conversation_id)
    assert follow_up.conversation_id == answer.conversation_id

    # a viewer's write is refused by the service, with its message
    with pytest.raises(Forbidden):
        sam.ingest("https://example.org/lecture.mp4", "Biology 101")
    with pytest.raises(InvalidInput):
        sam.reindex("Biology 101")


def test_someone_without_a_grant_does_not_see_the_course(service, tmp_path):
    kim = workbench(service, tmp_path, "kim")
    assert "Biology 101" not in [c.name for c in kim.collections.list()]
    with pytest.raises(NotFound):
        kim.search("chlorophyll", "Biology 101")


def test_an_editor_ingests_into_a_shared_course_on_the_services_dask_workers(
    service, tmp_path, media_server, media_root
):
    """Workbench → service → a Dask worker transcribes → the service commits → searchable."""
    app = service[3]
    runner = app.state.service.ingest_workers()
    runner.start()
    app.state.runner = runner
    try:
        ada = workbench(service, tmp_path, "ada")
        ada.collections.create("Chemistry", library="shared")
        ada.libraries.named("shared").collections.share("Chemistry", user="lee", role="editor")
        lee = workbench(service, tmp_path, "lee")
        events: list = []
        # the call waits for the service's job, following its progress events
        [result] = lee.ingest(
            media_server.url("lecture.webm"), "Chemistry", captions="never", progress=events.append
        )
        assert result.status == "done" and result.source == "asr", result
        assert (
            result.video_id and result.chunk_count > 0 and result.duration and "transcribe" in result.timings
        )
        assert runner.status(result.job_id)["video_id"] == result.video_id
        stages = [e.stage for e in events]
        assert stages[-1] == "done" and "transcribing" in stages, stages
        order = ["queued", "fetching", "transcribing", "chunking", "embedding", "indexing", "done"]
        walked = list(dict.fromkeys(stages))
        assert walked == [s for s in order if s in walked], walked
        assert events[-1].video_id == result.video_id and events[-1].fraction == 1.0
        assert isinstance(result, IngestResult)  # the same result a local ingest returns
        hits = lee.search("binary search halves the range", "Chemistry", k=1)
        assert hits and "binary" in hits[0].text.lower()

        # an editor removed while their job waits: the commit checks again and adds nothing
        ada.libraries.named("shared").collections.share("Chemistry", user="max", role="editor")
        slow = MediaServer(media_root, delay=1.0)  # a new address: a new video, fetched slowly
        try:
            max_ = workbench(service, tmp_path, "max").libraries.named("shared")
            # wait=False: back at once, queued, with the job's id
            [waiting] = max_.ingest(slow.url("lecture.html"), "Chemistry", captions="only", wait=False)
            assert waiting.status == "queued" and waiting.job_id
            ada.service.sharing.revoke("Chemistry", user="max")
            final = ada.service.follow(waiting.job_id, timeout=120)
        finally:
            slow.stop()
        assert final.status == "failed" and final.error_kind == "forbidden", final
        assert "max" in final.error and "may no longer edit 'Chemistry'" in final.error
        assert "Nothing was added" in final.error
        assert final.video_id not in {v.id for v in ada.videos.list("Chemistry")}
        assert len(ada.videos.list("Chemistry")) == 1
        # wb.jobs reaches the service's jobs too (owners and editors see a collection's jobs)
        assert ada.jobs.get(waiting.job_id).error_kind == "forbidden"
        listed = {j.id: j.state for j in ada.jobs.list("Chemistry")}
        assert listed == {result.job_id: "done", waiting.job_id: "failed"}
        # the job ran as lee's, and a local path is refused by the service whoever sends it
        with pytest.raises(Forbidden):
            lee.ingest("/etc/passwd", "Chemistry")
    finally:
        app.state.runner = None
        runner.close()


def test_personal_collections_stay_usable_when_the_service_is_down(tmp_path, caplog):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]  # nothing listens here once the socket closes
    down = ServiceLibrary(f"http://127.0.0.1:{closed}/services/vidrag/api/", "no-token")
    wb = Workbench(make_settings(tmp_path / "home"), libraries=[down])
    wb.collections.create("Offline notes")
    with caplog.at_level("WARNING", logger="vidrag.routing"):
        names = [c.name for c in wb.collections.list()]
    assert "Offline notes" in names and "could not be reached" in caplog.text
    wb.close()


def test_sharing_through_the_workbench_members_roles_ownership_invites_and_links(service, tmp_path):
    """``wb.service.sharing``: every sharing call against the real service, as its users see it."""
    hub = service[0]
    hub.group("tas", ["kim"])
    ada = workbench(service, tmp_path, "ada").service.sharing
    workbench(service, tmp_path, "ada").collections.create("Physics", library="shared")

    assert ada.share("Physics", user="sam").role == "viewer"
    assert ada.set_role("Physics", "editor", user="sam").role == "editor"
    assert ada.share("Physics", group="tas", role="editor").kind == "group"
    assert {(m.kind, m.name, m.role) for m in ada.members("Physics")} == {
        ("user", "ada", "owner"),
        ("user", "sam", "editor"),
        ("group", "tas", "editor"),
    }
    ada.revoke("Physics", group="tas")
    assert "tas" not in {m.name for m in ada.members("Physics")}
    with pytest.raises(InvalidInput):
        ada.share("Physics", user="sam", group="tas")

    # an invite to a group reaches its members; a withdrawn one is gone from their list
    invite = ada.invite("Physics", group="tas")
    kim = workbench(service, tmp_path, "kim").service.sharing
    assert [i.id for i in kim.invites()] == [invite.id] and kim.invites()[0].collection == "Physics"
    ada.withdraw("Physics", invite.id)
    assert kim.invites() == []

    # a link with one use: the first redemption joins, the second is refused as used up
    link = ada.create_link("Physics", expires_in_days=1, max_uses=1)
    assert link.token and link.expires_at and link.state == "active"
    joined = kim.redeem(link.token)
    assert (joined.collection, joined.role, joined.owner) == ("Physics", "viewer", "ada")
    lee = workbench(service, tmp_path, "lee").service.sharing
    with pytest.raises(VidragError, match="used as many times") as refused:
        lee.redeem(link.join_path)
    assert refused.value.status == 410
    assert [(x.uses, x.state) for x in ada.links("Physics")] == [(1, "used_up")]

    # the owner hands over; the new owner manages, the old one stays as an editor and may leave
    # (ada is a hub admin, so her refusals are shown by a viewer)
    assert ada.transfer("Physics", "sam")["owner"] == "sam"
    sam = workbench(service, tmp_path, "sam").service.sharing
    assert ("ada", "editor") in {(m.name, m.role) for m in sam.members("Physics")}
    assert sam.share("Physics", user="lee").name == "lee"
    with pytest.raises(Forbidden):
        kim.share("Physics", user="lee", role="editor")
    with pytest.raises(NotFound):
        sam.transfer("Physics", "nobody-by-this-name")
    ada.leave("Physics")
    assert "ada" not in {m.name for m in sam.members("Physics") if m.role != "owner"}
    kim.leave("Physics")
    with pytest.raises(NotFound):
        kim.members("Physics")


def test_answers_stream_piece_by_piece_from_the_service(service, tmp_path):
    from vidrag_kernel.answer.types import Answer

    ada = workbench(service, tmp_path, "ada")
    items = list(ada.ask_stream("What do plants capture sunlight with?", "Biology 101"))
    pieces, answer = items[:-1], items[-1]
    assert isinstance(answer, Answer) and answer.citations and answer.conversation_id
    assert len(pieces) > 1 and all(isinstance(p, str) for p in pieces)
    assert "chlorophyll" in "".join(pieces).lower() and "chlorophyll" in answer.text.lower()
    # a refusal before any text is the service's error, not a broken stream
    with pytest.raises(NotFound):
        list(ada.ask_stream("anything?", conversation="no-such-conversation"))


def test_the_sse_parser_follows_the_standard():
    lines = [": keep-alive", "", "event: answer", 'data: {"a":', "data: 1}", "", 'data: {"text": "x"}']
    assert list(parse_events(lines)) == [("answer", {"a": 1}), (None, {"text": "x"})]


def test_conversations_on_a_shared_course_are_the_members_own(service, tmp_path):
    ada = workbench(service, tmp_path, "ada")
    ada.libraries.named("shared").collections.share("Biology 101", user="max")
    max_ = workbench(service, tmp_path, "max")
    asked = max_.ask("What do plants capture sunlight with?", "Biology 101")
    max_.ask("And what do they release?", conversation=asked.conversation_id)

    listed = max_.conversations.list("Biology 101")
    assert [c.id for c in listed] == [asked.conversation_id] and listed[0].message_count == 4
    talk = max_.conversations.get(asked.conversation_id)
    assert talk.collection_name == "Biology 101" and [m.role for m in talk.messages][:2] == [
        "user",
        "assistant",
    ]
    assert (
        talk.messages[1].citations and talk.messages[1].citations[0].video_id == asked.citations[0].video_id
    )
    assert talk.created_at is not None and "chlorophyll" in max_.conversations.export(talk.id).lower()
    assert max_.conversations.rename(talk.id, "Photosynthesis").title == "Photosynthesis"

    # a fresh session (a new kernel) finds it through the service and continues it
    again = workbench(service, tmp_path, "max")
    assert again.ask("Where does it happen?", conversation=talk.id).conversation_id == talk.id
    # nobody else sees it, not even the collection's owner (a hub admin)
    assert talk.id not in [c.id for c in ada.conversations.list()]
    with pytest.raises(NotFound):
        ada.conversations.get(talk.id)
    with pytest.raises(NotFound):
        ada.conversations.delete(talk.id)
    # a member who leaves no longer reads it
    max_.service.sharing.leave("Biology 101")
    assert max_.conversations.list() == []
    with pytest.raises(NotFound):
        max_.conversations.get(talk.id)
    ada.libraries.named("shared").collections.share("Biology 101", user="max")
    max_.conversations.delete(talk.id)
    assert max_.conversations.list() == []


def test_a_video_names_only_the_collections_its_viewer_may_see(service, tmp_path):
    _, _, video_id, app = service
    owner = app.state.service.library(HubUser("ada", groups=frozenset({"instructors"})))
    staff = owner.collections.create("Staff room (private)")
    owner.videos.add_to(staff.id, video_id)
    ada = workbench(service, tmp_path, "ada")
    ada.libraries.named("shared").collections.share("Biology 101", user="lee")
    lee = workbench(service, tmp_path, "lee")

    assert "Staff room (private)" in owner.videos.get(video_id).collections
    for info in (lee.videos.get(video_id), *lee.videos.list("Biology 101")):
        assert "Staff room (private)" not in info.collections and "Biology 101" in info.collections
    # the kernel's own answer for that viewer, without the HTTP layer in between
    viewer = app.state.service.library(HubUser("lee"))
    assert viewer.videos.get(video_id).collections == ["Biology 101"]
