"""Datamap shards wait for a full batch or DATAMAP_MAX_AGE_S before a worker stores them."""

from __future__ import annotations

import time

import pytest

from ichnaea.broker import keyspace
from ichnaea.codecs import encode_datamap_grid
from ichnaea.pipeline.ingest.internal import push_outputs
from ichnaea.pipeline.ingest.observations import InternalBatch
from ichnaea.worker.jobs import DATAMAP_BATCH, DATAMAP_MAX_AGE_S, _datamap, _queue_due
from tests.fixtures_pipeline import Pipeline

NOW = 1_800_000_000.0


@pytest.mark.parametrize(
    ("size", "in_flight", "since", "drain", "due"),
    [
        (0, 0, None, False, False),  # nothing waits
        (0, 1, None, False, True),  # a batch in flight is finished first
        (DATAMAP_BATCH, 0, str(NOW).encode(), False, True),  # a full batch
        (10, 0, str(NOW - DATAMAP_MAX_AGE_S + 1).encode(), False, False),  # waits on
        (10, 0, str(NOW - DATAMAP_MAX_AGE_S).encode(), False, True),  # waited long enough
        (10, 0, None, False, True),  # no timer (an older version pushed): at once
        (10, 0, str(NOW).encode(), True, True),  # ichnaea process drains at once
    ],
)
def test_a_datamap_shard_is_due_when_full_waited_or_drained(
    size: int, in_flight: int, since: bytes | None, drain: bool, due: bool
) -> None:
    assert (
        _queue_due(
            size,
            in_flight,
            since,
            batch=DATAMAP_BATCH,
            max_wait_s=DATAMAP_MAX_AGE_S,
            drain=drain,
            now=NOW,
        )
        is due
    )


def test_a_worker_stores_a_waiting_shard_only_once_its_timer_ran_out(pipeline: Pipeline) -> None:
    pipeline.resources.drain = False
    queue = keyspace.datamap_queue("ne")
    grid = encode_datamap_grid(50_000, 10_000)
    batch = InternalBatch(observations={}, datamap={queue: {grid}}, counts={})
    try:
        push_outputs(pipeline.redis, batch, time.time())  # type: ignore[arg-type]
        assert pipeline.redis.get(keyspace.since(queue)) is not None  # the push set the timer
        assert _datamap(pipeline.resources) == 0
        assert pipeline.redis.llen(queue) == 1
        assert pipeline.rows("datamap_ne") == []
        # The timer ran out (as if DATAMAP_MAX_AGE_S went by).
        pipeline.redis.set(keyspace.since(queue), str(time.time() - DATAMAP_MAX_AGE_S - 1))
        assert _datamap(pipeline.resources) == 1
        assert pipeline.redis.llen(queue) == 0
        assert len(pipeline.rows("datamap_ne")) == 1
        # The emptied shard's timer is gone: the next push starts a new one.
        assert pipeline.redis.get(keyspace.since(queue)) is None
    finally:
        pipeline.redis.delete(queue, keyspace.since(queue))
