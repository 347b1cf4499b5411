"""The dashboards on a Workbench with the vidrag service: "My collections" and "Shared with
me", a viewer's read-only cards, the Sharing card and the pending-invites banner.

Real JupyterHub (users, groups, tokens), the real service app in-process (``make_app``
through FastAPI's TestClient, passed to ``ServiceLibrary`` as ``http=``), real catalogs; the
Panel objects are driven from Python as a browser session would (clicks call the same
handlers)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from vidrag_hub.app import make_app
from vidrag_hub.auth import HubUser

from tests.support.service import ServiceHub
from tests.support.settings import make_settings
from vidrag_kernel import Workbench
from vidrag_kernel.shared import ServiceLibrary

pytestmark = [pytest.mark.hub, pytest.mark.slow]


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    hub = ServiceHub(tmp_path_factory.mktemp("dash-hub")).start()
    for name in ("ada", "sam", "kim", "lee"):
        hub.user(name)
    hub.group("instructors", ["ada"])
    hub.group("cs101", ["sam", "kim"])
    app = make_app(hub.settings(tmp_path_factory.mktemp("dash-root")))
    with TestClient(app, raise_server_exceptions=False) as http:
        lib = app.state.service.library(HubUser("ada", groups=frozenset({"instructors"})))
        lib.collections.create("Sample course", instructor="Ada")
        yield hub, http
    assert hub.stop() == []


@pytest.fixture
def workbench(service, tmp_path):
    hub, http = service

    # not closed: closing a Workbench closes its service client, here the module's TestClient
    def make(user: str) -> Workbench:
        shared = ServiceLibrary("http://testserver/services/vidrag/api/", hub.token(user), http=http)
        return Workbench(make_settings(tmp_path / user, user=user), libraries=[shared])

    return make


def manager_and_chat(wb):
    from vidrag_dashboards.chat_panel import ChatPanel
    from vidrag_dashboards.collection_manager import CollectionManager
    from vidrag_dashboards.state import AppState

    state = AppState(wb)
    return state, CollectionManager(state), ChatPanel(state)


def focus(state, manager, name: str) -> None:
    """Pick ``name`` in the manager's picker, as a person would."""
    from vidrag_dashboards.scopes import flat

    [value] = [v for label, v in flat(manager.collections.picker.groups).items() if label.startswith(name)]
    manager.collections.picker.value = value
    assert state.collection == value


def test_picker_and_list_group_my_collections_and_those_shared_with_me(workbench):
    ada = workbench("ada")
    ada.service.sharing.share("Sample course", group="cs101")  # viewers by default
    sam = workbench("sam")
    sam.collections.create("My notes")

    state, manager, chat = manager_and_chat(sam)
    groups = chat.scope.groups
    assert list(groups) == ["Everything", "My collections", "Shared with me"]
    assert any(label.startswith("My notes") for label in groups["My collections"])
    [shared] = groups["Shared with me"]
    assert shared.startswith("Sample course") and "ada's" in shared and "viewer" in shared
    assert "Sample course" not in " ".join(groups["My collections"])

    picker = manager.collections.picker.groups
    assert list(picker) == ["My collections", "Shared with me"]
    table = manager.collections.table.value.set_index("name")
    assert table.loc["Sample course", "list"] == "Shared with me"
    assert table.loc["Sample course", "owner"] == "ada" and table.loc["Sample course", "role"] == "viewer"
    assert table.loc["My notes", "list"] == "My collections"
    assert list(table["list"]) == sorted(table["list"])  # mine first, as the groups show them
    assert manager.collections.table.groupby == ["list"]

    # for the owner the course is one of "My collections"
    _, _, ada_chat = manager_and_chat(ada)
    assert any(label.startswith("Sample course") for label in ada_chat.scope.groups["My collections"])


def test_a_viewer_sees_no_add_edit_or_delete_controls_and_a_refusal_is_a_message(workbench):
    ada = workbench("ada")
    ada.service.sharing.share("Sample course", user="lee")
    lee = workbench("lee")
    lee.collections.create("Own notes")
    state, manager, _ = manager_and_chat(lee)
    cards = manager.collections, manager.add_videos, manager.videos

    focus(state, manager, "Own notes")
    assert state.role == "owner" and state.library == "local"
    assert cards[0].save_button.visible and cards[0].delete_button.visible
    assert cards[1]._form.visible and not cards[1].read_only.visible
    assert cards[2].delete_button.visible and cards[2]._tagging.visible and cards[2]._moving.visible

    shared_id = lee.collections.get("Sample course").id
    manager.collections.picker.value = shared_id
    assert state.role == "viewer" and state.library == "shared"
    assert not cards[0].save_button.visible and not cards[0].delete_button.visible
    assert all(f.disabled for f in cards[0]._fields())
    assert not cards[1]._form.visible and cards[1].read_only.visible
    assert not (cards[2].delete_button.visible or cards[2]._tagging.visible or cards[2]._moving.visible)
    assert not manager.sharing.__panel__().visible  # a viewer manages nobody

    # a stale page (or a role taken away meanwhile) still sends the change: the service
    # refuses, and the refusal is the notice line's message, not a traceback
    cards[0].f_name.value = "Renamed"
    assert cards[0].guard(cards[0].save) is False
    status = manager.notices.status
    assert status.visible and status.alert_type == "danger"
    assert "Traceback" not in status.object and "Something went wrong" not in status.object
    assert status.object  # the service's own words
    assert lee.collections.get(shared_id).name == "Sample course"

    # back on my own collection, everything is there again
    focus(state, manager, "Own notes")
    assert cards[0].save_button.visible and cards[1]._form.visible and cards[2]._moving.visible
