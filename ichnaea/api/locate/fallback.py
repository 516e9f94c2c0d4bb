"""Client for the external fallback geolocation provider of an API key.

An API key may name an external provider (Ichnaea, Combain, Google Maps or
Unwired Labs) that is asked when our own data cannot answer a query well
enough. Deciding *whether* to ask is the caller's job; this module only asks,
remembers answers and protects the provider from floods. ``locate`` runs:

1. **Cache read.** Only queries of one kind of network are cached: exactly one
   full cell, or only wifis (fewer than 20), or only Bluetooth beacons (fewer
   than 20), and only if the key's ``cache_expire_s`` is set. Every network has
   its own binary Redis key, ``cache:fallback:<provider>:v1:1:<type>:`` followed
   by the raw 6-byte MAC or cellid. The values found are grouped by
   ``(round(lat, 3), round(lon, 3), fallback)``, with not-found markers in a
   group of their own. One group is a hit: its mean position, an accuracy
   that covers every value's circle, and the first value's ``fallback``; or a
   cached not-found. No values is a miss; several groups are *inconsistent*
   and a Redis or decoding error is a *failure*, both treated as a miss. A hit
   is returned at once, without a rate-limit check and without re-caching.
2. **Rate limit.** Unless the key's limit is 0 or None (unlimited), ``INCR`` the
   counter ``fallback_ratelimit:<name>:<floor(now / interval)>`` (expiring
   after five intervals); when the new count exceeds the limit, or Redis
   fails, the provider is not asked and there is no answer.
3. **Call.** POST the query, rewritten into the provider's schema, with a
   timeout (5 s by default). HTTP 404, or Unwired Labs' "No matches found", is
   a definite not-found; a valid 200 body is a found answer; anything else
   (other 4xx/5xx, timeouts, connection errors, invalid JSON, missing or
   non-finite numbers) is an error with no answer.
4. **Cache write.** A definite answer, found or not-found, is written to the
   keys of a cacheable query (``MSET`` plus one ``EXPIRE`` per key, in one
   transaction). Errors are never cached.

Failures of the provider or of Redis are logged at warning level with the
provider's name and never reach the request: the answer is then None.

The spec's quirk Q2 (the original grouped cached values by latitude twice,
ignoring longitude) is fixed here: values at the same latitude but different
longitudes are inconsistent.

Callers that want metrics pass ``on_event`` to ``locate``: it is called, in
the request's own task, with a ``CacheEvent`` (metric
``locate.fallback.cache``, tags ``fallback_name`` and ``status``) once per
call, and a ``LookupEvent`` (metrics ``locate.fallback.lookup`` with the HTTP
status and ``locate.fallback.lookup.timing``) for every HTTP request made.
"""

from __future__ import annotations

import enum
import json
import logging
import math
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Literal

import certifi
import httpx
import numpy as np
import redis
import redis.asyncio

from ichnaea.broker import keyspace
from ichnaea.broker.client import REDIS_ERRORS, mget_async
from ichnaea.geo import distance_m

__all__ = [
    "DEFAULT_SCHEMA",
    "SCHEMAS",
    "CacheEvent",
    "CacheStatus",
    "FallbackAnswer",
    "FallbackClient",
    "FallbackConfig",
    "FallbackEvent",
    "FallbackNetworks",
    "LookupEvent",
    "make_http_client",
    "outbound_request",
]

log = logging.getLogger(__name__)

# A cache read fails on Redis, or on a value it cannot decode.
_CACHE_READ_ERRORS: tuple[type[Exception], ...] = (*REDIS_ERRORS, ValueError)

DEFAULT_SCHEMA: Final = "ichnaea/v1"  # also what a NULL ``fallback_schema`` means
SCHEMAS: Final = frozenset({"ichnaea/v1", "combain/v1", "googlemaps/v1", "unwiredlabs/v1"})

USER_AGENT: Final = "ichnaea"
TIMEOUT_S: Final = 5.0
HTTP_POOL_SIZE: Final = 20

