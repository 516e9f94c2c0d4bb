"""Batched key usage (ichnaea.api.usage) against the real Redis server and the embedded one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import date

import pytest
import redis
import redis.asyncio

from ichnaea.api.keys import ApiKey
from ichnaea.api.usage import UsageRecorder
from ichnaea.broker import keyspace
from ichnaea.broker.client import connect_async_url

# Queues, limits, counters and caches: also on a Redis Cluster.
pytestmark = pytest.mark.redis_cluster

DAY = date(2026, 12, 6)
KEY = ApiKey(valid_key="usage", maxreq=20)
COUNTER = keyspace.api_limit("usage", "v1.geolocate", DAY)
USERS = keyspace.api_users("locate", "usage", DAY)
# Flushes happen only when a test asks for them.
NEVER_S = 3600.0


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def run(redis_url: str, scenario: Callable[[redis.asyncio.Redis], Awaitable[None]]) -> None:
    async def main() -> None:
        client = connect_async_url(redis_url)
        try:
            await scenario(client)
        finally:
            await client.aclose()

    asyncio.run(main())


async def count(recorder: UsageRecorder, ip: str = "81.2.69.192", key: ApiKey = KEY) -> int | None:
    return await recorder.count(
        key, ip=ip, path="v1.geolocate", api_type="locate", today=DAY, amount=1
    )


def test_counts_and_users_reach_redis_exactly_once_flushed(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def scenario(client: redis.asyncio.Redis) -> None:
        recorder = UsageRecorder(client, flush_interval_s=NEVER_S, clock=Clock())
        seen = [await count(recorder, ip=f"10.0.0.{n % 7}") for n in range(50)]
        assert seen == list(range(1, 51))  # what each request was counted as
        # The first was counted in Redis at once; the other 49 wait for a flush.
        assert int(redis_client.get(COUNTER) or 0) == 1
        await recorder.flush()
        assert int(redis_client.get(COUNTER) or 0) == 50
        assert redis_client.pfcount(USERS) == 7
        assert 0 < redis_client.ttl(COUNTER) <= 90_000 and redis_client.ttl(USERS) > 0
        await recorder.flush()  # nothing pending: nothing sent twice
        assert int(redis_client.get(COUNTER) or 0) == 50
        await recorder.close()

    run(redis_url, scenario)


def test_close_sends_what_is_pending(redis_url: str, redis_client: redis.Redis) -> None:
    async def scenario(client: redis.asyncio.Redis) -> None:
        recorder = UsageRecorder(client, flush_interval_s=NEVER_S, clock=Clock())
        for _ in range(5):
            await count(recorder)
        await recorder.close()

    run(redis_url, scenario)
    assert int(redis_client.get(COUNTER) or 0) == 5


def test_background_flush_sends_counts_without_being_asked(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def scenario(client: redis.asyncio.Redis) -> None:
        recorder = UsageRecorder(client, flush_interval_s=0.01, clock=Clock())
        for _ in range(3):
            await count(recorder)
        for _ in range(500):  # bounded wait for the background task
            if int(redis_client.get(COUNTER) or 0) == 3:
                break
            await asyncio.sleep(0.01)
        assert int(redis_client.get(COUNTER) or 0) == 3
        await recorder.close()

    run(redis_url, scenario)


def test_two_processes_overshoot_the_limit_by_at_most_two_flush_intervals(
    redis_url: str, redis_client: redis.Redis
) -> None:
    """The bound the README states: past the limit, each process admits at most
    the requests it gets within two flush intervals."""
    per_interval = 3

    async def scenario(client: redis.asyncio.Redis) -> None:
        clock = Clock()
        processes = [UsageRecorder(client, flush_interval_s=NEVER_S, clock=clock) for _ in "ab"]
        admitted = 0
        for _ in range(30):  # flush intervals
            for recorder in processes:
                for _ in range(per_interval):
                    seen = await count(recorder)
                    assert seen is not None
                    admitted += seen <= (KEY.maxreq or 0)
            for recorder in processes:
                await recorder.flush()
            clock.now += 0.05
        for recorder in processes:
            await recorder.close()
        assert KEY.maxreq <= admitted <= KEY.maxreq + 2 * per_interval * len(processes)

    run(redis_url, scenario)
    assert int(redis_client.get(COUNTER) or 0) == 30 * 3 * 2  # every request counted


def test_a_counter_not_heard_for_a_second_is_read_from_redis(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def scenario(client: redis.asyncio.Redis) -> None:
        clock = Clock()
        recorder = UsageRecorder(client, flush_interval_s=NEVER_S, clock=clock)
        assert await count(recorder) == 1
        redis_client.incrby(COUNTER, 10)  # other processes counted meanwhile
        assert await count(recorder) == 2  # within the second: its own estimate
        clock.now += 1.0
        assert await count(recorder) == 13  # a round trip of its own: 11 + 1 + the pending 1
        await recorder.close()

    run(redis_url, scenario)
    assert int(redis_client.get(COUNTER) or 0) == 13


def test_a_failed_flush_keeps_its_counts_for_the_next(
    redis_url: str, redis_client: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def scenario(client: redis.asyncio.Redis) -> None:
        recorder = UsageRecorder(client, flush_interval_s=NEVER_S, clock=Clock())
        for n in range(4):
            await count(recorder, ip=f"10.0.0.{n}")
        real_pipeline = client.pipeline

        def broken(*args: object, **kwargs: object) -> object:
            raise redis.ConnectionError("redis is down")

        monkeypatch.setattr(client, "pipeline", broken)
        await recorder.flush()
        assert int(redis_client.get(COUNTER) or 0) == 1
        monkeypatch.setattr(client, "pipeline", real_pipeline)
        await recorder.flush()
        await recorder.close()

    run(redis_url, scenario)
    assert int(redis_client.get(COUNTER) or 0) == 4
    assert redis_client.pfcount(USERS) == 4


def test_no_key_is_not_counted(redis_url: str) -> None:
    async def scenario(client: redis.asyncio.Redis) -> None:
        recorder = UsageRecorder(client, flush_interval_s=NEVER_S)
        assert await count(recorder, key=ApiKey()) is None
        await recorder.close()

    run(redis_url, scenario)
