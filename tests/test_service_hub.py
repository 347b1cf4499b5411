"""JupyterHub itself starts the real service (``python -m vidrag_hub``) from vidrag's
configuration, and a user's token reaches it through the hub's proxy."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.support.service import ServiceHub

pytestmark = [pytest.mark.hub, pytest.mark.slow]


def test_the_hub_starts_the_service_and_proxies_to_it(tmp_path):
    hub = ServiceHub(tmp_path / "hub", start_service=True).start()
    try:
        hub.user("alice")
        token = hub.token("alice")
        base = f"{hub.hub.url}/services/vidrag"
        deadline = time.monotonic() + 60
        reply = None
        while time.monotonic() < deadline:
            try:
                reply = httpx.get(f"{base}/api/me", headers={"Authorization": f"token {token}"}, timeout=10)
                if reply.status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        assert reply is not None and reply.status_code == 200, hub.hub.log()[-3000:]
        assert reply.json()["name"] == "alice"
        assert httpx.get(f"{base}/api/me", timeout=10).status_code == 401
        spec = httpx.get(f"{base}/openapi.json", timeout=10).json()
        assert "/services/vidrag/api/collections" in spec["paths"]
        assert token not in hub.hub.log()
    finally:
        survivors = hub.stop()
    assert survivors == [], survivors


def test_the_service_loads_its_embedding_model_ahead_and_freezes_what_lives_forever(tmp_path):
    """``vidrag_hub.__main__.warm``: the embedder is loaded before the first question, and
    the objects alive then are out of the garbage collector's full collections."""
    import gc
    from types import SimpleNamespace

    from vidrag_hub.__main__ import warm

    from tests.support.settings import make_settings
    from vidrag_kernel import embed

    settings = make_settings(tmp_path / "home")
    gc.unfreeze()
    try:
        warm(SimpleNamespace(kernel_settings=settings))
        assert gc.get_freeze_count() > 10_000  # the libraries and the model
        assert embed.get_embedder(settings).name in embed._models
    finally:
        gc.unfreeze()