# Caching applies to wifi-only or blue-only queries of fewer than this many
# networks: a larger scan is specific enough to be worth asking again.
CACHE_MAX_NETWORKS: Final = 20
# Cached answers are grouped by their position rounded to this many decimal
# places (0.001° ≈ 111 m of latitude) to tell consistent values apart.
CACHE_CLUSTER_DECIMALS: Final = 3
# A rate-limit counter outlives its interval, so a late INCR never recreates
# a key without a TTL.
RATELIMIT_EXPIRE_INTERVALS: Final = 5

_NOT_FOUND_VALUE: Final = json.dumps("404").encode()  # b'"404"', five bytes
_UNWIREDLABS_NOT_FOUND: Final = "No matches found"

_BLUE_FIELDS: Final = ("macAddress", "age", "name", "signalStrength")
_CELL_FIELDS: Final = (
    "radioType",
    "mobileCountryCode",
    "mobileNetworkCode",
    "locationAreaCode",
    "cellId",
    "primaryScramblingCode",
    "age",
    "signalStrength",
    "timingAdvance",
)
_WIFI_FIELDS: Final = (
    "macAddress",
    "age",
    "channel",
    "signalStrength",
    "signalToNoiseRatio",
    "ssid",
)
_GOOGLE_CELL_FIELDS: Final = tuple(f for f in _CELL_FIELDS if f != "primaryScramblingCode")
_GOOGLE_WIFI_FIELDS: Final = tuple(f for f in _WIFI_FIELDS if f != "ssid")
# Unwired Labs names: (theirs, ours).
_UNWIRED_CELL_FIELDS: Final = (
    ("radio", "radioType"),
    ("mcc", "mobileCountryCode"),
    ("mnc", "mobileNetworkCode"),
    ("lac", "locationAreaCode"),
    ("cid", "cellId"),
    ("signal", "signalStrength"),
    ("tA", "timingAdvance"),
    ("psc", "primaryScramblingCode"),
    ("asu", "asu"),
)
_UNWIRED_WIFI_FIELDS: Final = (
    ("bssid", "macAddress"),
    ("channel", "channel"),
    ("frequency", "frequency"),
    ("signal", "signalStrength"),
    ("signalToNoiseRatio", "signalToNoiseRatio"),
)


@dataclass(frozen=True, slots=True)
class FallbackConfig:
    """The fallback columns of an API key row.

    ``schema`` is one of ``SCHEMAS``; the caller maps a NULL column to
    ``DEFAULT_SCHEMA``. ``ratelimit`` None or 0 means unlimited. Caching is off
    when ``cache_expire_s`` is None or 0.
    """

    name: str
    schema: str
    url: str
    ratelimit: int | None
    ratelimit_interval_s: int
    cache_expire_s: int | None

    def __post_init__(self) -> None:
        if self.schema not in SCHEMAS:
            raise ValueError(f"unknown fallback schema {self.schema!r}")
        if self.ratelimit_interval_s <= 0:
            raise ValueError(f"ratelimit_interval_s must be > 0, got {self.ratelimit_interval_s}")

    @property
    def provider(self) -> str:
        """The schema's first path part, as used in the cache keys."""
        return self.schema.partition("/")[0]


@dataclass(frozen=True, slots=True)
class FallbackNetworks:
    """Binary ids of the query's networks: 6-byte MACs, 11- or 17-byte cellids."""

    blue: tuple[bytes, ...] = ()
    cell: tuple[bytes, ...] = ()
    wifi: tuple[bytes, ...] = ()


@dataclass(frozen=True, slots=True)
class FallbackAnswer:
    """A position from the provider (or the cache); ``fallback`` is "lacf" or None."""

    lat: float
    lon: float
    accuracy_m: float
    fallback: str | None


CacheStatus = Literal["hit", "miss", "bypassed", "inconsistent", "failure"]


@dataclass(frozen=True, slots=True)
class CacheEvent:
    """How the cache served one ``locate`` call (metric ``locate.fallback.cache``)."""

    fallback_name: str
    status: CacheStatus


@dataclass(frozen=True, slots=True)
class LookupEvent:
    """One HTTP request to the provider (``locate.fallback.lookup`` and ``.timing``).

    ``status`` is the HTTP status code, or None when no response arrived
    (timeout, connection error, invalid URL).
    """

    fallback_name: str
    status: int | None
    duration_s: float


