"""The per-process API key cache and the key version that invalidates it.

Runs against the Redis server and the embedded one (``redis_url``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
import redis
import redis.asyncio

from ichnaea.api.keys import ApiKey, ApiKeyCache, announce_key_change
from ichnaea.broker.client import connect_async_url

# Queues, limits, counters and caches: also on a Redis Cluster.
pytestmark = pytest.mark.redis_cluster

KNOWN = ApiKey(valid_key="known", maxreq=5)
DOWN_REDIS = "redis://127.0.0.1:1/0"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run_with(url: str, scenario: Callable[[redis.asyncio.Redis], Awaitable[None]]) -> None:
    async def main() -> None:
        client = connect_async_url(url)
        try:
            await scenario(client)
        finally:
            await client.aclose()

    asyncio.run(main())


def test_key_version_change_drops_known_and_unknown_keys(
    redis_url: str, redis_client: redis.Redis
) -> None:
    clock = Clock()
    cache = ApiKeyCache(ttl_s=300, clock=clock)

    async def scenario(client: redis.asyncio.Redis) -> None:
        await cache.refresh(client)
        cache.put("known", KNOWN)
        cache.put("unknown", None)
        assert cache.get("unknown") == (True, None)

        announce_key_change(redis_client)
        # The version is read at most once per check interval ...
        clock.now += 0.5
        await cache.refresh(client)
        assert cache.get("known") == (True, KNOWN) and cache.get("unknown") == (True, None)
        # ... and once it is, every entry goes, misses included.
        clock.now += 0.5
        await cache.refresh(client)
        assert cache.get("known") == (False, None) and cache.get("unknown") == (False, None)

        # Unchanged version: entries stay.
        cache.put("unknown", None)
        clock.now += 1
        await cache.refresh(client)
        assert cache.get("unknown") == (True, None)

    run_with(redis_url, scenario)


def test_lookup_started_before_a_version_change_is_not_cached(
    redis_url: str, redis_client: redis.Redis
) -> None:
    clock = Clock()
    cache = ApiKeyCache(ttl_s=300, clock=clock)

    async def scenario(client: redis.asyncio.Redis) -> None:
        await cache.refresh(client)
        generation = cache.generation  # a database lookup starts here ...
        announce_key_change(redis_client)
        clock.now += 1
        await cache.refresh(client)
        cache.put("known", KNOWN, generation=generation)  # ... and ends with stale data
        assert cache.get("known") == (False, None)

    run_with(redis_url, scenario)


def test_key_cache_falls_back_to_its_ttl_when_redis_is_down() -> None:
    clock = Clock()
    cache = ApiKeyCache(ttl_s=10, clock=clock)

    async def scenario(client: redis.asyncio.Redis) -> None:
        cache.put("unknown", None)
        clock.now += 5
        await cache.refresh(client)  # no error: the check is skipped
        assert cache.get("unknown") == (True, None)
        clock.now += 6
        await cache.refresh(client)
        assert cache.get("unknown") == (False, None)

    run_with(DOWN_REDIS, scenario)
