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


def click(button) -> None:
    button.clicks += 1  # what a browser's click sends: runs the on_click handlers


def test_the_sharing_card_lists_members_invites_and_manages_links(workbench):
    ada = workbench("ada")
    ada.collections.create("Lab", library="shared")
    ada.service.sharing.share("Lab", user="lee", role="editor")
    state, manager, _ = manager_and_chat(ada)
    card = manager.sharing
    focus(state, manager, "Lab")
    assert state.may_share and card.__panel__().visible
    members = {(r["who"], r["kind"], r["role"]) for _, r in card.members.value.iterrows()}
    assert members == {("ada", "user", "owner"), ("lee", "user", "editor")}

    # invite a user: kim's banner offers it, accepting lists Lab under "Shared with me"
    card.invite_kind.value, card.invite_name.value = "user", "kim"
    click(card.invite_button)
    assert "Invited" in manager.notices.status.object, manager.notices.status.object
    kim_state, kim_manager, kim_chat = manager_and_chat(workbench("kim"))
    banner = kim_manager.invites
    assert banner.box.visible and len(banner.rows) == 1 and "Lab" in banner.rows[0][0].object
    click(banner.rows[0][1])  # Accept
    assert not banner.box.visible and "joined" in banner.notices.status.object
    assert any(label.startswith("Lab") for label in kim_chat.scope.groups["Shared with me"])
    assert kim_state.role == "viewer" and not kim_manager.sharing.__panel__().visible
    state.changed()
    assert "kim" in list(card.members.value["who"]) and card.remove_button.visible

    # the owner removes a member, after confirming
    card.members.selection = [list(card.members.value["who"]).index("kim")]
    click(card.remove_button)
    assert manager.notices.confirm_row.visible and "kim" in manager.notices.confirm_text.object
    click(manager.notices.confirm_button)
    assert "kim" not in list(card.members.value["who"])
    assert "Lab" not in [c.name for c in kim_state.wb.collections.list()]
    card.members.selection = [0]  # the owner's own row
    click(card.remove_button)
    assert "owner cannot be removed" in manager.notices.status.object

    # a group invite, declined by one of its members, shares nothing with them
    card.invite_kind.value, card.invite_name.value = "group", "cs101"
    click(card.invite_button)
    sam_state, sam_manager, _ = manager_and_chat(workbench("sam"))
    [row] = sam_manager.invites.rows
    click(row[2])  # Decline
    assert not sam_manager.invites.box.visible and "Declined" in sam_manager.invites.notices.status.object
    assert "Lab" not in [c.name for c in sam_state.wb.collections.list()]

    # an e-mail invite's link is shown once, to send; a bad address is refused in words
    card.invite_kind.value, card.invite_name.value = "email", "guest@example.org"
    click(card.invite_button)
    assert "token=" in card.invite_result.object and "guest@example.org" in card.invite_result.object
    card.invite_kind.value, card.invite_name.value = "email", "not-an-address"
    click(card.invite_button)
    assert manager.notices.status.alert_type == "danger"
    assert "not an e-mail address" in manager.notices.status.object

    # a link for one use, copied, used, then revoked
    card.link_expiry.value, card.link_uses.value, card.link_note.value = 1, 1, "week 1"
    click(card.link_button)
    link = card.new_link.value
    assert card.new_link.visible and card.copy_button.visible and "/join/" in link
    [row] = card.links.value.to_dict("records")
    assert (row["uses"], row["state"], row["note"]) == ("0 of 1", "active", "week 1")
    workbench("sam").service.sharing.redeem(link)
    state.changed()  # any change refreshes the card
    [row] = card.links.value.to_dict("records")
    assert (row["uses"], row["state"]) == ("1 of 1", "used up")
    card.links.selection = [0]
    assert not card.revoke_button.disabled
    click(card.revoke_button)
    assert card.links.value.to_dict("records")[0]["state"] == "revoked"
    assert "revoked" in manager.notices.status.object

    # the editor sees the card too; a personal collection has none
    lee_state, lee_manager, _ = manager_and_chat(workbench("lee"))
    focus(lee_state, lee_manager, "Lab")
    assert lee_manager.sharing.__panel__().visible and len(lee_manager.sharing.links.value) == 1
    assert not lee_manager.sharing.remove_button.visible  # an editor invites, the owner grants
    lee_state.wb.collections.create("Private")
    lee_state.changed()
    focus(lee_state, lee_manager, "Private")
    assert not lee_manager.sharing.__panel__().visible


