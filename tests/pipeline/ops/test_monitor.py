"""Monitoring jobs over the API counters in Redis (spec pipeline.md section 16)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
import redis

from ichnaea.broker import keyspace
from ichnaea.pipeline.ops.monitor import monitor_api_key_limits, monitor_api_users
from tests._support import RecordingMetrics

# Queues, limits, counters and caches: also on a Redis Cluster.
pytestmark = pytest.mark.redis_cluster

TODAY = date(2026, 11, 30)


def test_api_key_limits_spec_example_today_only(redis_client: redis.Redis) -> None:
    redis_client.set(keyspace.api_limit("no_key_1", "v1.geolocate", TODAY), 13)
    redis_client.set(keyspace.api_limit("test", "v2.geosubmit", TODAY), 2)
    redis_client.set(keyspace.api_limit("no_key_1", "v1.geolocate", TODAY - timedelta(days=1)), 99)
    metrics = RecordingMetrics()
    assert monitor_api_key_limits(redis_client, metrics, today=TODAY) == 2
    assert sorted(metrics.gauges) == [
        ("api.limit", 2, {"key": "test", "path": "v2.geosubmit"}),
        ("api.limit", 13, {"key": "no_key_1", "path": "v1.geolocate"}),
    ]


def test_api_users_spec_example_one_and_seven_days_and_old_keys_deleted(
    redis_client: redis.Redis,
) -> None:
    bhutan, london = "67.43.156.1", "81.2.69.160"
    redis_client.pfadd(keyspace.api_users("locate", "test", TODAY), "127.0.0.1", bhutan)
    six_ago = keyspace.api_users("locate", "test", TODAY - timedelta(days=6))
    redis_client.pfadd(six_ago, "127.0.0.1", bhutan, london)
    seven_ago = keyspace.api_users("locate", "test", TODAY - timedelta(days=7))
    redis_client.pfadd(seven_ago, bhutan)
    redis_client.pfadd("apiuser:locate:test:not-a-date", bhutan)
    metrics = RecordingMetrics()
    assert monitor_api_users(redis_client, metrics, today=TODAY) == 1
    assert sorted(metrics.gauges, key=lambda g: g[2]["interval"]) == [
        ("locate.user", 2, {"key": "test", "interval": "1d"}),
        ("locate.user", 3, {"key": "test", "interval": "7d"}),
    ]
    assert redis_client.exists(seven_ago, "apiuser:locate:test:not-a-date") == 0
    assert redis_client.exists(six_ago) == 1


def test_api_users_without_a_key_today_report_zero_for_the_day(redis_client: redis.Redis) -> None:
    redis_client.pfadd(keyspace.api_users("region", "other", TODAY - timedelta(days=2)), "10.0.0.1")
    metrics = RecordingMetrics()
    monitor_api_users(redis_client, metrics, today=TODAY)
    assert sorted(metrics.gauges, key=lambda g: g[2]["interval"]) == [
        ("region.user", 0, {"key": "other", "interval": "1d"}),
        ("region.user", 1, {"key": "other", "interval": "7d"}),
    ]
