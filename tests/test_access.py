"""The access policy: every part of the kernel asks one ``Access`` object, so a policy
with roles (the service's) changes what each caller allows without touching them.

``Grants`` below is such a policy, written the way the service extends ``Access``: a
user holds a role on some collections besides their own. The catalog, the index and
the captions ingest are real.
"""

from __future__ import annotations

import pytest
from sqlalchemy import or_

from tests.support.settings import make_settings
from vidrag_kernel.access import Access, role_rank, strongest
from vidrag_kernel.catalog import Catalog, Collection
from vidrag_kernel.errors import Forbidden, NotFound
from vidrag_kernel.library import LocalLibrary


class Grants(Access):
    """Personal ownership plus roles granted on other people's collections."""

    def __init__(self, user: str, grants: dict[str, str]) -> None:
        super().__init__(user)
        self.grants = grants

    def visible(self):
        return or_(Collection.owner == self.user, Collection.id.in_(list(self.grants)))

    def role(self, session, collection):
        return "owner" if collection.owner == self.user else self.grants.get(collection.id)


@pytest.fixture(scope="module")
def course(tmp_path_factory, media_server):
    """Ada's collection "CS101" holding the captioned test lecture, on a shared catalog."""
    home = tmp_path_factory.mktemp("access")
    settings = make_settings(home, user="ada")
    catalog = Catalog(settings.resolved_database_url)
    ada = LocalLibrary(settings, catalog=catalog)
    ada.collections.create("CS101", instructor="Ada")
    [result] = ada.ingest(media_server.url("lecture.html"), "CS101", captions="only")
    assert result.status == "done", result.error
    yield settings, catalog, result.video_id
    catalog.close()


def library_for(course, user: str, role: str | None = None) -> LocalLibrary:
    settings, catalog, _ = course
    with catalog.session() as s:
        cs101 = s.query(Collection).filter_by(name="CS101", owner="ada").one().id
    access = Grants(user, {cs101: role} if role else {})
    return LocalLibrary(settings.with_(user=user), catalog=catalog, access=access)


def test_roles_rank_and_the_highest_grant_wins():
    assert role_rank(None) == 0 < role_rank("viewer") < role_rank("editor") < role_rank("owner")
    assert strongest(["viewer", "owner", "editor"]) == "owner"
    assert strongest(["viewer", None]) == "viewer" and strongest([]) is None


def test_a_stranger_sees_nothing_of_another_users_collection(course):
    bob = library_for(course, "bob")
    _, _, video_id = course
    assert [c.name for c in bob.collections.list()] == ["Uncategorized"]  # only his own default
    with pytest.raises(NotFound):
        bob.collections.get("CS101")
    with pytest.raises(NotFound):
        bob.search("chlorophyll", "CS101")
    with pytest.raises(NotFound):
        bob.videos.get(video_id)
    assert not bob.holds_collection("CS101") and not bob.holds_video(video_id)
    assert bob.jobs.list() == []


# what each action needs: (call, the weakest role that may make it)
def _read(lib, vid):
    return lib.search("chlorophyll", "CS101", k=1)


def _transcript(lib, vid):
    return lib.transcript(vid, "txt")


def _edit_meta(lib, vid):
    return lib.collections.update("CS101", description="updated")


def _tag(lib, vid):
    return lib.videos.set_tags(vid, ["geology"])


def _rename(lib, vid):
    lib.collections.update("CS101", name="CS101 renamed")
    lib.collections.update("CS101 renamed", name="CS101")


CALLS = [
    (_read, "viewer"),
    (_transcript, "viewer"),
    (_edit_meta, "editor"),
    (_tag, "editor"),
    (_rename, "owner"),
]


@pytest.mark.parametrize("role", ["viewer", "editor", "owner"])
@pytest.mark.parametrize(("call", "needs"), CALLS, ids=[c.__name__.strip("_") for c, _ in CALLS])
def test_every_call_asks_the_policy(course, role, call, needs):
    lib = library_for(course, "bob", role)
    _, _, video_id = course
    info = lib.collections.get("CS101")
    assert info.role == role and info.owner == "ada"
    if role_rank(role) >= role_rank(needs):
        call(lib, video_id)
    else:
        with pytest.raises(Forbidden) as err:
            call(lib, video_id)
        assert needs in err.value.message and err.value.status == 403


def test_only_the_owner_deletes_and_a_viewer_cannot_ingest(course, media_server):
    viewer = library_for(course, "bob", "viewer")
    editor = library_for(course, "bob", "editor")
    with pytest.raises(Forbidden):
        viewer.collections.delete("CS101")
    with pytest.raises(Forbidden):
        editor.collections.delete("CS101")
    with pytest.raises(Forbidden):
        viewer.ingest(media_server.url("lecture.html"), "CS101", captions="only")
    # the collection and its video are untouched by the refusals
    assert viewer.collections.get("CS101").video_count == 1


def test_a_shared_video_cannot_be_deleted_by_someone_who_may_not_change_every_collection_holding_it(course):
    _, _, video_id = course
    editor = library_for(course, "bob", "editor")
    editor.collections.create("Bob's notes")
    editor.videos.add_to("Bob's notes", video_id)  # bob may read the video, so he may add it
    assert editor.videos.get(video_id).collections == ["Bob's notes", "CS101"]
    bob_alone = library_for(course, "bob")
    with pytest.raises(Forbidden) as err:
        bob_alone.videos.delete(video_id)  # it is also in CS101, which he may not change
    assert "CS101" in err.value.message
    assert bob_alone.videos.remove_from("Bob's notes", video_id) == 1
    assert library_for(course, "ada").videos.get(video_id).collections == ["CS101"]
