"""At-least-once queue semantics against real Redis (server and embedded)."""

from __future__ import annotations

import time

import pytest
import redis

from ichnaea.broker.reliable import LostLease, ReliableQueue, SerialQueue, consumer_id

# Queues, limits, counters and caches: also on a Redis Cluster.
pytestmark = pytest.mark.redis_cluster


def fill(client: redis.Redis, n: int, key: str = "q") -> None:
    client.rpush(key, *[str(i).encode() for i in range(n)])


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


def test_ack_applies_effects_in_the_same_transaction(redis_client: redis.Redis) -> None:
    fill(redis_client, 3)
    queue = ReliableQueue(redis_client, "q")
    items = queue.claim("me", 3)
    queue.ack("me", lambda pipe: pipe.rpush("next", *items))
    assert redis_client.lrange("next", 0, -1) == [b"0", b"1", b"2"]
    assert not redis_client.exists(queue.processing_key("me"))


def test_ack_of_a_reclaimed_batch_applies_nothing(redis_client: redis.Redis) -> None:
    fill(redis_client, 2)
    queue = ReliableQueue(redis_client, "q")
    queue.claim("slow", 2)
    queue.give_back("slow")  # what reclaim does once the lease ran out
    with pytest.raises(LostLease):
        queue.ack("slow", lambda pipe: pipe.rpush("next", b"x"))
    assert not redis_client.exists("next")
    assert redis_client.lrange("q", 0, -1) == [b"0", b"1"]


def test_serial_queue_has_one_batch_in_flight(redis_client: redis.Redis) -> None:
    fill(redis_client, 5, "s")
    queue = SerialQueue(redis_client, "s")
    first = queue.claim("a", 2)
    assert first is not None and first.items == [b"0", b"1"]
    assert queue.claim("b", 2) is None  # "a" holds the queue
    queue.ack("a", lambda pipe: pipe.incrby("done", 2))
    second = queue.claim("b", 2)
    assert second is not None and second.items == [b"2", b"3"]
    assert second.id != first.id
    assert redis_client.get("done") == b"2"


def test_serial_queue_hands_an_orphaned_batch_over_with_its_id(
    redis_client: redis.Redis,
) -> None:
    fill(redis_client, 4, "s")
    queue = SerialQueue(redis_client, "s")
    orphan = queue.claim("dead", 3, lease_s=1)
    assert orphan is not None
    redis_client.delete(queue.lease_key)  # the lease runs out
    fill(redis_client, 2, "s")  # more work arrives meanwhile
    taken = queue.claim("heir", 10)
    assert taken is not None and taken.resumed and not orphan.resumed
    # Same id, same items: not re-cut into a bigger batch.
    assert (taken.id, taken.items) == (orphan.id, orphan.items)
    with pytest.raises(LostLease):
        queue.ack("dead")
    with pytest.raises(LostLease):
        queue.renew("dead")
    queue.ack("heir")
    rest = queue.claim("heir", 10)
    assert rest is not None and rest.items == [b"3", b"0", b"1"]


def test_serial_queue_release_keeps_the_batch_first_in_line(redis_client: redis.Redis) -> None:
    fill(redis_client, 3, "s")
    queue = SerialQueue(redis_client, "s")
    held = queue.claim("stopping", 2)
    queue.release("stopping")
    taken = queue.claim("next", 2)
    assert held is not None and taken is not None
    assert (taken.id, taken.items) == (held.id, held.items)


def test_serial_queue_gives_the_holder_its_own_batch_again(redis_client: redis.Redis) -> None:
    fill(redis_client, 3, "s")
    queue = SerialQueue(redis_client, "s")
    held = queue.claim("me", 2)
    again = queue.claim("me", 2)  # e.g. after a failed ack
    assert held is not None and again is not None
    assert (again.id, again.items, again.resumed) == (held.id, held.items, True)
    assert queue.claim("other", 2) is None


def test_a_consumer_gets_its_unacknowledged_batch_again_not_new_items(
    redis_client: redis.Redis,
) -> None:
    fill(redis_client, 5)
    queue = ReliableQueue(redis_client, "q")
    assert queue.claim("me", 2) == [b"0", b"1"]
    # The attempt failed before its ack: the next claim resumes it, so the
    # ack that follows cannot drop items nobody processed.
    assert queue.claim("me", 2) == [b"0", b"1"]
    queue.ack("me")
    assert queue.claim("me", 2) == [b"2", b"3"]
