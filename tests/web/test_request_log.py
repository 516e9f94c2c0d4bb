"""The per-request JSON log line (spec pipeline.md section 18, "canonical-log-line")."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
import sentry_sdk
from starlette.testclient import TestClient
from starlette.types import Message

from ichnaea.config import Settings
from ichnaea.web.app import create_app
from ichnaea.web.front import _log_line
from ichnaea.web.lifespan import STATE_KEY
from tests._support import RecordingMetrics
from tests.fixtures_app import Seeder

REPORT = {"items": [{"position": {"latitude": 51.5, "longitude": -0.1},
                     "wifiAccessPoints": [{"macAddress": "3680873e9b83"}]}]}  # fmt: skip


@pytest.fixture
def lines(caplog: pytest.LogCaptureFixture) -> Callable[[], list[dict[str, Any]]]:
    caplog.set_level("INFO", logger="ichnaea.request")

    def read() -> list[dict[str, Any]]:
        return [json.loads(r.getMessage()) for r in caplog.records if r.name == "ichnaea.request"]

    return read


@pytest.fixture
def flushed(app_settings: Settings) -> Iterator[None]:
    client = redis.Redis.from_url(str(app_settings.redis_url))
    client.flushdb()
    yield
    client.flushdb()
    client.close()


def test_spec_example_submit_with_a_known_key(
    client: TestClient, seed: Seeder, lines: Callable[[], list[dict[str, Any]]], flushed: None
) -> None:
    seed.api_key("test")
    assert client.post("/v2/geosubmit?key=test", json=REPORT).status_code == 200
    (line,) = lines()
    assert isinstance(line.pop("duration_s"), float)
    assert line == {
        "api_key": "test",
        "api_key_count": 1,
        "api_path": "v2.geosubmit",
        "api_type": "submit",
        "event": "POST /v2/geosubmit - 200",
        "http_method": "POST",
        "http_path": "/v2/geosubmit",
        "http_status": 200,
        "log_level": "info",
    }


def test_locate_with_a_quota_unknown_keys_and_refused_keys(
    client: TestClient, seed: Seeder, lines: Callable[[], list[dict[str, Any]]], flushed: None
) -> None:
    seed.api_key("limited", maxreq=1)
    seed.api_key("noregion", allow_region=False)
    client.post("/v1/geolocate?key=limited", json={})
    client.post("/v1/geolocate?key=limited", json={})
    client.post("/v1/geolocate?key=nosuchkey", json={})
    client.post("/v1/country?key=noregion", json={})
    client.get("/__lbheartbeat__")
    first, second, unknown, refused = lines()
    assert (first["rate_quota"], first["rate_remaining"], first["rate_allowed"]) == (1, 0, True)
    assert (second["api_key_count"], second["rate_allowed"], second["http_status"]) == (
        2,
        False,
        403,
    )
    assert (unknown["invalid_api_key"], unknown["http_status"]) == ("nosuchkey", 400)
    assert "api_key" not in unknown
    assert (refused["api_key"], refused["api_key_allowed"], refused["api_path"]) == (
        "noregion",
        False,
        "v1.country",
    )


def test_request_log_can_be_switched_off(
    make_settings: Callable[..., Settings],
    app_settings: Settings,
    lines: Callable[[], list[dict[str, Any]]],
) -> None:
    quiet = make_settings(
        DB_READONLY_URI=app_settings.db_readonly_url,
        REDIS_URI=str(app_settings.redis_url),
        REQUEST_LOG="false",
    )
    with TestClient(create_app(quiet)) as client:
        assert client.get("/__heartbeat__").status_code in (200, 503)
    assert lines() == []


def test_junk_keys_and_paths_are_cut_in_the_log(
    client: TestClient, lines: Callable[[], list[dict[str, Any]]], flushed: None
) -> None:
    client.post("/v1/geolocate?key=" + "x" * 500, json={})
    client.get("/" + "a" * 1000)
    refused, scanner = lines()
    assert refused["invalid_api_key"] == "x" * 64
    assert scanner["http_path"] == "/" + "a" * 255 and scanner["http_status"] == 404


def test_client_disconnect_mid_body_is_logged_as_499_without_traceback(
    make_settings: Callable[..., Settings],
    lines: Callable[[], list[dict[str, Any]]],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The client sent part of the body and went away: its doing, not a 500 of ours."""
    captured: list[BaseException] = []
    monkeypatch.setattr(sentry_sdk, "capture_exception", lambda exc=None: captured.append(exc))
    app = create_app(make_settings())
    metrics = RecordingMetrics()
    incoming: list[Message] = [
        {"type": "http.request", "body": b'{"items": [{"posi', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent: list[Message] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message)

    async def run() -> None:
        async with app.router.lifespan_context(app) as state:
            state[STATE_KEY].metrics = metrics
            scope = {
                "type": "http",
                "asgi": {"version": "3.0"},
                "http_version": "1.1",
                "method": "POST",
                "scheme": "http",
                "path": "/v2/geosubmit",
                "raw_path": b"/v2/geosubmit",
                "query_string": b"",
                "root_path": "",
                "headers": [(b"content-type", b"application/json"), (b"content-length", b"900")],
                "client": ("192.0.2.1", 50000),
                "server": ("127.0.0.1", 8000),
                "state": dict(state),
            }
            await app(scope, receive, send)

    asyncio.run(run())
    (line,) = lines()
    assert (line["http_status"], line["event"]) == (499, "POST /v2/geosubmit - 499")
    assert [tags["status"] for name, _, tags in metrics.counts if name == "request"] == ["499"]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info] == []
    assert captured == []
    assert sent == []  # nobody is listening any more


def test_log_line_is_sorted_compact_json_even_for_a_lone_surrogate() -> None:
    line = {"b": 1, "a": "ü", "duration_s": 0.5}
    assert _log_line(line) == '{"a":"ü","b":1,"duration_s":0.5}'
    # orjson refuses the surrogate; the standard library escapes it.
    assert json.loads(_log_line({"invalid_api_key": "x\ud800"})) == {"invalid_api_key": "x\ud800"}
