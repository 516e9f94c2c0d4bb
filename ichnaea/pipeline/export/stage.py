"""The export stage: drain each external export queue into its exporter.

For every ``export_config`` with a known external schema (``dummy``,
``geosubmit``, ``s3``, ``file``), each of its queues is exported when it
holds a full batch (``batch`` items; 0 means everything) or its oldest
item has waited ``max_age_s`` (default an hour), or always when forced
(``ichnaea process``, shutdown drains). A batch is claimed reliably, sent
with retries and backoff, and acknowledged only after the send succeeded:
a worker crash mid-send re-sends the batch later (at-least-once; archive
readers see at worst a duplicate object). A batch that still fails after
the retries is moved, in the acknowledging transaction, to the dead-letter
list ``dead_letter:{<queue>}``; nothing is dropped. ``ichnaea deadletter``
lists and re-queues them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.client import Pipeline

from ichnaea.broker import keyspace
from ichnaea.broker.queue import decode_object, encode_item
from ichnaea.broker.reliable import LEASE_S, ReliableQueue
from ichnaea.config import Settings
from ichnaea.metrics import Metrics
from ichnaea.pipeline.export.exporters import Exporter, Partition, make_exporter, send_with_retries
from ichnaea.pipeline.ingest.incoming import ExportTarget
from ichnaea.pipeline.runner import Claimed, Done, run_batch, timer_cleared

log = logging.getLogger(__name__)

EXPORT_MAX_AGE_S = 3600
# ``batch = 0`` means "everything that is queued"; claims are capped at this.
EVERYTHING = 10_000
# The shortest lease of an export batch: three sends with a 60 s timeout each.
EXPORT_LEASE_S = 300


def partition_of(queue: str) -> Partition:
    """``queue_export_<name>:<source>:<api_key>`` → its partition (no_key → None)."""
    _, source, api_key = keyspace.parse_export_queue(queue)
    return Partition(source=source, api_key=api_key)


@dataclass
class ExporterCache:
    """One exporter per export_config row, rebuilt when the row changes."""

    settings: Settings
    metrics: Metrics
    _cache: dict[tuple[str, str, str | None], Exporter | None] = field(default_factory=dict)

    def get(self, name: str, schema: str, url: str | None) -> Exporter | None:
        key = (name, schema, url)
        if key not in self._cache:
            self._cache[key] = make_exporter(name, schema, url, self.settings, self.metrics)
        return self._cache[key]


def ready(client: redis.Redis, queue: str, batch: int, *, now: float, max_age_s: float) -> bool:
    size = int(client.llen(queue))
    if size == 0:
        return False
    if batch <= 0 or size >= batch:
        return True
    since = client.get(keyspace.since(queue))
    if since is None:
        # Items without a timer (pushed while the timer was being cleared).
        client.set(keyspace.since(queue), str(int(now)), nx=True)
        return False
    return now - float(since) >= max_age_s


@dataclass(frozen=True, slots=True)
class ExportStage:
    """Batches of one export queue → its exporter, with retries; parked if they keep failing."""

    client: redis.Redis
    exporter: Exporter
    metrics: Metrics
    sleep: Callable[[float], None] = time.sleep

    decode = staticmethod(decode_object)

    def apply(self, batch: Claimed, items: list[dict[str, Any]]) -> Done:
        def wait(seconds: float) -> None:
            self.sleep(seconds)
            batch.renew()  # sends may take minutes: keep the batch

        partition = partition_of(batch.queue)
        if not items or send_with_retries(
            self.exporter, items, partition, metrics=self.metrics, sleep=wait
        ):
            return timer_cleared(self.client, batch.queue)
        log.error(
            "export %s: batch of %d failed after retries; parked in %s",
            batch.queue,
            len(batch.items),
            keyspace.dead_letter(batch.queue),
        )
        letter = encode_item({"queue": batch.queue, "failed_at": int(time.time()), "items": items})

        def park(pipe: Pipeline) -> None:
            pipe.rpush(keyspace.dead_letter(batch.queue), letter)

        def counted() -> None:
            self.metrics.incr("data.export.dead_letter", tags={"key": self.exporter.name})

        return Done(effects=park, acknowledged=counted)


def export_queue(
    client: redis.Redis,
    queue_name: str,
    exporter: Exporter,
    batch: int,
    *,
    consumer: str,
    metrics: Metrics,
    sleep: Callable[[float], None] = time.sleep,
    lease_s: int = LEASE_S,
) -> int:
    """Send one claimed batch of ``queue_name``; return its size."""
    stage = ExportStage(client, exporter, metrics, sleep)
    # Sends may take minutes (timeouts, backoff): the lease covers them, and
    # is renewed before every retry.
    return run_batch(
        ReliableQueue(client, queue_name),
        stage,
        consumer=consumer,
        batch=batch if batch > 0 else EVERYTHING,
        lease_s=max(lease_s, EXPORT_LEASE_S),
    )


def export_all(
    client: redis.Redis,
    targets: Sequence[ExportTarget],
    configs: dict[str, tuple[str | None, int]],
    exporters: ExporterCache,
    *,
    consumer: str,
    force: bool = False,
    max_age_s: float = EXPORT_MAX_AGE_S,
    sleep: Callable[[float], None] = time.sleep,
    lease_s: int = LEASE_S,
) -> int:
    """One batch from every ready external export queue; return the items sent."""
    handled = 0
    now = time.time()
    for target in targets:
        url, batch = configs[target.name]
        exporter = exporters.get(target.name, target.schema, url)
        if exporter is None:
            continue
        for queue_name in target.queues(client):
            if (force and client.llen(queue_name)) or ready(
                client, queue_name, batch, now=now, max_age_s=max_age_s
            ):
                handled += export_queue(
                    client,
                    queue_name,
                    exporter,
                    batch,
                    consumer=consumer,
                    metrics=exporters.metrics,
                    sleep=sleep,
                    lease_s=lease_s,
                )
    return handled
