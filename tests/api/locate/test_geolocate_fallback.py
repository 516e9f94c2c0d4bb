"""Spec locate.md section 7, cases 25-29: the external fallback through the real app."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import redis
from starlette.testclient import TestClient

from ichnaea.enums import Radio
from tests.fixtures_app import Backend, Seeder
from tests.fixtures_provider import Provider

URL = "/v1/geolocate?key=fall"


def wcdma(cid: int) -> dict[str, object]:
    return {
        "radioType": "wcdma",
        "mobileCountryCode": 234,
        "mobileNetworkCode": 30,
        "locationAreaCode": 7,
        "cellId": cid,
    }


WIFIS = [{"macAddress": f"a8206601000{i}"} for i in range(3)]


@pytest.fixture
def api(client: TestClient, seed: Seeder, provider: Provider) -> Iterator[TestClient]:
    seed.api_key(
        "fall",
        allow_fallback=True,
        fallback_name="fall",
        fallback_schema="ichnaea/v1",
        fallback_url=provider.url("/v1/geolocate?key=upstream"),
        fallback_ratelimit=10,
        fallback_ratelimit_interval=60,
        fallback_cache_expire=60,
    )
    yield client


def test_25_unsatisfied_query_asks_the_provider(
    api: TestClient, seed: Seeder, provider: Provider
) -> None:
    seed.cell(Radio.wcdma, 7, 1)
    seed.cell(Radio.wcdma, 7, 2)
    provider.reply(
        200,
        {"location": {"lat": 1.0, "lng": 1.0}, "accuracy": 100},
        path="/v1/geolocate?key=upstream",
    )
    body = {"cellTowers": [wcdma(1), wcdma(2)], "wifiAccessPoints": WIFIS}
    response = api.post(URL, json=body)
    assert response.json() == {"location": {"lat": 1.0, "lng": 1.0}, "accuracy": 100.0}
    (sent,) = provider.requests
    assert [c["radioType"] for c in sent.body["cellTowers"]] == ["wcdma", "wcdma"]
    assert len(sent.body["wifiAccessPoints"]) == 3
    assert sent.body["fallbacks"] == {"lacf": True, "ipf": False}
    assert sent.headers["User-Agent"] == "ichnaea"


def test_26_provider_lacf_answer_is_marked(api: TestClient, provider: Provider) -> None:
    provider.reply(
        200,
        {"location": {"lat": 2.0, "lng": 3.0}, "accuracy": 20000, "fallback": "lacf"},
        path="/v1/geolocate?key=upstream",
    )
    response = api.post(URL, json={"cellTowers": [wcdma(9)]})
    assert response.json() == {
        "location": {"lat": 2.0, "lng": 3.0},
        "accuracy": 20000.0,
        "fallback": "lacf",
    }


def test_27_not_found_is_cached_for_a_single_cell(api: TestClient, provider: Provider) -> None:
    provider.reply(404, {"error": "nope"}, path="/v1/geolocate?key=upstream")
    assert api.post(URL, json={"cellTowers": [wcdma(5)]}).status_code == 404
    assert (
        api.post(URL, json={"cellTowers": [{**wcdma(5), "signalStrength": -90}]}).status_code == 404
    )
    assert len(provider.requests) == 1


@pytest.mark.parametrize("status", [403, 500])
def test_28_provider_errors_give_no_result_and_no_cache(
    api: TestClient, provider: Provider, status: int
) -> None:
    provider.reply(status, {"error": "x"}, path="/v1/geolocate?key=upstream")
    for _ in range(2):
        assert api.post(URL, json={"cellTowers": [wcdma(6)]}).status_code == 404
    assert len(provider.requests) == 2  # nothing was cached


def test_29_rate_limit_reached_means_no_call(
    api: TestClient, provider: Provider, backend: Backend
) -> None:
    client = redis.Redis.from_url(backend.redis_url)
    bucket = int(time.time() // 60)
    for minute in (bucket, bucket + 1):  # the request may land in the next minute
        client.set(f"fallback_ratelimit:fall:{minute}", 10)
    provider.reply(
        200,
        {"location": {"lat": 1.0, "lng": 1.0}, "accuracy": 100},
        path="/v1/geolocate?key=upstream",
    )
    assert api.post(URL, json={"cellTowers": [wcdma(8)]}).status_code == 404
    assert provider.requests == []


def test_satisfied_query_does_not_ask_the_provider(
    api: TestClient, seed: Seeder, provider: Provider
) -> None:
    for i, wifi in enumerate(WIFIS[:2]):
        seed.wifi(
            wifi["macAddress"],
            lat=51.5 + i * 1e-5,
            samples=1000,
            created=seed.now.replace(year=2020),
        )
    response = api.post(URL, json={"wifiAccessPoints": WIFIS[:2]})
    assert response.status_code == 200
    assert provider.requests == []


def test_opted_out_networks_are_not_sent_to_the_provider(
    api: TestClient, provider: Provider
) -> None:
    # Issue 8 item 18: an opted-out network never leaves the service, and an
    # external fallback provider is outside it.
    provider.reply(
        200,
        {"location": {"lat": 1.0, "lng": 1.0}, "accuracy": 100},
        path="/v1/geolocate?key=upstream",
    )
    wifis = [
        {"macAddress": "a82066010001", "ssid": "home_nomap"},
        {"macAddress": "a82066010002", "ssid": "office_optout_5G"},
        {"macAddress": "a82066010003", "ssid": "cafe"},
        {"macAddress": "a82066010004"},
    ]
    response = api.post(URL, json={"wifiAccessPoints": wifis})
    assert response.json() == {"location": {"lat": 1.0, "lng": 1.0}, "accuracy": 100.0}
    (sent,) = provider.requests
    assert [w["macAddress"] for w in sent.body["wifiAccessPoints"]] == [
        "a82066010003",
        "a82066010004",
    ]
