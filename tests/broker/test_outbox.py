"""The acknowledging transaction across hash slots (``ichnaea.broker.outbox``).

Run against a Redis Cluster of three masters that the session starts
(``redis_cluster_url``); the single-server path is the one every other
queue test takes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import redis
from redis.client import Pipeline
from redis.crc import key_slot

from ichnaea.broker import keyspace, outbox
from ichnaea.broker.client import connect_url
from ichnaea.broker.reliable import ReliableQueue, SerialQueue
from ichnaea.config import Settings
from ichnaea.repositories.session import create_engine
from ichnaea.worker.jobs import Resources, claimed_elsewhere
from ichnaea.worker.status import pipeline_status, render

# Three queues in three different slots (checked below), as a stage's output spreads.
TARGETS = ("update_wifi_3", "update_blue_a", "update_cellarea")
HOME = "update_incoming"


@pytest.fixture
def cluster(redis_cluster_url: str) -> Iterator[redis.Redis]:
    client = connect_url(redis_cluster_url)
    client.flushdb()
    yield client
    client.close()


def push_to_targets(pipe: Pipeline, tag: bytes = b"x") -> None:
    for target in TARGETS:
        pipe.rpush(target, tag + b"1", tag + b"2")
        pipe.set(keyspace.since(target), "7", nx=True)
    pipe.incrby("statcounter_wifi_20261207", 2)
    pipe.rpush(keyspace.undecodable(HOME), b"bad")  # the home slot: in the transaction


def queued(client: redis.Redis) -> dict[str, list[bytes]]:
    return {target: client.lrange(target, 0, -1) for target in TARGETS}


def claim_one(client: redis.Redis, consumer: str) -> ReliableQueue:
    queue = ReliableQueue(client, HOME)
    client.rpush(HOME, b"item")
    assert queue.claim(consumer, 10) == [b"item"]
    return queue


def test_targets_lie_in_other_slots_than_home() -> None:
    slots = {key_slot(name.encode()) for name in (HOME, *TARGETS)}
    assert len(slots) == 4


def test_an_ack_delivers_effects_in_every_slot_once(cluster: redis.Redis) -> None:
    queue = claim_one(cluster, "c1")
    queue.ack("c1", push_to_targets)
    assert queued(cluster) == {target: [b"x1", b"x2"] for target in TARGETS}
    assert cluster.get(keyspace.since("update_cellarea")) == b"7"
    assert cluster.get("statcounter_wifi_20261207") == b"2"
    assert cluster.lrange(keyspace.undecodable(HOME), 0, -1) == [b"bad"]
    assert cluster.llen(keyspace.outbox(HOME, "c1")) == 0
    assert cluster.smembers(keyspace.outbox_senders(HOME)) == set()
    assert cluster.exists(queue.processing_key("c1")) == 0


def test_a_serial_queue_ack_takes_the_same_way(cluster: redis.Redis) -> None:
    queue = SerialQueue(cluster, "update_wifi_e")
    cluster.rpush("update_wifi_e", b"obs")
    assert queue.claim("w1", 10) is not None
    queue.ack("w1", push_to_targets)
    assert queued(cluster) == {target: [b"x1", b"x2"] for target in TARGETS}
    assert cluster.exists(queue.inflight_key) == 0


def test_output_of_a_consumer_that_stopped_before_delivering_is_swept_once(
    cluster: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = claim_one(cluster, "dead")
    with monkeypatch.context() as patch:
        # The consumer dies right after its acknowledging transaction.
        patch.setattr(outbox.Plan, "deliver", lambda self: None)
        queue.ack("dead", push_to_targets)
    assert queued(cluster) == {target: [] for target in TARGETS}
    assert cluster.llen(keyspace.outbox(HOME, "dead")) == 1
    # Too young: left to its owner, who may still be delivering it.
    assert outbox.sweep(cluster, [HOME], min_age_s=60) == 0
    assert outbox.sweep(cluster, [HOME], min_age_s=0) == 1
    assert queued(cluster) == {target: [b"x1", b"x2"] for target in TARGETS}
    assert outbox.sweep(cluster, [HOME], min_age_s=0) == 0
    assert cluster.smembers(keyspace.outbox_senders(HOME)) == set()


def test_a_delivery_repeated_after_a_crash_is_applied_once(
    cluster: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    queue = claim_one(cluster, "c2")
    box = keyspace.outbox(HOME, "c2")
    with monkeypatch.context() as patch:
        patch.setattr(outbox.Plan, "deliver", lambda self: None)
        queue.ack("c2", push_to_targets)
    entry = cluster.lindex(box, 0)
    assert entry is not None
    outbox.deliver_outbox(cluster, HOME, "c2")
    # As if the process had died between delivering and removing the entry.
    cluster.rpush(box, entry)
    cluster.sadd(keyspace.outbox_senders(HOME), "c2")
    assert outbox.sweep(cluster, [HOME], min_age_s=0) == 1
    assert queued(cluster) == {target: [b"x1", b"x2"] for target in TARGETS}
    assert cluster.get("statcounter_wifi_20261207") == b"2"


def test_an_undelivered_entry_is_delivered_before_the_next_ack(
    cluster: redis.Redis, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = outbox._deliver_entry

    def unreachable(*args: object) -> None:
        raise redis.ConnectionError("node unreachable")

    queue = claim_one(cluster, "c3")
    with monkeypatch.context() as patch:
        patch.setattr(outbox, "_deliver_entry", unreachable)
        queue.ack("c3", push_to_targets)  # acknowledged; the output waits
        assert queued(cluster) == {target: [] for target in TARGETS}
        cluster.rpush(HOME, b"next")
        assert queue.claim("c3", 10) == [b"next"]
        # Still unreachable: the next batch is not acknowledged, so the
        # order of this consumer's output is kept.
        with pytest.raises(outbox.Undelivered):
            queue.ack("c3", lambda pipe: push_to_targets(pipe, b"y"))
        assert cluster.lrange(queue.processing_key("c3"), 0, -1) == [b"next"]
    monkeypatch.setattr(outbox, "_deliver_entry", real)
    queue.ack("c3", lambda pipe: push_to_targets(pipe, b"y"))
    assert queued(cluster) == {target: [b"x1", b"x2", b"y1", b"y2"] for target in TARGETS}


def test_sweep_is_a_no_op_on_a_single_server(redis_server_url: str) -> None:
    client = connect_url(redis_server_url)
    assert outbox.sweep(client, [HOME], min_age_s=0) == 0


def test_big_pushes_are_split_and_keep_their_order(cluster: redis.Redis) -> None:
    items = [b"%d" % n for n in range(2500)]
    queue = claim_one(cluster, "c4")
    queue.ack("c4", lambda pipe: pipe.rpush("update_wifi_3", *items))
    assert cluster.lrange("update_wifi_3", 0, -1) == items


def test_recorder_refuses_commands_it_cannot_route() -> None:
    recorder = outbox.Recorder()
    recorder.delete("a", "b")
    assert recorder.commands == [("DEL", "a"), ("DEL", "b")]
    with pytest.raises(TypeError, match="RENAME"):
        recorder.rename("a", "b")  # type: ignore[misc]
    with pytest.raises(TypeError, match="MSET"):
        recorder.mset({"a": 1, "b": 2})  # type: ignore[misc]


def test_entries_round_trip_binary_values() -> None:
    group = outbox._Group()
    group.add(("RPUSH", b"q\x00", b"\xff\x00", b""))
    group.add(("SET", "k", "1", "NX"))
    entry = outbox._decode_entry(outbox._encode_entry(42, [group]))
    assert entry.seq == 42
    assert entry.groups == [
        (
            [b"q\x00", b"k"],
            [b"2", b"RPUSH", b"2", b"\xff\x00", b"", b"2", b"SET", b"3", b"1", b"NX"],
            2,
        )
    ]


def test_a_master_that_lost_the_script_gets_it_again(cluster: redis.Redis) -> None:
    cluster.script_flush()  # every master, as after restarts
    queue = claim_one(cluster, "c5")
    queue.ack("c5", push_to_targets)
    assert queued(cluster) == {target: [b"x1", b"x2"] for target in TARGETS}


def test_status_shows_output_waiting_in_outboxes(
    cluster: redis.Redis,
    redis_cluster_url: str,
    migrated_sqlite_url: str,
    make_settings: Callable[..., Settings],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    queue = claim_one(cluster, "gone")
    with monkeypatch.context() as patch:
        patch.setattr(outbox.Plan, "deliver", lambda self: None)
        queue.ack("gone", push_to_targets)
    settings = make_settings(DB_READWRITE_URI=migrated_sqlite_url, REDIS_URI=redis_cluster_url)
    res = Resources(settings, create_engine(migrated_sqlite_url), cluster)
    status = pipeline_status(res)
    assert (status.claimed, status.undelivered) == (0, 1)
    assert any("not yet delivered (Redis Cluster outboxes): 1" in line for line in render(status))
    assert claimed_elsewhere(res) == 1  # what ichnaea process waits for
