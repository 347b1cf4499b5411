"""Run slow work (ingest, answers) off the UI thread and bring results back safely.

Panel callbacks must return quickly, and a Bokeh document may only be changed from the
thread that owns it. So slow work runs on a thread pool, and anything it wants to show
is put on a :class:`UiQueue` as a plain callable; a periodic callback (150 ms) drains the
queue in the document's own context. The same mechanism works under ``panel serve``
(Bokeh server sessions), in Voila and in a notebook (ipywidgets comms), where Panel runs
periodic callbacks on the kernel's event loop.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import panel as pn

log = logging.getLogger(__name__)

#: Ingests share the data directory's index lock, so one at a time per process is plenty.
_INGEST_POOL = ThreadPoolExecutor(max_workers=1, thread_name_prefix="vidrag-ingest")
_ANSWER_POOL = ThreadPoolExecutor(max_workers=2, thread_name_prefix="vidrag-answer")


class UiQueue:
    """Callables queued from any thread, run on the UI side by a periodic callback.

    ``start()`` must be called where a document is current (while a session is being
    built, or in a notebook cell); before that, and in plain scripts and tests, ``drain()``
    runs everything queued so far.
    """

    period_ms = 150

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Callable[[], Any]] = queue.SimpleQueue()
        self._callback = None

    def put(self, fn: Callable[[], Any]) -> None:
        """Queue ``fn`` to run on the UI side (safe from any thread)."""
        self._queue.put(fn)

    def start(self) -> None:
        """Begin draining periodically (idempotent)."""
        if self._callback is None:
            self._callback = pn.state.add_periodic_callback(self.drain, period=self.period_ms)

    def stop(self) -> None:
        if self._callback is not None:
            self._callback.stop()
            self._callback = None

    def drain(self) -> int:
        """Run everything queued; returns how many ran. One failing update never stops the rest."""
        n = 0
        while True:
            try:
                fn = self._queue.get_nowait()
            except queue.Empty:
                return n
            n += 1
            try:
                fn()
            except Exception:  # a broken update must not kill the periodic callback
                log.exception("dashboard update failed")


def run_in_background(
    ui: UiQueue,
    work: Callable[[], Any],
    *,
    on_done: Callable[[Any], Any] | None = None,
    on_error: Callable[[BaseException], Any] | None = None,
    kind: str = "answer",
) -> Future:
    """Run ``work()`` on a worker thread; ``on_done(result)`` / ``on_error(exc)`` run on the UI side."""
    pool = _INGEST_POOL if kind == "ingest" else _ANSWER_POOL

    def job():
        try:
            result = work()
        except BaseException as exc:
            log.debug("background %s failed", kind, exc_info=True)
            if on_error is not None:
                ui.put(lambda exc=exc: on_error(exc))
            return None
        if on_done is not None:
            ui.put(lambda: on_done(result))
        return result

    return pool.submit(job)


class Throttle:
    """Coalesce frequent updates (streamed text, progress) into at most one per UI tick."""

    def __init__(self, ui: UiQueue, apply: Callable[[Any], Any]) -> None:
        self._ui = ui
        self._apply = apply
        self._lock = threading.Lock()
        self._pending = False
        self._value: Any = None

    def push(self, value: Any) -> None:
        with self._lock:
            self._value = value
            if self._pending:
                return
            self._pending = True
        self._ui.put(self._flush)

    def _flush(self) -> None:
        with self._lock:
            value, self._pending = self._value, False
        self._apply(value)
