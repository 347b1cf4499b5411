"""Server-Sent Events the service sends: a job's progress and a streamed answer.

The wire format (``text/event-stream``), for the service's clients:

- job progress (``GET api/jobs/{id}/events``): one unnamed event per change of state or
  progress, whose data is the job's status JSON (as ``GET api/jobs/{id}``); the stream
  ends after the event that shows ``done`` or ``failed``. A ``: keep-alive`` comment is
  sent when nothing changed for a while, so proxies do not close a quiet stream.
- a streamed answer (``POST api/collections/{id}/ask/stream``): unnamed events whose data
  is ``{"text": piece}``, then one ``event: answer`` whose data is the full answer JSON
  (as ``POST .../ask`` returns it). A failure after the stream started is one
  ``event: error`` with the error JSON (``error``, ``status``, ``message``), then the end.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

from fastapi.concurrency import run_in_threadpool
from starlette.responses import StreamingResponse

from vidrag_kernel.errors import VidragError
from vidrag_kernel.jobs import ACTIVE

log = logging.getLogger("vidrag_hub")

#: seconds between two looks at a job's row (the workers' progress lands there)
POLL_SECONDS = 0.5
#: seconds of silence after which a keep-alive comment goes out
KEEPALIVE_SECONDS = 15.0
#: the error a client sees when something unexpected breaks a stream (details go to the log)
INTERNAL = {
    "error": "error",
    "status": 500,
    "message": "Internal error in the vidrag service; its log has the details",
}


class EventStream(StreamingResponse):
    """A ``text/event-stream`` response (also what the OpenAPI description says)."""

    media_type = "text/event-stream"

    def __init__(self, content: Any, status_code: int = 200, **kwargs: Any) -> None:
        # no-cache and no proxy buffering: each event must reach the client as it is sent
        headers = {
            "Cache-Control": "no-cache",
            "X-Accel-Buffering": "no",
            **(kwargs.pop("headers", None) or {}),
        }
        super().__init__(content, status_code=status_code, headers=headers, **kwargs)


def event(data: Any, name: str | None = None) -> str:
    """One SSE event with ``data`` as JSON (one line, so no text can break the framing)."""
    head = f"event: {name}\n" if name else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False, separators=(',', ':'))}\n\n"


def answer_events(first: Any, rest: Iterator[Any]) -> Iterator[str]:
    """The events of a streamed answer: ``first`` (already taken, so that errors before any
    text are ordinary HTTP errors) and the rest of the kernel's ``ask_stream``."""
    item = first
    try:
        while True:
            if isinstance(item, str):
                yield event({"text": item})
            else:
                yield event(item.to_dict(), "answer")
                return
            item = next(rest)
    except StopIteration:
        return
    except VidragError as exc:
        yield event(exc.to_dict(), "error")
    except Exception:
        log.exception("a streamed answer failed")
        yield event(INTERNAL, "error")


async def job_events(
    status: Callable[[], dict],
    first: dict,
    disconnected: Callable[[], Any],
    *,
    interval: float = POLL_SECONDS,
) -> AsyncIterator[str]:
    """Events for each change of a job's state or progress, from ``first`` (its status now)
    until it is no longer active or the client goes away. ``status`` is called in a thread."""
    current, last, quiet_since = first, None, time.monotonic()
    while True:
        seen = (current["state"], current["progress"])
        if seen != last:
            yield event(current)
            last, quiet_since = seen, time.monotonic()
        elif time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
            yield ": keep-alive\n\n"
            quiet_since = time.monotonic()
        if current["state"] not in ACTIVE:
            return
        await asyncio.sleep(interval)
        if await disconnected():
            return
        try:
            current = await run_in_threadpool(status)
        except VidragError as exc:  # e.g. the job's row was deleted with its collection
            yield event(exc.to_dict(), "error")
            return