FallbackEvent = CacheEvent | LookupEvent


class _NotFound(enum.Enum):
    """A definite "the provider does not know": cached, but no answer."""

    NOT_FOUND = "not found"


_NOT_FOUND: Final = _NotFound.NOT_FOUND
_Outcome = FallbackAnswer | Literal[_NotFound.NOT_FOUND]


def make_http_client() -> httpx.AsyncClient:
    """The shared client for provider calls, to be opened once per process.

    One retry of failed connections, at most one redirect, a pool of 20
    connections and TLS verification against certifi's CA bundle. With an
    explicit transport, proxies from the environment are not used.
    """
    transport = httpx.AsyncHTTPTransport(
        verify=ssl.create_default_context(cafile=certifi.where()),
        limits=httpx.Limits(
            max_connections=HTTP_POOL_SIZE, max_keepalive_connections=HTTP_POOL_SIZE
        ),
        retries=1,
    )
    return httpx.AsyncClient(
        transport=transport,
        headers={"User-Agent": USER_AGENT},
        timeout=TIMEOUT_S,
        follow_redirects=True,
        max_redirects=1,
    )


def _pick(entry: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    return {field: entry[field] for field in fields if entry.get(field) is not None}


def _rename(entry: Mapping[str, Any], fields: Sequence[tuple[str, str]]) -> dict[str, Any]:
    return {theirs: entry[ours] for theirs, ours in fields if entry.get(ours) is not None}


def outbound_request(
    config: FallbackConfig, query: Mapping[str, Any]
) -> tuple[str, dict[str, Any]]:
    """The URL and JSON body to POST for a normalised query (spec 2.8 ``json()``).

    Only the fields the provider's schema knows are sent; lists that end up
    empty are left out. Providers are never asked to fall back on the IP
    address: they would locate our server, not the client.
    """
    blues = query.get("bluetoothBeacons") or []
    cells = query.get("cellTowers") or []
    wifis = query.get("wifiAccessPoints") or []
    lacf = bool(query.get("fallbacks", {}).get("lacf", True))
    body: dict[str, Any]
    url = config.url

    def add(key: str, entries: list[dict[str, Any]]) -> None:
        if entries:
            body[key] = entries

    if config.schema == "googlemaps/v1":
        body = {"considerIp": False}
        add("cellTowers", [_pick(c, _GOOGLE_CELL_FIELDS) for c in cells])
        add("wifiAccessPoints", [_pick(w, _GOOGLE_WIFI_FIELDS) for w in wifis])
    elif config.schema == "unwiredlabs/v1":
        # The key's URL carries the account token after '#'.
        url, _, token = config.url.partition("#")
        body = {"token": token, "fallbacks": {"lacf": lacf, "ipf": False}}
        add("cells", [_rename(c, _UNWIRED_CELL_FIELDS) for c in cells])
        add("wifi", [_rename(w, _UNWIRED_WIFI_FIELDS) for w in wifis])
    else:  # ichnaea/v1 and combain/v1 speak the same dialect
        body = {"fallbacks": {"lacf": lacf, "ipf": False}}
        add("bluetoothBeacons", [_pick(b, _BLUE_FIELDS) for b in blues])
        add("cellTowers", [_pick(c, _CELL_FIELDS) for c in cells])
        add("wifiAccessPoints", [_pick(w, _WIFI_FIELDS) for w in wifis])
    return url, body


def _finite(container: Mapping[str, Any], field: str) -> float:
    value = container.get(field)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueError(f"{field} is {value!r}, not a number")
    try:
        number = float(value)
    except OverflowError:  # a JSON integer beyond the float range
        raise ValueError(f"{field} is out of range") from None
    if not math.isfinite(number):
        raise ValueError(f"{field} is {number!r}, not finite")
    return number


def _object(value: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{what} is {type(value).__name__}, not an object")
    return value


def _lacf(value: Any) -> str | None:
    return "lacf" if value == "lacf" else None


def _parse_response(schema: str, data: Any) -> _Outcome:
    """Decode a 2xx response body; raise ValueError when it is not a valid answer."""
    body = _object(data, "response body")
    if schema == "unwiredlabs/v1":
        status = body.get("status")
        if status != "ok":
            if body.get("message") == _UNWIREDLABS_NOT_FOUND:
                return _NOT_FOUND
            raise ValueError(f"status {status!r}, message {body.get('message')!r}")
        lat, lon = _finite(body, "lat"), _finite(body, "lon")
    else:
        location = _object(body.get("location"), "location")
        lat, lon = _finite(location, "lat"), _finite(location, "lng")
    return FallbackAnswer(lat, lon, _finite(body, "accuracy"), _lacf(body.get("fallback")))


def _encode_cache_value(outcome: _Outcome) -> bytes:
    if outcome is _NOT_FOUND:
        return _NOT_FOUND_VALUE
    value = {
        "lat": outcome.lat,
        "lon": outcome.lon,
        "accuracy": outcome.accuracy_m,
        "fallback": outcome.fallback,
    }
    return json.dumps(value).encode()


def _decode_cache_value(raw: bytes | str) -> _Outcome:
    """Raise ValueError (JSONDecodeError included) for anything we did not write."""
    data = json.loads(raw)
    if data == "404":
        return _NOT_FOUND
    value = _object(data, "cached value")
    fallback = value.get("fallback")
    if fallback not in (None, "lacf"):
        raise ValueError(f"cached fallback is {fallback!r}")
    return FallbackAnswer(
        _finite(value, "lat"), _finite(value, "lon"), _finite(value, "accuracy"), fallback
    )


def _combine_cached(values: Sequence[_Outcome]) -> tuple[CacheStatus, _Outcome | None]:
    """Turn the cached values of a query's networks into one decision."""
    found = [value for value in values if value is not _NOT_FOUND]
    clusters = {
        (
            round(value.lat, CACHE_CLUSTER_DECIMALS),
            round(value.lon, CACHE_CLUSTER_DECIMALS),  # the original used lat twice (Q2)
            value.fallback,
        )
        for value in found
    }
    count = len(clusters) + (len(found) < len(values))  # not-found is a cluster of its own
    if count == 0:
        return "miss", None
    if count > 1:
        return "inconsistent", None
    if not found:
        return "hit", _NOT_FOUND
    lats = np.array([value.lat for value in found])
    lons = np.array([value.lon for value in found])
    accuracies = np.array([value.accuracy_m for value in found])
    # fsum: identical values average to themselves, not to a rounding neighbour.
    lat, lon = math.fsum(lats) / len(found), math.fsum(lons) / len(found)
    # The circle around the mean that holds every cached value's circle.
    reach = np.asarray(distance_m(lat, lon, lats, lons)) + accuracies
    accuracy = round(float(reach.max()), 3)
    return "hit", FallbackAnswer(lat, lon, accuracy, found[0].fallback)


def _cache_keys(config: FallbackConfig, networks: FallbackNetworks) -> list[bytes] | None:
    """The query's cache keys, or None when its answer must not be cached."""
    if not config.cache_expire_s:
        return None
    # dict.fromkeys: drop duplicate ids, keep the order.
    blue, cell, wifi = (
        list(dict.fromkeys(ids)) for ids in (networks.blue, networks.cell, networks.wifi)
    )
    kind: Literal["blue", "cell", "wifi"]
    if len(cell) == 1 and not blue and not wifi:
        kind, ids = "cell", cell
    elif wifi and not blue and not cell and len(wifi) < CACHE_MAX_NETWORKS:
        kind, ids = "wifi", wifi
    elif blue and not cell and not wifi and len(blue) < CACHE_MAX_NETWORKS:
        kind, ids = "blue", blue
    else:
        return None
    return [keyspace.fallback_cache(config.schema, kind, network_id) for network_id in ids]


def _ignore(event: FallbackEvent) -> None:
    pass


class FallbackClient:
    """Asks API keys' fallback providers, through a shared Redis cache and rate limit.

    Holds no per-request state, so one instance serves all concurrent
    requests of a process.
    """

    def __init__(
        self,
        http: httpx.AsyncClient,
        redis: redis.asyncio.Redis,
        *,
        timeout_s: float = TIMEOUT_S,
    ) -> None:
        self._http = http
        self._redis = redis
        self._timeout_s = timeout_s

    async def locate(
        self,
        config: FallbackConfig,
        query: Mapping[str, Any],
        networks: FallbackNetworks,
        *,
        on_event: Callable[[FallbackEvent], None] | None = None,
    ) -> FallbackAnswer | None:
        """The provider's position for ``query``, or None (not found, limited, failed).

        ``query`` is the normalised query JSON and ``networks`` the binary ids
        of its networks, which decide caching. ``on_event`` receives the
        events for metrics described in the module docstring.
        """
        emit = on_event or _ignore
        keys = _cache_keys(config, networks)
        if keys is None:
            emit(CacheEvent(config.name, "bypassed"))
        else:
            status, cached = await self._read_cache(config, keys)
            emit(CacheEvent(config.name, status))
            if status == "hit":
                return None if cached is _NOT_FOUND else cached

        if await self._ratelimit_exceeded(config):
            return None
        outcome = await self._lookup(config, query, emit)
        if outcome is None:
            return None
        if keys is not None:
            await self._write_cache(config, keys, outcome)
        return None if outcome is _NOT_FOUND else outcome

    async def _read_cache(
        self, config: FallbackConfig, keys: list[bytes]
    ) -> tuple[CacheStatus, _Outcome | None]:
        try:
            raw_values = await mget_async(self._redis, keys)
            values = [_decode_cache_value(raw) for raw in raw_values if raw is not None]
        except _CACHE_READ_ERRORS as exc:
            log.warning("fallback %s: cache read failed: %r", config.name, exc)
            return "failure", None
        return _combine_cached(values)

    async def _write_cache(
        self, config: FallbackConfig, keys: list[bytes], outcome: _Outcome
    ) -> None:
        value = _encode_cache_value(outcome)
        expire_s = config.cache_expire_s or 1
        try:
            # One SET per key, without a transaction: on a Redis Cluster the
            # keys lie in several hash slots, and each entry stands alone.
            async with self._redis.pipeline(transaction=False) as pipe:
                for key in keys:
                    pipe.set(key, value, ex=expire_s)
                await pipe.execute()
        except REDIS_ERRORS as exc:
            log.warning("fallback %s: cache write failed: %r", config.name, exc)

    async def _ratelimit_exceeded(self, config: FallbackConfig) -> bool:
        if not config.ratelimit:
            return False
        interval_s = config.ratelimit_interval_s
        key = keyspace.fallback_ratelimit(config.name, interval_s, time.time())
        try:
            async with self._redis.pipeline(transaction=True) as pipe:
                pipe.incr(key)
                pipe.expire(key, interval_s * RATELIMIT_EXPIRE_INTERVALS)
                count, _ = await pipe.execute()
        except REDIS_ERRORS as exc:
            # Without a working counter we cannot promise the provider anything.
            log.warning("fallback %s: rate limit check failed: %r", config.name, exc)
            return True
        return int(count) > config.ratelimit

    async def _lookup(
        self,
        config: FallbackConfig,
        query: Mapping[str, Any],
        emit: Callable[[FallbackEvent], None],
    ) -> _Outcome | None:
        url, body = outbound_request(config, query)
        started = time.perf_counter()
        try:
            response = await self._http.post(
                url, json=body, headers={"User-Agent": USER_AGENT}, timeout=self._timeout_s
            )
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            emit(LookupEvent(config.name, None, time.perf_counter() - started))
            log.warning("fallback %s: request failed: %r", config.name, exc)
            return None
        emit(LookupEvent(config.name, response.status_code, time.perf_counter() - started))

        if response.status_code == 404:
            return _NOT_FOUND
        if not response.is_success:
            log.warning("fallback %s: HTTP %d", config.name, response.status_code)
            return None
        try:
            return _parse_response(config.schema, response.json())
        except ValueError as exc:  # json.JSONDecodeError and UnicodeDecodeError included
            log.warning("fallback %s: invalid response: %r", config.name, exc)
            return None
