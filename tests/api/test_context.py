"""The client address behind trusted proxies (``client_ip``), alone and through the app.

``X-Forwarded-For`` is believed only when the peer is a proxy listed in
``FORWARDED_ALLOW_IPS`` (default: the loopback addresses); then the
right-most entry that is not itself a trusted proxy is the client.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from types import SimpleNamespace

import pytest
import redis
from starlette.datastructures import QueryParams
from starlette.requests import Request
from starlette.testclient import TestClient

from ichnaea.api import context
from ichnaea.api.context import STATE_KEY, KeyOutcome, api_key_text, client_ip, find_api_key
from ichnaea.api.keys import ApiKey, ApiKeyCache
from ichnaea.breaker import CircuitBreaker
from ichnaea.config import Settings
from ichnaea.web.app import create_app
from tests.fixtures_app import Seeder

LONDON_IP = "81.2.69.192"  # GB in the test GeoIP database
SWEDEN_IP = "89.160.20.112"  # SE
NORWAY_V6 = "2a02:cf40::1"  # NO


def request_from(settings: Settings, peer: str | None, *forwarded: str) -> Request:
    scope = {
        "type": "http",
        "method": "GET",
        "path": "/",
        "headers": [(b"x-forwarded-for", value.encode()) for value in forwarded],
        "client": None if peer is None else (peer, 40000),
        "state": {STATE_KEY: SimpleNamespace(settings=settings)},
    }
    return Request(scope)


@pytest.mark.parametrize(
    ("allow", "peer", "forwarded", "expected"),
    [
        # The default trusts only the loopback addresses.
        (None, "203.0.113.7", [LONDON_IP], "203.0.113.7"),
        (None, "127.0.0.1", [LONDON_IP], LONDON_IP),
        (None, "::1", [LONDON_IP], LONDON_IP),
        # A dual-stack listener reports IPv4 peers as mapped IPv6 addresses.
        (None, "::ffff:127.0.0.1", [LONDON_IP], LONDON_IP),
        (None, "::ffff:203.0.113.7", [LONDON_IP], "203.0.113.7"),
        # The proxy appends the address it saw; what the client wrote is to its left.
        (None, "127.0.0.1", [f"1.1.1.1, {LONDON_IP}"], LONDON_IP),
        (None, "127.0.0.1", ["1.1.1.1", LONDON_IP], LONDON_IP),  # two header lines
        (None, "127.0.0.1", [f" , {LONDON_IP} ,, "], LONDON_IP),  # empty entries
        # A chain of trusted proxies in a network is walked from the right.
        ("10.0.0.0/8", "10.1.2.3", [f"1.1.1.1, {LONDON_IP}, 10.0.0.5"], LONDON_IP),
        ("10.0.0.0/8, 192.168.0.1", "192.168.0.1", [f"{LONDON_IP}, 10.9.9.9"], LONDON_IP),
        # Every hop trusted (a request from the proxy host itself): the left-most.
        ("10.0.0.0/8", "10.1.2.3", ["10.0.0.9, 10.0.0.5"], "10.0.0.9"),
        # "*" trusts every hop, so the left-most entry is the client (as uvicorn does).
        ("*", "203.0.113.7", [f"{LONDON_IP}, 10.0.0.5"], LONDON_IP),
        ("*", None, [LONDON_IP], LONDON_IP),
        # IPv6 proxies and clients.
        ("2001:db8::/32", "2001:db8::1", [NORWAY_V6], NORWAY_V6),
        ("2001:db8::/32", "2001:db9::1", [NORWAY_V6], "2001:db9::1"),
        (None, "::1", [f"{NORWAY_V6}, ::1"], NORWAY_V6),
        # Ports, as some proxies write them.
        (None, "127.0.0.1", [f"{LONDON_IP}:5555"], LONDON_IP),
        (None, "127.0.0.1", [f"[{NORWAY_V6}]:443"], NORWAY_V6),
        # Garbage: right of the client it makes the client unknown; left of it, it is
        # what the client wrote and does not matter.
        (None, "127.0.0.1", [f"{LONDON_IP}, garbage"], None),
        (None, "127.0.0.1", [f"garbage, {LONDON_IP}"], LONDON_IP),
        (None, "127.0.0.1", ["unknown"], None),
        # No header: the peer, if it is an address.
        (None, "203.0.113.7", [], "203.0.113.7"),
        (None, "testclient", [], None),
        (None, "testclient", [LONDON_IP], None),
        (None, None, [LONDON_IP], None),
    ],
)
def test_client_ip_believes_forwarded_for_only_from_trusted_proxies(
    make_settings: Callable[..., Settings],
    allow: str | None,
    peer: str | None,
    forwarded: list[str],
    expected: str | None,
) -> None:
    settings = make_settings() if allow is None else make_settings(FORWARDED_ALLOW_IPS=allow)
    assert client_ip(request_from(settings, peer, *forwarded)) == expected


def _users_today(client: redis.Redis) -> int:
    return int(client.pfcount(f"apiuser:locate:test:{datetime.now(UTC):%Y-%m-%d}"))


def test_spoofed_forwarded_for_from_untrusted_peer_is_ignored(
    app_settings: Settings, seed: Seeder, backend_redis: redis.Redis
) -> None:
    seed.api_key("test")
    with TestClient(create_app(app_settings), client=(SWEDEN_IP, 40000)) as client:
        for i in range(100):
            spoofed = {"X-Forwarded-For": f"198.51.100.{i}"}
            client.post("/v1/geolocate?key=test", json={}, headers=spoofed)
        # One client, however many addresses it claims.
        assert _users_today(backend_redis) == 1
        # GeoIP uses the peer, not the header.
        country = client.post(
            "/v1/country?key=test", json={}, headers={"X-Forwarded-For": LONDON_IP}
        )
        assert country.json() == {"country_code": "SE", "country_name": "Sweden"}


def test_forwarded_for_from_trusted_proxy_counts_each_client(
    app_settings: Settings, seed: Seeder, backend_redis: redis.Redis
) -> None:
    seed.api_key("test")
    with TestClient(create_app(app_settings), client=("127.0.0.1", 40000)) as client:
        for ip in (LONDON_IP, SWEDEN_IP, NORWAY_V6):
            client.post("/v1/geolocate?key=test", json={}, headers={"X-Forwarded-For": ip})
        country = client.post(
            "/v1/country?key=test",
            json={},
            headers={"X-Forwarded-For": f"{LONDON_IP}, {SWEDEN_IP}"},
        )
        assert country.json() == {"country_code": "SE", "country_name": "Sweden"}
    assert _users_today(backend_redis) == 3


def test_api_key_in_another_case_is_an_unknown_key(client: TestClient, seed: Seeder) -> None:
    seed.api_key("relkey")
    refused = client.post(
        "/v1/geolocate?key=RELKEY", json={}, headers={"X-Forwarded-For": LONDON_IP}
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["errors"][0]["reason"] == "keyInvalid"
    accepted = client.post(
        "/v1/geolocate?key=relkey", json={}, headers={"X-Forwarded-For": LONDON_IP}
    )
    assert accepted.status_code == 200


@pytest.mark.parametrize(
    "query_string",
    [
        b"",
        b"x=1",
        b"key=abc",
        b"key=a&key=b",
        b"key=",
        b"key",
        b"key=a%20b+c",
        b"key=%ff",
        b"a=1;key=z",
    ],
)
def test_api_key_text_reads_the_query_string_as_starlette_does(query_string: bytes) -> None:
    keys = QueryParams(query_string).getlist("key")
    request = Request({"type": "http", "query_string": query_string, "headers": []})
    assert api_key_text(request) == (keys[-1] if keys else None)


class _QuietRedis:
    async def get(self, name: str) -> None:
        return None  # no key change announced


def _key_state(lookup: Callable[[object, str], ApiKey | None]) -> SimpleNamespace:
    async def run_blocking(func: Callable[..., object], *args: object) -> object:
        return await asyncio.to_thread(func, *args)

    service = SimpleNamespace(
        redis=_QuietRedis(), db_breaker=CircuitBreaker(), run_blocking=run_blocking
    )
    return SimpleNamespace(api_keys=ApiKeyCache(), key_lookups={}, service=service)


def test_concurrent_requests_for_an_uncached_key_share_one_database_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[str] = []

    def lookup(state: object, text: str) -> ApiKey | None:
        calls.append(text)
        time.sleep(0.05)  # a database round trip: the other requests arrive meanwhile
        return ApiKey(valid_key=text) if text != "unknown-key" else None

    monkeypatch.setattr(context, "_lookup_key_sync", lookup)
    state = _key_state(lookup)

    async def run() -> list[tuple[KeyOutcome, ApiKey | None]]:
        texts = ["key-one"] * 20 + ["key-two"] * 5 + ["unknown-key"] * 3
        return await asyncio.gather(*(find_api_key(state, text) for text in texts))  # type: ignore[arg-type]

    results = asyncio.run(run())
    assert sorted(calls) == ["key-one", "key-two", "unknown-key"]
    assert [r[1].valid_key for r in results[:25] if r[1]] == ["key-one"] * 20 + ["key-two"] * 5
    assert {r[0] for r in results[:25]} == {KeyOutcome.found}
    assert results[25:] == [(KeyOutcome.unknown, None)] * 3
    assert state.key_lookups == {}  # nothing left in flight
    # Cached now: no further lookup.
    assert asyncio.run(find_api_key(state, "key-one"))[0] is KeyOutcome.found  # type: ignore[arg-type]
    assert len(calls) == 3


def test_a_request_that_goes_away_does_not_cancel_the_shared_lookup(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(
        context, "_lookup_key_sync", lambda state, text: time.sleep(0.05) or ApiKey(valid_key=text)
    )
    state = _key_state(context._lookup_key_sync)

    async def run() -> tuple[KeyOutcome, ApiKey | None]:
        first = asyncio.ensure_future(find_api_key(state, "key-one"))  # type: ignore[arg-type]
        second = asyncio.ensure_future(find_api_key(state, "key-one"))  # type: ignore[arg-type]
        await asyncio.sleep(0.01)
        first.cancel()  # its client disconnected
        return await second

    outcome, key = asyncio.run(run())
    assert outcome is KeyOutcome.found and key is not None and key.valid_key == "key-one"
