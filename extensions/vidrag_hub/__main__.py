"""``python -m vidrag_hub`` / ``vidrag-hub``: serve the app on uvicorn where the hub expects it.

JupyterHub starts the service with ``JUPYTERHUB_SERVICE_URL`` (host and port to listen
on), ``JUPYTERHUB_SERVICE_PREFIX`` and the service's API token in its environment.
"""

from __future__ import annotations

import logging
import sys
import threading


def main(argv: list[str] | None = None) -> int:
    """Read the settings from the environment and serve until stopped
    (``vidrag-hub billing ...``: the billing commands, ``vidrag_hub.billing_cli``)."""
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["billing"]:
        from .billing_cli import main as billing_main

        return billing_main(args[1:])
    import uvicorn

    from vidrag_kernel.errors import VidragError

    from .app import make_app
    from .billing import BillingConfig
    from .plans import PlanBook
    from .scheduler import check_env
    from .settings import ServiceSettings

    logging.basicConfig(level=logging.INFO, format="%(asctime)s vidrag_hub %(levelname)s %(message)s")
    try:
        settings = ServiceSettings.from_env()
        # the Stripe and schedule variables first, before anything starts or logs: one line
        # if one is wrong
        BillingConfig.from_env(book=PlanBook(settings.plans))
        check_env()
    except (ValueError, VidragError) as exc:
        print(f"vidrag-hub: {exc}", file=sys.stderr)
        return 2
    if not settings.hub_api_token:
        print("vidrag-hub: no JUPYTERHUB_API_TOKEN: start the service from JupyterHub", file=sys.stderr)
        return 2
    try:
        app = make_app(settings)
    except (ValueError, VidragError) as exc:  # e.g. a Stripe variable set wrongly: one line, no traceback
        print(f"vidrag-hub: {exc}", file=sys.stderr)
        return 2
    runner = app.state.service.ingest_workers()
    starting = None
    if runner is not None:
        # The Dask cluster starts beside the web server, not before it: JupyterHub gives a
        # managed service only a few seconds to answer. Until the workers are up, ingest
        # answers 503 (no runner) and everything else works.
        def start() -> None:
            try:
                runner.start()  # also requeues jobs a previous run left unfinished
            except Exception:
                logging.getLogger("vidrag_hub").exception("the ingest workers could not start")
                return
            app.state.runner = runner

        starting = threading.Thread(target=start, name="vidrag-ingest-start", daemon=True)
        starting.start()
    warming = threading.Thread(target=warm, args=(app.state.service,), name="vidrag-warm", daemon=True)
    warming.start()
    # scheduled batch ingests, rebuilt from the database (vidrag_hub.scheduler)
    from .scheduler import Scheduler

    scheduler = Scheduler(app.state.service)

    def schedule() -> None:
        # in the background too (it opens the database); until it runs, run-now answers 503
        try:
            scheduler.start()
        except Exception:
            logging.getLogger("vidrag_hub").exception("the scheduler could not start")
            return
        app.state.scheduler = scheduler

    scheduling = threading.Thread(target=schedule, name="vidrag-scheduler-start", daemon=True)
    scheduling.start()
    try:
        # access_log off: request lines carry query strings, and a token must never reach a log
        uvicorn.run(app, host=settings.host, port=settings.port, access_log=False, log_level="info")
    finally:
        scheduling.join(timeout=60)
        scheduler.stop()
        if starting is not None:
            # closing first ends a start still loading the workers' models, so stopping
            # the service soon after it started does not wait for that
            runner.close()
            starting.join(timeout=30)
    return 0


def warm(service) -> None:
    """Load the embedding model before the first student's question needs it, then move
    everything alive to the garbage collector's permanent generation (``gc.freeze``).

    The models and libraries are half a million objects that live as long as the process.
    A full collection walks all of them: 430 ms here, a pause for every request in flight
    at that moment (the longest searches under load were that long). Frozen, they are never
    walked again; what requests create is collected as before.
    """
    import gc

    from vidrag_kernel.embed import get_embedder

    try:
        get_embedder(service.kernel_settings).embed(["warm-up"])
    except Exception:  # the first search reports a broken model; this only prepares
        logging.getLogger("vidrag_hub").exception("the embedding model could not be loaded ahead of time")
    gc.collect()
    gc.freeze()


if __name__ == "__main__":
    sys.exit(main())
