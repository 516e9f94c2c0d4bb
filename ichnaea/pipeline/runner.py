"""The stage runner: the one loop that claims, decodes, sets aside, applies, counts and acks.

Every queue consumer of the worker role is a :class:`Stage`: it says how to
decode one queued item and what to do with a decoded batch. This module
does the rest, the same way for every stage and both queue kinds of
:mod:`ichnaea.broker.reliable`:

1. **claim** a batch (a :class:`ReliableQueue` hands one batch per consumer,
   a :class:`SerialQueue` one batch per queue, with a stable id);
2. **decode** each item; an item the stage cannot decode is logged and
   **set aside** on ``{<queue>}:undecodable`` in the acknowledging
   transaction: never processed, never lost;
3. **apply** the stage to the decoded items. It returns :class:`Done`: the
   Redis effects to queue on the acknowledging transaction (pushes to the
   next queues, counters) and what to do once acknowledged (metrics);
4. **count** a failure: an exception of the stage is counted per batch,
   and after ``MAX_BATCH_FAILURES`` attempts the batch moves, verbatim, to
   ``dead_letter:{<queue>}`` (``ichnaea deadletter`` lists and re-queues
   it) so one poisoned batch never holds its queue. Failures of the
   infrastructure (database or Redis unreachable) park nothing;
5. **acknowledge**: the effects and the end of the batch commit in one
   Redis transaction. If the lease ran out meanwhile (:class:`LostLease`),
   nothing is applied and whoever holds the batch now finishes it.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

import redis
import sqlalchemy.exc
from redis.client import Pipeline

from ichnaea.broker import keyspace
from ichnaea.broker.client import REDIS_ERRORS
from ichnaea.broker.queue import encode_item
from ichnaea.broker.reliable import LEASE_S, LostLease, ReliableQueue, SerialQueue

log = logging.getLogger(__name__)

# Attempts at a batch before it is parked as a dead letter.
MAX_BATCH_FAILURES = 5
FAILURE_COUNTER_TTL_S = 86400
# Failures of the infrastructure, not of the batch: they never park a batch.
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    sqlalchemy.exc.OperationalError,
    sqlalchemy.exc.InterfaceError,
    *REDIS_ERRORS,
)
# What a stage's decode raises for an item it cannot use.
DECODE_ERRORS: tuple[type[Exception], ...] = (
    ValueError,
    TypeError,
    KeyError,
    EOFError,
    OSError,
)

Item = TypeVar("Item")
Item_contra = TypeVar("Item_contra", contravariant=True)
Effects = Callable[[Pipeline], object]


@dataclass(frozen=True, slots=True)
class Claimed:
    """A claimed batch: its queue, id, raw items, and how to keep its lease."""

    queue: str
    id: str
    items: list[bytes]
    # Claimed before (by a worker that stopped, or by this one before a failure).
    resumed: bool
    renew: Callable[[], None]


@dataclass(frozen=True, slots=True)
class Done:
    """What a stage did with a batch.

    ``effects`` are queued on the transaction that acknowledges the batch;
    ``acknowledged`` runs after that transaction succeeded, in the worker
    whose acknowledgement counted (so a batch taken over after a crash is
    counted once).
    """

    effects: Effects | None = None
    acknowledged: Callable[[], object] | None = None


class Stage(Protocol[Item]):
    """A queue consumer: how to decode an item, and what to do with a batch."""

    def decode(self, raw: bytes) -> Item:
        """One queued item; raises one of DECODE_ERRORS for an item to set aside."""
        ...

    def apply(self, batch: Claimed, items: list[Item]) -> Done:
        """Handle the batch's decoded items (all of them, in queue order)."""
        ...


@dataclass(frozen=True, slots=True)
class Decoded(Generic[Item]):
    items: list[Item]
    bad: list[bytes]


def decode_batch(stage: Stage[Item], batch: Claimed) -> Decoded[Item]:
    """The batch's items the stage can decode, and the raw items it cannot."""
    items: list[Item] = []
    bad: list[bytes] = []
    for raw in batch.items:
        try:
            items.append(stage.decode(raw))
        except DECODE_ERRORS as exc:
            log.error("%s: item set aside as undecodable (%s): %r", batch.queue, exc, raw[:200])
            bad.append(raw)
    return Decoded(items, bad)


