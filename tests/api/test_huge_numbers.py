"""Huge and non-finite numbers in every numeric field of the five API endpoints (issue 8 item 2).

A fuzzing run found ``{"latitude": 111...(400 digits)}`` answering 500
(``OverflowError`` in a float coercion). Submit drops such a field and
keeps the report; locate answers as for any other value: an out-of-range
integer is dropped in the query model, a non-finite one (``1e400`` parses
as infinity) is a 400 parse error. Never a 500.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from ichnaea.broker import keyspace
from ichnaea.broker.queue import decode_item
from ichnaea.config import Settings
from ichnaea.web.app import create_app
from tests.fixtures_app import PROXY_PEER, Seeder

HUGE = 10**400
INF = "__inf__"  # replaced by the JSON text 1e400 (which Python reads as infinity)
NEG_INF = "__neg_inf__"
VALUES: list[Any] = [HUGE, -HUGE, INF, NEG_INF, 1e300, str(HUGE), [HUGE], {"n": HUGE}, True]
MAC_A, MAC_B = "a82066010203", "a82066010204"
LONDON = {"X-Forwarded-For": "81.2.69.192"}


def body_text(body: Any) -> str:
    return json.dumps(body).replace(f'"{INF}"', "1e400").replace(f'"{NEG_INF}"', "-1e400")


def with_value(template: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of ``template`` with ``value`` at the dotted ``path`` (list indices as digits)."""
    body: Any = json.loads(json.dumps(template))
    node = body
    *parents, last = path.split(".")
    for part in parents:
        node = node[int(part)] if part.isdigit() else node[part]
    node[last] = value
    return body  # type: ignore[no-any-return]


def fields(prefix: str, names: str) -> list[str]:
    return [f"{prefix}{name}" for name in names.split()]


V2_TEMPLATE = {
    "items": [
        {
            "timestamp": 1_700_000_000_000,
            "homeMobileCountryCode": 234,
            "homeMobileNetworkCode": 30,
            "position": {"latitude": 51.5, "longitude": -0.1},
            "bluetoothBeacons": [{"macAddress": MAC_A}],
            "cellTowers": [{"radioType": "lte", "mobileCountryCode": 234}],
            "wifiAccessPoints": [{"macAddress": MAC_A}],
        }
    ]
}
V2_FIELDS = [
    *fields("items.0.", "timestamp homeMobileCountryCode homeMobileNetworkCode"),
    *fields(
        "items.0.position.",
        "latitude longitude accuracy altitude altitudeAccuracy heading pressure speed age",
    ),
    *fields("items.0.bluetoothBeacons.0.", "age signalStrength"),
    *fields(
        "items.0.wifiAccessPoints.0.",
        "age channel frequency signalStrength signalToNoiseRatio",
    ),
    *fields(
        "items.0.cellTowers.0.",
        "mobileCountryCode mobileNetworkCode locationAreaCode cellId newRadioCellId age asu "
        "serving signalStrength timingAdvance primaryScramblingCode psc",
    ),
]
V1_TEMPLATE = {
    "items": [
        {
            "latitude": 51.5,
            "longitude": -0.1,
            "wifiAccessPoints": [{"macAddress": MAC_A}],
            "cellTowers": [{"radioType": "nr", "mobileCountryCode": 234}],
        }
    ]
}
V1_FIELDS = [
    *fields(
        "items.0.",
        "timestamp latitude longitude accuracy altitude altitudeAccuracy heading pressure "
        "speed age",
    ),
    *fields("items.0.wifiAccessPoints.0.", "signalStrength frequency"),
    *fields("items.0.cellTowers.0.", "cellId newRadioCellId psc"),
]
V0_TEMPLATE = {
    "items": [
        {
            "lat": 51.5,
            "lon": -0.1,
            "blue": [{"key": MAC_A}],
            "cell": [{"radio": "gsm", "mcc": 234}],
            "wifi": [{"key": MAC_A}],
        }
    ]
}
V0_FIELDS = [
    *fields(
        "items.0.",
        "time lat lon accuracy age altitude altitude_accuracy heading pressure speed",
    ),
    *fields("items.0.blue.0.", "age signal"),
    *fields("items.0.cell.0.", "mcc mnc lac cid age asu psc serving signal ta"),
    *fields("items.0.wifi.0.", "age channel frequency signal signalToNoiseRatio"),
]
LOCATE_TEMPLATE = {
    "homeMobileCountryCode": 234,
    "homeMobileNetworkCode": 30,
    "considerIp": True,
    "fallbacks": {"lacf": True, "ipf": True},
    "bluetoothBeacons": [{"macAddress": MAC_A}, {"macAddress": MAC_B}],
    "cellTowers": [
        {
            "radioType": "lte",
            "mobileCountryCode": 234,
            "mobileNetworkCode": 30,
            "locationAreaCode": 1,
            "cellId": 1,
        }
    ],
    "wifiAccessPoints": [{"macAddress": MAC_A}, {"macAddress": MAC_B}],
}
LOCATE_FIELDS = [
    *fields("", "homeMobileCountryCode homeMobileNetworkCode considerIp"),
    *fields("fallbacks.", "lacf ipf"),
    *fields("bluetoothBeacons.0.", "age signalStrength"),
    *fields("wifiAccessPoints.0.", "age channel frequency signalStrength signalToNoiseRatio"),
    *fields(
        "cellTowers.0.",
        "mobileCountryCode mobileNetworkCode locationAreaCode cellId newRadioCellId age "
        "primaryScramblingCode psc signalStrength timingAdvance",
    ),
]


