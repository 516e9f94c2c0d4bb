"""At-least-once delivery over Redis lists: claim, acknowledge, reclaim.

Producers ``RPUSH`` items onto a queue list (``ichnaea.queue``). A consumer
*claims* a batch: one Lua script moves up to N items from the head of the
queue onto the consumer's own processing list
``<queue>:processing:<consumer>`` and records the consumer in the set
``<queue>:consumers``, atomically, so an item is always in exactly one of
the two lists. The consumer keeps a lease key ``<queue>:lease:<consumer>``
alive while it works. When the batch is done it *acknowledges* it, which
deletes the processing list.

If a consumer dies (SIGKILL, OOM, machine lost) its lease expires, and any
process calling ``reclaim`` moves the orphaned items back to the head of
the queue, in their original order, for another consumer. An item can thus
be processed twice (after a crash between the work and the acknowledgement)
but is never lost: processing must be idempotent for a batch seen twice.

Nothing here trims or expires a queue; bounding the backlog is the
producers' job (they refuse new work with 503 instead).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass

import redis

LEASE_S = 60

# KEYS: queue, processing list, consumers set, lease key
# ARGV: batch size, consumer id, lease seconds
_CLAIM = """
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


def consumer_id() -> str:
    """A name unique to this process: host, pid and start time."""
    return f"{socket.gethostname()}:{os.getpid()}:{time.time_ns()}"


@dataclass(frozen=True, slots=True)
class ReliableQueue:
    client: redis.Redis
    name: str

    def processing_key(self, consumer: str) -> str:
        return f"{self.name}:processing:{consumer}"

    def lease_key(self, consumer: str) -> str:
        return f"{self.name}:lease:{consumer}"

    @property
    def consumers_key(self) -> str:
        return f"{self.name}:consumers"

    def size(self) -> int:
        return int(self.client.llen(self.name))

    def claim(self, consumer: str, batch: int, *, lease_s: int = LEASE_S) -> list[bytes]:
        """Move up to ``batch`` items from the queue into ``consumer``'s processing list."""
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

    def ack(self, consumer: str) -> None:
        """The claimed batch is done: forget it."""
        with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(self.processing_key(consumer))
            pipe.srem(self.consumers_key, consumer)
            pipe.delete(self.lease_key(consumer))
            pipe.execute()

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
            consumer = raw.decode() if isinstance(raw, bytes) else str(raw)
            returned += self._give_back(consumer, only_if_expired=True)
        return returned
