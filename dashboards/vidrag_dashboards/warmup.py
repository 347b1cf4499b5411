"""A dashboard kernel's first steps before anyone asks for its page, when Voilà pre-heated it.

In a user's server, :mod:`vidrag_dashboards.preheat` keeps a kernel waiting for the landing
page: Voilà starts it and runs the notebook in it before a visitor comes. The workbench
notebook builds and shows its app, then calls :func:`wait_for_visitor`: in a pre-heated
kernel it waits until a page takes the kernel and puts the visitor's request
(``QUERY_STRING``, ``SCRIPT_NAME``...) in ``os.environ``, as Voilà does for a kernel it starts
for a request, and the app is then brought up to date for that visitor
(``vidrag_dashboards.wait_for_visitor``). In any other kernel it returns at once.

This module is imported by the kernel and by the server extension; it imports nothing heavy.
"""

from __future__ import annotations

import json
import logging
import os
import threading

log = logging.getLogger(__name__)

#: Set to "True" by Voilà in the kernels it pre-heats.
PREHEAT_VARIABLE = "VOILA_PREHEAT"
#: The variable and header that carry a pooled kernel's key to the request-info socket.
KEY_VARIABLE = "VIDRAG_PREHEAT_KEY"
KEY_HEADER = "X-Vidrag-Preheat-Key"


def preheated() -> bool:
    """Whether this kernel was started by Voilà ahead of a visitor (a pre-heated kernel)."""
    return os.environ.get(PREHEAT_VARIABLE) == "True"


def request_info_url() -> str:
    """The server's request-info socket for this kernel (``vidrag_dashboards.preheat``)."""
    env = os.environ
    return (
        f"{env.get('VOILA_WS_PROTOCOL', 'ws')}://{env.get('VOILA_APP_IP', '127.0.0.1')}:"
        f"{env.get('VOILA_APP_PORT', '8888')}{env.get('VOILA_SERVER_URL', '/')}"
        f"voila/query/{env.get('VOILA_KERNEL_ID', '')}"
    )


def wait_for_visitor() -> dict[str, str]:
    """In a pre-heated kernel: wait for the visitor's request and put it in ``os.environ``;
    the request's variables (empty elsewhere, or when the server sent none).

    An unreachable socket is logged, not raised: the page then shows as it was built,
    only without what the request's query string asks for."""
    if not preheated():
        return {}
    info = _receive(request_info_url(), os.environ.get(KEY_VARIABLE, ""))
    os.environ.update(info)
    return info


def _receive(url: str, key: str) -> dict[str, str]:
    """The first message of the request-info socket, read on a thread of its own (the
    kernel's event loop may be running the cell that calls this)."""
    result: dict[str, str] = {}

    async def receive() -> None:
        import websockets

        # no pings: the kernel may wait for hours, and a busy server loop must not drop it
        async with websockets.connect(
            url, additional_headers={KEY_HEADER: key}, open_timeout=10, ping_interval=None
        ) as socket:
            message = await socket.recv()
        result.update({str(k): str(v) for k, v in json.loads(message).items()})

    def run() -> None:
        import asyncio

        try:
            asyncio.run(receive())
        except Exception:
            log.warning("no request info from %s", url.rsplit("/", 1)[0], exc_info=True)

    thread = threading.Thread(target=run, name="vidrag-wait-for-visitor", daemon=True)
    thread.start()
    thread.join()
    return result


def before_widget_states(fn) -> bool:
    """Have ``fn()`` run before this kernel answers a browser's request for the state of
    its widgets (``request_states`` on ipywidgets 8's ``jupyter.widget.control`` comm:
    what a Voila page sends when it connects, before it renders any widget). ``fn`` must
    be safe to call more than once (the caller may run it first). False, and nothing
    done, when this ipywidgets answers that request elsewhere: then call ``fn`` yourself.

    The request is answered on the kernel's event loop, so ``fn`` runs there too, where a
    Bokeh document may be changed."""
    try:
        from ipywidgets import Widget
    except ImportError:
        return False
    answer = Widget.__dict__.get("_handle_control_comm_msg")
    if not isinstance(answer, classmethod):
        return False
    answer = getattr(answer, "_vidrag_answer", answer)  # one wrapper, whatever the number of calls

    def handle(cls, msg):
        if (msg.get("content", {}).get("data") or {}).get("method") == "request_states":
            try:
                fn()
            except Exception:  # the page must still get its widgets
                log.exception("bringing the page up to date failed")
        return answer.__func__(cls, msg)

    wrapped = classmethod(handle)
    wrapped._vidrag_answer = answer
    Widget._handle_control_comm_msg = wrapped
    return True
