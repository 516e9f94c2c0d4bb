"""API usage accounting for one web process, sent to Redis in batches.

Every request of a known key counts against the key's daily limit
(``apilimit:<key>:<path>:<day>``) and adds its client IP to the key's daily
set of users (``apiuser:<type>:<key>:<day>``, a HyperLogLog); both key
formats belong to :mod:`ichnaea.api.keys`. Asking Redis on every request
costs a round trip per request, so a ``UsageRecorder`` keeps, per counter:

* ``known``: the counter's value in Redis when this process last heard it
  (every process's requests included), and when it heard it;
* ``pending``: what this process counted since, not yet sent.

A request's count is ``known + pending``. A background task sends every
pending increment and user in one pipelined round trip every
``flush_interval_s`` (50 ms by default); each ``INCRBY`` answers the
counter's new total, which becomes ``known``. A counter this process has
not heard from Redis for ``refresh_after_s`` (1 s), or never, is counted
with its own round trip, exactly as before batching, so a rarely used key
costs what it did and its count is never stale.

The bound this gives the daily limit: a process decides on what it knew at
its last flush, so the requests another process admits in the meantime are
not seen. Over the limit, each web process admits at most the requests it
receives for that key and path within two flush intervals (the interval
being sent and the one being gathered) plus one flush round trip: with
the default 50 ms and 100 requests/s of one key per process, about 10
requests per process. Nothing under the limit is ever refused.

Nothing counted is lost: a failed flush (Redis unreachable) keeps its
counts for the next one, and ``close()`` (the lifespan's shutdown) sends
what is pending. While Redis is down, requests are not limited (as without
batching), and at most ``MAX_PENDING_USERS`` client IPs are kept per users
key until it is back.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import redis
import redis.asyncio

from ichnaea.api.keys import APILIMIT_TTL_S, APIUSER_TTL_S, ApiKey, count_request
from ichnaea.broker import keyspace
from ichnaea.broker.client import REDIS_ERRORS

log = logging.getLogger(__name__)

FLUSH_INTERVAL_S = 0.05
REFRESH_AFTER_S = 1.0
# Counters not used for this long are forgotten (a day's keys, idle keys).
FORGET_AFTER_S = 60.0
MAX_PENDING_USERS = 10_000
# A request without a usable client address counts as this user.
UNKNOWN_USER = "127.0.0.1"


@dataclass(slots=True)
class _Counter:
    known: int = 0
    heard_at: float = float("-inf")  # when ``known`` came from Redis
    pending: int = 0
    used_at: float = 0.0


@dataclass(slots=True)
class _Users:
    ips: set[str] = field(default_factory=set)


class UsageRecorder:
    """Daily counts and users of API keys, gathered per process, flushed in batches."""

    def __init__(
        self,
        client: redis.asyncio.Redis,
        *,
        flush_interval_s: float = FLUSH_INTERVAL_S,
        refresh_after_s: float = REFRESH_AFTER_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self.flush_interval_s = flush_interval_s
        self.refresh_after_s = refresh_after_s
        self._clock = clock
        self._counters: dict[str, _Counter] = {}
        self._users: dict[str, set[str]] = {}
        self._task: asyncio.Task[None] | None = None
        self._flush_lock = asyncio.Lock()
        self._failing = False

    async def count(
        self,
        api_key: ApiKey,
        *,
        ip: str | None,
        path: str,
        api_type: str,
        today: date,
        amount: int = 1,
    ) -> int | None:
        """Count ``amount`` requests of the key; return its count of the day (see module docs).

        None when there is no key, or when the counter had to be read from
        Redis and Redis failed (the request goes through, as before).
        """
        if api_key.valid_key is None:
            return None
        now = self._clock()
        name = keyspace.api_limit(api_key.valid_key, path, today)
        counter = self._counters.get(name)
        if counter is None:
            counter = self._counters[name] = _Counter()
        counter.used_at = now
        if now - counter.heard_at >= self.refresh_after_s:
            # Never heard, or too long ago: one round trip of its own.
            total = await count_request(
                self._client,
                api_key,
                ip=ip,
                path=path,
                api_type=api_type,
                today=today,
                amount=amount,
            )
            if total is not None:
                counter.known = max(counter.known, total)
                counter.heard_at = self._clock()
                return total + counter.pending
            return None
        counter.pending += amount
        users = self._users.setdefault(
            keyspace.api_users(api_type, api_key.valid_key, today), set()
        )
        if len(users) < MAX_PENDING_USERS:
            users.add(ip or UNKNOWN_USER)
        self._ensure_task()
        return counter.known + counter.pending

    def _ensure_task(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_interval_s)
            await self.flush()
            if not self._has_pending():
                self._forget_idle()
                if not self._has_pending():
                    return  # started again by the next request that counts

    def _has_pending(self) -> bool:
        return bool(self._users) or any(c.pending for c in self._counters.values())

    def _forget_idle(self) -> None:
        cutoff = self._clock() - FORGET_AFTER_S
        for name in [n for n, c in self._counters.items() if c.used_at < cutoff and not c.pending]:
            del self._counters[name]

    async def flush(self) -> None:
        """Send every pending count and user in one round trip; keep them if it fails."""
        async with self._flush_lock:
            counts = {name: c.pending for name, c in self._counters.items() if c.pending}
            users, self._users = self._users, {}
            if not counts and not users:
                return
            for name in counts:
                self._counters[name].pending = 0
            try:
                async with self._client.pipeline(transaction=False) as pipe:
                    for name, amount in counts.items():
                        pipe.incrby(name, amount)
                        pipe.expire(name, APILIMIT_TTL_S)
                    for name, ips in users.items():
                        pipe.pfadd(name, *ips)
                        pipe.expire(name, APIUSER_TTL_S)
                    replies = await pipe.execute()
            except REDIS_ERRORS as exc:
                self._restore(counts, users)
                if not self._failing:
                    log.warning("api usage not sent, redis unavailable: %s", type(exc).__name__)
                self._failing = True
                return
            self._failing = False
            heard_at = self._clock()
            for (name, _), total in zip(counts.items(), replies[::2], strict=False):
                counter = self._counters[name]
                counter.known = max(counter.known, int(total))
                counter.heard_at = heard_at

    def _restore(self, counts: dict[str, int], users: dict[str, set[str]]) -> None:
        for name, amount in counts.items():
            self._counters[name].pending += amount
        for name, ips in users.items():
            kept = self._users.setdefault(name, set())
            kept.update(list(ips)[: max(0, MAX_PENDING_USERS - len(kept))])

    async def close(self) -> None:
        """Stop the background flushes and send what is pending (the lifespan's shutdown)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        await self.flush()
