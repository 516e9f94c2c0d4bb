"""The export stage: ready rule, partitions, dead letters (real Redis, real file target)."""

from __future__ import annotations

import gzip
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import redis

from ichnaea.broker import keyspace
from ichnaea.broker.queue import decode_item, encode_item
from ichnaea.metrics import Metrics
from ichnaea.pipeline.deadletters import dead_letters, requeue_dead_letters
from ichnaea.pipeline.export.exporters import ExportError, FileExporter, Partition
from ichnaea.pipeline.export.stage import export_queue, partition_of, ready
from ichnaea.pipeline.ingest.incoming import ExportTarget, process_incoming

# Queues, limits, counters and caches: also on a Redis Cluster.
pytestmark = pytest.mark.redis_cluster


class Failing:
    name = "broken"

    def __init__(self) -> None:
        self.calls = 0

    def send(self, items: Sequence[Mapping[str, Any]], partition: Partition) -> None:
        self.calls += 1
        raise ExportError("target down")

    def close(self) -> None:
        pass


def target(name: str, schema: str) -> ExportTarget:
    return ExportTarget(name, schema, frozenset(), frozenset())


def test_partition_of_queue_keys() -> None:
    assert partition_of("queue_export_a") == Partition(None, None)
    assert partition_of("queue_export_a:gnss:no_key") == Partition("gnss", None)
    assert partition_of("queue_export_a:fused:k:with:colons") == Partition("fused", "k:with:colons")


def test_a_queue_is_ready_when_full_or_stale(redis_client: redis.Redis) -> None:
    q = "queue_export_x"
    assert not ready(redis_client, q, 3, now=1000.0, max_age_s=60)
    redis_client.rpush(q, b"a", b"b")
    # No timer yet: one is started now, and the half batch waits.
    assert not ready(redis_client, q, 3, now=1000.0, max_age_s=60)
    assert redis_client.get(keyspace.since(q)) == b"1000"
    assert not ready(redis_client, q, 3, now=1059.0, max_age_s=60)
    assert ready(redis_client, q, 3, now=1060.0, max_age_s=60)
    redis_client.rpush(q, b"c")
    assert ready(redis_client, q, 3, now=1000.0, max_age_s=60)
    assert ready(redis_client, q, 0, now=1000.0, max_age_s=60)  # batch 0: everything, always


def test_file_target_gets_one_archive_per_partition(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    items = [
        {"api_key": "k1", "source": "gnss", "report": {"n": 1}},
        {"api_key": None, "source": "fused", "report": {"n": 2}},
        {"api_key": "k1", "source": "gnss", "report": {"n": 3}},
    ]
    redis_client.rpush(keyspace.INCOMING, *(encode_item(i) for i in items))
    archive = target("archive", "file")
    assert process_incoming(redis_client, [archive], consumer="c") == 3
    queues = archive.queues(redis_client)
    assert queues == ["queue_export_archive:fused:no_key", "queue_export_archive:gnss:k1"]
    exporter = FileExporter(
        "archive", f"file://{tmp_path}/{{source}}/{{api_key}}", metrics=Metrics()
    )
    for queue in queues:
        export_queue(redis_client, queue, exporter, 0, consumer="c", metrics=Metrics())
        assert redis_client.llen(queue) == 0
        assert not redis_client.exists(keyspace.since(queue))
    files = sorted(tmp_path.rglob("*.json.gz"))
    assert [f.relative_to(tmp_path).parts[:2] for f in files] == [
        ("fused", "no_key"),
        ("gnss", "k1"),
    ]
    bodies = [json.loads(gzip.decompress(f.read_bytes())) for f in files]
    assert bodies[0] == {"items": [{"n": 2}]}
    assert bodies[1] == {"items": [{"n": 1}, {"n": 3}]}


def test_failing_batch_is_parked_then_requeued(redis_client: redis.Redis) -> None:
    q = "queue_export_broken"
    redis_client.rpush(q, *(encode_item({"api_key": None, "report": {"n": i}}) for i in range(3)))
    exporter = Failing()
    sleeps: list[float] = []
    assert (
        export_queue(
            redis_client, q, exporter, 2, consumer="c", metrics=Metrics(), sleep=sleeps.append
        )
        == 2
    )
    assert exporter.calls == 3 and sleeps == [1.0, 2.0]
    assert redis_client.llen(q) == 1
    letters = list(dead_letters(redis_client))
    assert [(key, index) for key, index, _ in letters] == [(keyspace.dead_letter(q), 0)]
    assert [item["report"]["n"] for item in letters[0][2]["items"]] == [0, 1]
    assert requeue_dead_letters(redis_client, q) == 2
    assert not redis_client.exists(keyspace.dead_letter(q))
    assert [decode_item(raw)["report"]["n"] for raw in redis_client.lrange(q, 0, -1)] == [2, 0, 1]


def test_undecodable_export_items_are_set_aside_and_the_rest_sent(
    redis_client: redis.Redis, tmp_path: Path
) -> None:
    q = "queue_export_archive:gnss:no_key"
    good = encode_item({"api_key": None, "report": {"n": 1}})
    redis_client.rpush(q, b"not gzip", good)
    exporter = FileExporter("archive", f"file://{tmp_path}", metrics=Metrics())
    assert export_queue(redis_client, q, exporter, 0, consumer="c", metrics=Metrics()) == 2
    assert redis_client.lrange(keyspace.undecodable(q), 0, -1) == [b"not gzip"]
    (path,) = tmp_path.rglob("*.json.gz")
    assert json.loads(gzip.decompress(path.read_bytes())) == {"items": [{"n": 1}]}
