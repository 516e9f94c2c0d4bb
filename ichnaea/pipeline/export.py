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
list ``dead_letter:<queue>``; nothing is dropped. ``ichnaea deadletter``
lists and re-queues them.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import redis
import sqlalchemy.exc
from redis.client import Pipeline

from ichnaea.config import Settings
from ichnaea.metrics import Metrics
from ichnaea.pipeline.exporters import Exporter, Partition, make_exporter, send_with_retries
from ichnaea.pipeline.incoming import ExportTarget, since_key
from ichnaea.queue import decode_item, decode_items, encode_item, undecodable_key
from ichnaea.redis_client import decoded
from ichnaea.reliable_queue import LEASE_S, Batch, LostLease, ReliableQueue, SerialQueue

log = logging.getLogger(__name__)

EXPORT_MAX_AGE_S = 3600
# ``batch = 0`` means "everything that is queued"; claims are capped at this.
EVERYTHING = 10_000
DEAD_LETTER_PREFIX = "dead_letter:"
# Attempts at a database-stage batch before it is parked as a dead letter.
MAX_BATCH_FAILURES = 5
# The shortest lease of an export batch: three sends with a 60 s timeout each.
EXPORT_LEASE_S = 300
# Failures of the infrastructure, not of the batch: they never park a batch.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    redis.RedisError,
    OSError,
)


def dead_letter_key(queue: str) -> str:
    return f"{DEAD_LETTER_PREFIX}{queue}"


def partition_of(queue: str) -> Partition:
    """``queue_export_<name>:<source>:<api_key>`` → its partition (no_key → None)."""
    parts = queue.split(":", 2)
    if len(parts) < 3:
        return Partition(source=None, api_key=None)
    api_key = None if parts[2] == "no_key" else parts[2]
    return Partition(source=parts[1], api_key=api_key)


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
    since = client.get(since_key(queue))
    if since is None:
        # Items without a timer (pushed while the timer was being cleared).
        client.set(since_key(queue), str(int(now)), nx=True)
        return False
    return now - float(since) >= max_age_s


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
    queue = ReliableQueue(client, queue_name)
    # Sends may take minutes (timeouts, backoff): the lease covers them, and
    # is renewed before every retry.
    lease_s = max(lease_s, EXPORT_LEASE_S)
    raw_items = queue.claim(consumer, batch if batch > 0 else EVERYTHING, lease_s=lease_s)
    if not raw_items:
        return 0
    items, _, bad = decode_items(queue_name, raw_items)

    def set_aside(pipe: Pipeline) -> None:
        if bad:
            pipe.rpush(undecodable_key(queue_name), *bad)

    def wait(seconds: float) -> None:
        sleep(seconds)
        queue.renew(consumer, lease_s=lease_s)

    partition = partition_of(queue_name)
    try:
        sent = not items or send_with_retries(
            exporter, items, partition, metrics=metrics, sleep=wait
        )
    except Exception as exc:
        count_reliable_failure(queue, consumer, raw_items, exc)
        raise
    if sent:

        def done(pipe: Pipeline) -> None:
            set_aside(pipe)
            clear_timer_if_empty(pipe, client, queue_name)

        queue.ack(consumer, done)
        return len(raw_items)
    log.error(
        "export %s: batch of %d failed after retries; parked in %s",
        queue_name,
        len(raw_items),
        dead_letter_key(queue_name),
    )
    letter = encode_item({"queue": queue_name, "failed_at": int(time.time()), "items": items})

    def park(pipe: Pipeline) -> None:
        set_aside(pipe)
        pipe.rpush(dead_letter_key(queue_name), letter)

    queue.ack(consumer, park)
    metrics.incr("data.export.dead_letter", tags={"key": exporter.name})
    return len(raw_items)


def clear_timer_if_empty(pipe: Any, client: redis.Redis, queue_name: str) -> None:
    """Queue the removal of ``queue_name``'s flush timer on ``pipe`` if it is empty now."""
    if client.llen(queue_name) == 0:
        pipe.delete(since_key(queue_name))


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


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise TypeError(f"expected bytes from Redis, got {type(value).__name__}")
    return value


