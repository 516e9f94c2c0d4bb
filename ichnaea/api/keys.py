"""API keys: the key object, its per-process cache, and daily usage limits.

Every Redis key format of the API layer is built here:

* ``apilimit:<key>:<path>:<YYYYMMDD>`` — requests per key, path and UTC day
  (expires after 25 hours);
* ``apiuser:<type>:<key>:<YYYY-MM-DD>`` — a HyperLogLog of client IPs per key
  and day (expires after 8 days);
* ``apikey:version`` — a counter that ``ichnaea apikey create/update/delete``
  increments after each change (never expires).

Lookups go through a small per-process TTL cache (500 keys, 5 minutes ±
30 s chosen once per process). Unknown keys are cached too (quirk Q11, kept:
it shields the database from clients hammering with a bad key). So that a
change still shows at once, each process reads ``apikey:version`` at most
once a second, on the request that comes due, and empties its cache when
the number changed: a created, updated or deleted key takes effect within
about a second everywhere. With Redis unreachable the check is skipped and
entries live out their TTL. Database errors are not cached.
"""

from __future__ import annotations

import logging
import random
import re
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Any

import redis
import redis.asyncio
import sentry_sdk

from ichnaea.broker import keyspace
from ichnaea.broker.client import REDIS_ERRORS, decoded

log = logging.getLogger(__name__)

API_KEY_CACHE_SIZE = 500
API_KEY_CACHE_TTL_S = 300
API_KEY_CACHE_JITTER_S = 30
# How often a process asks Redis whether the keys changed: changes reach
# every process within this (plus one round trip), for one GET a second.
API_KEY_VERSION_CHECK_S = 1.0
APIUSER_TTL_S = 691_200  # 8 days
APILIMIT_TTL_S = 90_000  # 25 hours

# A well-formed key's text (also in the API document's ``key`` parameter).
KEY_PATTERN = r"^[-0-9A-Za-z]{4,40}$"
_KEY_PATTERN = re.compile(KEY_PATTERN)


def is_valid_key_text(text: str | None) -> bool:
    """4 to 40 letters, digits or dashes; anything else counts as no key."""
    return bool(text) and _KEY_PATTERN.match(text or "") is not None


@dataclass(frozen=True, slots=True)
class ApiKey:
    """An API key's permissions; the defaults are those of "no key lookup possible"."""

    valid_key: str | None = None
    maxreq: int = 0
    allow_fallback: bool = False
    allow_locate: bool = True
    allow_region: bool = True
    fallback_name: str | None = None
    fallback_schema: str | None = None
    fallback_url: str | None = None
    fallback_ratelimit: int | None = None
    fallback_ratelimit_interval: int | None = None
    fallback_cache_expire: int | None = None
    store_sample_locate: int = 100
    store_sample_submit: int = 100

    def allowed(self, api_type: str) -> bool:
        return bool(self.allow_locate if api_type == "locate" else self.allow_region)

    def can_fallback(self) -> bool:
        return bool(
            self.allow_fallback
            and self.fallback_name
            and self.fallback_url
            and self.fallback_ratelimit is not None
            and self.fallback_ratelimit_interval
        )

    def store_sample(
        self, kind: str, global_rate: float = 100.0, rand: Callable[[], float] = random.random
    ) -> bool:
        """Whether to store this query/submission, given the sampling rates (0-100 %)."""
        own = self.store_sample_locate if kind == "locate" else self.store_sample_submit
        probability = (own or 0) / 100.0 * global_rate / 100.0
        if probability <= 0:
            return False
        return probability >= rand()


# Column values that are NULL in the table get the "unknown key" defaults.
_DEFAULTS = ApiKey()


def api_key_from_row(row: object) -> ApiKey:
    """An ``ApiKey`` from a database row (any object with the column attributes)."""
    values: dict[str, Any] = {}
    for name in ApiKey.__slots__:
        value = getattr(row, name, None)
        if name in ("allow_locate", "allow_region", "allow_fallback"):
            value = bool(value)  # NULL counts as not allowed
        elif value is None:
            value = getattr(_DEFAULTS, name)
        values[name] = value
    return ApiKey(**values)


