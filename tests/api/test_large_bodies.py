"""Large request bodies (issue 8 item 8): capped work, and an event loop that keeps answering.

A locate query looks up at most the strongest ``MAX_*_IN_QUERY`` networks
of each type; a submission holds at most ``MAX_REPORTS_PER_SUBMISSION``
reports (more is a 413 with the Google-style body, nothing queued). Bodies
past ``LARGE_BODY_BYTES`` are decoded and parsed in a worker thread, so a
``/__lbheartbeat__`` on the same event loop is answered meanwhile: the
tests hold the parse until the heartbeat has been answered, and check the
order of the two events.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from ichnaea.api.body import LARGE_BODY_BYTES
from ichnaea.api.locate.constants import MAX_WIFIS_IN_QUERY
from ichnaea.broker import keyspace
from ichnaea.broker.queue import decode_item
from ichnaea.reports.formats import MAX_REPORTS_PER_SUBMISSION
from tests.fixtures_app import Seeder

LONDON_MACS = ["a82066000001", "a82066000002"]
BERLIN_MACS = [f"a8206600010{i}" for i in range(5)]


@pytest.fixture
def api(client: TestClient, seed: Seeder) -> Iterator[TestClient]:
    seed.api_key("test")
    yield client


def test_locate_with_10000_wifis_looks_up_only_the_strongest(
    api: TestClient, seed: Seeder, backend_redis: redis.Redis
) -> None:
    for i, mac in enumerate(LONDON_MACS):
        seed.wifi(mac, lat=51.5 + i * 1e-5, lon=-0.1, last_seen=None)
    for i, mac in enumerate(BERLIN_MACS):
        seed.wifi(mac, lat=52.52 + i * 1e-5, lon=13.4, last_seen=None)
    # The Berlin networks are the weakest of 10,000: past the cap, never looked up.
    unknown = [{"macAddress": f"b8{i:010x}", "signalStrength": -60} for i in range(9993)]
    body = {
        "wifiAccessPoints": [
            *({"macAddress": mac, "signalStrength": -40} for mac in LONDON_MACS),
            *unknown,
            *({"macAddress": mac, "signalStrength": -95} for mac in BERLIN_MACS),
        ]
    }
    response = api.post("/v1/geolocate?key=test", json=body)
    assert response.status_code == 200
    assert round(response.json()["location"]["lat"], 2) == 51.5
    (item,) = [decode_item(raw) for raw in backend_redis.lrange(keyspace.INCOMING, 0, -1)]
    assert len(item["report"]["wifiAccessPoints"]) == MAX_WIFIS_IN_QUERY


def reports(count: int) -> dict[str, Any]:
    position = {"latitude": 51.5, "longitude": -0.1}
    return {
        "items": [
            {"position": position, "wifiAccessPoints": [{"macAddress": f"a820{i:08x}"}]}
            for i in range(count)
        ]
    }


WIFIS_2000 = {
    "wifiAccessPoints": [{"macAddress": f"a820{i:08x}", "signalStrength": -60} for i in range(2000)]
}


def test_submission_at_the_report_cap_is_queued_whole(
    api: TestClient, backend_redis: redis.Redis
) -> None:
    response = api.post("/v2/geosubmit", json=reports(MAX_REPORTS_PER_SUBMISSION))
    assert response.status_code == 200
    assert backend_redis.llen(keyspace.INCOMING) == MAX_REPORTS_PER_SUBMISSION


@pytest.mark.parametrize("path", ["/v2/geosubmit", "/v1/geosubmit", "/v1/submit"])
def test_submission_over_the_report_cap_is_413_and_queues_nothing(
    api: TestClient, backend_redis: redis.Redis, path: str
) -> None:
    response = api.post(path, json=reports(MAX_REPORTS_PER_SUBMISSION + 1))
    assert response.status_code == 413
    assert response.json() == {
        "error": {
            "errors": [
                {"domain": "global", "reason": "payloadTooLarge", "message": "Payload Too Large"}
            ],
            "code": 413,
            "message": "Payload Too Large",
        },
        "details": {
            "items": f"{MAX_REPORTS_PER_SUBMISSION + 1} reports; "
            f"send at most {MAX_REPORTS_PER_SUBMISSION} per request"
        },
    }
    assert backend_redis.llen(keyspace.INCOMING) == 0


def hold_parse(
    monkeypatch: pytest.MonkeyPatch, target: str, events: list[str]
) -> tuple[threading.Event, threading.Event]:
    """Make ``target`` (a parse function) wait, once called, until the heartbeat was answered.

    Returns (parse started, heartbeat answered). If the parse runs on the
    event loop, the heartbeat cannot be answered while it waits: the wait
    then gives up after 20 s and the events come in the other order.
    """
    started, answered = threading.Event(), threading.Event()
    original: Callable[..., Any] = _resolve(target)

    def held(*args: Any, **kwargs: Any) -> Any:
        started.set()
        answered.wait(20)
        events.append("parse finished")
        return original(*args, **kwargs)

    monkeypatch.setattr(target, held)
    return started, answered


def _resolve(target: str) -> Any:
    module, name = target.rsplit(".", 1)
    return getattr(__import__(module, fromlist=[name]), name)


@pytest.mark.parametrize(
    ("path", "target", "body"),
    [
        ("/v2/geosubmit", "ichnaea.api.submit.endpoints.parse_v2", reports(1000)),
        ("/v1/geolocate", "ichnaea.api.locate.endpoints.parse_locate_request", WIFIS_2000),
    ],
)
def test_large_body_is_parsed_while_the_loop_answers_heartbeats(
    api: TestClient, monkeypatch: pytest.MonkeyPatch, path: str, target: str, body: Any
) -> None:
    raw = json.dumps(body).encode()
    assert len(raw) > LARGE_BODY_BYTES
    events: list[str] = []
    started, answered = hold_parse(monkeypatch, target, events)
    statuses: list[int] = []
    poster = threading.Thread(
        target=lambda: statuses.append(api.post(f"{path}?key=test", content=raw).status_code)
    )
    poster.start()
    assert started.wait(20)
    # The same app, the same event loop (TestClient's portal) as the big request.
    assert api.get("/__lbheartbeat__").status_code == 200
    events.append("heartbeat answered")
    answered.set()
    poster.join(30)
    assert events == ["heartbeat answered", "parse finished"]
    assert statuses and statuses[0] in (200, 404)
