"""An OpenAI-compatible chat server on 127.0.0.1 for LLM tests.

It speaks the real wire protocol of ``POST /v1/chat/completions`` (a JSON reply, or
server-sent events ending in ``data: [DONE]`` when ``stream`` is true, with usage in
the last chunk when ``stream_options.include_usage`` is set), so litellm talks to it
exactly as it would to OpenAI, vLLM or Ollama. Tests choose a behaviour per request
and read back what the server received.

Behaviours:
- ``cite``: an answer quoting the first sentence of sources [1] and [2] and citing them.
- ``cite_missing``: like ``cite`` plus a sentence citing [7], which does not exist.
- ``unsupported``: a cited sentence that no source supports.
- ``reply``: the text in ``server.reply_text``.
- ``slow``: sleeps ``server.delay`` seconds before answering (for timeouts).
- ``error500``: an HTTP 500 with an OpenAI-shaped error body.
- ``malformed``: a 200 whose body is not JSON (or, streaming, a broken SSE chunk).
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SOURCE_RE = re.compile(r"^\[(\d+)\][^\n]*\n(.+?)(?=\n\[\d+\]|\Z)", re.M | re.S)


def _sources(prompt: str) -> dict[int, str]:
    """Numbered source texts as the prompt lists them ("[n] title (times)\\ntext")."""
    return {int(m.group(1)): m.group(2).strip() for m in SOURCE_RE.finditer(prompt)}


def _first_sentence(text: str) -> str:
    return re.split(r"(?<=[.!?])\s+", text.strip())[0].strip()


class FakeLLM:
    """A threaded OpenAI-compatible server; use as a context manager or call ``stop()``."""

    def __init__(self, behaviour: str = "cite") -> None:
        self.behaviour = behaviour
        self.reply_text = "A scripted reply [1]."
        self.delay = 5.0
        self.requests: list[dict] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                with server._lock:
                    server.requests.append({"path": self.path, "body": body, "headers": dict(self.headers)})
                if not self.path.rstrip("/").endswith("/chat/completions"):
                    self._send(404, {"error": {"message": "not found", "type": "invalid_request_error"}})
                    return
                try:
                    server._handle(self, body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer

            def _send(self, status: int, payload, content_type: str = "application/json") -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    # -- addresses -------------------------------------------------------------------
    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def api_base(self) -> str:
        """What litellm's ``api_base`` should be."""
        return f"http://127.0.0.1:{self.port}/v1"

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def __enter__(self) -> FakeLLM:
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- what the tests read back ----------------------------------------------------------
    @property
    def last(self) -> dict:
        return self.requests[-1]["body"]

    def last_prompt(self) -> str:
        """All message contents of the last request, joined."""
        return "\n".join(str(m.get("content")) for m in self.last["messages"])

    # -- replies ---------------------------------------------------------------------------
    def compose(self, body: dict) -> str:
        prompt = "\n".join(str(m.get("content")) for m in body.get("messages", []))
        sources = _sources(prompt)
        if self.behaviour == "reply":
            return self.reply_text
        if self.behaviour == "unsupported":
            return "The moon is made of green cheese and orbits Jupyter notebooks [1]."
        parts = []
        for n in sorted(sources)[:2]:
            parts.append(f"{_first_sentence(sources[n])} [{n}]")
        if self.behaviour == "cite_missing":
            parts.append(f"{_first_sentence(sources.get(1, 'Something'))} [7]")
        return " ".join(parts) or "I could not find this in the sources."

    def _handle(self, h, body: dict) -> None:
        behaviour = self.behaviour
        if behaviour == "slow":
            time.sleep(self.delay)
        if behaviour == "error500":
            h._send(500, {"error": {"message": "internal failure", "type": "server_error", "code": 500}})
            return
        model = body.get("model", "fake")
        text = self.compose(body)
        prompt_tokens = sum(len(str(m.get("content", "")).split()) for m in body.get("messages", []))
        completion_tokens = len(text.split())
        usage = {
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
        }
        cid = f"chatcmpl-{uuid.uuid4().hex[:12]}"
        created = int(time.time())
        if not body.get("stream"):
            if behaviour == "malformed":
                h._send(200, b"{this is not json", "application/json")
                return
            h._send(
                200,
                {
                    "id": cid,
                    "object": "chat.completion",
                    "created": created,
                    "model": model,
                    "choices": [
                        {
                            "index": 0,
                            "message": {"role": "assistant", "content": text},
                            "finish_reason": "stop",
                        }
                    ],
                    "usage": usage,
                },
            )
            return
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.send_header("Cache-Control", "no-cache")
        h.send_header("Connection", "close")
        h.end_headers()
        h.close_connection = True

        def event(payload) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload)
            h.wfile.write(f"data: {data}\n\n".encode())
            h.wfile.flush()

        def chunk(delta: dict, finish: str | None = None) -> dict:
            return {
                "id": cid,
                "object": "chat.completion.chunk",
                "created": created,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }

        if behaviour == "malformed":
            event("{broken json")
            event("[DONE]")
            return
        event(chunk({"role": "assistant", "content": ""}))
        for piece in re.findall(r"\S+\s*", text):
            event(chunk({"content": piece}))
        event(chunk({}, "stop"))
        if (body.get("stream_options") or {}).get("include_usage"):
            event({**chunk({}), "choices": [], "usage": usage})
        event("[DONE]")
