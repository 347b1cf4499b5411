"""``python -m vidrag_hub`` / ``vidrag-hub``: serve the app on uvicorn where the hub expects it.

JupyterHub starts the service with ``JUPYTERHUB_SERVICE_URL`` (host and port to listen
on), ``JUPYTERHUB_SERVICE_PREFIX`` and the service's API token in its environment.
"""

from __future__ import annotations

import logging
import sys


def main(argv: list[str] | None = None) -> int:
    """Read the settings from the environment and serve until stopped."""
    import uvicorn

    from vidrag_kernel.errors import VidragError

    from .app import make_app
    from .settings import ServiceSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s vidrag_hub %(levelname)s %(message)s")
    try:
        settings = ServiceSettings.from_env()
    except (ValueError, VidragError) as exc:
        print(f"vidrag-hub: {exc}", file=sys.stderr)
        return 2
    if not settings.hub_api_token:
        print("vidrag-hub: no JUPYTERHUB_API_TOKEN: start the service from JupyterHub", file=sys.stderr)
        return 2
    app = make_app(settings)
    runner = app.state.service.ingest_workers()
    if runner is not None:
        # the cluster starts before the web server, and requeues jobs a previous run left
        runner.start()
        app.state.runner = runner
    try:
        # access_log off: request lines carry query strings, and a token must never reach a log
        uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_level="info")
    finally:
        if runner is not None:
            runner.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
