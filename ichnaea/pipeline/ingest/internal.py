"""The internal exporter stage: queued reports → observations on the shard queues.

A batch is claimed from ``queue_export_internal`` (any number of workers
in parallel), transformed by :func:`ichnaea.pipeline.ingest.observations.transform_batch`,
and its observations and datamap grid cells are pushed to their queues in
the same Redis transaction that acknowledges the batch: a crash before it
leaves the batch to be reclaimed whole, a crash after it loses nothing, so
every report yields its observations exactly once.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import redis
from cachetools import TTLCache, cachedmethod
from redis.client import Pipeline
from sqlalchemy import Engine

from ichnaea.broker import keyspace
from ichnaea.broker.queue import decode_object
from ichnaea.broker.reliable import LEASE_S, ReliableQueue
from ichnaea.geocode import Geocoder
from ichnaea.metrics import Metrics
from ichnaea.pipeline.ingest.observations import InternalBatch, transform_batch
from ichnaea.pipeline.runner import Claimed, Done, run_batch
from ichnaea.pipeline.stations.updater import encode_observation
from ichnaea.repositories.api_keys import read_valid_keys

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
        self._cache: TTLCache[str, frozenset[str]] = TTLCache(maxsize=1, ttl=ttl_s)

    @cachedmethod(lambda self: self._cache)
    def get(self) -> frozenset[str]:
        with self.engine.connect() as conn:
            return read_valid_keys(conn)


def push_outputs(pipe: Pipeline, batch: InternalBatch, now: float) -> None:
    for queue, observations in batch.observations.items():
        if observations:
            pipe.rpush(queue, *(encode_observation(obs) for obs in observations))
            # When the shard's oldest waiting observation arrived: the worker
            # lets a shard fill up to a batch for a moment (STATION_MAX_WAIT_MS).
            pipe.set(keyspace.since(queue), str(now), nx=True)
    for queue, grids in batch.datamap.items():
        if grids:
            pipe.rpush(queue, *sorted(grids))
            # Datamap shards wait for a full batch too (DATAMAP_MAX_AGE_S).
            pipe.set(keyspace.since(queue), str(now), nx=True)


def emit_counts(metrics: Metrics, batch: InternalBatch, known: frozenset[str]) -> None:
    for api_key, counts in batch.counts.items():
        key_tags: dict[str, str] = {"key": api_key} if api_key in known else {}
        for metric, count_name, obs_type in _COUNTS:
            value = counts.get(count_name, 0)
            if value:
                tags = key_tags if obs_type is None else {"type": obs_type, **key_tags}
                metrics.incr(metric, value, tags=tags)


@dataclass(frozen=True, slots=True)
class InternalStage:
    """Reports of an internal export queue → observations and datamap cells, exactly once."""

    geocoder: Geocoder
    metrics: Metrics
    known_keys: KnownKeys

    decode = staticmethod(decode_object)

    def apply(self, batch: Claimed, items: list[dict[str, Any]]) -> Done:
        result = transform_batch(items, self.geocoder)

        def counted() -> None:
            emit_counts(self.metrics, result, self.known_keys.get())
            target, _, _ = keyspace.parse_export_queue(batch.queue)
            self.metrics.incr("data.export.batch", tags={"key": target})

        now = time.time()
        return Done(effects=lambda pipe: push_outputs(pipe, result, now), acknowledged=counted)


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
    stage = InternalStage(geocoder, metrics, known_keys)
    queue = ReliableQueue(client, queue_name)
    return run_batch(queue, stage, consumer=consumer, batch=batch, lease_s=lease_s)
