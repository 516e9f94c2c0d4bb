"""At-least-once delivery over Redis lists: claim, acknowledge, reclaim.

Producers ``RPUSH`` items onto a queue list (``ichnaea.broker.queue``). A consumer
*claims* a batch: one Lua script moves up to N items from the head of the
queue onto the consumer's own processing list
``{<queue>}:processing:<consumer>`` and records the consumer in the set
``{<queue>}:consumers``, atomically, so an item is always in exactly one of
the two lists. The consumer keeps a lease key ``{<queue>}:lease:<consumer>``
alive while it works. When the batch is done it *acknowledges* it, which
deletes the processing list.

If a consumer dies (SIGKILL, OOM, machine lost) its lease expires, and any
process calling ``reclaim`` moves the orphaned items back to the head of
the queue, in their original order, for another consumer. An item can thus
be processed twice (after a crash between the work and the acknowledgement)
but is never lost: processing must be idempotent for a batch seen twice.

Two consumers of the same queue shape serve the pipeline:

* :class:`ReliableQueue` (many batches in flight, one per consumer) for the
  Redis-to-Redis stages (``update_incoming``, the internal exporter) and the
  external exporters. A Redis-to-Redis stage acknowledges its batch in the
  same transaction that pushes its output, so it is exactly-once (on a
  Redis Cluster, through :mod:`ichnaea.broker.outbox`).
* :class:`SerialQueue` (one batch in flight per queue, handed over whole
  with its id when its consumer dies) for the stages that write to the
  database. They record committed batch ids in the database, so a batch
  committed just before a crash is acknowledged, not applied again.

Nothing here trims or expires a queue; bounding the backlog is the
producers' job (they refuse new work with 503 instead).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass

import redis
from redis.client import Pipeline

from ichnaea.broker import keyspace, outbox
from ichnaea.broker.client import decoded

LEASE_S = 60

# KEYS: queue, processing list, consumers set, lease key
# ARGV: batch size, consumer id, lease seconds
_CLAIM = """
local held = redis.call('LRANGE', KEYS[2], 0, -1)
if #held > 0 then
  redis.call('SADD', KEYS[3], ARGV[2])
  redis.call('SET', KEYS[4], '1', 'EX', tonumber(ARGV[3]))
  return held
end
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return items end
redis.call('LTRIM', KEYS[1], #items, -1)
redis.call('RPUSH', KEYS[2], unpack(items))
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('SET', KEYS[4], '1', 'EX', tonumber(ARGV[3]))
return items
"""

# KEYS: queue, processing list, consumers set, lease key
# ARGV: consumer id, "1" to give back only when the lease has expired
_RETURN = """
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[4]) == 1 then return 0 end
local items = redis.call('LRANGE', KEYS[2], 0, -1)
for i = #items, 1, -1 do
  redis.call('LPUSH', KEYS[1], items[i])
end
redis.call('DEL', KEYS[2])
redis.call('SREM', KEYS[3], ARGV[1])
redis.call('DEL', KEYS[4])
return #items
"""


class LostLease(RuntimeError):
    """The lease ran out and another consumer took the batch over: do not ack it."""


def consumer_id() -> str:
    """A name unique to this process: host, pid and start time."""
    return f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"


@dataclass(frozen=True, slots=True)
class ReliableQueue:
    client: redis.Redis
    name: str

    def processing_key(self, consumer: str) -> str:
        return keyspace.processing(self.name, consumer)

    def lease_key(self, consumer: str) -> str:
        return keyspace.consumer_lease(self.name, consumer)

    @property
    def consumers_key(self) -> str:
        return keyspace.consumers(self.name)

    def size(self) -> int:
        return int(self.client.llen(self.name))

    def claim(self, consumer: str, batch: int, *, lease_s: int = LEASE_S) -> list[bytes]:
        """Move up to ``batch`` items from the queue into ``consumer``'s processing list.

        A consumer that still holds an unacknowledged batch (its last attempt
        failed) gets that batch again instead of new items: an ack can then
        never drop items the consumer did not process.
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        keys = [
            self.name,
            self.processing_key(consumer),
            self.consumers_key,
            self.lease_key(consumer),
        ]
        items = self.client.eval(_CLAIM, len(keys), *keys, batch, consumer, lease_s)
        return list(items)

    def renew(self, consumer: str, *, lease_s: int = LEASE_S) -> None:
        """Keep the lease of a consumer that is still working on its batch."""
        self.client.set(self.lease_key(consumer), "1", ex=lease_s)

    def ack(self, consumer: str, effects: Callable[[Pipeline], object] | None = None) -> None:
        """The claimed batch is done: forget it, applying ``effects`` atomically with that.

        ``effects`` queues the batch's output (pushes to the next queues) on
        the same transaction, so a Redis-to-Redis stage is exactly-once.
        Raises :class:`LostLease` if the batch was reclaimed meanwhile (the
        lease ran out): then nothing is applied and the batch's other copy
        is processed by whoever claims it.
        """
        processing = self.processing_key(consumer)
        applied = outbox.plan(self.client, self.name, consumer, effects)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.watch(processing)  # type: ignore[no-untyped-call]
            if not pipe.exists(processing):
                raise LostLease(f"{self.name}: the batch of {consumer} was reclaimed")
            pipe.multi()
            applied.queue_on(pipe)
            pipe.delete(processing)
            pipe.srem(self.consumers_key, consumer)
            pipe.delete(self.lease_key(consumer))
            try:
                pipe.execute()
            except redis.WatchError:
                raise LostLease(f"{self.name}: the batch of {consumer} was reclaimed") from None
        applied.deliver()

    def _give_back(self, consumer: str, *, only_if_expired: bool) -> int:
        keys = [
            self.name,
            self.processing_key(consumer),
            self.consumers_key,
            self.lease_key(consumer),
        ]
        flag = "1" if only_if_expired else "0"
        return int(self.client.eval(_RETURN, len(keys), *keys, consumer, flag))

    def give_back(self, consumer: str) -> int:
        """Return a consumer's claimed items to the head of the queue (graceful stop)."""
        return self._give_back(consumer, only_if_expired=False)

    def reclaim(self) -> int:
        """Give back the batches of consumers whose lease expired; return the item count.

        The lease is checked inside the same script that moves the items, so a
        consumer renewing its lease at that moment keeps its batch.
        """
        returned = 0
        for raw in self.client.smembers(self.consumers_key):
            consumer = decoded(raw)
            returned += self._give_back(consumer, only_if_expired=True)
        return returned


