"""Spec locate.md section 7 over the real ASGI app, on MariaDB + Redis and embedded.

Numbers in the test names refer to the cases of section 7.
"""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis
from starlette.testclient import TestClient

from ichnaea.broker import keyspace
from ichnaea.broker.queue import decode_item
from ichnaea.enums import Radio
from tests._support import calibrated
from tests.fixtures_app import Backend, Seeder

LONDON = {"X-Forwarded-For": "81.2.69.192"}
LONDON_ANSWER = {"location": {"lat": 51.5142, "lng": -0.0931}, "accuracy": 40000.0}
NOT_FOUND = {
    "error": {
        "errors": [{"domain": "geolocation", "reason": "notFound", "message": "Not found"}],
        "code": 404,
        "message": "Not found",
    }
}
KEY_INVALID = {
    "error": {
        "errors": [
            {
                "domain": "usageLimits",
                "reason": "keyInvalid",
                "message": "Missing or invalid API key.",
            }
        ],
        "code": 400,
        "message": "Missing or invalid API key.",
    }
}
URL = "/v1/geolocate?key=test"


@pytest.fixture
def api(client: TestClient, seed: Seeder) -> Iterator[TestClient]:
    seed.api_key("test")
    yield client


def queued(backend_redis: redis.Redis) -> list[dict]:  # type: ignore[type-arg]
    return [decode_item(raw) for raw in backend_redis.lrange(keyspace.INCOMING, 0, -1)]


def today() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%d")


def test_01_ip_only_answers_from_geoip_and_counts_the_user(
    api: TestClient, backend_redis: redis.Redis
) -> None:
    response = api.post(URL, json={}, headers=LONDON)
    assert response.status_code == 200
    assert response.json() == LONDON_ANSWER
    assert response.headers["access-control-allow-origin"] == "*"
    assert response.headers["access-control-max-age"] == "2592000"
    ttl = backend_redis.ttl(f"apiuser:locate:test:{today()}")
    assert 7 * 86400 < ttl <= 8 * 86400


def test_02_get_and_empty_body_answer_the_same(api: TestClient) -> None:
    assert api.get(URL, headers=LONDON).json() == LONDON_ANSWER
    assert api.post(URL, content=b"", headers=LONDON).json() == LONDON_ANSWER
    head = api.head(URL, headers=LONDON)
    assert head.status_code == 200 and head.content == b""


def test_03_unknown_fields_are_ignored(api: TestClient) -> None:
    assert api.post(URL, json={"invalid": 0}, headers=LONDON).json() == LONDON_ANSWER


@pytest.mark.parametrize("body", [{"fallbacks": {"ipf": 0}}, {"considerIp": False}])
def test_04_ip_fallback_can_be_switched_off(api: TestClient, body: dict) -> None:  # type: ignore[type-arg]
    response = api.post(URL, json=body, headers=LONDON)
    assert response.status_code == 404
    assert response.json() == NOT_FOUND


def test_04_fallbacks_present_overrides_consider_ip(api: TestClient) -> None:
    body = {"considerIp": False, "fallbacks": {}}
    assert api.post(URL, json=body, headers=LONDON).json() == LONDON_ANSWER


def test_05_undecodable_and_non_mapping_bodies_are_parse_errors(api: TestClient) -> None:
    response = api.post(URL, content=b'"\xae"', headers=LONDON)
    assert response.status_code == 400
    body = response.json()
    assert body["error"]["errors"][0]["reason"] == "parseError"
    assert "decode" in body["details"]
    response = api.post(URL, content=b"[1]", headers=LONDON)
    assert response.status_code == 400
    assert response.json()["details"] == {
        "validation": {
            "": '"[1]" is not a mapping type: Does not implement dict-like functionality.'
        }
    }
    response = api.post(URL, content=b"not json", headers=LONDON)
    assert response.json()["details"] == {
        "decode": "JSONDecodeError('Expecting value: line 1 column 1 (char 0)')"
    }


def test_06_gzip_bodies_are_accepted_and_truncated_ones_refused(api: TestClient) -> None:
    headers = {**LONDON, "Content-Encoding": "gzip"}
    body = gzip.compress(b'{"considerIp": true}')
    assert api.post(URL, content=body, headers=headers).json() == LONDON_ANSWER
    response = api.post(URL, content=body[:-6], headers=headers)
    assert response.status_code == 400
    assert response.json()["details"]["decode"].startswith("GZIPDecodeError(")


