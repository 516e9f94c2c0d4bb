"""Every Redis key and queue name ichnaea uses: built here, and parsed here.

No other module formats a key or takes one apart; ``tests/broker/test_keyspace.py``
holds that rule over the source tree.

Names that people and tools outside this code read keep the original's
spelling (spec pipeline.md section 3 and locate.md section 1.7): the data
queues (``update_incoming``, ``queue_export_<name>``, ``update_wifi_<0-f>``,
...), the API-key counters ``apilimit:<key>:<path>:<YYYYMMDD>`` and user
sets ``apiuser:<type>:<key>:<YYYY-MM-DD>``, the rate-controller settings
and the fallback cache.

Redis Cluster. A command, script or transaction may only touch keys of one
hash slot. Redis hashes only the part of a key between the first ``{`` and
the next ``}`` when there is one, so the keys that always meet a queue in
one script or transaction carry the queue's name as that tag:
``{update_wifi_3}:inflight`` lives in the slot of ``update_wifi_3`` itself
(a key without braces hashes whole). These are the processing lists,
consumer sets, leases and batch ids of the reliable queues, and a queue's
flush timer, set-aside items, failure counters and dead letters. Keys
that meet only in pipelines without a transaction (the queue-size gauges,
the backlog measure, the API-usage flush) need no tag: a cluster client
splits those per node.

A stage acknowledges a batch in the same transaction that pushes its
output to other queues (exactly-once). On a cluster those queues live in
other slots: the acknowledging transaction then records the output in the
consumer's :func:`outbox` (the queue's own slot) and delivers it after,
deduplicated per target slot by :func:`delivered`
(:mod:`ichnaea.broker.outbox`). The other multi-key commands (the weekly
``PFCOUNT`` of ``apiuser`` keys, ``MGET`` of counters) take per-slot ways
where the client is a cluster client; see their callers.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable
from datetime import date, datetime
from typing import Final, Literal

import redis

from ichnaea.broker.client import is_cluster

# -- data queues (the original's names) ------------------------------------

INCOMING: Final = "update_incoming"
CELL_AREAS: Final = "update_cellarea"
EXPORT_PREFIX: Final = "queue_export_"
NO_KEY: Final = "no_key"


def station_queue(kind: str, shard: str) -> str:
    """``update_wifi_<0-f>``, ``update_blue_<0-f>``, ``update_cell_<radio>``."""
    return f"update_{kind}_{shard}"


def datamap_queue(shard: str) -> str:
    """``update_datamap_<ne|nw|se|sw>``: grid cells for the coverage map."""
    return f"update_datamap_{shard}"


def export_queue(target: str) -> str:
    """The queue of one export target (``export_config.name``)."""
    return f"{EXPORT_PREFIX}{target}"


def export_partition(target: str, source: str, api_key: str | None) -> str:
    """A partitioned target's queue for one source and API key (``s3``, ``file``)."""
    return f"{EXPORT_PREFIX}{target}:{source}:{api_key or NO_KEY}"


def parse_export_queue(queue: str) -> tuple[str, str | None, str | None]:
    """``(target, source, api_key)`` of an export queue; source and key are None if unsplit."""
    parts = queue.removeprefix(EXPORT_PREFIX).split(":", 2)
    if len(parts) < 3:
        return parts[0], None, None
    return parts[0], parts[1], None if parts[2] == NO_KEY else parts[2]


def export_partitions(target: str) -> str:
    """The set of a partitioned target's partition queues."""
    return f"export_partitions:{target}"


_DATA_TYPES: Final = (
    (INCOMING, "report"),
    (EXPORT_PREFIX, "exports"),
    ("update_blue_", "bluetooth"),
    ("update_wifi_", "wifi"),
    (CELL_AREAS, "cellarea"),
    ("update_cell_", "cell"),
    ("update_datamap_", "datamap"),
)


def data_type(queue: str) -> str:
    """The ``data_type`` tag of a data queue's size gauge (spec pipeline.md section 3.2)."""
    return next((kind for prefix, kind in _DATA_TYPES if queue.startswith(prefix)), "other")


# -- the keys that meet their queue in one script or transaction ------------


def tag(name: str) -> str:
    """``name`` as a hash tag: a key starting with it lives in ``name``'s own slot.

    A name that already holds a tag (``x{t}y``) hashes by that tag, so its
    derived keys start with the name unchanged.
    """
    start = name.find("{")
    if start >= 0 and name.find("}", start + 2) > start:
        return name
    return f"{{{name}}}"


def processing(queue: str, consumer: str) -> str:
    """A consumer's claimed, unacknowledged items of a reliable queue."""
    return f"{tag(queue)}:processing:{consumer}"


def consumers(queue: str) -> str:
    """The consumers that hold a batch of a reliable queue."""
    return f"{tag(queue)}:consumers"


def consumer_lease(queue: str, consumer: str) -> str:
    """Present while a consumer of a reliable queue is alive."""
    return f"{tag(queue)}:lease:{consumer}"


