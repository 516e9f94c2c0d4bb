"""A real uvicorn server for one test, in a thread of the test process.

Tests that need what only a server does (keep-alive connections, a socket
the client can drop) run the app here instead of through the TestClient.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from tests.test_end_to_end import free_port

START_TIMEOUT_S = 30.0


@contextmanager
def uvicorn_server(app: ASGIApp) -> Iterator[tuple[str, int]]:
    """Serve ``app`` (lifespan included) on a free loopback port; yield ``(host, port)``."""
    host, port = "127.0.0.1", free_port()
    config = uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + START_TIMEOUT_S
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise AssertionError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield host, port
    finally:
        server.should_exit = True
        thread.join(timeout=START_TIMEOUT_S)
