"""The assembled app (``create_app``) served by a real uvicorn server."""

from __future__ import annotations

import http.client
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import sentry_sdk

from ichnaea.config import Settings
from ichnaea.web import health
from ichnaea.web.app import create_app
from tests._server import uvicorn_server


def test_unexpected_error_answers_500_and_keeps_the_connection_open(
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def broken(version_file: Path | None) -> dict[str, str]:
        raise RuntimeError("version file exploded with secret details")

    reported: list[BaseException | None] = []
    monkeypatch.setattr(health, "version_info", broken)
    monkeypatch.setattr(sentry_sdk, "capture_exception", lambda exc=None: reported.append(exc))
    with uvicorn_server(create_app(make_settings())) as (host, port):
        conn = http.client.HTTPConnection(host, port, timeout=10)
        try:
            conn.request("GET", "/__version__")
            failed = conn.getresponse()
            body = json.loads(failed.read())
            assert failed.status == 500
            assert body["error"]["code"] == 500
            assert "secret" not in json.dumps(body)
            sock = conn.sock
            assert sock is not None, "the server closed the connection after the 500"

            conn.request("GET", "/__lbheartbeat__")  # the same connection, kept alive
            ok = conn.getresponse()
            assert (ok.status, json.loads(ok.read())) == (200, {"status": "OK"})
            assert conn.sock is sock
        finally:
            conn.close()
    (error,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert error.getMessage() == "unhandled error on GET /__version__"
    assert error.exc_info is not None and isinstance(error.exc_info[1], RuntimeError)
    assert reported == [error.exc_info[1]]
