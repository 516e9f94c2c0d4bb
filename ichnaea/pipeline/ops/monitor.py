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
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, timedelta

import redis

from ichnaea.broker import keyspace
from ichnaea.broker.client import decoded
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
        for name, value in zip(chunk, client.mget(chunk), strict=True):
            if value is None:  # expired between SCAN and MGET
                continue
            api_key, path, _ = keyspace.parse_api_limit(name)
            metrics.gauge("api.limit", int(value), tags={"key": api_key, "path": path})
            sent += 1
    return sent


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
        weekly = int(client.pfcount(*days.values()))
        metrics.gauge(name, daily, tags={"key": api_key, "interval": "1d"})
        metrics.gauge(name, weekly, tags={"key": api_key, "interval": "7d"})
    return len(groups)
