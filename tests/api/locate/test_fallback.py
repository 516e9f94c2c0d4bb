"""The fallback provider client against a real HTTP server and real Redis.

``provider`` is a threaded HTTP server on 127.0.0.1 that records every
request and answers with the reply scripted for its path; every test that
asks for ``aredis`` runs against both the Redis server and the embedded one.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import redis.asyncio
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from ichnaea.api.locate.fallback import (
    CacheEvent,
    FallbackAnswer,
    FallbackClient,
    FallbackConfig,
    FallbackEvent,
    FallbackNetworks,
    LookupEvent,
    make_http_client,
)
from ichnaea.broker import keyspace
from ichnaea.broker.client import connect_async_url
from ichnaea.codecs import encode_cellid, encode_mac
from ichnaea.enums import Radio
from tests.fixtures_provider import Provider

# Queues, limits, counters and caches: also on a Redis Cluster.
pytestmark = pytest.mark.redis_cluster


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def aredis(redis_url: str) -> AsyncIterator[redis.asyncio.Redis]:
    client = connect_async_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with make_http_client() as client:
        yield client


# --- queries and configs ----------------------------------------------------

FOUND = {"location": {"lat": 51.5, "lng": -0.1}, "accuracy": 100}
ANSWER = FallbackAnswer(51.5, -0.1, 100.0, None)


def config(url: str, **overrides: Any) -> FallbackConfig:
    values: dict[str, Any] = {
        "name": "fall",
        "schema": "ichnaea/v1",
        "url": url,
        "ratelimit": 10,
        "ratelimit_interval_s": 60,
        "cache_expire_s": 60,
    }
    values.update(overrides)
    return FallbackConfig(**values)


def mac(n: int) -> str:
    return f"a8206749{n:04x}"


def cell(cid: int, *, signal: int = -80) -> dict[str, Any]:
    return {
        "radioType": "wcdma",
        "mobileCountryCode": 234,
        "mobileNetworkCode": 30,
        "locationAreaCode": 1,
        "cellId": cid,
        "signalStrength": signal,
    }


def cellid(cid: int) -> bytes:
    return encode_cellid(Radio.wcdma, 234, 30, 1, cid)


def make_query(
    *, blues: int = 0, cells: int = 0, wifis: int = 0, signal: int = -80
) -> tuple[dict[str, Any], FallbackNetworks]:
    """A normalised query (spec 2.8) and its network ids; blue MACs follow wifi MACs."""
    query: dict[str, Any] = {"fallbacks": {"ipf": True, "lacf": True}}
    if blues:
        query["bluetoothBeacons"] = [{"macAddress": mac(1000 + i)} for i in range(blues)]
    if cells:
        query["cellTowers"] = [cell(1 + i, signal=signal) for i in range(cells)]
    if wifis:
        query["wifiAccessPoints"] = [
            {"macAddress": mac(i), "signalStrength": signal} for i in range(wifis)
        ]
    networks = FallbackNetworks(
        blue=tuple(encode_mac(mac(1000 + i)) for i in range(blues)),
        cell=tuple(cellid(1 + i) for i in range(cells)),
        wifi=tuple(encode_mac(mac(i)) for i in range(wifis)),
    )
    return query, networks


async def cache_keys(aredis: redis.asyncio.Redis) -> list[bytes]:
    return sorted([key async for key in aredis.scan_iter(match=b"cache:fallback:*")])


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


# --- outbound bodies --------------------------------------------------------

FULL_QUERY: dict[str, Any] = {
    "bluetoothBeacons": [
        {"macAddress": "a82067491500", "age": 10, "name": "beacon", "signalStrength": -60},
        {"macAddress": "a82067491501", "extra": 1},
    ],
    "cellTowers": [
        {
            "radioType": "lte",
            "mobileCountryCode": 234,
            "mobileNetworkCode": 30,
            "locationAreaCode": 12,
            "cellId": 345,
            "primaryScramblingCode": 7,
            "age": 20,
            "signalStrength": -90,
            "timingAdvance": 3,
            "asu": 50,
        }
    ],
    "wifiAccessPoints": [
        {
            "macAddress": "a82067491600",
            "age": 30,
            "channel": 6,
            "frequency": 2437,
            "signalStrength": -70,
            "signalToNoiseRatio": 13,
            "ssid": "my-wifi",
        },
        {"macAddress": "a82067491601"},
    ],
    "fallbacks": {"ipf": True, "lacf": True},
}

ICHNAEA_BODY = {
    "bluetoothBeacons": [
        {"macAddress": "a82067491500", "age": 10, "name": "beacon", "signalStrength": -60},
        {"macAddress": "a82067491501"},
    ],
    "cellTowers": [
        {
            "radioType": "lte",
            "mobileCountryCode": 234,
            "mobileNetworkCode": 30,
            "locationAreaCode": 12,
            "cellId": 345,
            "primaryScramblingCode": 7,
            "age": 20,
            "signalStrength": -90,
            "timingAdvance": 3,
        }
    ],
    "wifiAccessPoints": [
        {
            "macAddress": "a82067491600",
            "age": 30,
            "channel": 6,
            "signalStrength": -70,
            "signalToNoiseRatio": 13,
            "ssid": "my-wifi",
        },
        {"macAddress": "a82067491601"},
    ],
    "fallbacks": {"lacf": True, "ipf": False},
}

GOOGLEMAPS_BODY = {
    "considerIp": False,
    "cellTowers": [
        {
            "radioType": "lte",
            "mobileCountryCode": 234,
            "mobileNetworkCode": 30,
            "locationAreaCode": 12,
            "cellId": 345,
            "age": 20,
            "signalStrength": -90,
            "timingAdvance": 3,
        }
    ],
    "wifiAccessPoints": [
        {
            "macAddress": "a82067491600",
            "age": 30,
            "channel": 6,
            "signalStrength": -70,
            "signalToNoiseRatio": 13,
        },
        {"macAddress": "a82067491601"},
    ],
}

UNWIREDLABS_BODY = {
    "token": "s3cr3t",
    "fallbacks": {"lacf": True, "ipf": False},
    "cells": [
        {
            "radio": "lte",
            "mcc": 234,
            "mnc": 30,
            "lac": 12,
            "cid": 345,
            "signal": -90,
            "tA": 3,
            "psc": 7,
            "asu": 50,
        }
    ],
    "wifi": [
        {
            "bssid": "a82067491600",
            "channel": 6,
            "frequency": 2437,
            "signal": -70,
            "signalToNoiseRatio": 13,
        },
        {"bssid": "a82067491601"},
    ],
}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("schema", "suffix", "path", "expected"),
    [
        ("ichnaea/v1", "", "/v1/geolocate", ICHNAEA_BODY),
        ("combain/v1", "", "/v1/geolocate", ICHNAEA_BODY),
        ("googlemaps/v1", "", "/v1/geolocate", GOOGLEMAPS_BODY),
        ("unwiredlabs/v1", "#s3cr3t", "/v2/process.php", UNWIREDLABS_BODY),
    ],
)
async def test_outbound_body_matches_schema(
    provider: Provider,
    aredis: redis.asyncio.Redis,
    http: httpx.AsyncClient,
    schema: str,
    suffix: str,
    path: str,
    expected: dict[str, Any],
) -> None:
    provider.reply(404, path=path)
    client = FallbackClient(http, aredis)
    conf = config(provider.url(path) + suffix, schema=schema)

    await client.locate(conf, FULL_QUERY, FallbackNetworks())

    [request] = provider.requests
    assert request.path == path
    assert request.body == expected
    assert request.headers["User-Agent"] == "ichnaea"
    assert request.headers["Content-Type"] == "application/json"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("schema", "expected"),
    [
        ("ichnaea/v1", {"fallbacks": {"lacf": False, "ipf": False}}),
        ("googlemaps/v1", {"considerIp": False}),
        ("unwiredlabs/v1", {"token": "", "fallbacks": {"lacf": False, "ipf": False}}),
    ],
)
async def test_outbound_body_drops_unsupported_and_empty_lists(
    provider: Provider,
    aredis: redis.asyncio.Redis,
    http: httpx.AsyncClient,
    schema: str,
    expected: dict[str, Any],
) -> None:
    provider.reply(404)
    query = {
        "bluetoothBeacons": [{"macAddress": mac(1)}, {"macAddress": mac(2)}],
        "fallbacks": {"ipf": True, "lacf": False},
    }
    if schema == "ichnaea/v1":  # ichnaea sends beacons; the others have no field for them
        expected = {**expected, "bluetoothBeacons": query["bluetoothBeacons"]}

    await FallbackClient(http, aredis).locate(
        config(provider.url(), schema=schema), query, FallbackNetworks()
    )

    assert provider.requests[0].body == expected


@pytest.mark.anyio
async def test_locate_mixed_query_sends_spec_case_25_body(
    provider: Provider, aredis: redis.asyncio.Redis, http: httpx.AsyncClient
) -> None:
    provider.reply(200, {"location": {"lat": 1.0, "lng": 1.0}, "accuracy": 100})
    query, networks = make_query(cells=2, wifis=3)

    answer = await FallbackClient(http, aredis).locate(config(provider.url()), query, networks)

    assert answer == FallbackAnswer(1.0, 1.0, 100.0, None)
    body = provider.requests[0].body
    assert [c["radioType"] for c in body["cellTowers"]] == ["wcdma", "wcdma"]
    assert len(body["wifiAccessPoints"]) == 3
    assert body["fallbacks"] == {"lacf": True, "ipf": False}
    assert "bluetoothBeacons" not in body
    assert await cache_keys(aredis) == []  # mixed queries are never cached


# --- answers ----------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("extra", "fallback"),
    [
        ({"fallback": "lacf"}, "lacf"),
        ({"fallback": "ipf"}, None),
        ({"fallback": 1}, None),
        ({}, None),
    ],
)
async def test_locate_keeps_only_lacf_fallback(
    provider: Provider,
    aredis: redis.asyncio.Redis,
    http: httpx.AsyncClient,
    extra: dict[str, Any],
    fallback: str | None,
) -> None:
    provider.reply(200, {**FOUND, **extra})
    query, networks = make_query(cells=1)

    answer = await FallbackClient(http, aredis).locate(config(provider.url()), query, networks)

    assert answer == FallbackAnswer(51.5, -0.1, 100.0, fallback)


@pytest.mark.anyio
async def test_locate_caches_found_answer_for_single_cell(
    provider: Provider, aredis: redis.asyncio.Redis, http: httpx.AsyncClient
) -> None:
    provider.reply(200, {**FOUND, "fallback": "lacf"})
    query, networks = make_query(cells=1)
    client = FallbackClient(http, aredis)
    events: list[FallbackEvent] = []

    first = await client.locate(config(provider.url()), query, networks, on_event=events.append)
    second = await client.locate(config(provider.url()), query, networks, on_event=events.append)

    assert first == second == FallbackAnswer(51.5, -0.1, 100.0, "lacf")
    assert len(provider.requests) == 1
    key = b"cache:fallback:ichnaea:v1:1:cell:" + cellid(1)
    assert await cache_keys(aredis) == [key]
    assert json.loads(await aredis.get(key) or b"") == {
        "lat": 51.5,
        "lon": -0.1,
        "accuracy": 100.0,
        "fallback": "lacf",
    }
    assert 0 < await aredis.ttl(key) <= 60
    lookup = events[1]
    assert isinstance(lookup, LookupEvent)
    assert lookup.status == 200
    assert lookup.duration_s >= 0
    assert [events[0], events[2]] == [CacheEvent("fall", "miss"), CacheEvent("fall", "hit")]


@pytest.mark.anyio
async def test_locate_not_found_is_cached_and_reused(
    provider: Provider, aredis: redis.asyncio.Redis, http: httpx.AsyncClient
) -> None:
    provider.reply(404, {"error": "not found"})
    client = FallbackClient(http, aredis)
    conf = config(provider.url())
    query, networks = make_query(cells=1)
    stronger, same_networks = make_query(cells=1, signal=-60)

    assert await client.locate(conf, query, networks) is None
    assert await client.locate(conf, query, networks) is None
    assert await client.locate(conf, stronger, same_networks) is None

    assert len(provider.requests) == 1
    key = b"cache:fallback:ichnaea:v1:1:cell:" + cellid(1)
    assert await aredis.get(key) == b'"404"'
    assert 0 < await aredis.ttl(key) <= 60


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "body"),
    [
        (403, FOUND),
        (500, FOUND),
        (503, b""),
        (200, b"<html>not json</html>"),
        (200, b"\xae\xff"),
        (200, b""),
        (200, [FOUND]),
        (200, {"location": {"lat": 51.5, "lng": -0.1}}),
        (200, {"location": {"lat": 51.5}, "accuracy": 10}),
        (200, {"lat": 51.5, "lng": -0.1, "accuracy": 10}),
        (200, {"location": [51.5, -0.1], "accuracy": 10}),
        (200, b'{"location": {"lat": NaN, "lng": -0.1}, "accuracy": 10}'),
        (200, b'{"location": {"lat": 51.5, "lng": Infinity}, "accuracy": 10}'),
        (200, b'{"location": {"lat": 51.5, "lng": -0.1}, "accuracy": NaN}'),
        (200, b'{"location": {"lat": 51.5, "lng": 1%s}, "accuracy": 10}' % (b"0" * 400)),
        (200, {"location": {"lat": "51.5", "lng": -0.1}, "accuracy": 10}),
        (200, {"location": {"lat": True, "lng": -0.1}, "accuracy": 10}),
        (204, b""),
    ],
)
async def test_locate_provider_error_gives_no_answer_and_no_cache(
    provider: Provider,
    aredis: redis.asyncio.Redis,
    http: httpx.AsyncClient,
    caplog: pytest.LogCaptureFixture,
    status: int,
    body: Any,
) -> None:
    provider.reply(status, body)
    query, networks = make_query(cells=1)
    client = FallbackClient(http, aredis)

    with caplog.at_level(logging.WARNING):
        assert await client.locate(config(provider.url()), query, networks) is None
        assert await client.locate(config(provider.url()), query, networks) is None

    assert len(provider.requests) == 2  # the error was not cached
    assert await cache_keys(aredis) == []
    assert any("fallback fall:" in record.getMessage() for record in caplog.records)


@pytest.mark.anyio
async def test_locate_timeout_gives_no_answer_and_no_cache(
    provider: Provider, aredis: redis.asyncio.Redis, http: httpx.AsyncClient
) -> None:
    provider.reply(200, FOUND, delay_s=5.0)
    query, networks = make_query(cells=1)
    events: list[FallbackEvent] = []

    started = time.monotonic()
    answer = await FallbackClient(http, aredis, timeout_s=0.3).locate(
        config(provider.url()), query, networks, on_event=events.append
    )

    assert answer is None
    assert time.monotonic() - started < 3.0
    assert await cache_keys(aredis) == []
    lookup = events[-1]
    assert isinstance(lookup, LookupEvent)
    assert (lookup.fallback_name, lookup.status) == ("fall", None)
    assert 0.2 < lookup.duration_s < 3.0


@pytest.mark.anyio
@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:{port}/", "http://[::1/", "ftp://127.0.0.1:{port}/", "nothing"]
)
async def test_locate_unreachable_provider_gives_no_answer(
    aredis: redis.asyncio.Redis, http: httpx.AsyncClient, url: str
) -> None:
    query, networks = make_query(cells=1)
    conf = config(url.format(port=free_port()))

    assert await FallbackClient(http, aredis).locate(conf, query, networks) is None
    assert await cache_keys(aredis) == []


@pytest.mark.anyio
async def test_http_client_follows_one_redirect_only(
    provider: Provider, aredis: redis.asyncio.Redis, http: httpx.AsyncClient
) -> None:
    provider.reply(307, b"", path="/once", headers={"Location": "/answer"})
    provider.reply(307, b"", path="/twice", headers={"Location": "/once"})
    provider.reply(200, FOUND, path="/answer")
    client = FallbackClient(http, aredis)
    query, networks = make_query(cells=2)

    assert await client.locate(config(provider.url("/once")), query, networks) == ANSWER
    assert await client.locate(config(provider.url("/twice")), query, networks) is None
    assert [r.path for r in provider.requests] == ["/once", "/answer", "/twice", "/once"]


# --- rate limit -------------------------------------------------------------


def test_ratelimit_key_uses_interval_number() -> None:
    assert keyspace.fallback_ratelimit("fall", 60, 150.9) == "fallback_ratelimit:fall:2"


@pytest.mark.anyio
async def test_ratelimit_counter_at_limit_skips_call(
    provider: Provider, aredis: redis.asyncio.Redis, http: httpx.AsyncClient
) -> None:
    provider.reply(200, FOUND)
    now = time.time()
    for when in (now, now + 60):  # the test may cross into the next interval
        await aredis.set(keyspace.fallback_ratelimit("fall", 60, when), 10)
    query, networks = make_query(cells=1)

    answer = await FallbackClient(http, aredis).locate(config(provider.url()), query, networks)

    assert answer is None
    assert provider.requests == []


@pytest.mark.anyio
async def test_ratelimit_counts_requests_and_expires(
    provider: Provider, aredis: redis.asyncio.Redis, http: httpx.AsyncClient
) -> None:
    provider.reply(200, FOUND)
    conf = config(provider.url(), ratelimit=2, ratelimit_interval_s=3600, cache_expire_s=None)
    client = FallbackClient(http, aredis)
    query, networks = make_query(cells=1)

    answers = [await client.locate(conf, query, networks) for _ in range(3)]

    assert answers == [ANSWER, ANSWER, None]
    assert len(provider.requests) == 2
    key = keyspace.fallback_ratelimit("fall", 3600, time.time())
    assert await aredis.get(key) == b"3"
    assert 3600 * 4 < await aredis.ttl(key) <= 3600 * 5


@pytest.mark.anyio
@pytest.mark.parametrize("ratelimit", [0, None])
async def test_ratelimit_zero_or_none_is_unlimited(
    provider: Provider,
    aredis: redis.asyncio.Redis,
    http: httpx.AsyncClient,
    ratelimit: int | None,
) -> None:
    provider.reply(200, FOUND)
    conf = config(provider.url(), ratelimit=ratelimit, cache_expire_s=None)
    query, networks = make_query(cells=1)

    for _ in range(3):
        assert await FallbackClient(http, aredis).locate(conf, query, networks) == ANSWER

    assert len(provider.requests) == 3
    assert [key async for key in aredis.scan_iter(match="fallback_ratelimit:*")] == []


def _redis_down() -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        "redis://127.0.0.1:1", retry=Retry(NoBackoff(), 0), socket_connect_timeout=1
    )


@pytest.mark.anyio
async def test_redis_down_ratelimited_config_makes_no_call(
    provider: Provider, http: httpx.AsyncClient
) -> None:
    provider.reply(200, FOUND)
    query, networks = make_query(cells=2)  # not cacheable: only the rate limit needs Redis
    down = _redis_down()

    answer = await FallbackClient(http, down).locate(config(provider.url()), query, networks)

    await down.aclose()
    assert answer is None
    assert provider.requests == []


@pytest.mark.anyio
async def test_redis_down_cache_read_failure_is_a_miss(
    provider: Provider, http: httpx.AsyncClient
) -> None:
    provider.reply(200, FOUND)
    query, networks = make_query(cells=1)
    down = _redis_down()
    events: list[FallbackEvent] = []

    answer = await FallbackClient(http, down).locate(
        config(provider.url(), ratelimit=None), query, networks, on_event=events.append
    )

    await down.aclose()
    assert answer == ANSWER  # the cache write fails too, quietly
    assert len(provider.requests) == 1
    assert events[0] == CacheEvent("fall", "failure")


# --- cache rules ------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("counts", "overrides"),
    [
        ({"cells": 2}, {}),
        ({"cells": 1, "wifis": 2}, {}),
        ({"cells": 1, "blues": 2}, {}),
        ({"wifis": 2, "blues": 2}, {}),
        ({"wifis": 20}, {}),
        ({"blues": 20}, {}),
        ({}, {}),
        ({"cells": 1}, {"cache_expire_s": 0}),
        ({"cells": 1}, {"cache_expire_s": None}),
    ],
)
async def test_cache_bypassed(
    provider: Provider,
    aredis: redis.asyncio.Redis,
    http: httpx.AsyncClient,
    counts: dict[str, int],
    overrides: dict[str, Any],
) -> None:
    provider.reply(404)
    query, networks = make_query(**counts)
    conf = config(provider.url(), **overrides)
    events: list[FallbackEvent] = []
    client = FallbackClient(http, aredis)

    await client.locate(conf, query, networks, on_event=events.append)
    await client.locate(conf, query, networks)

    assert len(provider.requests) == 2
    assert await cache_keys(aredis) == []
    assert events[0] == CacheEvent("fall", "bypassed")


@pytest.mark.anyio
@pytest.mark.parametrize(("kind", "counts"), [("wifi", {"wifis": 19}), ("blue", {"blues": 19})])
async def test_cache_applies_to_one_kind_of_fewer_than_20_networks(
    provider: Provider,
    aredis: redis.asyncio.Redis,
    http: httpx.AsyncClient,
    kind: str,
    counts: dict[str, int],
) -> None:
    provider.reply(200, FOUND)
    query, networks = make_query(**counts)
    client = FallbackClient(http, aredis)

    assert await client.locate(config(provider.url()), query, networks) == ANSWER
    assert await client.locate(config(provider.url()), query, networks) == ANSWER

    assert len(provider.requests) == 1
    ids = networks.wifi if kind == "wifi" else networks.blue
    prefix = f"cache:fallback:ichnaea:v1:1:{kind}:".encode()
    assert await cache_keys(aredis) == sorted(prefix + i for i in ids)


@pytest.mark.anyio
async def test_cache_hit_skips_ratelimit_and_is_not_rewritten(
    provider: Provider, aredis: redis.asyncio.Redis, http: httpx.AsyncClient
) -> None:
    query, networks = make_query(cells=1)
    key = keyspace.fallback_cache("ichnaea/v1", "cell", cellid(1))
    await aredis.set(key, json.dumps({"lat": 1.0, "lon": 2.0, "accuracy": 3.0, "fallback": None}))
    await aredis.expire(key, 1000)
    for when in (time.time(), time.time() + 60):
        await aredis.set(keyspace.fallback_ratelimit("fall", 60, when), 10)

    answer = await FallbackClient(http, aredis).locate(config(provider.url()), query, networks)

    assert answer == FallbackAnswer(1.0, 2.0, 3.0, None)
    assert provider.requests == []
    assert await aredis.ttl(key) > 60


async def _cache_wifis(aredis: redis.asyncio.Redis, values: list[Any], schema: str) -> None:
    for n, value in enumerate(values):
        key = keyspace.fallback_cache(schema, "wifi", encode_mac(mac(n)))
        await aredis.set(key, value if isinstance(value, bytes) else json.dumps(value))


def _found(lat: float, lon: float, accuracy: float, fallback: str | None = None) -> dict[str, Any]:
    return {"lat": lat, "lon": lon, "accuracy": accuracy, "fallback": fallback}


@pytest.mark.anyio
async def test_cache_combines_consistent_values_spec_example(
    provider: Provider, aredis: redis.asyncio.Redis, http: httpx.AsyncClient
) -> None:
    lat, lon = 51.5, -0.1
    near, far = _found(lat, lon, 100), _found(lat + 0.0001, lon, 200)
    await _cache_wifis(aredis, [near, near, far, far], "ichnaea/v1")
    query, networks = make_query(wifis=4)
    events: list[FallbackEvent] = []

    answer = await FallbackClient(http, aredis).locate(
        config(provider.url()), query, networks, on_event=events.append
    )

    assert answer is not None
    assert answer.lat == pytest.approx(lat + 0.00005)
    assert answer.lon == pytest.approx(lon)
    assert answer.accuracy_m == pytest.approx(205.56, abs=0.01)
    assert answer.fallback is None
    assert provider.requests == []
    assert events == [CacheEvent("fall", "hit")]


@pytest.mark.anyio
async def test_cache_skips_missing_values(
    provider: Provider, aredis: redis.asyncio.Redis, http: httpx.AsyncClient
) -> None:
    await _cache_wifis(aredis, [_found(1.0, 2.0, 30, "lacf")], "ichnaea/v1")
    query, networks = make_query(wifis=3)

    answer = await FallbackClient(http, aredis).locate(config(provider.url()), query, networks)

    assert answer == FallbackAnswer(1.0, 2.0, 30.0, "lacf")
    assert provider.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    "values",
    [
        # the spec example plus two networks cached 10° away
        [_found(51.5, -0.1, 100)] * 2
        + [_found(51.5001, -0.1, 200)] * 2
        + [_found(61.5, -0.1, 5)] * 2,
        [_found(51.5, -0.1, 100), "404"],
        [_found(51.5, -0.1, 100), _found(51.5, -0.1, 100, "lacf")],
    ],
    ids=["far-apart", "found-and-not-found", "different-fallback"],
)
async def test_cache_inconsistent_values_are_a_miss(
    provider: Provider, aredis: redis.asyncio.Redis, http: httpx.AsyncClient, values: list[Any]
) -> None:
    provider.reply(200, FOUND)
    await _cache_wifis(aredis, values, "ichnaea/v1")
    query, networks = make_query(wifis=len(values))
    events: list[FallbackEvent] = []

    answer = await FallbackClient(http, aredis).locate(
        config(provider.url()), query, networks, on_event=events.append
    )

    assert answer == ANSWER
    assert len(provider.requests) == 1
    assert events[0] == CacheEvent("fall", "inconsistent")
    # the provider's definite answer replaces every network's cached value
    stored = {json.dumps(_found(51.5, -0.1, 100.0)).encode()}
    assert {await aredis.get(key) for key in await cache_keys(aredis)} == stored


@pytest.mark.anyio
async def test_cache_consistency_uses_longitude_fixing_q2(
    provider: Provider, aredis: redis.asyncio.Redis, http: httpx.AsyncClient
) -> None:
    # The original grouped by (round(lat, 3), round(lat, 3), fallback) and
    # would have averaged these two into a point ~700 km from both.
    provider.reply(200, FOUND)
    await _cache_wifis(aredis, [_found(51.5, -0.1, 100), _found(51.5, 10.0, 100)], "ichnaea/v1")
    query, networks = make_query(wifis=2)
    events: list[FallbackEvent] = []

    answer = await FallbackClient(http, aredis).locate(
        config(provider.url()), query, networks, on_event=events.append
    )

    assert answer == ANSWER
    assert len(provider.requests) == 1
    assert events[0] == CacheEvent("fall", "inconsistent")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "garbage",
    [b"not json", b'"405"', json.dumps(_found(1.0, 2.0, 3.0, "ipf")), json.dumps({"lat": 1.0})],
)
async def test_cache_undecodable_value_is_a_failure(
    provider: Provider,
    aredis: redis.asyncio.Redis,
    http: httpx.AsyncClient,
    garbage: bytes | str,
) -> None:
    provider.reply(200, FOUND)
    await _cache_wifis(aredis, [_found(51.5, -0.1, 100), garbage], "ichnaea/v1")
    query, networks = make_query(wifis=2)
    events: list[FallbackEvent] = []

    answer = await FallbackClient(http, aredis).locate(
        config(provider.url()), query, networks, on_event=events.append
    )

    assert answer == ANSWER
    assert events[0] == CacheEvent("fall", "failure")
    assert len(provider.requests) == 1


@pytest.mark.anyio
async def test_cache_keys_are_per_provider(
    provider: Provider, aredis: redis.asyncio.Redis, http: httpx.AsyncClient
) -> None:
    provider.reply(200, FOUND)
    await _cache_wifis(aredis, [_found(1.0, 2.0, 3.0)] * 2, "ichnaea/v1")
    query, networks = make_query(wifis=2)

    answer = await FallbackClient(http, aredis).locate(
        config(provider.url(), schema="combain/v1"), query, networks
    )

    assert answer == ANSWER
    assert len(provider.requests) == 1
    combain = [k for k in await cache_keys(aredis) if k.startswith(b"cache:fallback:combain:")]
    assert len(combain) == 2


# --- unwiredlabs ------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"status": "ok", "lat": 51.5, "lon": -0.1, "accuracy": 100}, ANSWER),
        (
            {"status": "ok", "lat": 51.5, "lon": -0.1, "accuracy": 100, "fallback": "lacf"},
            FallbackAnswer(51.5, -0.1, 100.0, "lacf"),
        ),
    ],
)
async def test_unwiredlabs_ok_gives_answer(
    provider: Provider,
    aredis: redis.asyncio.Redis,
    http: httpx.AsyncClient,
    body: dict[str, Any],
    expected: FallbackAnswer,
) -> None:
    provider.reply(200, body, path="/v2/process.php")
    conf = config(provider.url("/v2/process.php") + "#tok", schema="unwiredlabs/v1")
    query, networks = make_query(cells=1)

    assert await FallbackClient(http, aredis).locate(conf, query, networks) == expected
    assert await cache_keys(aredis) == [b"cache:fallback:unwiredlabs:v1:1:cell:" + cellid(1)]


@pytest.mark.anyio
async def test_unwiredlabs_no_matches_is_cached_not_found(
    provider: Provider, aredis: redis.asyncio.Redis, http: httpx.AsyncClient
) -> None:
    provider.reply(200, {"status": "error", "message": "No matches found", "balance": 10})
    conf = config(provider.url() + "#tok", schema="unwiredlabs/v1")
    query, networks = make_query(cells=1)
    client = FallbackClient(http, aredis)

    assert await client.locate(conf, query, networks) is None
    assert await client.locate(conf, query, networks) is None

    assert len(provider.requests) == 1
    key = b"cache:fallback:unwiredlabs:v1:1:cell:" + cellid(1)
    assert await aredis.get(key) == b'"404"'


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        {"status": "error", "message": "Invalid token"},
        {"status": "error"},
        {"status": "ok", "lon": -0.1, "accuracy": 100},
        {"status": "ok", "lat": 51.5, "lon": -0.1},
        {"lat": 51.5, "lon": -0.1, "accuracy": 100},
    ],
)
async def test_unwiredlabs_other_status_is_an_error(
    provider: Provider, aredis: redis.asyncio.Redis, http: httpx.AsyncClient, body: dict[str, Any]
) -> None:
    provider.reply(200, body)
    conf = config(provider.url() + "#tok", schema="unwiredlabs/v1")
    query, networks = make_query(cells=1)

    assert await FallbackClient(http, aredis).locate(conf, query, networks) is None
    assert await cache_keys(aredis) == []


# --- configuration ----------------------------------------------------------


@pytest.mark.parametrize(
    "overrides", [{"schema": "ichnaea/v2"}, {"schema": ""}, {"ratelimit_interval_s": 0}]
)
def test_config_rejects_invalid_values(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        config("http://127.0.0.1/", **overrides)


def test_config_provider_is_schema_first_part() -> None:
    assert config("http://x/", schema="googlemaps/v1").provider == "googlemaps"
    key = keyspace.fallback_cache("googlemaps/v1", "blue", b"\x01" * 6)
    assert key == b"cache:fallback:googlemaps:v1:1:blue:" + b"\x01" * 6
