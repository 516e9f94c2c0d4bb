"""The backlog measure and the atomic bounded push, on the Redis server and embedded Redis."""

from __future__ import annotations

import asyncio

import pytest
import redis
import redis.asyncio

from ichnaea.broker import keyspace
from ichnaea.broker.client import connect_async_url, is_cluster
from ichnaea.broker.queue import GroupPusher, encode_item, push_within
from ichnaea.pipeline.ingest.backlog import waiting_elsewhere, waiting_elsewhere_async
from ichnaea.pipeline.ingest.incoming import ExportTarget

# Queues, limits, counters and caches: also on a Redis Cluster.
pytestmark = pytest.mark.redis_cluster

TARGETS = [
    ExportTarget("internal", "internal", frozenset(), frozenset()),
    ExportTarget("backup", "s3", frozenset(), frozenset()),
]


def fill(client: redis.Redis, queue: str, count: int) -> None:
    client.rpush(queue, *[b"x"] * count)


def test_waiting_counts_incoming_export_queues_and_partitions_besides_the_target(
    redis_client: redis.Redis, redis_url: str
) -> None:
    fill(redis_client, keyspace.INCOMING, 1)
    fill(redis_client, "queue_export_internal", 2)
    partitions = ["queue_export_backup:gnss:no_key", "queue_export_backup:query:k"]
    redis_client.sadd(keyspace.export_partitions("backup"), *partitions)
    fill(redis_client, partitions[0], 4)
    fill(redis_client, partitions[1], 8)
    fill(redis_client, "update_wifi_0", 16)  # observations: not reports, not counted

    assert waiting_elsewhere(redis_client, TARGETS, besides=keyspace.INCOMING) == 14
    assert waiting_elsewhere(redis_client, TARGETS, besides="queue_export_internal") == 13

    async def measure() -> int:
        client = connect_async_url(redis_url)
        try:
            return await waiting_elsewhere_async(client, TARGETS, besides=keyspace.INCOMING)
        finally:
            await client.aclose()

    assert asyncio.run(measure()) == 14


def test_bounded_push_is_all_or_nothing(redis_client: redis.Redis) -> None:
    assert push_within(redis_client, "q", [b"a", b"b"], limit=5, elsewhere=2)
    assert not push_within(redis_client, "q", [b"c", b"d"], limit=5, elsewhere=2)
    assert push_within(redis_client, "q", [b"c"], limit=5, elsewhere=2)
    assert redis_client.lrange("q", 0, -1) == [b"a", b"b", b"c"]


def test_bounded_push_of_more_items_than_lua_can_unpack_keeps_their_order(
    redis_client: redis.Redis,
) -> None:
    items = [str(n).encode() for n in range(9000)]  # Lua's unpack stops near 8000
    assert push_within(redis_client, "q", items, limit=9000)
    assert redis_client.lrange("q", 0, -1) == items


def _with_pusher(redis_url: str, elsewhere: int, run):  # type: ignore[no-untyped-def]
    """``run(pusher)`` on a fresh asyncio client, for the queue "q"."""

    async def main():  # type: ignore[no-untyped-def]
        client = connect_async_url(redis_url)

        async def waiting() -> int:
            return elsewhere

        pusher = GroupPusher(client, "q", waiting)
        try:
            return await run(pusher)
        finally:
            await pusher.close()
            await client.aclose()

    return asyncio.run(main())


def test_group_push_is_all_or_nothing_per_caller(redis_client: redis.Redis, redis_url: str) -> None:
    async def run(pusher: GroupPusher) -> tuple[bool, ...]:
        first = await pusher.push([encode_item({"n": 1})], limit=3)
        second = await pusher.push([b"a", b"b"], limit=3)  # 1 + 2 elsewhere + 2 > 3
        third = await pusher.push([b"c"], limit=4)
        return first, second, third

    assert _with_pusher(redis_url, 2, run) == (True, False, True)
    assert redis_client.llen("q") == 2


