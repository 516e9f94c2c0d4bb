"""Redis data queues: the wire format of queued items, and pushing them.

An item is a JSON object, UTF-8 encoded and gzip-compressed (level 6), so
queues stay small in Redis memory. Producers push them with ``RPUSH``,
1000 at a time inside one script. The queue consumers (the worker role)
own the delivery guarantees; this module only defines the format and the
producer side.

Unlike the original, a queue never gets an ``EXPIRE``: that would silently
drop accepted data whenever the workers fall a day behind. Producers bound
the backlog instead, with :func:`push_within`: one Redis script checks the
limit and pushes, so concurrent producers cannot overrun it between a
length check and their push.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Sequence
from typing import Any

import redis
import redis.asyncio

log = logging.getLogger(__name__)

INCOMING_QUEUE = "update_incoming"

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


def encode_item(item: dict[str, Any]) -> bytes:
    return gzip.compress(json.dumps(item, separators=(",", ":")).encode("utf-8"), compresslevel=6)


_GZIP_MAGIC = b"\x1f\x8b"


def decode_item(raw: bytes) -> Any:
    """A queued item: gzip JSON as we write it, or plain JSON as other producers may."""
    if raw[:2] == _GZIP_MAGIC:
        raw = gzip.decompress(raw)
    return json.loads(raw.decode("utf-8"))


def undecodable_key(queue: str) -> str:
    """Where items that are not gzip JSON objects are set aside for an operator."""
    return f"{queue}:undecodable"


def decode_items(
    queue: str, raw_items: Sequence[bytes]
) -> tuple[list[dict[str, Any]], list[bytes], list[bytes]]:
    """The claimed items that decode to JSON objects, their raw bytes, and the others' bytes.

    Consumers push the others to :func:`undecodable_key` in the transaction
    that acknowledges the batch: never processed, never lost.
    """
    items: list[dict[str, Any]] = []
    good: list[bytes] = []
    bad: list[bytes] = []
    for raw in raw_items:
        try:
            item = decode_item(raw)
        except (OSError, EOFError, ValueError) as exc:
            log.error("undecodable item in %s set aside: %s", queue, exc)
            bad.append(raw)
            continue
        if isinstance(item, dict):
            items.append(item)
            good.append(raw)
        else:
            log.error("item in %s is not a JSON object; set aside", queue)
            bad.append(raw)
    return items, good, bad


def push_within(
    client: redis.Redis, queue: str, encoded: Sequence[bytes], *, limit: int, elsewhere: int = 0
) -> bool:
    """Append encoded items to ``queue``, or none if that would pass ``limit``; True if pushed.

    ``elsewhere`` is what else counts against the limit (see
    :mod:`ichnaea.pipeline.backlog`). Redis errors propagate to the caller.
    """
    if not encoded:
        return True
    script = client.register_script(_PUSH_WITHIN)
    return int(script(keys=[queue], args=[limit, elsewhere, *encoded])) >= 0


async def push_within_async(
    client: redis.asyncio.Redis,
    queue: str,
    encoded: Sequence[bytes],
    *,
    limit: int,
    elsewhere: int = 0,
) -> bool:
    """:func:`push_within` for the web role's asyncio client."""
    if not encoded:
        return True
    script = client.register_script(_PUSH_WITHIN)
    return int(await script(keys=[queue], args=[limit, elsewhere, *encoded])) >= 0
