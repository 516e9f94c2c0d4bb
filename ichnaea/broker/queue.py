"""Redis data queues: the wire format of queued items, and pushing them.

An item is a JSON object, UTF-8 encoded and gzip-compressed (by ISA-L, about
as small as zlib's level 6), so queues stay small in Redis memory.
Producers push them with ``RPUSH``, 1000 at a time inside one script.
The queue consumers (the worker role) own the delivery guarantees; this
module only defines the format and the producer side.

Unlike the original, a queue never gets an ``EXPIRE``: that would silently
drop accepted data whenever the workers fall a day behind. Producers bound
the backlog instead, with :func:`push_within`: one Redis script checks the
limit and pushes, so concurrent producers cannot overrun it between a
length check and their push. The web role pushes through a
:class:`GroupPusher`, which carries the pushes of concurrent requests in
one script run (group commit).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import logging
import math
import time
import zlib
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
import redis
import redis.asyncio
from isal import isal_zlib

from ichnaea.broker.direct import ScriptConnection, direct_target

log = logging.getLogger(__name__)


# KEYS[1]: the queue. ARGV[1]: the limit, ARGV[2]: items waiting elsewhere
# (counted by the caller), ARGV[3..]: the items. Pushes all items, or none
# when the queue's length + elsewhere + the items would pass the limit.
# Returns the waiting total after the push, or -1 when refused.
#
# Cluster-safe by design (issue 12): the script's only key is the queue it
# pushes to. The other queues that count (the export queues, many keys in
# many hash slots) are summed by the caller and passed as ARGV[2]; a
# producer never pushes to those, so concurrent producers of this queue are
# still serialised exactly by the script.
_PUSH_WITHIN = """
local waiting = redis.call('LLEN', KEYS[1]) + tonumber(ARGV[2])
local count = #ARGV - 2
if waiting + count > tonumber(ARGV[1]) then return -1 end
for first = 3, #ARGV, 1000 do
  redis.call('RPUSH', KEYS[1], unpack(ARGV, first, math.min(first + 999, #ARGV)))
end
return waiting + count
"""


# The same check and push for several producers' groups of items, in order,
# each all or none against its own limit: as if the groups had been pushed
# one by one with _PUSH_WITHIN, in one script run. KEYS[1]: the queue.
# ARGV[1]: items waiting elsewhere, ARGV[2]: the number of groups n, then n
# pairs (limit, size), then the items of every group, in group order.
# Returns per group the waiting total after its push, or -1 when refused.
_PUSH_GROUPS = """
local waiting = redis.call('LLEN', KEYS[1]) + tonumber(ARGV[1])
local n = tonumber(ARGV[2])
local results = {}
local at = 3 + 2 * n
for g = 1, n do
  local limit = tonumber(ARGV[1 + 2 * g])
  local size = tonumber(ARGV[2 + 2 * g])
  if waiting + size > limit then
    results[g] = -1
  else
    for first = at, at + size - 1, 1000 do
      redis.call('RPUSH', KEYS[1], unpack(ARGV, first, math.min(first + 999, at + size - 1)))
    end
    waiting = waiting + size
    results[g] = waiting
  end
  at = at + size
end
return results
"""


# How old a total of the other queues' waiting reports a group push may use.
ELSEWHERE_MAX_AGE_S = 0.05


@dataclass(slots=True)
class _Group:
    items: Sequence[bytes]
    limit: int
    done: asyncio.Future[bool]


class GroupPusher:
    """Group commit for one queue: concurrent pushes share one Redis round trip.

    :meth:`push` is :func:`push_within` for one producer's items, on asyncio.
    While one script run is on its way, the pushes that arrive meanwhile
    wait and go together in the next run (one ``EVALSHA`` for all of them),
    so under load the round trips per push fall with the concurrency, and
    a lone push goes at once. Each group keeps its all-or-none check
    against its own limit, in arrival order; each caller is answered only
    after its own push is acknowledged, or gets the Redis error of the run
    that carried it (then nothing of that run was pushed, or, on an error
    after the script ran, the push is as uncertain as a single push would
    be).

    ``elsewhere`` (the other queues' total, see
    :mod:`ichnaea.pipeline.ingest.backlog`) costs a round trip of its own,
    so a run reuses the total read at most ``elsewhere_max_age_s`` (50 ms)
    before; under load that is one read per 50 ms instead of one per run,
    which saved 17 of 146 µs of CPU per geosubmit request over HTTP
    (benchmarks/RESULTS.md, session 17). Only the workers change those
    queues, by routing reports out of the pushed one: the reused total can
    miss what they routed in those 50 ms, besides what they are routing at
    the moment of the read. The pushed queue's own length is read by the
    script, exact as ever.

    The runs go over a connection of the pusher's own
    (:mod:`ichnaea.broker.direct`) where the client's server can be reached
    that way, else through the client; :meth:`close` closes it.
    """

    def __init__(
        self,
        client: redis.asyncio.Redis,
        queue: str,
        elsewhere: Callable[[], Awaitable[int]],
        *,
        elsewhere_max_age_s: float = ELSEWHERE_MAX_AGE_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._client = client
        self._queue = queue
        self._elsewhere = elsewhere
        self._elsewhere_max_age_s = elsewhere_max_age_s
        self._clock = clock
        self._elsewhere_total = 0
        self._elsewhere_read_at = -math.inf
        self._script = client.register_script(_PUSH_GROUPS)
        target = direct_target(client)
        self._direct = None if target is None else ScriptConnection(target, _PUSH_GROUPS)
        self._pending: list[_Group] = []
        self._running: asyncio.Task[None] | None = None

    async def push(self, items: Sequence[bytes], *, limit: int) -> bool:
        """Push ``items``, or none if they would pass ``limit``; True if pushed."""
        if not items:
            return True
        group = _Group(items, limit, asyncio.get_running_loop().create_future())
        self._pending.append(group)
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._run())
        # Not shielded (1.5 µs a push): a cancelled caller cancels its own
        # future only, which the run then leaves alone; its items still go
        # with the run, as a shielded wait's would.
        return await group.done

    async def _run(self) -> None:
        while self._pending:
            await asyncio.sleep(0)  # the pushes of this loop pass join: 6.9 -> 8.5 a run
            groups, self._pending = self._pending, []
            try:
                elsewhere = await self._waiting_elsewhere()
                args: list[Any] = [elsewhere, len(groups)]
                for group in groups:
                    args += [group.limit, len(group.items)]
                for group in groups:
                    args.extend(group.items)
                if self._direct is not None:
                    results = await self._direct.run([self._queue], args)
                else:
                    results = await self._script(keys=[self._queue], args=args)
            except Exception as exc:  # handed to every caller of the run, who decides
                for group in groups:
                    if not group.done.done():
                        group.done.set_exception(exc)
                continue
            for group, result in zip(groups, results, strict=True):
                if not group.done.done():
                    group.done.set_result(int(result) >= 0)

    async def close(self) -> None:
        """Close the pusher's own connection (see :mod:`ichnaea.broker.direct`), if any."""
        if self._direct is not None:
            await self._direct.close()

    async def _waiting_elsewhere(self) -> int:
        """The other queues' total, read again when older than ``elsewhere_max_age_s``."""
        now = self._clock()
        if now - self._elsewhere_read_at >= self._elsewhere_max_age_s:
            self._elsewhere_total = await self._elsewhere()
            self._elsewhere_read_at = now  # its age counts from before the read
        return self._elsewhere_total


def encode_item(item: dict[str, Any]) -> bytes:
    """An item as queued: gzip-compressed compact JSON.

    orjson writes the JSON ~15 times faster than ``json.dumps`` (this runs
    once per submitted report); what it refuses (a string with a lone
    surrogate from the client's JSON, an integer beyond 64 bits) takes the
    standard library's way, which escapes it. Either reads back the same.
    """
    try:
        text = orjson.dumps(item)
    except TypeError:
        text = json.dumps(item, separators=(",", ":")).encode("utf-8")
    return _gzip(text)


# ISA-L's deflate (the ``isal`` package, Intel's library, the one xopen
# and cutadapt use) at its default level 2 writes a queued report in about
# 8 µs where zlib at level 6 takes 25 (a 15-network report, distinct texts
# in a row, as the web role sees them: benchmarks/RESULTS.md, session 17),
# a tenth of a geosubmit request. The output is within 1 % of zlib's level
# 6 in size (tests/broker/test_queue_items.py) and any gzip reader reads
# it. zlib's own tuning (levels, small windows, Huffman-only, a copied
# compressor) did not come near (session 16).
_GZIP_LEVEL = 2


def _gzip(text: bytes) -> bytes:
    """One gzip member of ``text`` (the original queues its items at zlib's level 6)."""
    return isal_zlib.compress(text, _GZIP_LEVEL, 31)


_GZIP_MAGIC = b"\x1f\x8b"


def _gunzip(raw: bytes) -> bytes:
    """``gzip.decompress`` of one gzip member in one C call (``gzip.decompress``
    reads the header in Python: three times the time for a queued report).
    Anything else (several members, trailing bytes, a damaged or truncated
    item) goes to ``gzip.decompress``, which reads it or raises its errors."""
    inflate = zlib.decompressobj(wbits=31)
    try:
        text = inflate.decompress(raw)
    except zlib.error:
        return gzip.decompress(raw)
    if not inflate.eof or inflate.unused_data:
        return gzip.decompress(raw)
    return text


def decode_item(raw: bytes) -> Any:
    """A queued item: gzip JSON as we write it, or plain JSON as other producers may."""
    if raw[:2] == _GZIP_MAGIC:
        raw = _gunzip(raw)
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        # What orjson refuses (integers beyond 64 bits, NaN) the json module
        # reads as encode_item wrote it, or refuses with its own message.
        return json.loads(raw.decode("utf-8"))


def decode_object(raw: bytes) -> dict[str, Any]:
    """A queued item that must be a JSON object; ValueError (or OSError, EOFError) if not."""
    item = decode_item(raw)
    if not isinstance(item, dict):
        raise ValueError(f"not a JSON object but {type(item).__name__}")
    return item


def push_within(
    client: redis.Redis, queue: str, encoded: Sequence[bytes], *, limit: int, elsewhere: int = 0
) -> bool:
    """Append encoded items to ``queue``, or none if that would pass ``limit``; True if pushed.

    ``elsewhere`` is what else counts against the limit (see
    :mod:`ichnaea.pipeline.ingest.backlog`). Redis errors propagate to the caller.
    """
    if not encoded:
        return True
    script = client.register_script(_PUSH_WITHIN)
    return int(script(keys=[queue], args=[limit, elsewhere, *encoded])) >= 0
