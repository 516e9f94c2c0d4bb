"""Statistics: daily running totals in ``stat`` and per-region counts in ``region_stat``.

This module holds the Redis side and the order of the steps; their SQL is
in :mod:`ichnaea.repositories.statistics` and, for the ``pipeline_batch``
ledger, :mod:`ichnaea.repositories.batches`.

Daily counters
--------------
The station updater counts, per UTC day, the observations and the new
stations it stores, per :class:`ichnaea.enums.StatKey`, in Redis
(:func:`incr_stat_counters`: ``INCRBY`` plus a two-day ``EXPIRE`` on
``statcounter_<name>_<YYYYMMDD>``). Redis then holds the increments that
are not yet in the database.

:func:`update_stat_counters` (every ten minutes) moves them to ``stat``, for
each key in enum order, for yesterday and then today (increments of the
previous day can still arrive just after midnight). With ``v`` the counter:

* if the ``stat`` row of (key, day) exists, ``value += v``;
* otherwise the row is inserted with the value of the latest earlier row
  of that key (0 if none) plus ``v``.

``stat.value`` is thus a running total: all observations ever, all distinct
stations ever. Rows are written even when ``v`` is 0, so every day has one.

Each value is moved exactly once, whatever stops a run (the original
counted a value twice when it died between its commit and its ``DECRBY``):

1. A Lua script per counter moves its value ``v`` into the counter's
   pending key ``{statcounter_<name>_<YYYYMMDD>}:pending`` (``DECRBY v``,
   never a reset, so increments arriving meanwhile stay for the next run)
   together with a fresh run id. One script per counter, because on a
   Redis Cluster the counters live in different hash slots; the pending
   key shares its counter's.
2. One database transaction per run id adds the pending values to ``stat``
   and records the run id in ``pipeline_batch`` (queue ``statcounter``).
3. The pending keys are deleted.

A run that finds a pending key (its predecessor stopped) takes that value
with its run id instead: step 2 unless the run id is already recorded,
then step 3. Overlapping
runs are kept apart by a Redis lock (``statcounter:lock``, expiring after
five minutes); a run that finds the lock held does nothing and the next
scheduled run catches up.

:func:`cleanup_stat` deletes rows older than two years (730 days).

Region statistics
-----------------
:func:`update_region_stats` (daily) counts per region the known cells by
radio (``SUM(num_cells)`` over ``cell_area``) and the Bluetooth and Wi-Fi
stations (``COUNT(*)`` over the 16 shards each; blocked stations keep their
region and are counted), reading with READ COMMITTED on MySQL so the long
scans take no snapshot. ``region_stat`` has no column for 5G NR, so NR areas
are not counted. If nothing at all is counted the table is left as it is
(an empty database must not wipe the statistics); otherwise every counted
region's row is rewritten (missing counts 0), rows of regions no longer
counted are deleted, and the website's cache key ``cache:stats_regions:4``
is dropped. The original scheduled this only when a map token was set
(spec section 24 item 2); it has nothing to do with maps and runs always.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta

import redis
from redis.exceptions import LockError
from sqlalchemy.engine import Engine

from ichnaea.broker import keyspace
from ichnaea.broker.client import decoded
from ichnaea.enums import StatKey
from ichnaea.repositories.batches import committed_effects, record_batch
from ichnaea.repositories.statistics import (
    add_to_running_totals,
    count_regions,
    delete_stats_before,
    replace_region_counts,
    use_read_committed,
)

log = logging.getLogger(__name__)

# Counters live two days: long enough for the run just after midnight to
# pick up yesterday's tail.
STAT_COUNTER_TTL_S = 172_800
STAT_COUNTER_LOCK_TTL_S = 300
STAT_RETENTION_DAYS = 730
# The pipeline_batch queue of counter runs; a run's batch id is "statcounter:<run id>".
_LEDGER_QUEUE = "statcounter"


def incr_stat_counters(pipe: redis.Redis, counts: Mapping[StatKey, int], day: date) -> None:
    """Queue ``INCRBY`` and ``EXPIRE`` of each counter on ``pipe`` (a pipeline or client).

    Zero counts are sent too, which refreshes the expiry and keeps the
    commands of every batch alike.
    """
    for stat_key, count in counts.items():
        key = keyspace.stat_counter(stat_key.name, day)
        pipe.incrby(key, count)
        pipe.expire(key, STAT_COUNTER_TTL_S)


# KEYS[1]: a day counter, KEYS[2]: its pending key; ARGV[1]: a run id.
# Moves the counter's value into the pending key as "<run id>:<value>",
# unless a stopped run left one there; returns what the pending key holds.
_TAKE_COUNTER = """
local held = redis.call('GET', KEYS[2])
if held then return held end
local value = tonumber(redis.call('GET', KEYS[1]) or '0')
if value ~= 0 then redis.call('DECRBY', KEYS[1], value) end
local pending = ARGV[1] .. ':' .. value
redis.call('SET', KEYS[2], pending)
return pending
"""


def _parse_counter_key(key: str) -> tuple[StatKey, date]:
    name, day = keyspace.parse_stat_counter(key)
    return StatKey[name], datetime.strptime(day, "%Y%m%d").date()


def _apply_pending(
    engine: Engine,
    run: str,
    values: Mapping[tuple[StatKey, date], int],
    slots: list[tuple[StatKey, date]],
    now: datetime,
) -> None:
    """Step 2: add one run's pending values (and a row for every slot) to ``stat``, once."""
    run_id = f"{_LEDGER_QUEUE}:{run}"
    values = dict(values)
    for slot in slots:
        values.setdefault(slot, 0)
    with engine.begin() as connection:
        if committed_effects(connection, run_id) is not None:
            log.info("stat counters of run %s were already stored", run_id)
            return
        add_to_running_totals(connection, values)
        record_batch(connection, batch_id=run_id, queue=_LEDGER_QUEUE, effects="{}", created=now)


