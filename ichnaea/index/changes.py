"""Announcements of changed stations, from the pipeline to every web host's index.

After a commit that changed station rows, the writer appends one entry to
the Redis stream ``station_changes`` (the station updater in the Redis
transaction that acknowledges its batch, the other writers at once): the
station kind and the keys it touched (fixed width per kind: 6-byte MACs,
cells zero-padded to 17 bytes and areas to 9, as the index stores them). Every web process reads the
stream from where it left off (``XREAD``, no consumer group: each reader
needs every entry) and reads those keys' rows again
(:mod:`ichnaea.index.live`).

The stream is trimmed to about :data:`STREAM_MAX_ENTRIES` entries (one
entry per station batch: minutes of history at full ingest). A reader
whose position has been trimmed away, or that could not reach Redis,
knows it missed entries and falls back to the catch-up read by
``modified``; announcing is therefore best effort, and a failure to
announce never fails the write that it follows.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis
from redis.client import Pipeline

from ichnaea.broker import keyspace
from ichnaea.broker.client import REDIS_ERRORS
from ichnaea.codecs import AREAID_BYTES, CELLID_BYTES, MAC_BYTES, NR_AREAID_BYTES
from ichnaea.enums import Radio

log = logging.getLogger(__name__)

STREAM_MAX_ENTRIES = 10_000
# Entries one read takes at most; a reader loops until it has caught up.
READ_COUNT = 1_000
START_ID = b"0-0"

KEY_WIDTHS = {"wifi": MAC_BYTES, "blue": MAC_BYTES, "cell": 17, "area": NR_AREAID_BYTES}


def padded(kind: str, key: bytes) -> bytes:
    """A codec key at its kind's fixed width (zero-padded, as the index stores it)."""
    width = KEY_WIDTHS[kind]
    if len(key) > width:
        raise ValueError(f"{kind} key of {len(key)} bytes is longer than {width}")
    return key.ljust(width, b"\0")


def unpadded(kind: str, key: bytes) -> bytes:
    """The codec key of a fixed-width key: NR keys (radio byte 4) use the full width."""
    if kind == "cell":
        return key if key[0] == Radio.nr else key[:CELLID_BYTES]
    if kind == "area":
        return key if key[0] == Radio.nr else key[:AREAID_BYTES]
    return key


def announce(
    target: redis.Redis | Pipeline, kind: str, keys: Iterable[bytes], *, at: int | None = None
) -> None:
    """Append one entry naming ``keys`` of ``kind`` (nothing when there are none).

    ``at`` (epoch seconds) is the ``modified`` time the writer gave the
    rows it wrote: a reader of a replica re-reads a key until its row is at
    least that new (:mod:`ichnaea.index.live`).
    """
    joined = b"".join(sorted({padded(kind, key) for key in keys}))
    if joined:
        fields: dict[str, bytes | str | int] = {"kind": kind, "keys": joined}
        if at is not None:
            fields["at"] = at
        target.xadd(
            keyspace.STATION_CHANGES,
            fields,  # type: ignore[arg-type]
            maxlen=STREAM_MAX_ENTRIES,
            approximate=True,
        )


def announce_changes(client: redis.Redis, kind: str, keys: Iterable[bytes]) -> None:
    """:func:`announce` after a commit, best effort: a Redis error is logged, not raised.

    The index hosts notice the lost entry only through their periodic
    catch-up read, so the log says so.
    """
    try:
        announce(client, kind, keys)
    except REDIS_ERRORS as exc:
        log.warning(
            "station changes of %s not announced (redis: %s); web hosts catch up", kind, exc
        )


def latest_id(client: redis.Redis) -> bytes:
    """The id of the newest entry (``0-0`` for an empty or missing stream)."""
    newest: list[Any] = client.xrevrange(keyspace.STATION_CHANGES, count=1)  # type: ignore[assignment]
    return bytes(newest[0][0]) if newest else START_ID


def _id(raw: bytes) -> tuple[int, int]:
    ms, _, seq = raw.partition(b"-")
    return int(ms), int(seq or 0)


@dataclass(slots=True)
class Changes:
    """What a read found: keys by kind, the id to read from next, and whether entries were lost."""

    last_id: bytes
    keys: dict[str, set[bytes]] = field(default_factory=dict)
    missed: bool = False
    # Per kind and key: the newest ``at`` announced with it (entries that carry one).
    written: dict[str, dict[bytes, int]] = field(default_factory=dict)


def _add(changes: Changes, fields: Mapping[Any, Any]) -> None:
    kind = bytes(fields.get(b"kind", b"")).decode("ascii", errors="replace")
    joined = bytes(fields.get(b"keys", b""))
    width = KEY_WIDTHS.get(kind)
    if width is None or len(joined) % width:
        return  # not an entry of this format; nothing to apply
    keys = [unpadded(kind, joined[i : i + width]) for i in range(0, len(joined), width)]
    changes.keys.setdefault(kind, set()).update(keys)
    raw_at = fields.get(b"at")
    if raw_at is not None and bytes(raw_at).isdigit():
        at = int(raw_at)
        written = changes.written.setdefault(kind, {})
        for key in keys:
            written[key] = max(at, written.get(key, at))


def read_changes(
    client: redis.Redis, after: bytes, *, block_ms: int | None = None, max_reads: int = 50
) -> Changes:
    """The entries after ``after``, up to ``max_reads`` reads of :data:`READ_COUNT`.

    With ``block_ms``, the first read waits that long for an entry when
    there is none yet (``XREAD BLOCK``): the reader wakes as soon as the
    pipeline announces. ``missed`` is set when the oldest entry left in the
    stream is newer than ``after``: the entries in between were trimmed
    before this reader saw them.
    """
    changes = Changes(last_id=after)
    for read in range(max_reads):
        pipe = client.pipeline(transaction=False)
        if read == 0:
            pipe.xrange(keyspace.STATION_CHANGES, count=1)
        block = block_ms if read == 0 else None
        pipe.xread({keyspace.STATION_CHANGES: changes.last_id}, count=READ_COUNT, block=block)
        replies = pipe.execute()
        if read == 0:
            oldest = replies[0]
            if oldest and after != START_ID and _id(bytes(oldest[0][0])) > _id(after):
                changes.missed = True
        entries = replies[-1][0][1] if replies[-1] else []
        for entry_id, fields in entries:
            _add(changes, fields)
            changes.last_id = bytes(entry_id)
        if len(entries) < READ_COUNT:
            break
    return changes