class ApiKeyCache:
    """A bounded TTL cache of key lookups (hits and misses), for one process.

    ``refresh`` empties it when ``apikey:version`` changed. A lookup that
    started before that (``generation`` taken before the database read) may
    carry the old row; ``put`` drops its result instead of caching it.
    """

    def __init__(
        self,
        *,
        size: int = API_KEY_CACHE_SIZE,
        ttl_s: float | None = None,
        check_interval_s: float = API_KEY_VERSION_CHECK_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        jitter = random.randint(-API_KEY_CACHE_JITTER_S, API_KEY_CACHE_JITTER_S)
        self.ttl_s = API_KEY_CACHE_TTL_S + jitter if ttl_s is None else ttl_s
        self.size = size
        self.check_interval_s = check_interval_s
        self.generation = 0  # incremented each time the cache is emptied
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, ApiKey | None]] = OrderedDict()
        self._version: str | None = None
        self._next_check = float("-inf")
        self._redis_failing = False

    def get(self, key: str) -> tuple[bool, ApiKey | None]:
        """``(found, value)``; a cached miss is ``(True, None)``."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        expires, value = entry
        if expires < self._clock():
            del self._entries[key]
            return False, None
        return True, value

    def put(self, key: str, value: ApiKey | None, *, generation: int | None = None) -> None:
        """Cache a lookup; one begun in an older ``generation`` is dropped."""
        if generation is not None and generation != self.generation:
            return
        self._entries[key] = (self._clock() + self.ttl_s, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)

    def refresh_due(self) -> bool:
        """Whether :meth:`refresh` would ask Redis (callers skip the await otherwise)."""
        return self._clock() >= self._next_check

    async def refresh(self, client: redis.asyncio.Redis) -> None:
        """Empty the cache if the key version in Redis changed; once per interval at most."""
        now = self._clock()
        if now < self._next_check:
            return
        # Set before awaiting, so that concurrent requests do not check too.
        self._next_check = now + self.check_interval_s
        try:
            version = decoded(await client.get(keyspace.APIKEY_VERSION))
        except REDIS_ERRORS as exc:
            if not self._redis_failing:
                log.warning("api key changes not checked, redis unavailable: %s", exc)
            self._redis_failing = True
            return
        self._redis_failing = False
        if version != self._version:
            self._version = version
            self._entries.clear()
            self.generation += 1


def announce_key_change(client: redis.Redis) -> int:
    """Tell every web process to drop its cached keys; returns the new version."""
    return int(client.incr(keyspace.APIKEY_VERSION))


async def count_request(
    client: redis.asyncio.Redis,
    api_key: ApiKey,
    *,
    ip: str | None,
    path: str,
    api_type: str,
    today: date,
    amount: int = 1,
) -> int | None:
    """Count the request and its client IP; return the key's count of the day.

    ``amount`` is the number of queries the request carries (a batch locate
    counts each of its queries).

    None when there is no key or Redis failed (the request goes through).
    The counter is incremented before any comparison, so with ``maxreq=5``
    the sixth request of the day is the first refused, and refused requests
    keep counting.
    """
    if api_key.valid_key is None:
        return None
    user_key = keyspace.api_users(api_type, api_key.valid_key, today)
    limit_key = keyspace.api_limit(api_key.valid_key, path, today)
    # One round trip, no transaction: the two keys keep the original's names,
    # which hash to different Redis Cluster slots.
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.pfadd(user_key, ip or "127.0.0.1")
            pipe.expire(user_key, APIUSER_TTL_S)
            pipe.incrby(limit_key, amount)
            pipe.expire(limit_key, APILIMIT_TTL_S)
            _, _, count, _ = await pipe.execute()
    except REDIS_ERRORS as exc:
        log.warning("daily limit not checked, redis unavailable: %s", exc.__class__.__name__)
        sentry_sdk.capture_exception(exc)
        return None
    return int(count)


async def rate_limit_exceeded(
    client: redis.asyncio.Redis, key: str, *, maxreq: int | None, expire_s: int, on_error: bool
) -> bool:
    """Generic counter limit: INCR + EXPIRE, exceeded when over ``maxreq`` (0/None: never)."""
    if not maxreq:
        return False
    try:
        async with client.pipeline(transaction=False) as pipe:
            pipe.incr(key)
            pipe.expire(key, expire_s)
            count, _ = await pipe.execute()
    except REDIS_ERRORS:
        return on_error
    return int(count) > maxreq
