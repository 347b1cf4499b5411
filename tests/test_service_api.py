"""Fuzz the service's OpenAPI description with schemathesis, in-process (ASGI), against a
real JupyterHub: every operation, with generated bodies, queries and paths, sent with a
valid user's token (an editor of a real collection, whose ids half the cases use).

Whatever comes in: no server error, no traceback, and no token in any response. The one
5xx allowed is the service's own 503 for ingest work when no ingest runner is running
(this app has none), recognised by its error kind.
"""

from __future__ import annotations

from collections import Counter

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from vidrag_hub.app import make_app
from vidrag_hub.auth import HubUser

from tests.support.service import ServiceHub

pytestmark = [pytest.mark.hub, pytest.mark.slow]

OPENAPI = "/services/vidrag/openapi.json"


@pytest.fixture(scope="module")
def hub(tmp_path_factory):
    hub = ServiceHub(tmp_path_factory.mktemp("fuzz-hub")).start()
    for name in ("alice", "bob"):
        hub.user(name)
    hub.group("instructors", ["alice"])
    yield hub
    assert hub.stop() == []


@pytest.fixture(scope="module")
def service_app(hub, tmp_path_factory, media_server):
    app = make_app(hub.settings(tmp_path_factory.mktemp("fuzz-shared")))
    from vidrag_hub import sharing

    from vidrag_kernel.catalog import Collection

    lib = app.state.service.library(HubUser("alice"))
    course = lib.collections.create("Fuzzed course")
    [result] = lib.ingest(media_server.url("lecture.html"), course.id, captions="only")
    assert result.status == "done", result.error
    with app.state.service.catalog.session() as s:
        row = s.get(Collection, course.id)
        sharing.grant(s, row, "user", "bob", "editor", "alice")
        link, _token = sharing.create_link(s, row, "viewer", "alice")
        link_id = link.id
    tokens = {"bob": hub.token("bob"), "alice": hub.token("alice")}
    app.state.fuzz = {
        "collection_id": course.id,
        "video_id": result.video_id,
        "link_id": link_id,
        "tokens": tokens,
    }
    return app


@pytest.fixture(scope="module")
def api_schema(service_app):
    return schemathesis.openapi.from_asgi(OPENAPI, service_app)


MAX_EXAMPLES = 15  # per operation: under 40 operations, a couple of minutes in all


def check(app, case) -> int:
    """Send one generated case as bob, check what came back, return its status."""
    fuzz = app.state.fuzz
    reply = case.call(headers={"Authorization": f"token {fuzz['tokens']['bob']}"})
    where = f"{case.method} {case.formatted_path} -> {reply.status_code}"
    text = reply.text
    if reply.status_code >= 500:
        assert reply.status_code == 503 and reply.json()["error"] == "unavailable", (where, text)
        assert app.state.runner is None
    assert "Traceback" not in text and 'File "' not in text, where
    for token in fuzz["tokens"].values():
        assert token not in text, where
    if reply.status_code >= 400:
        problem = reply.json()
        # at least these three (a 429 also names its metric, limit, usage and upgrade path);
        # no field carries a traceback or a token (checked on the whole text above)
        assert {"error", "status", "message"} <= set(problem), (where, text)
        assert problem["status"] == reply.status_code, where
        assert all(isinstance(v, str | int | float | bool | type(None)) for v in problem.values()), where
    return reply.status_code


def cases(operation, ids: dict[str, str]):
    """Valid cases, valid cases on the real collection (and video, link), and invalid ones."""
    from schemathesis import GenerationMode

    real = {name: value for name, value in ids.items() if "{" + name + "}" in operation.path}
    strategies = [operation.as_strategy(), operation.as_strategy(GenerationMode.NEGATIVE)]
    if real:
        strategies.append(operation.as_strategy(path_parameters=real))
    return st.one_of(strategies)


def fuzz_one(app, operation, ids: dict[str, str], seen: Counter, worked: set) -> None:
    """One hypothesis run of ``operation``: statuses counted in ``seen``, the operation's
    label added to ``worked`` once a case succeeds."""

    @given(case=cases(operation, ids))
    @settings(
        max_examples=MAX_EXAMPLES,
        deadline=None,
        derandomize=True,  # the same cases on every run: a failure is reproducible
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    def run(case):
        status = check(app, case)
        seen[status] += 1
        if status < 300:
            worked.add(operation.label)

    run()


def test_no_server_error_traceback_or_token_whatever_is_sent(api_schema, service_app):
    # one hypothesis run per operation, driven here: schemathesis's pytest plugin
    # (from_fixture) does not work with this pytest, and the app needs the hub fixture
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) == sum(len(ops) for ops in service_app.openapi()["paths"].values())
    ids = {k: service_app.state.fuzz[k] for k in ("collection_id", "video_id", "link_id")}
    seen: Counter[int] = Counter()
    worked = set()
    for operation in operations:
        fuzz_one(service_app, operation, ids, seen, worked)
    # the cases reached the routes' work, not only their refusals
    assert "GET /services/vidrag/api/collections/{collection_id}" in worked, (sorted(worked), seen)
    assert seen[404] and seen[422], seen