def raw_letter(queue: str, raw_items: Sequence[bytes], error: str) -> bytes:
    """A dead letter holding a batch's raw queue items verbatim (DB stages)."""
    return encode_item(
        {
            "queue": queue,
            "failed_at": int(time.time()),
            "error": error,
            "raw": [base64.b64encode(item).decode() for item in raw_items],
        }
    )


def count_failure(
    client: redis.Redis,
    queue: str,
    batch_id: str,
    raw_items: Sequence[bytes],
    exc: Exception,
    ack: Callable[[Callable[[Pipeline], object]], None],
) -> None:
    """Count a failed attempt at a batch; park it as a dead letter after MAX_BATCH_FAILURES.

    A batch that fails every time (a bug, data the code cannot handle) must
    not hold its queue forever: after the last attempt it moves, whole and
    verbatim, to ``dead_letter:<queue>`` (``ichnaea deadletter`` lists and
    re-queues it), through ``ack`` (the queue's acknowledgement, which
    applies the move atomically), and the queue goes on.
    """
    if isinstance(exc, TRANSIENT_ERRORS):
        return  # the database or Redis is unreachable: wait for it, park nothing
    counter = f"{queue}:failures:{batch_id}"
    failures = int(client.incr(counter))
    client.expire(counter, 86400)
    if failures < MAX_BATCH_FAILURES:
        return
    letter = raw_letter(queue, raw_items, f"{type(exc).__name__}: {exc}")
    log.error(
        "%s: batch %s failed %d times; parked in %s",
        queue,
        batch_id,
        failures,
        dead_letter_key(queue),
    )

    def park(pipe: Pipeline) -> None:
        pipe.rpush(dead_letter_key(queue), letter)
        pipe.delete(counter)

    # LostLease: another worker holds the batch now and counts its own tries.
    with contextlib.suppress(LostLease):
        ack(park)


def count_serial_failure(serial: SerialQueue, claimed: Batch, owner: str, exc: Exception) -> None:
    """:func:`count_failure` for a batch of a :class:`SerialQueue`."""
    count_failure(
        serial.client,
        serial.name,
        claimed.id,
        claimed.items,
        exc,
        lambda effects: serial.ack(owner, effects),
    )


def count_reliable_failure(
    queue: ReliableQueue, consumer: str, raw_items: Sequence[bytes], exc: Exception
) -> None:
    """:func:`count_failure` for a consumer's batch of a :class:`ReliableQueue`."""
    count_failure(
        queue.client,
        queue.name,
        consumer,
        raw_items,
        exc,
        lambda effects: queue.ack(consumer, effects),
    )


def dead_letters(client: redis.Redis) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(dead-letter key, index, letter) for every parked batch."""
    for raw_key in sorted(client.scan_iter(match=f"{DEAD_LETTER_PREFIX}*", count=100)):
        key = decoded(raw_key)
        for index, raw in enumerate(client.lrange(key, 0, -1)):
            yield key, index, decode_item(_bytes(raw))


def requeue_dead_letters(client: redis.Redis, queue: str | None = None) -> int:
    """Move parked batches back to the end of their queue; return how many items moved."""
    moved = 0
    for raw_key in list(client.scan_iter(match=f"{DEAD_LETTER_PREFIX}*", count=100)):
        key = decoded(raw_key)
        target = key.removeprefix(DEAD_LETTER_PREFIX)
        if queue is not None and target != queue:
            continue
        while True:
            # Copy back and remove the letter in one transaction: never both, never neither.
            with client.pipeline(transaction=True) as pipe:
                pipe.watch(key)  # type: ignore[no-untyped-call]
                raw = pipe.lindex(key, 0)
                if raw is None:
                    break
                letter = decode_item(_bytes(raw))
                # Export batches keep decoded items; DB-stage batches their raw bytes.
                items = [encode_item(item) for item in letter.get("items") or []]
                items += [base64.b64decode(item) for item in letter.get("raw") or []]
                pipe.multi()
                if items:
                    pipe.rpush(target, *items)
                    pipe.set(since_key(target), "0", nx=True)
                pipe.lpop(key)
                try:
                    pipe.execute()
                except redis.WatchError:
                    continue
            moved += len(items)
    return moved
