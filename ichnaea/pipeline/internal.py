"""The internal exporter stage: queued reports → observations on the shard queues.

A batch is claimed from ``queue_export_internal`` (any number of workers
in parallel), transformed by :func:`ichnaea.pipeline.observations.transform_batch`,
and its observations and datamap grid cells are pushed to their queues in
the same Redis transaction that acknowledges the batch: a crash before it
leaves the batch to be reclaimed whole, a crash after it loses nothing, so
every report yields its observations exactly once.
"""

from __future__ import annotations

import logging
import time

import redis
import sqlalchemy as sa
from redis.client import Pipeline
from sqlalchemy import Engine

from ichnaea.geocode import Geocoder
from ichnaea.metrics import Metrics
from ichnaea.models.api_key import ApiKey
from ichnaea.pipeline.export import count_reliable_failure
from ichnaea.pipeline.observations import InternalBatch, transform_batch
from ichnaea.pipeline.station import encode_observation
from ichnaea.queue import decode_items, undecodable_key
from ichnaea.reliable_queue import LEASE_S, ReliableQueue

log = logging.getLogger(__name__)

INTERNAL_BATCH = 500
KNOWN_KEYS_TTL_S = 60.0

_COUNTS = (
    ("data.report.upload", "report_upload", None),
    ("data.report.drop", "report_drop", None),
    ("data.observation.upload", "blue_upload", "blue"),
    ("data.observation.drop", "blue_drop", "blue"),
    ("data.observation.upload", "cell_upload", "cell"),
    ("data.observation.drop", "cell_drop", "cell"),
    ("data.observation.upload", "wifi_upload", "wifi"),
    ("data.observation.drop", "wifi_drop", "wifi"),
)


class KnownKeys:
    """The API keys in the database, re-read at most once a minute (metric tags)."""

    def __init__(self, engine: Engine, ttl_s: float = KNOWN_KEYS_TTL_S) -> None:
        self.engine = engine
        self.ttl_s = ttl_s
        self._keys: frozenset[str] = frozenset()
        self._read_at = float("-inf")

    def get(self) -> frozenset[str]:
        if time.monotonic() - self._read_at >= self.ttl_s:
            with self.engine.connect() as conn:
                self._keys = frozenset(conn.execute(sa.select(ApiKey.valid_key)).scalars())
            self._read_at = time.monotonic()
        return self._keys


def push_outputs(pipe: Pipeline, batch: InternalBatch) -> None:
    for queue, observations in batch.observations.items():
        if observations:
            pipe.rpush(queue, *(encode_observation(obs) for obs in observations))
    for queue, grids in batch.datamap.items():
        if grids:
            pipe.rpush(queue, *sorted(grids))


def emit_counts(metrics: Metrics, batch: InternalBatch, known: frozenset[str]) -> None:
    for api_key, counts in batch.counts.items():
        key_tags: dict[str, str] = {"key": api_key} if api_key in known else {}
        for metric, count_name, obs_type in _COUNTS:
            value = counts.get(count_name, 0)
            if value:
                tags = key_tags if obs_type is None else {"type": obs_type, **key_tags}
                metrics.incr(metric, value, tags=tags)


def process_internal(
    client: redis.Redis,
    *,
    queue_name: str,
    geocoder: Geocoder,
    metrics: Metrics,
    known_keys: KnownKeys,
    consumer: str,
    batch: int = INTERNAL_BATCH,
    lease_s: int = LEASE_S,
) -> int:
    """Transform one claimed batch; return how many queued reports it held."""
    queue = ReliableQueue(client, queue_name)
    raw_items = queue.claim(consumer, batch, lease_s=lease_s)
    if not raw_items:
        return 0
    items, _, bad = decode_items(queue_name, raw_items)
    try:
        result = transform_batch(items, geocoder)
    except Exception as exc:
        count_reliable_failure(queue, consumer, raw_items, exc)
        raise

    def push(pipe: Pipeline) -> None:
        push_outputs(pipe, result)
        if bad:
            pipe.rpush(undecodable_key(queue_name), *bad)

    queue.ack(consumer, push)
    emit_counts(metrics, result, known_keys.get())
    metrics.incr("data.export.batch", tags={"key": queue_name.removeprefix("queue_export_")})
    return len(raw_items)
