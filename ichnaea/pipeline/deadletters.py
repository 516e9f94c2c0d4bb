"""The parked batches: list them, and put them back on their queues (``ichnaea deadletter``).

A batch lands in ``dead_letter:{<queue>}`` when a stage failed on it too
often (:mod:`ichnaea.pipeline.runner`: the raw items, base64) or when an
exporter still failed after its retries (:mod:`ichnaea.pipeline.export.stage`:
the decoded items).
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import redis

from ichnaea.broker import keyspace
from ichnaea.broker.client import decoded
from ichnaea.broker.queue import decode_item, encode_item


def _bytes(value: object) -> bytes:
    if not isinstance(value, bytes):
        raise TypeError(f"expected bytes from Redis, got {type(value).__name__}")
    return value


def dead_letters(client: redis.Redis) -> Iterator[tuple[str, int, dict[str, Any]]]:
    """(dead-letter key, index, letter) for every parked batch."""
    for raw_key in sorted(client.scan_iter(match=keyspace.DEAD_LETTER_PATTERN, count=100)):
        key = decoded(raw_key)
        for index, raw in enumerate(client.lrange(key, 0, -1)):
            yield key, index, decode_item(_bytes(raw))


def requeue_dead_letters(client: redis.Redis, queue: str | None = None) -> int:
    """Move parked batches back to the end of their queue; return how many items moved."""
    moved = 0
    for raw_key in list(client.scan_iter(match=keyspace.DEAD_LETTER_PATTERN, count=100)):
        key = decoded(raw_key)
        target = keyspace.queue_of_dead_letter(key)
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
                    pipe.set(keyspace.since(target), "0", nx=True)
                pipe.lpop(key)
                try:
                    pipe.execute()
                except redis.WatchError:
                    continue
            moved += len(items)
    return moved
