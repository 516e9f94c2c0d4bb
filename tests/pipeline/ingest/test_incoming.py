"""The update_incoming multiplexer (spec pipeline.md section 5)."""

from __future__ import annotations

import gzip

import pytest
import redis
from sqlalchemy.orm import Session

from ichnaea.broker import keyspace
from ichnaea.broker.queue import decode_item, encode_item
from ichnaea.pipeline.ingest.incoming import ExportTarget, load_targets, process_incoming, route

# Queues, limits, counters and caches: also on a Redis Cluster.
pytestmark = pytest.mark.redis_cluster


def target(name: str, *, schema: str = "dummy", keys: str = "", sources: str = "") -> ExportTarget:
    class Row:
        pass

    row = Row()
    row.name, row.schema, row.skip_keys, row.skip_sources = name, schema, keys, sources  # type: ignore[attr-defined]
    return ExportTarget.from_row(row)


TARGETS = [
    target("test", keys="export_source"),
    target("everything"),
    target("no_test", keys="test,test_1"),
    target("query", sources="gnss"),
]


def spec_items() -> list[dict[str, object]]:
    items: list[dict[str, object]] = [
        {"api_key": "test", "source": "gnss", "report": {"n": i}} for i in range(4)
    ]
    items.append({"api_key": "test2", "source": "gnss", "report": {"n": 4}})
    items += [
        {"api_key": None, "source": "gnss", "report": {"n": 5 + i, "position": None}}
        for i in range(2)
    ]
    items.append({"api_key": "test", "source": "query", "report": {"n": 7}})
    return items


def test_routing_follows_skip_keys_and_sources() -> None:
    routed = route(spec_items(), TARGETS)
    counts = {key: len(items) for key, items in routed.items()}
    assert counts == {
        "queue_export_test": 8,
        "queue_export_everything": 8,
        "queue_export_no_test": 3,
        "queue_export_query": 1,
    }
    assert routed["queue_export_query"] == [7]  # the index of the query report


def test_s3_targets_are_partitioned_by_source_and_key() -> None:
    routed = route(spec_items(), [target("backup", schema="s3")])
    assert sorted(routed) == [
        "queue_export_backup:gnss:no_key",
        "queue_export_backup:gnss:test",
        "queue_export_backup:gnss:test2",
        "queue_export_backup:query:test",
    ]


def test_process_moves_a_batch_and_acknowledges_it(redis_client: redis.Redis) -> None:
    redis_client.rpush(keyspace.INCOMING, *(encode_item(item) for item in spec_items()))
    assert process_incoming(redis_client, TARGETS, consumer="c1", batch=5) == 5
    assert process_incoming(redis_client, TARGETS, consumer="c1", batch=5) == 3
    assert process_incoming(redis_client, TARGETS, consumer="c1", batch=5) == 0
    assert redis_client.llen("queue_export_everything") == 8
    assert redis_client.llen("queue_export_no_test") == 3
    first = decode_item(redis_client.lindex("queue_export_everything", 0))
    # The queued item itself: exporters read api_key and report.
    assert first == {"api_key": "test", "source": "gnss", "report": {"n": 0}}
    assert not redis_client.exists(keyspace.processing(keyspace.INCOMING, "c1"))


def test_undecodable_items_are_set_aside_not_lost(redis_client: redis.Redis) -> None:
    good = encode_item({"api_key": None, "source": "gnss", "report": {}})
    redis_client.rpush(keyspace.INCOMING, b"not gzip", gzip.compress(b"not json"), good)
    assert process_incoming(redis_client, [target("all")], consumer="c2") == 3
    assert redis_client.llen(keyspace.undecodable(keyspace.INCOMING)) == 2
    assert redis_client.llen("queue_export_all") == 1


def test_targets_load_from_the_seeded_export_config(db_session: Session) -> None:
    assert load_targets(db_session) == [
        ExportTarget("internal", "internal", frozenset(), frozenset())
    ]


def test_unknown_schema_gets_no_queue_quirk_12_fixed(redis_client: redis.Redis) -> None:
    redis_client.rpush(keyspace.INCOMING, *(encode_item(item) for item in spec_items()))
    targets = [target("typo", schema="s4"), target("all")]
    assert process_incoming(redis_client, targets, consumer="c3") == 8
    assert not redis_client.exists("queue_export_typo")
    assert redis_client.llen("queue_export_all") == 8


def test_plain_json_items_from_other_producers_are_read_too(redis_client: redis.Redis) -> None:
    plain = b'{"api_key": "test", "source": "gnss", "report": {"n": 1}}'
    redis_client.rpush(keyspace.INCOMING, plain, encode_item({"api_key": None, "report": {"n": 2}}))
    assert process_incoming(redis_client, [target("all")], consumer="c4") == 2
    items = [decode_item(raw) for raw in redis_client.lrange("queue_export_all", 0, -1)]
    assert [item["report"]["n"] for item in items] == [1, 2]
    assert not redis_client.exists(keyspace.undecodable(keyspace.INCOMING))
