"""Monitoring jobs over the web tier's Redis counters (spec pipeline.md section 16).

* ``monitor_api_key_limits``: today's request count of every API key and
  path, ``apilimit:<key>:<path>:<YYYYMMDD>``, as the gauge ``api.limit``
  (tags ``key``, ``path``). Other days' counters are ignored.
* ``monitor_api_users``: the distinct client IPs per API type and key
  (HyperLogLogs ``apiuser:<type>:<key>:<YYYY-MM-DD>``) as the gauge
  ``<type>.user``, tags ``key`` and ``interval:1d`` (today's estimate) or
  ``interval:7d`` (the union of the last seven days, today included). Keys
  of older days, or whose date cannot be read, are deleted.

Keys are found with ``SCAN``, not the original's ``KEYS``, which blocks
Redis for the whole key space while the web tier waits.

On a Redis Cluster the keys of one API key live in different hash slots
(their names are the original's, without a hash tag), where ``MGET`` and a
``PFCOUNT`` of several keys are refused: the counts are then read per slot
(``mget_nonatomic``), and the weekly union is counted over copies of the
day sketches placed under one hash tag (:func:`_union_count`).
"""

from __future__ import annotations

import logging
import uuid
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta

import redis

from ichnaea.broker import keyspace
from ichnaea.broker.client import decoded, is_cluster, mget
from ichnaea.metrics import Metrics

log = logging.getLogger(__name__)

USER_DAYS = 7
_CHUNK = 1000


def _scan(client: redis.Redis, pattern: str) -> Iterator[str]:
    for raw in client.scan_iter(match=pattern, count=_CHUNK):
        yield decoded(raw)


def monitor_api_key_limits(client: redis.Redis, metrics: Metrics, *, today: date) -> int:
    """Gauge today's per-key, per-path request counts; return how many were sent."""
    keys = sorted(set(_scan(client, keyspace.api_limit_pattern(today))))
    sent = 0
    for start in range(0, len(keys), _CHUNK):
        chunk = keys[start : start + _CHUNK]
        for name, value in zip(chunk, mget(client, chunk), strict=True):
            if value is None:  # expired between SCAN and MGET
                continue
            api_key, path, _ = keyspace.parse_api_limit(name)
            metrics.gauge("api.limit", int(value), tags={"key": api_key, "path": path})
            sent += 1
    return sent


def _union_count(client: redis.Redis, keys: list[str]) -> int:
    """``PFCOUNT`` of the union of ``keys``, which may lie in different hash slots.

    A HyperLogLog is a plain string value, so its copy under one hash tag
    counts the same; the copies live a minute at most.
    """
    if len(keys) < 2 or not is_cluster(client):
        return int(client.pfcount(*keys))
    run = uuid.uuid4().hex
    scratch = [keyspace.union_scratch(run, i) for i in range(len(keys))]
    with client.pipeline(transaction=False) as pipe:
        for key in keys:
            pipe.get(key)
        sketches = pipe.execute()
    present = [(copy, raw) for copy, raw in zip(scratch, sketches, strict=True) if raw]
    if not present:
        return 0
    with client.pipeline(transaction=False) as pipe:
        for copy, raw in present:
            pipe.set(copy, raw, ex=60)
        pipe.execute()
    try:
        return int(client.pfcount(*(copy for copy, _ in present)))
    finally:
        client.delete(*(copy for copy, _ in present))


def monitor_api_users(client: redis.Redis, metrics: Metrics, *, today: date) -> int:
    """Gauge 1-day and 7-day distinct users per API type and key; drop older keys."""
    window = {today - timedelta(days=n) for n in range(USER_DAYS)}
    groups: dict[tuple[str, str], dict[date, str]] = defaultdict(dict)
    stale: list[str] = []
    for name in _scan(client, keyspace.API_USERS_PATTERN):
        try:
            api_type, api_key, day = keyspace.parse_api_users(name)
        except ValueError:
            stale.append(name)
            continue
        if day in window:
            groups[(api_type, api_key)][day] = name
        else:
            stale.append(name)
    for start in range(0, len(stale), _CHUNK):
        client.delete(*stale[start : start + _CHUNK])
    if stale:
        log.info("deleted %d apiuser keys older than %d days", len(stale), USER_DAYS)
    for (api_type, api_key), days in sorted(groups.items()):
        name = f"{api_type}.user"
        today_key = days.get(today)
        daily = int(client.pfcount(today_key)) if today_key else 0
        weekly = _union_count(client, list(days.values()))
        metrics.gauge(name, daily, tags={"key": api_key, "interval": "1d"})
        metrics.gauge(name, weekly, tags={"key": api_key, "interval": "7d"})
    return len(groups)
