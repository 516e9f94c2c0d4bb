"""Redis data queues: the wire format of queued items, and pushing them.

An item is a JSON object, UTF-8 encoded and gzip-compressed (level 6), so
queues stay small in Redis memory. Items are pushed in batches of 100 with
``RPUSH``. The queue consumers (the worker role) own the delivery
guarantees; this module only defines the format and the producer side.

Unlike the original, a queue never gets an ``EXPIRE``: that would silently
drop accepted data whenever the workers fall a day behind.
"""

from __future__ import annotations

import gzip
import json
import logging
from collections.abc import Sequence
from typing import Any

import redis.asyncio

log = logging.getLogger(__name__)

INCOMING_QUEUE = "update_incoming"
PUSH_BATCH = 100


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


async def push_items(
    client: redis.asyncio.Redis, queue: str, items: Sequence[dict[str, Any]]
) -> None:
    """Append items to a queue; Redis errors propagate to the caller."""
    encoded = [encode_item(item) for item in items]
    async with client.pipeline(transaction=False) as pipe:
        for start in range(0, len(encoded), PUSH_BATCH):
            pipe.rpush(queue, *encoded[start : start + PUSH_BATCH])
        await pipe.execute()