def test_the_workbench_shows_pending_invites_above_its_tabs(workbench):
    from vidrag_dashboards.app import WorkbenchApp

    ada = workbench("ada")
    ada.collections.create("Seminar", library="shared")
    ada.service.sharing.invite("Seminar", user="kim")
    app = WorkbenchApp(workbench("kim"))
    assert app.manager.invites is None  # one banner per page, above the tabs
    assert app.invites.box.visible
    [row] = [r for r in app.invites.rows if "Seminar" in r[0].object]
    click(row[1])
    assert any(label.startswith("Seminar") for label in app.chat.scope.groups["Shared with me"])
    assert app.manager.collections.table.value.set_index("name").loc["Seminar", "list"] == "Shared with me"
    app.__panel__().get_root()  # renders to a Bokeh model


def test_without_the_service_there_is_no_sharing_card_and_no_banner(settings):
    from vidrag_dashboards.app import WorkbenchApp

    with Workbench(settings, libraries=()) as wb:
        app = WorkbenchApp(wb)
        assert wb.service is None and app.invites is None and app.manager.sharing is None
        assert list(app.chat.scope.groups) == ["Everything", "My collections"]


@pytest.mark.browser
def test_sharing_and_invites_in_a_browser_pass_axe(workbench, browser):
    """The owner's Sharing card with a link made from the page, and an invitee's banner,
    served by Panel in this process (the Workbenches reach the in-process service), each
    with no serious or critical axe-core violation."""
    import panel as pn
    from vidrag_dashboards.app import CSS, EXTENSIONS, WorkbenchApp

    from tests.support.browser import Shots, check_accessibility, describe_violations, serve_panel
    from tests.support.hub import free_port

    ada, kim = workbench("ada"), workbench("kim")
    ada.collections.create("Studio", library="shared")
    ada.service.sharing.invite("Studio", user="kim", role="editor")
    # earlier tests of this module may have left kim other invites: the banner shows one
    for invite in kim.service.sharing.invites():
        if invite.collection != "Studio":
            kim.service.sharing.decline(invite.id)
    pn.extension(*EXTENSIONS, raw_css=[CSS])
    port = free_port()
    server = serve_panel(
        {"ada": lambda: WorkbenchApp(ada).template(), "kim": lambda: WorkbenchApp(kim).template()},
        port,
    )
    try:
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.set_default_timeout(30_000)
        shot = Shots(page, "sharing")
        with shot.on_failure():
            page.goto(f"http://127.0.0.1:{port}/ada")
            page.get_by_role("tab", name="Collections").click()
            page.get_by_label("Collection", exact=True).select_option(label="Studio · shared by you")
            page.get_by_text("Share links").wait_for()
            page.get_by_role("button", name="Create link").click()
            page.get_by_text("shown only this once").wait_for()
            assert "/join/" in page.get_by_label("New share link").input_value()
            page.get_by_role("button", name="Copy link").wait_for()
            shot("link created")
            print(describe_violations(check_accessibility(page, "the Sharing card")))

            page.goto(f"http://127.0.0.1:{port}/kim")
            page.get_by_text("Invites waiting for you").wait_for()
            shot("invite")
            print(describe_violations(check_accessibility(page, "the invites banner")))
            page.get_by_role("button", name="Accept").click()
            page.get_by_text("You joined").wait_for()
            shot("accepted")
        assert not errors, errors
        page.close()
    finally:
        server.stop()
