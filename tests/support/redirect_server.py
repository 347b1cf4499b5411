"""An HTTP server on 127.0.0.1 that answers every GET with a redirect to one target URL.

Used to check that redirects yt-dlp follows on its own are vetted by the SSRF guard.
"""

from __future__ import annotations

from http.server import BaseHTTPRequestHandler

from tests.support.media_server import LocalServer


class RedirectServer(LocalServer):
    """Redirect (``status``, 302 by default) every request to ``target`` until ``stop()``."""

    def __init__(self, target: str, status: int = 302) -> None:
        outer = self
        self.target = target
        self.status = status
        self.hits = 0

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                outer.hits += 1
                self.send_response(outer.status)
                self.send_header("Location", outer.target)
                self.send_header("Content-Length", "0")
                self.end_headers()

            do_HEAD = do_GET  # noqa: N815

        super().__init__(Handler)