def _finish_legacy_pending(
    engine: Engine, redis_client: redis.Redis, slots: list[tuple[StatKey, date]], now: datetime
) -> None:
    """The pending hash of a version before 2026-12 (one key for all counters), if a run left it."""
    raw = redis_client.hgetall(keyspace.LEGACY_STAT_COUNTER_PENDING)
    pending = {decoded(key): decoded(value) for key, value in raw.items()}
    if "_run" in pending:
        run = pending.pop("_run")
        values = {_parse_counter_key(key): int(value) for key, value in pending.items()}
        _apply_pending(engine, run, values, slots, now)
        redis_client.delete(keyspace.LEGACY_STAT_COUNTER_PENDING)


def _move_counters(
    engine: Engine, redis_client: redis.Redis, slots: list[tuple[StatKey, date]], now: datetime
) -> bool:
    """Steps 1-3 for every counter; True if some were held by a stopped run (not taken)."""
    ours = uuid.uuid4().hex
    take = redis_client.register_script(_TAKE_COUNTER)
    # Per run id (ours, or a stopped run's): its values and pending keys.
    runs: dict[str, tuple[dict[tuple[StatKey, date], int], list[str]]] = {ours: ({}, [])}
    for stat_key, day in slots:
        counter = keyspace.stat_counter(stat_key.name, day)
        pending = keyspace.stat_counter_pending(counter)
        run, value = decoded(take(keys=[counter, pending], args=[ours])).rsplit(":", 1)
        values, keys = runs.setdefault(run, ({}, []))
        values[(stat_key, day)] = int(value)
        keys.append(pending)
    for run, (values, keys) in runs.items():
        _apply_pending(engine, run, values, slots if run == ours else [], now)
        for key in keys:
            redis_client.delete(key)
    return len(runs) > 1


def update_stat_counters(engine: Engine, redis_client: redis.Redis, *, today: date) -> None:
    """Move the Redis day counters of yesterday and today into ``stat`` (module docstring)."""
    lock = redis_client.lock(
        keyspace.STAT_COUNTER_LOCK, timeout=STAT_COUNTER_LOCK_TTL_S, blocking=False
    )
    if not lock.acquire():
        log.info("stat counters are being updated by another run; skipping")
        return
    try:
        slots = [(stat_key, day) for stat_key in StatKey for day in (today - timedelta(1), today)]
        now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
        _finish_legacy_pending(engine, redis_client, slots, now)
        # A counter a stopped run left pending gives that value this pass
        # (stored under the stopped run's id) and its own in a second one.
        for _ in range(2):
            if not _move_counters(engine, redis_client, slots, now):
                break
    finally:
        try:
            lock.release()
        except LockError as exc:
            # The lock expired mid-run; another run may have started.
            log.warning("stat counter lock lost before release: %s", exc)


def cleanup_stat(engine: Engine, *, today: date) -> int:
    """Delete ``stat`` rows older than 730 days; return how many."""
    cutoff = today - timedelta(days=STAT_RETENTION_DAYS)
    with engine.begin() as connection:
        return delete_stats_before(connection, cutoff)


def update_region_stats(engine: Engine, redis_client: redis.Redis) -> None:
    """Recount cells and stations per region into ``region_stat`` (module docstring)."""
    with engine.connect() as connection:
        use_read_committed(connection)
        with connection.begin():
            counts = count_regions(connection)
            if not counts:
                log.info("no stations with a region; region_stat left unchanged")
                return
            replace_region_counts(connection, counts)
    redis_client.delete(keyspace.REGION_STATS_CACHE)
