"""A shard never stalls: unusable observations and failing batches are set aside, not lost."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

from ichnaea.broker import keyspace
from ichnaea.codecs import encode_mac
from ichnaea.pipeline.deadletters import dead_letters, requeue_dead_letters
from ichnaea.pipeline.runner import MAX_BATCH_FAILURES
from ichnaea.pipeline.stations.updater import (
    encode_observation,
    process_station_queue,
    queue_for_name,
)
from tests.fixtures_pipeline import Pipeline

NOW = datetime(2026, 11, 30, 12, 0, 0)
QUEUE = queue_for_name("update_wifi_8")
GOOD = {"mac": "3680873e9b83", "lat": 51.5, "lon": -0.1, "accuracy": 10.0, "source": 3}


def run(pipeline: Pipeline) -> int:
    return process_station_queue(
        QUEUE,
        engine=pipeline.engine,
        client=pipeline.redis,
        geocoder=pipeline.resources.geocoder,
        metrics=pipeline.metrics,
        owner="worker-1",
        now=NOW,
    )


def test_unusable_observations_are_set_aside_and_the_rest_applied(pipeline: Pipeline) -> None:
    bad = [b"not json", json.dumps([1, 2]).encode(), json.dumps({"mac": "zz"}).encode()]
    pipeline.redis.rpush(QUEUE.name, *bad, encode_observation(GOOD))
    assert run(pipeline) == 4
    assert pipeline.redis.lrange(keyspace.undecodable(QUEUE.name), 0, -1) == bad
    (row,) = pipeline.rows("wifi_shard_8")
    assert (row["mac"], row["samples"]) == (encode_mac(GOOD["mac"]), 1)


def test_a_batch_that_keeps_failing_is_parked_and_the_shard_goes_on(pipeline: Pipeline) -> None:
    poison = encode_observation(dict(GOOD, lat="north"))
    pipeline.redis.rpush(QUEUE.name, poison)
    for attempt in range(MAX_BATCH_FAILURES):
        with pytest.raises((ValueError, TypeError)):
            run(pipeline)
        parked = pipeline.redis.llen(keyspace.dead_letter(QUEUE.name))
        assert parked == (1 if attempt == MAX_BATCH_FAILURES - 1 else 0)
    ((key, _, letter),) = list(dead_letters(pipeline.redis))
    assert key == keyspace.dead_letter(QUEUE.name)
    assert letter["error"].startswith(("ValueError", "TypeError")), letter["error"]
    # The shard is free again: new observations are applied.
    pipeline.redis.rpush(QUEUE.name, encode_observation(GOOD))
    assert run(pipeline) == 1
    assert [r["samples"] for r in pipeline.rows("wifi_shard_8")] == [1]
    # An operator puts the parked batch back, verbatim.
    assert requeue_dead_letters(pipeline.redis, QUEUE.name) == 1
    assert pipeline.redis.lrange(QUEUE.name, 0, -1) == [poison]


def test_a_report_batch_that_keeps_failing_is_parked(
    pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    import ichnaea.pipeline.ingest.internal as internal
    from ichnaea.broker.queue import encode_item
    from ichnaea.pipeline.ingest.internal import process_internal

    def broken(items: object, geocoder: object) -> object:
        raise RuntimeError("a bug in the transform")

    monkeypatch.setattr(internal, "transform_batch", broken)
    queue = "queue_export_internal"
    raw = [encode_item({"api_key": None, "report": {"n": i}}) for i in range(3)]
    pipeline.redis.rpush(queue, *raw)
    for _ in range(MAX_BATCH_FAILURES):
        with pytest.raises(RuntimeError):
            process_internal(
                pipeline.redis,
                queue_name=queue,
                geocoder=pipeline.resources.geocoder,
                metrics=pipeline.metrics,
                known_keys=pipeline.resources.known_keys,
                consumer="worker-1",
            )
    ((key, _, letter),) = list(dead_letters(pipeline.redis))
    assert key == keyspace.dead_letter(queue)
    assert letter["error"] == "RuntimeError: a bug in the transform"
    assert pipeline.redis.llen(queue) == 0
    assert requeue_dead_letters(pipeline.redis, queue) == 3
    assert pipeline.redis.lrange(queue, 0, -1) == raw