def inflight(queue: str) -> str:
    """The batch in flight of a serial queue."""
    return f"{tag(queue)}:inflight"


def inflight_id(queue: str) -> str:
    """The id of the batch in flight of a serial queue."""
    return f"{tag(queue)}:inflight_id"


def serial_lease(queue: str) -> str:
    """The owner of a serial queue's batch in flight, while it is alive."""
    return f"{tag(queue)}:lease"


def outbox(queue: str, sender: str) -> str:
    """One consumer's acknowledged effects on other hash slots, not yet delivered (cluster)."""
    return f"{tag(queue)}:outbox:{sender}"


def outbox_senders(queue: str) -> str:
    """The consumers of ``queue`` that may have an :func:`outbox` to deliver."""
    return f"{tag(queue)}:outbox_senders"


def delivered(key: str) -> str:
    """The last outbox entry per sender delivered to ``key``'s hash slot (cluster)."""
    return f"{tag(key)}:delivered"


def new_batch_id(queue: str, unique: str) -> str:
    """The id of a freshly claimed serial batch (recorded by the database stages)."""
    return f"{queue}:{unique}"


def since(queue: str) -> str:
    """When the oldest not-yet-handled item of a timed queue arrived (epoch seconds)."""
    return f"{tag(queue)}:since"


UNDECODABLE_SUFFIX: Final = ":undecodable"


def undecodable(queue: str) -> str:
    """Where a queue's items that cannot be decoded are set aside for an operator."""
    return f"{tag(queue)}{UNDECODABLE_SUFFIX}"


def failures(queue: str, batch_id: str) -> str:
    """How often a batch of ``queue`` failed (it is parked after a few)."""
    return f"{tag(queue)}:failures:{batch_id}"


DEAD_LETTER_PREFIX: Final = "dead_letter:"


def dead_letter(queue: str) -> str:
    """The batches of ``queue`` that failed for good, parked for ``ichnaea deadletter``."""
    return f"{DEAD_LETTER_PREFIX}{tag(queue)}"


def queue_of_dead_letter(key: str) -> str:
    """The queue whose dead letters ``key`` holds (inverse of :func:`dead_letter`)."""
    return _untag(key.removeprefix(DEAD_LETTER_PREFIX))


def _untag(text: str) -> str:
    if text.startswith("{") and text.endswith("}"):
        return text[1:-1]
    return text


DEAD_LETTER_PATTERN: Final = f"{DEAD_LETTER_PREFIX}*"
UNDECODABLE_PATTERN: Final = f"*{UNDECODABLE_SUFFIX}"

# -- API keys (the original's names) ---------------------------------------

APIKEY_VERSION: Final = "apikey:version"


@functools.lru_cache(maxsize=4096)  # per request: formatting a date costs more than the rest
def api_limit(api_key: str, path: str, day: date) -> str:
    """Requests of one API key on one path (``v1.geolocate``) on one UTC day."""
    return f"apilimit:{api_key}:{path}:{day:%Y%m%d}"


@functools.lru_cache(maxsize=4096)
def api_users(api_type: str, api_key: str, day: date) -> str:
    """A HyperLogLog of one API key's client addresses on one UTC day."""
    return f"apiuser:{api_type}:{api_key}:{day:%Y-%m-%d}"


def api_limit_pattern(day: date) -> str:
    return f"apilimit:*:{day:%Y%m%d}"


API_USERS_PATTERN: Final = "apiuser:*"


def union_scratch(run: str, index: int) -> str:
    """A copy of one day's user sketch, counted with the other days' under one tag (cluster)."""
    return f"{{apiuser_union:{run}}}:{index}"


def parse_api_limit(key: str) -> tuple[str, str, str]:
    """``(api_key, path, YYYYMMDD)``; ValueError for another shape."""
    api_key, path, day = key.removeprefix("apilimit:").rsplit(":", 2)
    return api_key, path, day


def parse_api_users(key: str) -> tuple[str, str, date]:
    """``(api_type, api_key, day)``; ValueError for another shape."""
    api_type, rest = key.removeprefix("apiuser:").split(":", 1)
    api_key, day = rest.rsplit(":", 1)
    return api_type, api_key, datetime.strptime(day, "%Y-%m-%d").date()


# -- statistics ------------------------------------------------------------

STAT_COUNTER_LOCK: Final = "statcounter:lock"
# Where a version before 2026-12 kept a stopped run's values (all counters in one hash).
LEGACY_STAT_COUNTER_PENDING: Final = "statcounter:pending"
_STAT_COUNTER_PREFIX: Final = "statcounter_"


def stat_counter(stat: str, day: date) -> str:
    """One day's count of a statistic (``wifi``, ``unique_cell``, ...), until persisted."""
    return f"{_STAT_COUNTER_PREFIX}{stat}_{day:%Y%m%d}"


def stat_counter_pending(counter: str) -> str:
    """A day counter's value taken by a statistics run, until stored (its counter's slot)."""
    return f"{tag(counter)}:pending"


