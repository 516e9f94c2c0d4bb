"""``POST /v1/geolocate/batch`` over the real ASGI app, on MariaDB + Redis and embedded."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from ichnaea.broker import keyspace
from ichnaea.config import Settings
from ichnaea.enums import Radio
from ichnaea.web.app import create_app
from tests._support import calibrated
from tests.fixtures_app import PROXY_PEER, Seeder, flush_usage

LONDON = {"X-Forwarded-For": "81.2.69.192"}
URL = "/v1/geolocate/batch?key=test"
SINGLE = "/v1/geolocate?key=test"
MACS = ["a82066000011", "a82066000012", "a82066000013"]
FOUND_WIFI = {"wifiAccessPoints": [{"macAddress": m, "signalStrength": -60} for m in MACS]}
FOUND_CELL = {
    "cellTowers": [
        {
            "radioType": "lte",
            "mobileCountryCode": 234,
            "mobileNetworkCode": 30,
            "locationAreaCode": 7,
            "cellId": 42,
        }
    ]
}
UNKNOWN_WIFI = {
    "considerIp": False,
    "wifiAccessPoints": [{"macAddress": "a82066000001"}, {"macAddress": "a82066000002"}],
}
INVALID = {"cellTowers": [{"radioType": "umts"}]}
NO_IP = {"considerIp": False}
# Found, found, not found, invalid, empty (GeoIP), not a mapping, IP not considered.
MIX: list[Any] = [FOUND_WIFI, FOUND_CELL, UNKNOWN_WIFI, INVALID, {}, 1, NO_IP]


def reason(item: dict[str, Any]) -> str:
    return str(item["error"]["errors"][0]["reason"])


def today() -> str:
    return datetime.now(UTC).strftime("%Y%m%d")


@pytest.fixture
def api(client: TestClient, seed: Seeder) -> Iterator[TestClient]:
    seed.api_key("test")
    for i, mac in enumerate(MACS):
        seed.wifi(mac, lat=51.5 + i * 1e-5, last_seen=None)
    seed.cell(Radio.lte, 7, 42, lat=51.52, lon=-0.12)
    yield client


def test_batch_answers_as_single_calls_in_order(api: TestClient) -> None:
    singles = [api.post(SINGLE, json=query, headers=LONDON).json() for query in MIX]
    response = api.post(URL, json={"queries": MIX}, headers=LONDON)
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "*"
    results = response.json()["results"]
    assert results == singles
    assert [r.get("accuracy") or reason(r) for r in results] == [
        pytest.approx(calibrated("wifi", 1.11, 3), abs=0.5),
        calibrated("cell", 1000.0, 1),  # the radius, 500 m, bounded to 1 km
        "notFound",
        "parseError",
        40000.0,
        "parseError",
        "notFound",
    ]
    assert "validation" in results[3]["details"]
    reversed_results = api.post(URL, json={"queries": MIX[::-1]}, headers=LONDON).json()
    assert reversed_results["results"] == singles[::-1]


def test_batch_of_no_queries_answers_no_results(api: TestClient) -> None:
    response = api.post(URL, json={"queries": []})
    assert response.status_code == 200
    assert response.json() == {"results": []}


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        (b"", {"queries": "Required"}),
        (b"{}", {"queries": "Required"}),
        (b'{"queries": {}}', {"queries": "Not a list"}),
        (b"[]", {"": '"[]" is not a mapping type: Does not implement dict-like functionality.'}),
    ],
)
def test_batch_envelope_errors_fail_the_request(
    api: TestClient, backend_redis: redis.Redis, content: bytes, detail: dict[str, str]
) -> None:
    response = api.post(URL, content=content, headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert reason(response.json()) == "parseError"
    assert response.json()["details"] == {"validation": detail}
    assert backend_redis.keys("apilimit:*") == []  # nothing counted


def test_batch_undecodable_body_is_a_parse_error(api: TestClient) -> None:
    response = api.post(URL, content=b'{"queries": [', headers=LONDON)
    assert response.status_code == 400
    assert "decode" in response.json()["details"]


def test_batch_bad_key_fails_before_the_body(
    api: TestClient, seed: Seeder, backend_redis: redis.Redis
) -> None:
    seed.api_key("nolocate", allow_locate=False)
    for url in (
        "/v1/geolocate/batch",
        "/v1/geolocate/batch?key=unknown",
        "/v1/geolocate/batch?key=nolocate",
    ):
        response = api.post(url, content=b"[1")
        assert response.status_code == 400
        assert reason(response.json()) == "keyInvalid"
    assert backend_redis.keys("apilimit:*") == []


def test_batch_over_the_default_maximum_is_refused(
    api: TestClient, backend_redis: redis.Redis
) -> None:
    assert api.post(URL, json={"queries": [NO_IP] * 1000}).status_code == 200
    response = api.post(URL, json={"queries": [NO_IP] * 1001})
    assert response.status_code == 413
    assert reason(response.json()) == "payloadTooLarge"
    assert response.json()["details"] == {"queries": "1001 queries; send at most 1000 per request"}
    assert int(backend_redis.get(f"apilimit:test:v1.geolocate:{today()}") or 0) == 1000


def test_batch_maximum_follows_the_setting(
    app_settings: Settings, make_settings: Callable[..., Settings], seed: Seeder
) -> None:
    seed.api_key("test")
    settings = make_settings(
        DB_READONLY_URI=app_settings.db_readonly_url,
        DB_READWRITE_URI=app_settings.db_readwrite_url,
        REDIS_URI=app_settings.redis_url or "",
        MAX_BATCH_QUERIES="2",
    )
    assert settings.max_batch_queries == 2
    with TestClient(create_app(settings), client=PROXY_PEER) as client:
        assert client.post(URL, json={"queries": [NO_IP] * 2}).status_code == 200
        response = client.post(URL, json={"queries": [NO_IP] * 3})
    assert response.status_code == 413
    assert response.json()["details"] == {"queries": "3 queries; send at most 2 per request"}


def test_batch_counts_each_query_against_the_daily_limit(
    api: TestClient, backend_redis: redis.Redis
) -> None:
    counter = f"apilimit:test:v1.geolocate:{today()}"
    api.post(SINGLE, json={}, headers=LONDON)
    assert int(backend_redis.get(counter) or 0) == 1
    api.post(URL, json={"queries": MIX}, headers=LONDON)
    flush_usage(api)  # counted in this process, sent to Redis in batches
    assert int(backend_redis.get(counter) or 0) == 1 + len(MIX)
    assert 0 < backend_redis.ttl(counter) <= 90_000
    users = f"apiuser:locate:test:{datetime.now(UTC):%Y-%m-%d}"
    assert backend_redis.pfcount(users) == 1


def test_batch_reaching_the_limit_mid_batch_refuses_the_rest(
    api: TestClient, seed: Seeder, backend_redis: redis.Redis
) -> None:
    seed.api_key("five", maxreq=5)
    counter = f"apilimit:five:v1.geolocate:{today()}"
    backend_redis.set(counter, 3)
    queries = [FOUND_WIFI, INVALID, FOUND_WIFI, {}]
    response = api.post("/v1/geolocate/batch?key=five", json={"queries": queries}, headers=LONDON)
    assert response.status_code == 200
    results = response.json()["results"]
    assert results[0]["accuracy"] == pytest.approx(calibrated("wifi", 1.11, 3), abs=0.5)
    assert reason(results[1]) == "parseError"
    assert [reason(r) for r in results[2:]] == ["dailyLimitExceeded"] * 2
    assert results[2]["error"]["code"] == 403
    assert int(backend_redis.get(counter) or 0) == 7
    # Past the limit, every query of the next batch is refused and counted.
    again = api.post("/v1/geolocate/batch?key=five", json={"queries": [FOUND_WIFI]}).json()
    assert [reason(r) for r in again["results"]] == ["dailyLimitExceeded"]
    flush_usage(api)
    assert int(backend_redis.get(counter) or 0) == 8


def test_batch_stores_a_query_report_per_found_query(
    api: TestClient, backend_redis: redis.Redis
) -> None:
    queries = [FOUND_WIFI, UNKNOWN_WIFI, FOUND_WIFI, FOUND_CELL]
    api.post(URL, json={"queries": queries})
    # The single endpoint stores the same reports for the same queries.
    stored = backend_redis.llen(keyspace.INCOMING)
    for query in queries:
        api.post(SINGLE, json=query)
    assert stored == 3
    assert backend_redis.llen(keyspace.INCOMING) == 2 * stored


def test_batch_large_body_is_answered(api: TestClient) -> None:
    # Over 64 KiB: decoded and parsed in a worker thread.
    padding = [{"macAddress": f"b0{i:010x}", "signalStrength": -90} for i in range(20)]
    query = {"wifiAccessPoints": FOUND_WIFI["wifiAccessPoints"] + padding}
    response = api.post(URL, json={"queries": [query] * 100})
    assert len(response.request.content) > 64 * 1024
    assert response.json()["results"] == [api.post(SINGLE, json=query).json()] * 100


def test_batch_answers_post_only(api: TestClient) -> None:
    for method in ("GET", "HEAD", "PUT"):
        assert api.request(method, URL).status_code == 405
    preflight = api.options(URL)
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"


def test_batch_item_quoting_a_lone_surrogate_is_answered(api: TestClient) -> None:
    # The item's parse error quotes the value, which UTF-8 cannot encode.
    content = b'{"queries": [{"wifiAccessPoints": [{"signalStrength": "\\ud800"}]}, {}]}'
    response = api.post(URL, content=content, headers=LONDON)
    assert response.status_code == 200
    results = response.json()["results"]
    assert reason(results[0]) == "parseError"
    assert results[0]["details"] == {
        "validation": {"wifiAccessPoints.0.signalStrength": '"\ud800" is not a number'}
    }
    assert results[1]["accuracy"] == 40000.0
