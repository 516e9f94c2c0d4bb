"""The station updater stage: observations of one shard queue → station rows.

Each shard queue (``update_wifi_<0-f>``, ``update_blue_<0-f>``,
``update_cell_<gsm|wcdma|lte|nr>``) is a :class:`SerialQueue`: one batch
in flight at a time, so the batches of a shard are applied in queue order
and workers never contend for the same rows. One batch costs one
transaction with one read (``SELECT ... FOR UPDATE`` of every station the
batch names) and one write (a single upsert of every new, changed,
replaced, blocked or confirmed row), both in
:mod:`ichnaea.repositories.station_rows`. The decisions are
:func:`ichnaea.pipeline.stations.plan.plan_station_updates`; this module is
the I/O around them.

Exactly-once: the transaction also records the batch id in
``pipeline_batch`` (:mod:`ichnaea.repositories.batches`) with the batch's
Redis effects (stat counters, cell areas to refresh). The effects, and the
announcement of the changed keys to the web hosts' station index
(:mod:`ichnaea.index.changes`), are applied in the same Redis transaction
that acknowledges the batch. A worker
killed anywhere in between leaves the batch in flight; the next worker
finds the id committed and applies only the effects. The station metrics
(``data.observation.insert``, ``data.station.new/confirm/blocklist``) are
recorded with the effects and counted by the worker whose acknowledgement
succeeds. Deadlocks and lock-wait timeouts retry the transaction.
"""

from __future__ import annotations

import calendar
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import orjson
import redis
from redis.client import Pipeline
from sqlalchemy import Connection, Engine

from ichnaea.broker import keyspace
from ichnaea.broker.reliable import LEASE_S, SerialQueue
from ichnaea.codecs import MAC_SHARD_IDS
from ichnaea.enums import Radio, StatKey
from ichnaea.geocode import Geocoder
from ichnaea.index.changes import announce
from ichnaea.metrics import Metrics
from ichnaea.pipeline.ops.stats import incr_stat_counters
from ichnaea.pipeline.runner import Claimed, Done, run_batch
from ichnaea.pipeline.stations.dbretry import with_lock_retry
from ichnaea.pipeline.stations.plan import StationPlan, plan_station_updates
from ichnaea.pipeline.stations.state import StationType, station_key
from ichnaea.repositories.batches import committed_effects, delete_batches_before, record_batch
from ichnaea.repositories.station_rows import read_for_update, write_values
from ichnaea.values import utcnow

log = logging.getLogger(__name__)

STATION_BATCH = 500
CELL_RADIOS = (Radio.gsm, Radio.wcdma, Radio.lte, Radio.nr)

_STAT_KEYS = {
    StationType.blue: (StatKey.blue, StatKey.unique_blue),
    StationType.wifi: (StatKey.wifi, StatKey.unique_wifi),
    StationType.cell: (StatKey.cell, StatKey.unique_cell),
}


@dataclass(frozen=True, slots=True)
class StationQueue:
    """One shard queue; it feeds the shard table of ``stype.name`` and ``shard``
    (:func:`ichnaea.repositories.station_rows.station_table`)."""

    stype: StationType
    shard: str

    @property
    def name(self) -> str:
        return keyspace.station_queue(self.stype.name, self.shard)


def station_queues() -> tuple[StationQueue, ...]:
    """Every shard queue: 16 Bluetooth, 16 Wi-Fi and one per cell radio."""
    return (
        *(StationQueue(StationType.blue, shard) for shard in MAC_SHARD_IDS),
        *(StationQueue(StationType.wifi, shard) for shard in MAC_SHARD_IDS),
        *(StationQueue(StationType.cell, radio.name) for radio in CELL_RADIOS),
    )


def queue_for_name(name: str) -> StationQueue:
    for queue in station_queues():
        if queue.name == name:
            return queue
    raise KeyError(name)


def encode_observation(observation: Mapping[str, Any]) -> bytes:
    """The wire form of a queued observation: compact JSON (shard queues are short-lived)."""
    return orjson.dumps(observation)


def _effects(queue: StationQueue, plan: StationPlan, today: date) -> dict[str, Any]:
    obs_key, unique_key = _STAT_KEYS[queue.stype]
    return {
        "day": today.isoformat(),
        "stats": {obs_key.name: plan.obs_count, unique_key.name: plan.new},
        "areas": sorted(area.hex() for area in plan.area_ids),
        "metrics": {
            "data.observation.insert": plan.obs_count,
            "data.station.blocklist": plan.block,
            "data.station.confirm": plan.confirm,
            "data.station.new": plan.new,
        },
    }


def emit_metrics(metrics: Metrics, effects: Mapping[str, Any], stype: StationType) -> None:
    """Count an acknowledged batch's station metrics (from its recorded effects)."""
    tags = {"type": stype.name}
    # Batches recorded before the metrics were part of the effects have none.
    for metric, value in effects.get("metrics", {}).items():
        if value:
            metrics.incr(metric, value, tags=tags)