def parse_stat_counter(key: str) -> tuple[str, str]:
    """``(stat, YYYYMMDD)`` of a :func:`stat_counter` key; ValueError for another shape."""
    stat, day = key.removeprefix(_STAT_COUNTER_PREFIX).rsplit("_", 1)
    return stat, day


REGION_STATS_CACHE: Final = "cache:stats_regions:4"

# -- scheduler -------------------------------------------------------------

SCHEDULER_LOCK: Final = "scheduler:lock"
SCHEDULER_SLOTS: Final = "scheduler:slots"
SCHEDULER_DUE: Final = "scheduler:due"

# -- locate ----------------------------------------------------------------

STATION_CHANGES: Final = "station_changes"
SAMPLE_RATE: Final = "global_locate_sample_rate"
RATE_CONTROLLER_ENABLED: Final = "rate_controller_enabled"
RATE_CONTROLLER_TARGET: Final = "rate_controller_target"
RATE_CONTROLLER_KP: Final = "rate_controller_kp"
RATE_CONTROLLER_KI: Final = "rate_controller_ki"
RATE_CONTROLLER_KD: Final = "rate_controller_kd"
RATE_CONTROLLER_STATE: Final = "rate_controller_state"
RATE_CONTROLLER_TRX_PURGING: Final = "rate_controller_trx_purging"
RATE_CONTROLLER_TRX_MIN: Final = "rate_controller_trx_min"
RATE_CONTROLLER_TRX_MAX: Final = "rate_controller_trx_max"


def fallback_ratelimit(name: str, interval_s: int, now_s: float) -> str:
    """A fallback provider's request counter for the interval holding ``now_s``."""
    return f"fallback_ratelimit:{name}:{math.floor(now_s / interval_s)}"


def fallback_cache(schema: str, kind: Literal["blue", "cell", "wifi"], network_id: bytes) -> bytes:
    """A fallback provider's cached answer for one network (a binary key)."""
    provider = schema.partition("/")[0]
    return f"cache:fallback:{provider}:v1:1:{kind}:".encode("ascii") + network_id


# -- upgrades --------------------------------------------------------------

# Keys of a queue that older versions (9487ab8 and before) spelled without
# the tag: ``<queue><suffix>`` is now ``{<queue>}<suffix>``.
_LEGACY_SUFFIXES: Final = (":inflight_id", ":inflight", ":lease", ":since", UNDECODABLE_SUFFIX)


def rename_legacy_keys(client: redis.Redis, queues: Iterable[str]) -> int:
    """Move an older installation's untagged queue keys to their names here; return how many.

    Run by ``ichnaea worker`` and ``ichnaea process`` at start: idempotent,
    and one round trip when nothing is left to move. The batches in flight,
    flush timers, set-aside items and dead letters of an older version end
    up where this version looks for them; the claimed batches of reliable
    queues (``<queue>:processing:<consumer>``) go back to the head of their
    queue, as a reclaim would return them.
    """
    if is_cluster(client):
        return 0  # no older version ran on a cluster: it did not support one
    moves: list[tuple[str, str]] = []
    claimed: list[str] = []
    for queue in dict.fromkeys(queues):
        if tag(queue) != queue:
            moves += [(f"{queue}{suffix}", f"{tag(queue)}{suffix}") for suffix in _LEGACY_SUFFIXES]
            moves.append((f"{DEAD_LETTER_PREFIX}{queue}", dead_letter(queue)))
            claimed.append(queue)
    with client.pipeline(transaction=False) as pipe:
        for old, _ in moves:
            pipe.exists(old)
        for queue in claimed:
            pipe.smembers(f"{queue}:consumers")
        found = pipe.execute()
    renamed = 0
    for (old, new), exists in zip(moves, found, strict=False):
        if exists:
            renamed += _rename(client, old, new)
    for queue, members in zip(claimed, found[len(moves) :], strict=True):
        for raw in members:
            consumer = raw.decode() if isinstance(raw, bytes) else str(raw)
            old = f"{queue}:processing:{consumer}"
            items = client.lrange(old, 0, -1)
            with client.pipeline(transaction=True) as pipe:
                if items:
                    pipe.lpush(queue, *reversed(items))
                pipe.delete(old, f"{queue}:lease:{consumer}")
                pipe.srem(f"{queue}:consumers", consumer)
                pipe.execute()
            renamed += 1
    return renamed


def _rename(client: redis.Redis, old: str, new: str) -> int:
    if client.exists(new) and client.type(old) in (b"list", "list"):
        # Both exist (a new worker ran beside an old one): append, keep order.
        items = client.lrange(old, 0, -1)
        with client.pipeline(transaction=True) as pipe:
            pipe.rpush(new, *items)
            pipe.delete(old)
            pipe.execute()
    elif client.exists(new):
        client.delete(old)  # a timer, id or lease: the newer one stands
    else:
        client.rename(old, new)
    return 1
