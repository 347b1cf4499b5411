"""A static media server on 127.0.0.1 for fetch tests, with HTTP Range support.

yt-dlp downloads with Range requests; Python's SimpleHTTPRequestHandler ignores them,
so this handler answers them the way real media hosts do.
"""

from __future__ import annotations

import os
import re
import threading
import time
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


class _Handler(SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # keep test output quiet
        pass

    def _served(self, answer) -> None:
        # count requests in flight, so tests can see fragments fetched in parallel
        server = self.server
        with server.lock:
            server.requests.append(self.path)
            server.in_flight += 1
            server.peak_in_flight = max(server.peak_in_flight, server.in_flight)
        try:
            if server.delay:
                time.sleep(server.delay)
            answer()
        finally:
            with server.lock:
                server.in_flight -= 1

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        self._served(super().do_GET)

    def do_HEAD(self) -> None:  # noqa: N802
        self._served(super().do_HEAD)

    def send_head(self):
        path = self.translate_path(self.path)
        rng = self.headers.get("Range")
        if not rng or not os.path.isfile(path):
            return super().send_head()
        m = re.match(r"bytes=(\d*)-(\d*)", rng)
        size = os.path.getsize(path)
        if not m:
            return super().send_head()
        start = int(m.group(1) or 0)
        end = int(m.group(2)) if m.group(2) else size - 1
        if start >= size:
            self.send_error(416)
            return None
        end = min(end, size - 1)
        f = open(path, "rb")  # noqa: SIM115 - closed by copyfile's caller
        f.seek(start)
        self.send_response(206)
        self.send_header("Content-Type", self.guess_type(path))
        self.send_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.send_header("Content-Length", str(end - start + 1))
        self.send_header("Accept-Ranges", "bytes")
        self.end_headers()
        self._remaining = end - start + 1
        return f

    def copyfile(self, source, outputfile):
        remaining = getattr(self, "_remaining", None)
        if remaining is None:
            return super().copyfile(source, outputfile)
        while remaining > 0:
            buf = source.read(min(65536, remaining))
            if not buf:
                break
            outputfile.write(buf)
            remaining -= len(buf)
        self._remaining = None


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    delay = 0.0

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.lock = threading.Lock()
        self.requests: list[str] = []
        self.in_flight = 0
        self.peak_in_flight = 0

    def handle_error(self, request, client_address) -> None:
        # clients (yt-dlp probing, a browser seeking) drop connections mid-file: not an error
        import sys

        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class LocalServer:
    """An HTTP server on a free 127.0.0.1 port, in a daemon thread, until ``stop()``."""

    def __init__(self, handler) -> None:
        self.httpd = _Server(("127.0.0.1", 0), handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, name: str = "") -> str:
        return f"http://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class MediaServer(LocalServer):
    """Serve ``root`` (with Range requests) on a free 127.0.0.1 port until ``stop()``.

    ``requests`` lists the paths asked for (GET and HEAD); ``peak_in_flight`` is the most
    requests served at once. ``delay`` seconds pass before each answer.
    """

    def __init__(self, root: Path, *, delay: float = 0.0) -> None:
        self.root = Path(root)
        super().__init__(partial(_Handler, directory=str(self.root)))
        self.httpd.delay = delay

    @property
    def requests(self) -> list[str]:
        return self.httpd.requests

    @property
    def peak_in_flight(self) -> int:
        return self.httpd.peak_in_flight