def test_concurrent_group_pushes_share_round_trips_and_keep_every_limit(
    redis_client: redis.Redis, redis_url: str
) -> None:
    def evalsha_calls() -> int:
        if is_cluster(redis_client):  # the sum over the masters
            per_node = redis_client.info("commandstats", target_nodes="primaries")  # type: ignore[call-arg]
            nodes = list(per_node.values())
        else:
            nodes = [redis_client.info("commandstats")]
        return sum(int(stats.get("cmdstat_evalsha", {}).get("calls", 0)) for stats in nodes)

    before = evalsha_calls()

    async def run(pusher: GroupPusher) -> list[bool]:
        pushes = [pusher.push([str(n).encode()] * 3, limit=150) for n in range(100)]
        return list(await asyncio.gather(*pushes))

    results = _with_pusher(redis_url, 0, run)
    calls = evalsha_calls() - before
    # 150 items fit: exactly the first 50 callers (3 items each), in order.
    assert results == [True] * 50 + [False] * 50
    assert redis_client.llen("q") == 150
    assert redis_client.lrange("q", 0, 2) == [b"0"] * 3
    assert 1 <= calls < 20, calls  # (+1 for a script not yet cached: EVAL, not counted)


def test_a_redis_error_reaches_every_caller_of_the_run(redis_url: str) -> None:
    async def run(pusher: GroupPusher) -> list[object]:
        async def broken() -> int:
            raise redis.ConnectionError("Redis is down")

        pusher._elsewhere = broken
        pushes = [pusher.push([b"x"], limit=10) for _ in range(5)]
        return list(await asyncio.gather(*pushes, return_exceptions=True))

    results = _with_pusher(redis_url, 0, run)
    assert all(isinstance(r, redis.ConnectionError) for r in results), results


def test_a_group_push_reuses_the_other_queues_total_until_it_is_too_old(
    redis_client: redis.Redis, redis_url: str
) -> None:
    """The total of the other queues costs a round trip: a run reuses one read
    less than ``elsewhere_max_age_s`` before, and reads again after."""
    now = [100.0]
    totals = iter([0, 5])
    reads: list[float] = []

    async def main() -> list[bool]:
        client = connect_async_url(redis_url)

        async def waiting() -> int:
            reads.append(now[0])
            return next(totals)

        pusher = GroupPusher(client, "q", waiting, elsewhere_max_age_s=0.5, clock=lambda: now[0])
        try:
            results = [await pusher.push([b"a"], limit=5)]  # reads 0: 0 + 1 <= 5
            now[0] += 0.25
            results.append(await pusher.push([b"b"], limit=5))  # reuses 0: 1 + 1 <= 5
            now[0] += 0.25  # exactly as old as allowed
            results.append(await pusher.push([b"c"], limit=5))  # reads 5: 2 + 5 + 1 > 5
            results.append(await pusher.push([b"d"], limit=8))  # reuses 5: 2 + 5 + 1 <= 8
            return results
        finally:
            await pusher.close()
            await client.aclose()

    assert asyncio.run(main()) == [True, True, False, True]
    assert reads == [100.0, 100.5]
    assert redis_client.lrange("q", 0, -1) == [b"a", b"b", b"d"]


def test_a_cancelled_caller_stops_waiting_and_the_others_are_answered(
    redis_client: redis.Redis, redis_url: str
) -> None:
    """A request that goes away while its push is on its way (a client gone, a
    shutdown) stops waiting; its items go with the run they joined, and the other
    callers of that run get their answers."""

    async def run(pusher: GroupPusher) -> list[object]:
        first = asyncio.ensure_future(pusher.push([b"a"], limit=10))
        await asyncio.sleep(0)  # the run starts, carrying the first push
        later = [asyncio.ensure_future(pusher.push([item], limit=10)) for item in (b"b", b"c")]
        await asyncio.sleep(0)
        later[0].cancel()
        answers = asyncio.gather(first, *later, return_exceptions=True)
        return list(await asyncio.wait_for(answers, 10))  # a run that died answers nobody

    first, cancelled, last = _with_pusher(redis_url, 0, run)
    assert first is True and last is True
    assert isinstance(cancelled, asyncio.CancelledError)
    assert redis_client.lrange("q", 0, -1) == [b"a", b"b", b"c"]