def claim(
    queue: ReliableQueue | SerialQueue, consumer: str, batch: int, *, lease_s: int = LEASE_S
) -> Claimed | None:
    """A batch of either queue kind, or None when there is nothing to take."""
    if isinstance(queue, SerialQueue):
        got = queue.claim(consumer, batch, lease_s=lease_s)
        if got is None:
            return None
        if got.resumed:
            log.warning("%s: resuming batch %s left by a stopped worker", queue.name, got.id)

        def renew_serial() -> None:
            queue.renew(consumer, lease_s=lease_s)

        return Claimed(queue.name, got.id, got.items, got.resumed, renew_serial)
    items = queue.claim(consumer, batch, lease_s=lease_s)
    if not items:
        return None

    def renew_reliable() -> None:
        queue.renew(consumer, lease_s=lease_s)

    # A consumer holds one batch of a reliable queue: the consumer names it.
    return Claimed(queue.name, consumer, items, False, renew_reliable)


def run_batch(
    queue: ReliableQueue | SerialQueue,
    stage: Stage[Any],
    *,
    consumer: str,
    batch: int,
    lease_s: int = LEASE_S,
) -> int:
    """Claim, decode, apply and acknowledge one batch; return its size (0: nothing to do).

    An exception of the stage is counted (see :func:`count_failure`) and
    raised again; the batch stays claimed for the next attempt.
    """
    claimed = claim(queue, consumer, batch, lease_s=lease_s)
    if claimed is None:
        return 0
    decoded = decode_batch(stage, claimed)
    try:
        done = stage.apply(claimed, decoded.items)
    except Exception as exc:
        count_failure(queue, consumer, claimed, exc)
        raise

    def acknowledge(pipe: Pipeline) -> None:
        if decoded.bad:
            pipe.rpush(keyspace.undecodable(claimed.queue), *decoded.bad)
        if done.effects is not None:
            done.effects(pipe)

    try:
        queue.ack(consumer, acknowledge)
    except LostLease:
        # The lease ran out and the batch was handed on: its new holder
        # finishes it (a database stage finds it committed and applies only
        # the effects).
        log.warning("%s: lease of batch %s lost before its ack", claimed.queue, claimed.id)
        return len(claimed.items)
    if done.acknowledged is not None:
        done.acknowledged()
    return len(claimed.items)


def raw_letter(queue: str, raw_items: Sequence[bytes], error: str) -> bytes:
    """A dead letter holding a batch's raw queue items verbatim."""
    return encode_item(
        {
            "queue": queue,
            "failed_at": int(time.time()),
            "error": error,
            "raw": [base64.b64encode(item).decode() for item in raw_items],
        }
    )


def count_failure(
    queue: ReliableQueue | SerialQueue, consumer: str, batch: Claimed, exc: Exception
) -> None:
    """Count a failed attempt at a batch; park it as a dead letter after MAX_BATCH_FAILURES.

    A batch that fails every time (a bug, data the code cannot handle) must
    not hold its queue forever: after the last attempt it moves, whole and
    verbatim, to its dead-letter list in the transaction that acknowledges
    it, and the queue goes on.
    """
    if isinstance(exc, TRANSIENT_ERRORS):
        return  # the database or Redis is unreachable: wait for it, park nothing
    client = queue.client
    counter = keyspace.failures(batch.queue, batch.id)
    failures = int(client.incr(counter))
    client.expire(counter, FAILURE_COUNTER_TTL_S)
    if failures < MAX_BATCH_FAILURES:
        return
    letter = raw_letter(batch.queue, batch.items, f"{type(exc).__name__}: {exc}")
    log.error(
        "%s: batch %s failed %d times; parked in %s",
        batch.queue,
        batch.id,
        failures,
        keyspace.dead_letter(batch.queue),
    )

    def park(pipe: Pipeline) -> None:
        pipe.rpush(keyspace.dead_letter(batch.queue), letter)
        pipe.delete(counter)

    # LostLease: another worker holds the batch now and counts its own tries.
    with contextlib.suppress(LostLease):
        queue.ack(consumer, park)


def timer_cleared(client: redis.Redis, queue: str) -> Done:
    """The ``Done`` of a timed queue's batch: its flush timer goes once the queue is empty."""

    def clear_if_empty(pipe: Pipeline) -> None:
        if client.llen(queue) == 0:
            pipe.delete(keyspace.since(queue))

    return Done(effects=clear_if_empty)
