"""A scripted HTTP provider on 127.0.0.1 for fallback tests.

``provider`` starts a real threaded HTTP server; tests script its replies
per path (status, JSON body, delay) and read back every request it got.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest


@dataclass(frozen=True)
class Recorded:
    path: str
    headers: dict[str, str]
    body: Any


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    delay_s: float
    headers: dict[str, str]


@dataclass
class Provider:
    """What the server received and what it will answer, per path."""

    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    replies: dict[str, Reply] = field(default_factory=dict)
    closing: threading.Event = field(default_factory=threading.Event)

    def url(self, path: str = "/") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def reply(
        self,
        status: int = 200,
        body: Any = None,
        *,
        path: str = "/",
        delay_s: float = 0.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.replies[path] = Reply(status, raw, delay_s, headers or {})


def _handler(provider: Provider) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                body = json.loads(raw)
            except ValueError:
                body = raw
            provider.requests.append(Recorded(self.path, dict(self.headers.items()), body))
            reply = provider.replies.get(self.path, Reply(418, b"unscripted", 0.0, {}))
            if reply.delay_s:
                provider.closing.wait(reply.delay_s)
            self.send_response(reply.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(reply.body)))
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(reply.body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the client gave up (timeout tests): a broken pipe is expected


@pytest.fixture
def provider() -> Iterator[Provider]:
    recorder = Provider()
    server = _QuietServer(("127.0.0.1", 0), _handler(recorder))
    recorder.port = server.server_address[1]
    # A short poll interval keeps shutdown() fast.
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    yield recorder
    recorder.closing.set()
    server.shutdown()
    server.server_close()
    thread.join()