def test_07_bad_charset_bytes_are_a_parse_error(api: TestClient) -> None:
    response = api.post(
        URL,
        content=b'{"comment": "R\xe9sum\xe9 ok"}',
        headers={**LONDON, "Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 400
    assert "can't decode byte 0xe9" in response.json()["details"]["decode"]


@pytest.mark.parametrize("query", ["", "?key=invalid_key", "?key=abcdefg", "?key=ab"])
def test_08_missing_invalid_and_unknown_keys(api: TestClient, query: str) -> None:
    response = api.post(f"/v1/geolocate{query}", json={}, headers=LONDON)
    assert response.status_code == 400
    assert response.json() == KEY_INVALID
    assert response.headers["access-control-allow-origin"] == "*"


def test_08_disallowed_key_on_both_apis(client: TestClient, seed: Seeder) -> None:
    seed.api_key("locked", allow_locate=False, allow_region=False)
    for path in ("/v1/geolocate", "/v1/country"):
        response = client.post(f"{path}?key=locked", json={}, headers=LONDON)
        assert response.status_code == 400
        assert response.json() == KEY_INVALID


def test_08_bad_key_wins_over_bad_body(api: TestClient) -> None:
    response = api.post("/v1/geolocate?key=abcdefg", content=b"[1", headers=LONDON)
    assert response.json() == KEY_INVALID


def test_09_daily_limit_exceeded(
    client: TestClient, seed: Seeder, backend_redis: redis.Redis
) -> None:
    seed.api_key("limited", maxreq=5)
    counter = f"apilimit:limited:v1.geolocate:{today().replace('-', '')}"
    backend_redis.set(counter, 10)
    response = client.post("/v1/geolocate?key=limited", json={}, headers=LONDON)
    assert response.status_code == 403
    assert response.json()["error"]["errors"][0] == {
        "domain": "usageLimits",
        "reason": "dailyLimitExceeded",
        "message": "You have exceeded your daily limit.",
    }
    assert int(backend_redis.get(counter) or 0) == 11
    assert 0 < backend_redis.ttl(counter) <= 90_000


def test_09_limit_refuses_the_request_after_maxreq(client: TestClient, seed: Seeder) -> None:
    seed.api_key("five", maxreq=5)
    codes = [
        client.post("/v1/geolocate?key=five", json={}, headers=LONDON).status_code for _ in range(6)
    ]
    assert codes == [200] * 5 + [403]


def test_10_options_and_other_methods(api: TestClient) -> None:
    response = api.options(URL)
    assert response.status_code == 200
    assert response.content == b""
    assert response.headers["access-control-allow-origin"] == "*"
    for method in ("DELETE", "PUT", "PATCH"):
        response = api.request(method, URL)
        assert response.status_code == 405
        assert "access-control-allow-origin" not in response.headers


@pytest.mark.parametrize(
    "body", [{"cellTowers": [{"radioType": "umts"}]}, {"radioType": "GSM"}, {"cellTowers": None}]
)
def test_11_wrong_radio_types_and_null_lists_are_parse_errors(api: TestClient, body: dict) -> None:  # type: ignore[type-arg]
    response = api.post(URL, json=body, headers=LONDON)
    assert response.status_code == 400
    assert "validation" in response.json()["details"]


def test_12_unknown_networks_without_ip_are_not_found(api: TestClient) -> None:
    wifis = [{"macAddress": "a82066000001"}, {"macAddress": "a82066000002"}]
    blues = [{"macAddress": "a82066000003"}, {"macAddress": "a82066000004"}]
    cell = [
        {
            "radioType": "gsm",
            "mobileCountryCode": 234,
            "mobileNetworkCode": 30,
            "locationAreaCode": 1,
            "cellId": 1,
        }
    ]
    for body in ({"wifiAccessPoints": wifis}, {"bluetoothBeacons": blues}, {"cellTowers": cell}):
        assert api.post(URL, json=body).status_code == 404


def test_13_cell_with_invalid_lac_is_dropped(api: TestClient, seed: Seeder) -> None:
    seed.cell(Radio.wcdma, 1, 1)
    cell = {
        "radioType": "wcdma",
        "mobileCountryCode": 234,
        "mobileNetworkCode": 30,
        "locationAreaCode": 0,
        "cellId": 1,
    }
    assert api.post(URL, json={"cellTowers": [cell]}).status_code == 404


def lte_cell(**extra: object) -> dict[str, object]:
    return {
        "radioType": "lte",
        "mobileCountryCode": 234,
        "mobileNetworkCode": 30,
        "locationAreaCode": 2,
        "cellId": 1234,
        **extra,
    }


def test_14_known_cell_answers_with_cell_accuracy(
    api: TestClient, seed: Seeder, backend_redis: redis.Redis
) -> None:
    seed.cell(Radio.lte, 2, 1234, lat=51.51, lon=-0.11)
    body = {"cellTowers": [lte_cell(signalStrength=-70, timingAdvance=1)]}
    response = api.post(URL, json=body)
    # The calibrated radius (issue 11) of the cell's spread, its radius
    # (500 m) bounded to [1 km, 50 km]: the original answered 1,000 m.
    assert response.json() == {
        "location": {"lat": 51.51, "lng": -0.11},
        "accuracy": calibrated("cell", 1000.0, 1),
    }
    (item,) = queued(backend_redis)
    assert item["report"]["cellTowers"][0]["signalStrength"] == -70
    assert item["report"]["cellTowers"][0]["timingAdvance"] == 1
    # The top-level radioType fills in a missing per-cell one.
    cell = lte_cell()
    del cell["radioType"]
    response = api.post(URL, json={"radioType": "lte", "cellTowers": [cell]})
    assert response.json()["accuracy"] == calibrated("cell", 1000.0, 1)


@pytest.mark.parametrize("fallbacks", [None, {"lacf": True}, {"ipf": True}])
def test_15_known_area_answers_with_lacf(
    api: TestClient,
    seed: Seeder,
    fallbacks: dict | None,  # type: ignore[type-arg]
) -> None:
    seed.area(Radio.lte, 2, lat=51.4, lon=-0.2)
    cell = lte_cell()
    del cell["cellId"]
    body: dict[str, object] = {"cellTowers": [cell]}
    if fallbacks is not None:
        body["fallbacks"] = fallbacks
    assert api.post(URL, json=body).json() == {
        "location": {"lat": 51.4, "lng": -0.2},
        # The area's radius, 25 km, calibrated (the original: 50 km at least).
        "accuracy": calibrated("area", 25_000.0, 1),
        "fallback": "lacf",
    }


def test_15_heard_areas_are_weighted_into_one_lacf_answer_issue_11(
    api: TestClient, seed: Seeder
) -> None:
    """A decision of issue 11: overlapping areas are one group at their weighted mean
    (tenfold per 15 dB above the radio's floor, 1 / radius²), where the original
    answered one area's centre; held-out worlds: median 868 m to 643 m."""
    seed.area(Radio.lte, 2, lat=51.40, lon=-0.2, radius=10_000)
    seed.area(Radio.gsm, 7, lat=51.45, lon=-0.2, radius=10_000)
    lte = {**lte_cell(signalStrength=-110), "cellId": 99_991}  # 30 dB above -140
    gsm = {
        "radioType": "gsm",
        "mobileCountryCode": 234,
        "mobileNetworkCode": 30,
        "locationAreaCode": 7,
        "cellId": 99,
        "signalStrength": -98,
    }  # 15 dB above -113
    answer = api.post(URL, json={"cellTowers": [lte, gsm]}).json()
    assert answer["fallback"] == "lacf"
    # Weights 10^2 : 10^1, the areas 0.05° apart: 10/11 of the way to the LTE one.
    assert answer["location"]["lat"] == pytest.approx(51.40 + 0.05 / 11, abs=1e-6)
    assert answer["location"]["lng"] == pytest.approx(-0.2, abs=1e-9)


def test_15_area_fallback_can_be_switched_off(api: TestClient, seed: Seeder) -> None:
    seed.area(Radio.lte, 2)
    cell = lte_cell()
    del cell["cellId"]
    body = {"cellTowers": [cell], "fallbacks": {"lacf": False}}
    assert api.post(URL, json=body).status_code == 404


def test_16_neighbour_with_only_psc_is_ignored(api: TestClient, seed: Seeder) -> None:
    seed.cell(Radio.lte, 2, 1234, lat=51.52)
    body = {"cellTowers": [lte_cell(), {"radioType": "lte", "psc": 77}]}
    assert api.post(URL, json=body).json()["location"]["lat"] == 51.52


def test_17_cdma_cells_are_silently_ignored(api: TestClient, seed: Seeder) -> None:
    seed.cell(Radio.gsm, 3, 33, lat=51.53)
    gsm = {
        "radioType": "gsm",
        "mobileCountryCode": 234,
        "mobileNetworkCode": 30,
        "locationAreaCode": 3,
        "cellId": 33,
    }
    cdma = {**gsm, "radioType": "cdma", "cellId": 34}
    assert api.post(URL, json={"cellTowers": [gsm, cdma]}).json()["location"]["lat"] == 51.53


def test_18_codes_as_strings_match(api: TestClient, seed: Seeder) -> None:
    seed.cell(Radio.gsm, 3, 33, mnc=1, lat=51.54)
    cell = {
        "radioType": "gsm",
        "mobileCountryCode": "234",
        "mobileNetworkCode": "01",
        "locationAreaCode": 3,
        "cellId": 33,
    }
    assert api.post(URL, json={"cellTowers": [cell]}).json()["location"]["lat"] == 51.54


MACS = ["a82066000011", "a82066000012", "a82066000013", "a82066000014"]


def test_19_three_wifis_and_the_queued_report(
    api: TestClient, seed: Seeder, backend_redis: redis.Redis
) -> None:
    for i, mac in enumerate(MACS[:3]):
        seed.wifi(mac, lat=51.5 + i * 1e-5, last_seen=None)
    body = {
        "wifiAccessPoints": [
            {"macAddress": MACS[0], "channel": 1, "signalStrength": -50},
            {"macAddress": MACS[1], "frequency": 2437},
            {"macAddress": MACS[2], "signalStrength": -130, "signalToNoiseRatio": 13},
            {"macAddress": MACS[3], "ssid": "my-wifi"},
        ]
    }
    response = api.post(URL, json=body)
    # Issue 11: the -50 dBm network outweighs the two at -100 (weights
    # 10^(signal / 15)), so the answer is at it (the original: 51.500005);
    # the spread (95th percentile of the distances) is 2.1 m, and the answer
    # states its calibrated radius (the original: 10 m).
    assert response.json() == {
        "location": {"lat": 51.5, "lng": -0.1},
        "accuracy": pytest.approx(calibrated("wifi", 2.1, 3), abs=0.5),
    }
    (item,) = queued(backend_redis)
    assert item["api_key"] == "test" and item["source"] == "query"
    report = item["report"]
    assert report["wifiAccessPoints"] == [
        {"macAddress": MACS[0], "channel": 1, "frequency": 2412, "signalStrength": -50},
        {"macAddress": MACS[1], "channel": 6, "frequency": 2437},
        {"macAddress": MACS[2], "signalToNoiseRatio": 13},
        {"macAddress": MACS[3], "ssid": "my-wifi"},
    ]
    assert report["position"] == {
        "accuracy": 10.0,
        "latitude": 51.5,
        "longitude": -0.1,
        "source": "query",
    }
    assert report["fallbacks"] == {"ipf": True, "lacf": True}


def test_20_bluetooth_position_and_report(
    api: TestClient, seed: Seeder, backend_redis: redis.Redis
) -> None:
    for i, mac in enumerate(MACS[:3]):
        seed.blue(mac, lat=51.5 + i * 1e-5, last_seen=None)
    body = {
        "bluetoothBeacons": [
            {"macAddress": MACS[0], "signalStrength": -50},
            {"macAddress": MACS[1], "signalStrength": -150, "name": "my-beacon"},
            {"macAddress": MACS[2]},
        ]
    }
    response = api.post(URL, json=body)
    # Issue 11's weights, as for Wi-Fi (the original: 51.5000035).
    assert response.json()["location"]["lat"] == 51.5
    assert response.json()["accuracy"] == pytest.approx(calibrated("blue", 2.1, 3), abs=0.5)
    (item,) = queued(backend_redis)
    assert item["report"]["bluetoothBeacons"][1] == {"macAddress": MACS[1], "name": "my-beacon"}


def test_two_beacons_150_m_apart_make_one_answer_issue_11(api: TestClient, seed: Seeder) -> None:
    # Decision (issue 11): beacons are clustered within 200 m, not the
    # original's 100 m. A phone hears beacons up to ~100 m away, so two it
    # hears together can be 200 m apart; at 100 m they were two clusters of
    # one beacon each and the query went unanswered.
    seed.blue(MACS[0], lat=51.5)
    seed.blue(MACS[1], lat=51.50135)  # 150 m north
    body = {"bluetoothBeacons": [{"macAddress": mac} for mac in MACS[:2]], "considerIp": False}
    response = api.post(URL, json=body)
    assert response.status_code == 200
    assert response.json()["location"]["lat"] == pytest.approx(51.500675, abs=1e-6)
    # Farther apart than two ranges, they stay apart: no answer.
    seed.blue(MACS[2], lat=51.5)
    seed.blue(MACS[3], lat=51.5025)  # 278 m north
    body = {"bluetoothBeacons": [{"macAddress": mac} for mac in MACS[2:4]], "considerIp": False}
    assert api.post(URL, json=body).status_code == 404


@pytest.mark.parametrize("macs", [MACS[:2], ["a82066000100", "a82066000200"]])
def test_21_networks_seen_today_are_not_queued(
    api: TestClient, seed: Seeder, backend_redis: redis.Redis, macs: list[str]
) -> None:
    seed.blue(macs[0], lat=51.5)
    seed.blue(macs[1], lat=51.50002)
    body = {"bluetoothBeacons": [{"macAddress": mac} for mac in macs]}
    assert api.post(URL, json=body).json()["location"]["lat"] == 51.50001
    assert queued(backend_redis) == []


def test_22_no_sampling_no_report(
    client: TestClient, seed: Seeder, backend_redis: redis.Redis
) -> None:
    seed.api_key("nosample", store_sample_locate=0)
    for i, mac in enumerate(MACS[:2]):
        seed.wifi(mac, lat=51.5 + i * 1e-5, last_seen=None)
    body = {"wifiAccessPoints": [{"macAddress": mac} for mac in MACS[:2]]}
    response = client.post("/v1/geolocate?key=nosample", json=body)
    assert response.status_code == 200
    assert queued(backend_redis) == []


def test_country_answers_from_geoip(api: TestClient, backend_redis: redis.Redis) -> None:
    response = api.post("/v1/country?key=test", json={}, headers=LONDON)
    assert response.json() == {"country_code": "GB", "country_name": "United Kingdom"}
    assert (
        api.post(
            "/v1/country?key=test", json={}, headers={"X-Forwarded-For": "127.0.0.1"}
        ).status_code
        == 404
    )
    # 33: the country API is never counted or limited.
    assert backend_redis.keys("apilimit:*") == [] and backend_redis.keys("apiuser:*") == []


def test_31_country_from_known_wifis(api: TestClient, seed: Seeder) -> None:
    for mac in MACS[:2]:
        seed.wifi(mac)
    body = {"wifiAccessPoints": [{"macAddress": mac} for mac in MACS[:2]]}
    assert api.post("/v1/country?key=test", json=body).json() == {
        "country_code": "GB",
        "country_name": "United Kingdom",
    }


def cell_of(mcc: int, radio: str = "gsm") -> dict[str, object]:
    return {
        "radioType": radio,
        "mobileCountryCode": mcc,
        "mobileNetworkCode": 1,
        "locationAreaCode": 1,
        "cellId": 1,
    }


@pytest.mark.parametrize(
    ("cells", "expected"),
    [
        ([cell_of(262)], {"country_code": "DE", "country_name": "Germany"}),
        (
            [cell_of(310)],
            {"country_code": "GB", "country_name": "United Kingdom", "fallback": "ipf"},
        ),
        (
            [cell_of(310), cell_of(311, "lte")],
            {"country_code": "US", "country_name": "United States"},
        ),
        ([cell_of(234)], {"country_code": "GB", "country_name": "United Kingdom"}),
        ([cell_of(235)], {"country_code": "GB", "country_name": "United Kingdom"}),
    ],
)
def test_32_country_from_cells_against_london_ip(
    api: TestClient, cells: list[dict[str, object]], expected: dict[str, str]
) -> None:
    response = api.post("/v1/country?key=test", json={"cellTowers": cells}, headers=LONDON)
    assert response.json() == expected


def test_32_us_wifis_beat_a_gb_cell_and_london_ip(api: TestClient, seed: Seeder) -> None:
    old = seed.now - timedelta(days=90)
    for mac in MACS[:2]:
        seed.wifi(mac, region="US", samples=1000, created=old, lat=40.0, lon=-74.0)
    body = {"wifiAccessPoints": [{"macAddress": m} for m in MACS[:2]], "cellTowers": [cell_of(234)]}
    response = api.post("/v1/country?key=test", json=body, headers=LONDON)
    assert response.json()["country_code"] == "US"


def test_query_reports_are_throttled_first_when_the_pipeline_falls_behind(
    backend: Backend, seed: Seeder, make_settings: Any, backend_redis: redis.Redis
) -> None:
    from ichnaea.web.app import create_app

    seed.api_key("test")
    for i, mac in enumerate(MACS[:2]):
        seed.wifi(mac, lat=51.5 + i * 1e-5, last_seen=None)
    backend_redis.rpush(keyspace.INCOMING, b"x", b"y")  # backlog 2 >= 4 // 2
    settings = make_settings(
        DB_READONLY_URI=backend.db_url, REDIS_URI=backend.redis_url, MAX_QUEUE_BACKLOG="4"
    )
    body = {"wifiAccessPoints": [{"macAddress": mac} for mac in MACS[:2]]}
    with TestClient(create_app(settings)) as client:
        assert client.post(URL, json=body).status_code == 200
    assert backend_redis.llen(keyspace.INCOMING) == 2
