"""Station shards fill up to a batch for a moment before a worker takes them."""

from __future__ import annotations

from collections.abc import Callable

import pytest
import redis

from ichnaea.broker import keyspace
from ichnaea.config import Settings
from ichnaea.pipeline.ingest.internal import push_outputs
from ichnaea.pipeline.ingest.observations import InternalBatch
from ichnaea.worker.jobs import Resources, _shard_due

NOW = 1_800_000_000.0


@pytest.fixture
def res(make_settings: Callable[..., Settings]) -> Resources:
    settings = make_settings(STATION_BATCH="500", STATION_MAX_WAIT_MS="1000")
    return Resources(settings, None, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("size", "in_flight", "since", "due"),
    [
        (0, 0, None, False),  # nothing waits
        (0, 1, None, True),  # a batch in flight is finished first
        (500, 0, str(NOW).encode(), True),  # a full batch
        (120, 0, str(NOW - 0.2).encode(), False),  # fills for a moment more
        (120, 0, str(NOW - 1.0).encode(), True),  # waited long enough
        (120, 0, None, True),  # no timer (an older version pushed): at once
    ],
)
def test_a_shard_is_due_when_full_or_waited(
    res: Resources, size: int, in_flight: int, since: bytes | None, due: bool
) -> None:
    assert _shard_due(size, in_flight, since, res, NOW) is due


def test_draining_takes_every_shard_at_once(res: Resources) -> None:
    res.drain = True
    assert _shard_due(1, 0, str(NOW).encode(), res, NOW)


def test_zero_wait_is_the_old_behaviour(make_settings: Callable[..., Settings]) -> None:
    res = Resources(make_settings(STATION_MAX_WAIT_MS="0"), None, None)  # type: ignore[arg-type]
    assert _shard_due(1, 0, str(NOW).encode(), res, NOW)


def test_the_first_push_starts_the_timer_and_later_ones_keep_it(
    redis_client: redis.Redis,
) -> None:
    batch = InternalBatch(
        observations={"update_wifi_3": [{"mac": "0a0000000001"}]}, datamap={}, counts={}
    )
    push_outputs(redis_client, batch, NOW)  # type: ignore[arg-type]
    push_outputs(redis_client, batch, NOW + 5)  # type: ignore[arg-type]
    assert redis_client.llen("update_wifi_3") == 2
    assert float(redis_client.get(keyspace.since("update_wifi_3")) or 0) == NOW
