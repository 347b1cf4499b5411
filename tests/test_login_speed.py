"""What makes the chat quick after login: the landing page's pre-heated Voila kernel, and a
dashboard kernel that loads no model to answer from a shared collection.

A real JupyterHub runs ``make run``'s configuration with the real service (demo login, the
instructor's shared "Sample course" seeded as ``make run`` seeds it, the ``cs101`` group as
viewers). The student's server is started by the hub; its landing page is fetched with the
student's token, and the kernel that page runs on is asked (over the kernel's websocket)
what it knows: that Voila pre-heated it before the request, that it got the request's query
string, and, after it answered a question on the shared course, that no embedding or
speech model was imported. Nothing here is timed: ``benchmarks/login.py`` measures.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from pathlib import Path

import httpx
import pytest

from hub_config.options import VidragHubOptions
from hub_config.spawning import preheat_args
from tests.support.hub import execute_in_kernel
from tests.support.service import ServiceHub

LANDING = "/user/student/voila/render/vidrag/workbench.ipynb"
#: Modules a shared-collection answer must not pull into the dashboard kernel.
MODELS = ("sentence_transformers", "torch", "transformers", "faster_whisper", "ctranslate2", "faiss")


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    from hub_config.seed import seed_shared

    hub = ServiceHub(tmp_path_factory.mktemp("login-hub"), start_service=True)
    hub.hub.env.update(VIDRAG_DEMO_USERS="instructor,student", VIDRAG_INGEST_WORKERS="0")
    course = seed_shared(Path(hub.hub.env["VIDRAG_HOME"]) / "shared", "instructor", "cs101")
    hub.hub.start(timeout=180)
    hub.course = course
    yield hub
    assert hub.stop() == []


@pytest.fixture(scope="module")
def student(hub) -> str:
    """The student's server, started by the hub (as a login would); the student's token."""
    hub.ok("POST", "/users/student/server")
    hub.hub.wait_ready("student")
    return hub.token("student")


@pytest.mark.hub
@pytest.mark.slow
def test_the_landing_page_runs_on_a_preheated_kernel_and_a_shared_answer_loads_no_model(hub, student):
    token = student
    auth = {"Authorization": f"token {token}"}
    base = hub.hub.url

    # the pool's kernel starts with the server, before anyone asks for the page
    deadline = time.monotonic() + 120
    kernels: list = []
    while not kernels and time.monotonic() < deadline:
        kernels = httpx.get(f"{base}/user/student/api/kernels", headers=auth, timeout=30).json()
        time.sleep(0.5)
    started_before = {k["id"] for k in kernels}
    assert started_before, "no kernel was started ahead of the page"

    page = httpx.get(f"{base}{LANDING}?collection={hub.course}", headers=auth, timeout=240)
    assert page.status_code == 200, page.text[:500]
    kernel_id = re.search(r'"kernelId":\s*"([0-9a-f-]+)"', page.text).group(1)
    assert kernel_id in started_before
    assert "application/vnd.jupyter.widget-view+json" in page.text  # the app was rendered
    assert "Using pre-heated kernel" in hub.hub.log()

    def in_kernel(code: str) -> dict:
        """What ``code`` prints (JSON), run in the page's kernel."""
        return json.loads(execute_in_kernel(base, "student", token, kernel_id, timeout=120, code=code))

    def seen() -> dict:
        return in_kernel(
            "import json, os\n"
            "print(json.dumps({k: os.environ.get(k) for k in ('VOILA_PREHEAT', 'QUERY_STRING')}"
            " | {'focus': app.state.collection}))"
        )

    # pre-heated by Voila, and the visitor's request reached it (the join page's ?collection=)
    first = seen()
    assert first["VOILA_PREHEAT"] == "True" and first["QUERY_STRING"] == f"collection={hub.course}"
    # the page was brought up to date for its visitor: the link's collection in focus
    deadline = time.monotonic() + 60
    while first["focus"] != hub.course and time.monotonic() < deadline:
        time.sleep(1)
        first = seen()
    assert first["focus"] == hub.course

    # the chat's own call (ChatPanel.ask runs it on a worker thread)
    answered = in_kernel(
        "import json, sys\n"
        "items = list(app.chat.wb.ask_stream('What do routers keep to decide where packets go?',"
        f" collection={hub.course!r}))\n"
        f"print(json.dumps({{'citations': len(items[-1].citations), 'loaded': [m for m in {MODELS!r} if m in sys.modules]}}))"
    )
    assert answered["citations"] > 0, answered
    assert answered["loaded"] == [], f"a shared answer imported {answered['loaded']} in the dashboard kernel"


@pytest.mark.hub
@pytest.mark.slow
def test_the_request_info_socket_refuses_anyone_without_the_servers_key(hub, student):
    import websocket

    url = f"{hub.hub.url.replace('http', 'ws', 1)}/user/student/voila/query/{uuid.uuid4()}"
    with pytest.raises(websocket.WebSocketBadStatusException) as refused:
        websocket.create_connection(url, timeout=30)
    assert refused.value.status_code == 403


def test_the_pool_follows_its_setting():
    notebook = "--PreheatKernelManager.notebooks=vidrag/chat.ipynb"
    args = preheat_args(
        VidragHubOptions(environ={"VIDRAG_LANDING_NOTEBOOK": "chat.ipynb", "VIDRAG_PREHEAT_KERNELS": "2"})
    )
    assert notebook in args and "--VoilaConfiguration.default_pool_size=2" in args
    assert preheat_args(VidragHubOptions(environ={"VIDRAG_PREHEAT_KERNELS": "0"})) == []
    # JupyterLab as the landing page: no dashboard to pre-heat
    assert preheat_args(VidragHubOptions(environ={"VIDRAG_LAND_ON_DASHBOARD": "false"})) == []
