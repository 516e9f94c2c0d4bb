"""The backlog measure and the atomic bounded push, on the Redis server and embedded Redis."""

from __future__ import annotations

import asyncio

import redis
import redis.asyncio

from ichnaea.pipeline.backlog import waiting_elsewhere, waiting_elsewhere_async
from ichnaea.pipeline.incoming import ExportTarget, partitions_key
from ichnaea.queue import INCOMING_QUEUE, encode_item, push_within, push_within_async

TARGETS = [
    ExportTarget("internal", "internal", frozenset(), frozenset()),
    ExportTarget("backup", "s3", frozenset(), frozenset()),
]


def fill(client: redis.Redis, queue: str, count: int) -> None:
    client.rpush(queue, *[b"x"] * count)


def test_waiting_counts_incoming_export_queues_and_partitions_besides_the_target(
    redis_client: redis.Redis, redis_url: str
) -> None:
    fill(redis_client, INCOMING_QUEUE, 1)
    fill(redis_client, "queue_export_internal", 2)
    partitions = ["queue_export_backup:gnss:no_key", "queue_export_backup:query:k"]
    redis_client.sadd(partitions_key("backup"), *partitions)
    fill(redis_client, partitions[0], 4)
    fill(redis_client, partitions[1], 8)
    fill(redis_client, "update_wifi_0", 16)  # observations: not reports, not counted

    assert waiting_elsewhere(redis_client, TARGETS, besides=INCOMING_QUEUE) == 14
    assert waiting_elsewhere(redis_client, TARGETS, besides="queue_export_internal") == 13

    async def measure() -> int:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            return await waiting_elsewhere_async(client, TARGETS, besides=INCOMING_QUEUE)
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


def test_async_bounded_push_is_all_or_nothing(redis_client: redis.Redis, redis_url: str) -> None:
    async def push() -> tuple[bool, bool]:
        client = redis.asyncio.Redis.from_url(redis_url)
        try:
            first = await push_within_async(client, "q", [encode_item({"n": 1})], limit=1)
            second = await push_within_async(client, "q", [encode_item({"n": 2})], limit=1)
            return first, second
        finally:
            await client.aclose()

    assert asyncio.run(push()) == (True, False)
    assert redis_client.llen("q") == 1
