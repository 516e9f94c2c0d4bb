"""At-least-once queue semantics against real Redis (server and embedded)."""

from __future__ import annotations

import time

import pytest
import redis

from ichnaea.reliable_queue import ReliableQueue, consumer_id


def fill(client: redis.Redis, n: int) -> None:
    client.rpush("q", *[str(i).encode() for i in range(n)])


def test_claim_moves_items_in_order_and_ack_forgets_them(redis_client: redis.Redis) -> None:
    fill(redis_client, 5)
    queue = ReliableQueue(redis_client, "q")
    me = consumer_id()
    assert queue.claim(me, 3) == [b"0", b"1", b"2"]
    assert queue.size() == 2
    assert redis_client.lrange(queue.processing_key(me), 0, -1) == [b"0", b"1", b"2"]
    queue.ack(me)
    assert not redis_client.exists(queue.processing_key(me))
    assert queue.claim(me, 10) == [b"3", b"4"]
    assert queue.claim("other", 10) == []


def test_dead_consumer_batch_is_reclaimed_to_the_head(redis_client: redis.Redis) -> None:
    fill(redis_client, 4)
    queue = ReliableQueue(redis_client, "q")
    assert queue.claim("dead", 2, lease_s=1) == [b"0", b"1"]
    assert queue.reclaim() == 0  # lease still alive
    deadline = time.monotonic() + 5
    while redis_client.exists(queue.lease_key("dead")):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert queue.reclaim() == 2
    assert redis_client.lrange("q", 0, -1) == [b"0", b"1", b"2", b"3"]
    assert redis_client.smembers(queue.consumers_key) == set()


def test_live_consumer_keeps_its_batch(redis_client: redis.Redis) -> None:
    fill(redis_client, 2)
    queue = ReliableQueue(redis_client, "q")
    queue.claim("alive", 2, lease_s=30)
    queue.renew("alive", lease_s=30)
    assert queue.reclaim() == 0
    assert queue.size() == 0


def test_give_back_on_graceful_stop(redis_client: redis.Redis) -> None:
    fill(redis_client, 3)
    queue = ReliableQueue(redis_client, "q")
    queue.claim("stopping", 2)
    assert queue.give_back("stopping") == 2
    assert redis_client.lrange("q", 0, -1) == [b"0", b"1", b"2"]


def test_batch_must_be_positive(redis_client: redis.Redis) -> None:
    with pytest.raises(ValueError):
        ReliableQueue(redis_client, "q").claim("c", 0)