# KEYS: queue, in-flight list, batch id key, lease key
# ARGV: batch size, owner, lease seconds, id for a new batch
_SERIAL_CLAIM = """
local holder = redis.call('GET', KEYS[4])
if holder and holder ~= ARGV[2] then return {} end
local held = redis.call('LRANGE', KEYS[2], 0, -1)
if #held > 0 then
  redis.call('SET', KEYS[4], ARGV[2], 'EX', tonumber(ARGV[3]))
  return {redis.call('GET', KEYS[3]) or ARGV[4], held, 1}
end
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items == 0 then return {} end
redis.call('LTRIM', KEYS[1], #items, -1)
redis.call('RPUSH', KEYS[2], unpack(items))
redis.call('SET', KEYS[3], ARGV[4])
redis.call('SET', KEYS[4], ARGV[2], 'EX', tonumber(ARGV[3]))
return {ARGV[4], items, 0}
"""

# KEYS: in-flight list, batch id key, lease key; ARGV: owner, lease seconds
_SERIAL_RENEW = """
if redis.call('GET', KEYS[3]) ~= ARGV[1] then return 0 end
redis.call('EXPIRE', KEYS[3], tonumber(ARGV[2]))
return 1
"""


@dataclass(frozen=True, slots=True)
class Batch:
    """A claimed batch of a :class:`SerialQueue`: its stable id and raw items.

    ``resumed`` is true when the batch was claimed before (by a consumer
    that died, or by this one before a failure) and is being taken up again.
    """

    id: str
    items: list[bytes]
    resumed: bool = False


@dataclass(frozen=True, slots=True)
class SerialQueue:
    """A queue processed one batch at a time, in order, by whichever consumer holds it.

    Used for the queues whose consumers write to the database (station
    shards, cell areas, datamap). Only one batch of a queue is *in flight*
    at a time, so batches of one shard are applied in queue order and never
    contend for the same rows. A batch keeps its id until acknowledged: a
    consumer that dies leaves it in flight, and when its lease expires the
    next ``claim`` hands the *same* batch, with the same id, to another
    consumer. Database stages record the ids they committed, so a batch
    whose commit succeeded before the crash is acknowledged without being
    applied twice.
    """

    client: redis.Redis
    name: str

    @property
    def inflight_key(self) -> str:
        return keyspace.inflight(self.name)

    @property
    def batch_id_key(self) -> str:
        return keyspace.inflight_id(self.name)

    @property
    def lease_key(self) -> str:
        return keyspace.serial_lease(self.name)

    def _keys(self) -> list[str]:
        return [self.name, self.inflight_key, self.batch_id_key, self.lease_key]

    def size(self) -> int:
        return int(self.client.llen(self.name))

    def claim(self, owner: str, batch: int, *, lease_s: int = LEASE_S) -> Batch | None:
        """The batch in flight if its owner is gone (or is us), else up to ``batch`` new items.

        None when the queue is empty or another live consumer holds a batch.
        """
        if batch < 1:
            raise ValueError("batch must be at least 1")
        new_id = keyspace.new_batch_id(self.name, f"{time.time_ns()}:{os.getpid()}")
        result = self.client.eval(_SERIAL_CLAIM, 4, *self._keys(), batch, owner, lease_s, new_id)
        if not result:
            return None
        raw_id, items, resumed = result
        return Batch(str(decoded(raw_id)), list(items), bool(resumed))

    def renew(self, owner: str, *, lease_s: int = LEASE_S) -> None:
        keys = [self.inflight_key, self.batch_id_key, self.lease_key]
        if not self.client.eval(_SERIAL_RENEW, 3, *keys, owner, lease_s):
            raise LostLease(f"{self.name}: the lease of {owner} ran out")

    def ack(self, owner: str, effects: Callable[[Pipeline], object] | None = None) -> None:
        """Forget the batch in flight, applying ``effects`` in the same transaction.

        ``effects`` queues further commands (pushes to the next stage,
        counters) on the transaction, so they happen exactly when the batch
        is acknowledged. Raises :class:`LostLease` if this owner no longer
        holds the batch; then nothing is applied.
        """
        applied = outbox.plan(self.client, self.name, owner, effects)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.watch(self.lease_key)  # type: ignore[no-untyped-call]
            if decoded(pipe.get(self.lease_key)) != owner:
                raise LostLease(f"{self.name}: the lease of {owner} ran out before ack")
            pipe.multi()
            applied.queue_on(pipe)
            pipe.delete(self.inflight_key, self.batch_id_key, self.lease_key)
            try:
                pipe.execute()
            except redis.WatchError:
                raise LostLease(f"{self.name}: the batch of {owner} was taken over") from None
        applied.deliver()

    def release(self, owner: str) -> None:
        """Give up the lease without acking (graceful stop): the batch stays first in line."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.watch(self.lease_key)  # type: ignore[no-untyped-call]
            if decoded(pipe.get(self.lease_key)) == owner:
                pipe.multi()
                pipe.delete(self.lease_key)
                pipe.execute()
