"""The stage runner, with a toy stage, over both queue kinds (real Redis and embedded)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
import redis

from ichnaea.broker import keyspace
from ichnaea.broker.queue import decode_item
from ichnaea.broker.reliable import ReliableQueue, SerialQueue
from ichnaea.pipeline.runner import MAX_BATCH_FAILURES, Claimed, Done, run_batch

# Queues, limits, counters and caches: also on a Redis Cluster.
pytestmark = pytest.mark.redis_cluster

QUEUE = "update_wifi_7"
OUT = "out"


@dataclass
class Doubler:
    """Decodes integers, pushes their doubles to OUT, and records what it saw."""

    fail: bool = False
    seen: list[Claimed] = field(default_factory=list)
    acknowledged: int = 0

    def decode(self, raw: bytes) -> int:
        return int(raw)  # ValueError for anything else: set aside

    def apply(self, batch: Claimed, items: list[int]) -> Done:
        self.seen.append(batch)
        if self.fail:
            raise RuntimeError("poisoned")

        def push(pipe: redis.client.Pipeline) -> None:
            pipe.rpush(OUT, *(2 * n for n in items))

        def counted() -> None:
            self.acknowledged += 1

        return Done(effects=push, acknowledged=counted)


def make_queue(kind: str, client: redis.Redis) -> ReliableQueue | SerialQueue:
    return ReliableQueue(client, QUEUE) if kind == "reliable" else SerialQueue(client, QUEUE)


KINDS = ["reliable", "serial"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_is_decoded_applied_set_aside_and_acknowledged_together(
    redis_client: redis.Redis, kind: str
) -> None:
    redis_client.rpush(QUEUE, b"1", b"x", b"3", b"4")
    stage = Doubler()
    queue = make_queue(kind, redis_client)
    assert run_batch(queue, stage, consumer="c", batch=3) == 3
    assert redis_client.lrange(OUT, 0, -1) == [b"2", b"6"]
    assert redis_client.lrange(keyspace.undecodable(QUEUE), 0, -1) == [b"x"]
    assert redis_client.lrange(QUEUE, 0, -1) == [b"4"]
    assert stage.acknowledged == 1
    # Nothing is held any more: the next batch is the rest.
    assert run_batch(queue, stage, consumer="c", batch=3) == 1
    assert run_batch(queue, stage, consumer="c", batch=3) == 0
    assert redis_client.lrange(OUT, 0, -1) == [b"2", b"6", b"8"]


@pytest.mark.parametrize("kind", KINDS)
def test_a_failing_batch_is_retried_whole_then_parked(redis_client: redis.Redis, kind: str) -> None:
    redis_client.rpush(QUEUE, b"1", b"2")
    stage = Doubler(fail=True)
    queue = make_queue(kind, redis_client)
    for attempt in range(1, MAX_BATCH_FAILURES + 1):
        with pytest.raises(RuntimeError):
            run_batch(queue, stage, consumer="c", batch=10)
        parked = redis_client.llen(keyspace.dead_letter(QUEUE))
        assert parked == (1 if attempt == MAX_BATCH_FAILURES else 0)
    # Every attempt saw the same batch, and the last one parked it verbatim.
    assert {tuple(batch.items) for batch in stage.seen} == {(b"1", b"2")}
    letter = decode_item(redis_client.lindex(keyspace.dead_letter(QUEUE), 0))  # type: ignore[arg-type]
    assert letter["queue"] == QUEUE and letter["error"] == "RuntimeError: poisoned"
    assert len(letter["raw"]) == 2
    assert not redis_client.exists(OUT) and stage.acknowledged == 0
    assert run_batch(queue, Doubler(), consumer="c", batch=10) == 0  # the queue goes on


def test_a_transient_failure_parks_nothing(redis_client: redis.Redis) -> None:
    @dataclass
    class Unreachable(Doubler):
        def apply(self, batch: Claimed, items: list[int]) -> Done:
            raise redis.ConnectionError("down")

    redis_client.rpush(QUEUE, b"1")
    queue = SerialQueue(redis_client, QUEUE)
    for _ in range(MAX_BATCH_FAILURES + 1):
        with pytest.raises(redis.ConnectionError):
            run_batch(queue, Unreachable(), consumer="c", batch=10)
    assert not redis_client.exists(keyspace.dead_letter(QUEUE))
    assert run_batch(queue, Doubler(), consumer="c", batch=10) == 1


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_whose_lease_ran_out_applies_no_effects(
    redis_client: redis.Redis, kind: str
) -> None:
    redis_client.rpush(QUEUE, b"1")
    queue = make_queue(kind, redis_client)

    @dataclass
    class Slow(Doubler):
        def apply(self, batch: Claimed, items: list[int]) -> Done:
            done = super().apply(batch, items)
            # Meanwhile the lease ran out and another consumer took the batch.
            redis_client.delete(
                keyspace.serial_lease(QUEUE)
                if kind == "serial"
                else keyspace.processing(QUEUE, "c")
            )
            if kind == "serial":
                assert isinstance(queue, SerialQueue)
                queue.claim("other", 10)
            return done

    stage = Slow()
    assert run_batch(queue, stage, consumer="c", batch=10) == 1
    assert not redis_client.exists(OUT) and stage.acknowledged == 0