@pytest.fixture
def api(app_settings: Settings, seed: Seeder) -> Iterator[TestClient]:
    """The app; a server error is answered as 500 (and collected), not raised into the test."""
    seed.api_key("test")
    with TestClient(
        create_app(app_settings), raise_server_exceptions=False, client=PROXY_PEER
    ) as client:
        yield client


def queued(client: redis.Redis) -> list[dict[str, Any]]:
    return [decode_item(raw) for raw in client.lrange(keyspace.INCOMING, 0, -1)]


@pytest.mark.parametrize(
    ("path", "template", "fields", "ok"),
    [
        ("/v2/geosubmit", V2_TEMPLATE, V2_FIELDS, 200),
        ("/v1/geosubmit", V1_TEMPLATE, V1_FIELDS, 200),
        ("/v1/submit", V0_TEMPLATE, V0_FIELDS, 204),
    ],
)
def test_submit_drops_huge_and_non_finite_numbers_keeping_the_report(
    api: TestClient,
    backend_redis: redis.Redis,
    path: str,
    template: dict[str, Any],
    fields: list[str],
    ok: int,
) -> None:
    failures = []
    for field in fields:
        for value in VALUES:
            backend_redis.delete(keyspace.INCOMING)
            body = body_text(with_value(template, field, value))
            response = api.post(f"{path}?key=test", content=body)
            if response.status_code != ok:
                failures.append((field, str(value)[:12], response.status_code))
                continue
            (item,) = queued(backend_redis)
            # Whatever survived is a number a 64-bit column and a float can hold.
            for number in numbers_in(item["report"]):
                if isinstance(number, int) and not -(2**63) <= number < 2**63:
                    failures.append((field, str(value)[:12], f"kept {str(number)[:12]}"))
    assert failures == []


def numbers_in(value: Any) -> Iterator[int | float]:
    if isinstance(value, dict):
        for child in value.values():
            yield from numbers_in(child)
    elif isinstance(value, list):
        for child in value:
            yield from numbers_in(child)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield value


@pytest.mark.parametrize("path", ["/v1/geolocate", "/v1/country"])
def test_locate_answers_huge_and_non_finite_numbers_without_500(api: TestClient, path: str) -> None:
    failures = []
    for field in LOCATE_FIELDS:
        for value in VALUES:
            body = body_text(with_value(LOCATE_TEMPLATE, field, value))
            response = api.post(f"{path}?key=test", content=body, headers=LONDON)
            if response.status_code not in (200, 400, 404) or not isinstance(response.json(), dict):
                failures.append((field, str(value)[:12], response.status_code))
    assert failures == []


def test_locate_huge_integer_is_dropped_and_infinity_is_a_parse_error(api: TestClient) -> None:
    huge = with_value(LOCATE_TEMPLATE, "wifiAccessPoints.0.signalStrength", HUGE)
    answer = api.post("/v1/geolocate?key=test", content=body_text(huge), headers=LONDON)
    assert answer.status_code == 200  # the signal is out of range: dropped; GeoIP answers
    infinite = with_value(LOCATE_TEMPLATE, "wifiAccessPoints.0.signalStrength", INF)
    refused = api.post("/v1/geolocate?key=test", content=body_text(infinite))
    assert refused.status_code == 400
    assert refused.json()["details"] == {
        "validation": {"wifiAccessPoints.0.signalStrength": '"inf" is not a number'}
    }


@pytest.mark.parametrize(
    "path", ["/v2/geosubmit", "/v1/geosubmit", "/v1/submit", "/v1/geolocate", "/v1/country"]
)
def test_integer_past_the_json_digit_limit_is_a_parse_error(api: TestClient, path: str) -> None:
    """Python refuses to read integers of more than 4300 digits: a parse error, not a 500."""
    body = '{"items": [{"latitude": ' + "1" * 5000 + "}]}"
    response = api.post(f"{path}?key=test", content=body)
    assert response.status_code == 400
    assert response.json()["error"]["errors"][0]["reason"] == "parseError"