def apply_effects(pipe: Pipeline, effects: Mapping[str, Any]) -> None:
    """Queue a committed batch's Redis side effects on ``pipe``."""
    day = date.fromisoformat(effects["day"])
    incr_stat_counters(pipe, {StatKey[name]: n for name, n in effects["stats"].items()}, day)
    if effects["areas"]:
        pipe.rpush(keyspace.CELL_AREAS, *(bytes.fromhex(area) for area in effects["areas"]))
        # When the oldest pending area id arrived (see ichnaea.worker.jobs).
        pipe.set(keyspace.since(keyspace.CELL_AREAS), str(int(time.time())), nx=True)


def _apply_batch(
    conn: Connection,
    queue: StationQueue,
    batch_id: str,
    observations: Sequence[Mapping[str, Any]],
    keys: Sequence[bytes],
    geocoder: Geocoder,
    now: datetime,
    *,
    resumed: bool,
) -> dict[str, Any]:
    # A freshly claimed batch has a new id, so only a resumed one can have
    # been committed before. (Should an ambiguous commit be retried, the
    # ledger's primary key still refuses to apply a batch twice.)
    done = committed_effects(conn, batch_id) if resumed else None
    if done is not None:
        log.info(
            "%s: batch %s was committed before; applying its effects only", queue.name, batch_id
        )
        effects: dict[str, Any] = json.loads(done)
        return effects
    today = now.date()
    kind, shard = queue.stype.name, queue.shard
    existing = read_for_update(conn, kind, shard, sorted(set(keys)))
    plan = plan_station_updates(
        queue.stype, observations, existing, now=now, today=today, geocoder=geocoder, keys=keys
    )
    write_values(conn, kind, shard, plan.columns, plan.rows)
    effects = _effects(queue, plan, today)
    record_batch(
        conn, batch_id=batch_id, queue=queue.name, effects=json.dumps(effects), created=now
    )
    return effects


@dataclass(frozen=True, slots=True)
class StationStage:
    """Observations of one shard queue → its station rows, exactly once."""

    queue: StationQueue
    engine: Engine
    client: redis.Redis
    geocoder: Geocoder
    metrics: Metrics
    now: datetime | None = None

    def decode(self, raw: bytes) -> tuple[dict[str, Any], bytes]:
        """An observation the table can key, and its station key."""
        value = orjson.loads(raw)
        if not isinstance(value, dict):
            raise ValueError("not a JSON object")
        return value, station_key(self.queue.stype, value)

    def apply(self, batch: Claimed, items: list[tuple[dict[str, Any], bytes]]) -> Done:
        when = self.now or utcnow()
        observations = [obs for obs, _ in items]
        keys = [key for _, key in items]

        def transaction() -> dict[str, Any]:
            with self.engine.begin() as conn:
                return _apply_batch(
                    conn,
                    self.queue,
                    batch.id,
                    observations,
                    keys,
                    self.geocoder,
                    when,
                    resumed=batch.resumed,
                )

        tags = {"type": self.queue.stype.name}
        effects = with_lock_retry(transaction, metrics=self.metrics, tags=tags)

        def acknowledged_with(pipe: Pipeline) -> None:
            apply_effects(pipe, effects)
            # The shard's fill timer (ichnaea.worker.jobs) starts again: what
            # arrived meanwhile may wait for a fuller batch.
            pipe.set(keyspace.since(self.queue.name), str(time.time()))
            # The changed keys are announced with the ack, after the commit:
            # a worker stopped in between leaves the batch to be resumed, and
            # whoever acknowledges it announces them (one round trip fewer).
            announce(pipe, self.queue.stype.name, keys, at=calendar.timegm(when.timetuple()))

        # Counted by the worker that acknowledges, so a batch resumed after a
        # crash between commit and ack is counted too, and only once.
        return Done(
            effects=acknowledged_with,
            acknowledged=lambda: emit_metrics(self.metrics, effects, self.queue.stype),
        )


def process_station_queue(
    queue: StationQueue,
    *,
    engine: Engine,
    client: redis.Redis,
    geocoder: Geocoder,
    metrics: Metrics,
    owner: str,
    batch: int = STATION_BATCH,
    lease_s: int = LEASE_S,
    now: datetime | None = None,
) -> int:
    """Apply one batch of ``queue``; return its size (0: empty, or another worker has it)."""
    stage = StationStage(queue, engine, client, geocoder, metrics, now)
    serial = SerialQueue(client, queue.name)
    return run_batch(serial, stage, consumer=owner, batch=batch, lease_s=lease_s)


def cleanup_batches(engine: Engine, *, now: datetime, keep_days: int = 7) -> int:
    """Forget committed batch ids older than ``keep_days``."""
    cutoff = now.replace(tzinfo=None) - timedelta(days=keep_days)
    with engine.begin() as conn:
        return delete_batches_before(conn, cutoff)
