"""The assembled app (``create_app``) served by a real uvicorn server."""

from __future__ import annotations

import gc
import http.client
import json
import logging
from collections.abc import Callable
from pathlib import Path

import pytest
import sentry_sdk
from starlette.testclient import TestClient

from ichnaea.config import Settings
from ichnaea.web import health
from ichnaea.web.app import create_app
from tests._server import uvicorn_server
from tests.fixtures_app import Seeder


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


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/geolocate?key=test", '{"bluetoothBeacons": "\\ud800"}'),
        ("/v1/country?key=test", '{"cellTowers": [{"radioType": "\\udfff"}]}'),
        ("/v2/geosubmit", '"\\ud800"'),
    ],
)
def test_error_echoing_a_lone_surrogate_is_a_json_error_not_500(
    client: TestClient, seed: Seeder, path: str, body: str
) -> None:
    # Found by benchmarks/fuzz_api.py: a JSON string may hold an unpaired
    # surrogate escape, which UTF-8 cannot encode; the error message quoting
    # it made the error body itself fail with UnicodeEncodeError.
    seed.api_key("test")
    response = client.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 400, response.text
    error = json.loads(response.content)["error"]
    assert error["code"] == 400
    assert error["errors"][0]["reason"] == "parseError"


def test_start_up_objects_are_frozen_while_the_app_runs_and_released_after(
    app_settings: Settings,
) -> None:
    assert gc.get_freeze_count() == 0
    with TestClient(create_app(app_settings)) as client:
        assert client.get("/__lbheartbeat__").status_code == 200
        # Region shapes, GeoIP and the code: far more than a handful.
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0
