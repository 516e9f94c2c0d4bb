"""The job registry: what the worker pool runs and what the scheduler enqueues.

Two kinds of jobs:

* **Queue jobs** run whenever their queues hold work: every worker process
  loops over them (``run_queue_jobs``), each call handling at most one
  batch per queue, so any number of processes on any number of machines
  share the load. The multiplexer, the exporters, the station shards, cell
  areas and the datamap are queue jobs.
* **Periodic jobs** have a period; the single scheduler adds their names
  to the set ``scheduler:due`` when due (a job not yet run is never queued
  twice) and whichever worker pops a name runs it. Stat counters, region
  statistics, clean-ups, the reclaim of batches whose consumer died, the
  queue-size and API-usage gauges, the locate sample-rate controller and
  the public cell exports are periodic.

Each job is a thin wrapper over testable logic in :mod:`ichnaea.pipeline`.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import cached_property
from typing import cast

import redis
from cachetools import TTLCache, cachedmethod
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ichnaea.broker import keyspace, outbox
from ichnaea.broker.client import decoded
from ichnaea.broker.reliable import ReliableQueue, SerialQueue, consumer_id
from ichnaea.codecs import DATAMAP_SHARD_IDS
from ichnaea.config import Settings
from ichnaea.geocode import Geocoder
from ichnaea.index.changes import announce_changes
from ichnaea.metrics import Metrics
from ichnaea.objectstore import asset_store
from ichnaea.pipeline.export.stage import ExporterCache, export_all, ready
from ichnaea.pipeline.ingest.incoming import ExportTarget, process_incoming
from ichnaea.pipeline.ingest.internal import KnownKeys, process_internal
from ichnaea.pipeline.ops.monitor import monitor_api_key_limits, monitor_api_users
from ichnaea.pipeline.ops.ratecontrol import control_sample_rate
from ichnaea.pipeline.ops.stats import cleanup_stat, update_region_stats, update_stat_counters
from ichnaea.pipeline.public.cellexport import (
    ExportWindow,
    diff_window,
    full_window,
    prune_local,
    publish,
)
from ichnaea.pipeline.public.datamap import DATAMAP_BATCH, cleanup_datamap, update_datamap
from ichnaea.pipeline.runner import Claimed, Done, run_batch, timer_cleared
from ichnaea.pipeline.stations.areas import update_areas
from ichnaea.pipeline.stations.updater import cleanup_batches, process_station_queue, station_queues
from ichnaea.regions import RegionTable
from ichnaea.repositories.export_configs import list_export_configs
from ichnaea.values import utcnow

log = logging.getLogger(__name__)

# Cell areas are recomputed from all their cells, and every station batch
# that moves a cell queues its area again: waiting for a big batch (or
# AREA_MAX_AGE_S) lets one recomputation serve many queued copies. (The
# original took 100 ids every 44 s.)
AREA_BATCH = 5000
AREA_MAX_AGE_S = 30
# The coverage map has a day's resolution (and the original stored its grid
# cells every 47 s): a datamap shard waits for a full batch or this long, so
# that a busy pipeline stores it in a few large transactions, not a small
# one after every internal batch.
DATAMAP_MAX_AGE_S = 30
TARGETS_TTL_S = 10.0


Targets = tuple[list[ExportTarget], dict[str, tuple[str | None, int]]]


@functools.cache
def shared_geocoder() -> Geocoder:
    """The process's geocoder, loaded once (by the fork server, for a worker
    pool: :mod:`ichnaea.worker.preload`); it is only read."""
    return Geocoder.load(RegionTable.load())


@dataclass
class Resources:
    """What one worker process owns: settings, DB engine, Redis pool, metrics and caches."""

    settings: Settings
    db: Engine
    redis: redis.Redis
    metrics: Metrics = field(default_factory=Metrics)
    owner: str = field(default_factory=consumer_id)
    # Export everything that is queued, not only full batches (ichnaea process).
    drain: bool = False
    # The export configs, re-read every few seconds: operators edit them live.
    _targets: TTLCache[str, Targets] = field(
        default_factory=lambda: TTLCache(maxsize=1, ttl=TARGETS_TTL_S)
    )

    @cached_property
    def geocoder(self) -> Geocoder:
        return shared_geocoder()

    @cached_property
    def known_keys(self) -> KnownKeys:
        return KnownKeys(self.db)

    @cached_property
    def exporters(self) -> ExporterCache:
        return ExporterCache(self.settings, self.metrics)

    @cachedmethod(lambda self: self._targets)
    def targets(self) -> Targets:
        """The export targets, and each one's (url, batch) by name."""
        with Session(self.db) as session:
            rows = list_export_configs(session)
            targets = [ExportTarget.from_row(row) for row in rows]
            configs = {row.name: (row.url, int(row.batch or 0)) for row in rows}
        return targets, configs


@dataclass(frozen=True, slots=True)
class Job:
    name: str
    # Runs (one batch of) the job; returns how many items it handled.
    run: Callable[[Resources], int]
    # Seconds between runs for periodic jobs; None for queue jobs.
    period_s: float | None = None
    # Periodic jobs run when UTC wall time passes offset_s + k * period_s:
    # (86400, 420) is daily at 00:07, (3600, 180) hourly at :03.
    offset_s: float = 0.0
    # Whether the scheduler enqueues it under these settings.
    enabled: Callable[[Settings], bool] = lambda settings: True
    # Whether `ichnaea process` runs it while draining the pipeline (the
    # public exports are publications, not pipeline stages).
    drains: bool = True

    def slot(self, epoch_s: float) -> int:
        """The number of this job's period that ``epoch_s`` (Unix seconds) falls in."""
        assert self.period_s, f"{self.name} is not periodic"
        return int((epoch_s - self.offset_s) // self.period_s)


# -- queue jobs ----------------------------------------------------------------


def _incoming(res: Resources) -> int:
    if not res.redis.llen(keyspace.INCOMING):
        return 0
    targets, _ = res.targets()
    return process_incoming(
        res.redis, targets, consumer=res.owner, lease_s=res.settings.queue_lease_s
    )


def _internal(res: Resources) -> int:
    targets, _ = res.targets()
    handled = 0
    for target in targets:
        if target.schema == "internal" and res.redis.llen(target.base_queue):
            handled += process_internal(
                res.redis,
                queue_name=target.base_queue,
                geocoder=res.geocoder,
                metrics=res.metrics,
                known_keys=res.known_keys,
                consumer=res.owner,
                lease_s=res.settings.queue_lease_s,
            )
    return handled


def _external(res: Resources) -> int:
    targets, configs = res.targets()
    external = [t for t in targets if t.schema != "internal"]
    if not external:
        return 0
    return export_all(
        res.redis,
        external,
        configs,
        res.exporters,
        consumer=res.owner,
        force=res.drain,
        max_age_s=res.settings.export_max_age_s,
        lease_s=res.settings.queue_lease_s,
    )


def _queue_due(
    size: int,
    in_flight: int,
    since: bytes | None,
    *,
    batch: int,
    max_wait_s: float,
    drain: bool,
    now: float,
) -> bool:
    """Whether a timed queue (a station shard, a datamap shard) is taken now: a batch
    in flight, a full batch, or items that waited ``max_wait_s`` (at once when
    draining).

    Letting a queue fill up makes fewer, larger batches: each costs one
    database transaction and one acknowledgement whatever its size. The
    timer is set by the first push to the queue
    (:func:`ichnaea.pipeline.ingest.internal.push_outputs`) and cleared or
    restarted by each acknowledged batch; a queue without one (pushed by an
    older version) is taken at once.
    """
    if in_flight:
        return True
    if not size:
        return False
    if drain or size >= batch or since is None:
        return True
    return now - float(since) >= max_wait_s


def _shard_due(size: int, in_flight: int, since: bytes | None, res: Resources, now: float) -> bool:
    """:func:`_queue_due` for a station shard (``STATION_BATCH``, ``STATION_MAX_WAIT_MS``)."""
    settings = res.settings
    return _queue_due(
        size,
        in_flight,
        since,
        batch=settings.station_batch,
        max_wait_s=settings.station_max_wait_ms / 1000,
        drain=res.drain,
        now=now,
    )


def _queue_states(res: Resources, names: Sequence[str]) -> list[tuple[int, int, bytes | None]]:
    """(length, whether a batch is in flight, timer) of each queue, in one round trip."""
    with res.redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(name)
            pipe.exists(SerialQueue(res.redis, name).inflight_key)
            pipe.get(keyspace.since(name))
        found = pipe.execute()
    return [(found[i], found[i + 1], found[i + 2]) for i in range(0, len(found), 3)]


def _stations(res: Resources) -> int:
    queues = list(station_queues())
    states = _queue_states(res, [queue.name for queue in queues])
    now = time.time()
    busy = [
        queue for queue, state in zip(queues, states, strict=True) if _shard_due(*state, res, now)
    ]
    # Processes start at different shards so they spread instead of queueing up.
    random.shuffle(busy)
    handled = 0
    for queue in busy:
        # One failing shard must not keep the others from their turn.
        try:
            handled += process_station_queue(
                queue,
                engine=res.db,
                client=res.redis,
                geocoder=res.geocoder,
                metrics=res.metrics,
                owner=res.owner,
                batch=res.settings.station_batch,
                lease_s=res.settings.queue_lease_s,
            )
        except Exception:
            log.exception("%s: batch failed; it stays in flight for another try", queue.name)
    return handled


@dataclass(frozen=True, slots=True)
class RawStage:
    """A serial queue of raw items and an idempotent function of them (cell areas, datamap).

    Applying a batch twice after a crash gives the same rows.
    """

    client: redis.Redis
    apply_items: Callable[[list[bytes]], object]

    @staticmethod
    def decode(raw: bytes) -> bytes:
        return raw

    def apply(self, batch: Claimed, items: list[bytes]) -> Done:
        self.apply_items(items)
        return timer_cleared(self.client, batch.queue)


def _serial_batch(
    res: Resources, name: str, batch: int, apply: Callable[[list[bytes]], object]
) -> int:
    queue = SerialQueue(res.redis, name)
    if not (res.redis.llen(name) or res.redis.exists(queue.inflight_key)):
        return 0
    stage = RawStage(res.redis, apply)
    return run_batch(
        queue, stage, consumer=res.owner, batch=batch, lease_s=res.settings.queue_lease_s
    )


def _cellareas(res: Resources) -> int:
    pending = SerialQueue(res.redis, keyspace.CELL_AREAS)
    if not (
        res.drain
        or res.redis.exists(pending.inflight_key)
        or ready(
            res.redis, keyspace.CELL_AREAS, AREA_BATCH, now=time.time(), max_age_s=AREA_MAX_AGE_S
        )
    ):
        return 0
    return _serial_batch(
        res,
        keyspace.CELL_AREAS,
        AREA_BATCH,
        lambda ids: _update_areas(res, ids),
    )


def _update_areas(res: Resources, ids: list[bytes]) -> None:
    update_areas(res.db, ids, geocoder=res.geocoder, now=utcnow(), metrics=res.metrics)
    announce_changes(res.redis, "area", ids)


def _datamap(res: Resources) -> int:
    names = [keyspace.datamap_queue(shard) for shard in DATAMAP_SHARD_IDS]
    now = time.time()
    handled = 0
    for shard, name, state in zip(DATAMAP_SHARD_IDS, names, _queue_states(res, names), strict=True):
        if not _queue_due(
            *state, batch=DATAMAP_BATCH, max_wait_s=DATAMAP_MAX_AGE_S, drain=res.drain, now=now
        ):
            continue
        stage = RawStage(
            res.redis,
            lambda grids, shard=shard: update_datamap(  # type: ignore[misc]
                res.db, shard, grids, today=utcnow().date(), metrics=res.metrics
            ),
        )
        handled += run_batch(
            SerialQueue(res.redis, name),
            stage,
            consumer=res.owner,
            batch=DATAMAP_BATCH,
            lease_s=res.settings.queue_lease_s,
        )
    return handled


# -- periodic jobs -------------------------------------------------------------


def _today() -> date:
    return utcnow().date()


def _reclaim(res: Resources) -> int:
    """Give back the batches of consumers whose lease ran out; deliver what they left.

    On a Redis Cluster, a consumer that stopped between acknowledging a
    batch and delivering its output to other hash slots left that output
    in its outbox (:mod:`ichnaea.broker.outbox`): the sweep delivers it.
    """
    targets, _ = res.targets()
    names = [keyspace.INCOMING]
    for target in targets:
        names.extend(target.queues(res.redis))
    returned = sum(ReliableQueue(res.redis, name).reclaim() for name in names)
    if returned:
        log.warning("reclaimed %d items from consumers that stopped", returned)
    # An entry older than a lease is no longer its owner's to deliver.
    queues = data_queue_names(res, targets)
    delivered = outbox.sweep(res.redis, queues, min_age_s=res.settings.queue_lease_s)
    if delivered:
        log.warning("delivered %d outbox entries of consumers that stopped", delivered)
    return 0


def _statcounter(res: Resources) -> int:
    update_stat_counters(res.db, res.redis, today=_today())
    return 0


def _statregion(res: Resources) -> int:
    update_region_stats(res.db, res.redis)
    return 0


def _cleanup(res: Resources) -> int:
    today = _today()
    cleanup_stat(res.db, today=today)
    for shard in DATAMAP_SHARD_IDS:
        cleanup_datamap(res.db, shard, today=today)
    cleanup_batches(res.db, now=utcnow())
    return 0


def _cell_export(window: Callable[[datetime], ExportWindow]) -> Callable[[Resources], int]:
    def run(res: Resources) -> int:
        store = asset_store(res.settings.asset_bucket, endpoint_url=res.settings.s3_endpoint_url)
        if store is None:
            raise RuntimeError("ASSET_BUCKET is not set in this worker: no cell export")
        now = utcnow()
        _, count = publish(res.db, store, window(now))
        prune_local(store, now)
        return count

    return run


def _api_key_limits(res: Resources) -> int:
    return monitor_api_key_limits(res.redis, res.metrics, today=_today())


def _api_users(res: Resources) -> int:
    return monitor_api_users(res.redis, res.metrics, today=_today())


def _rate_control(res: Resources) -> int:
    """Steer the locate query-report sample rate by the station backlog (spec section 17)."""
    names = [queue.name for queue in station_queues()]
    with res.redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(name)
        backlog = sum(int(size) for size in pipe.execute())
    control_sample_rate(res.redis, res.db, res.metrics, backlog=backlog)
    return 0


def data_queue_names(res: Resources, targets: Sequence[ExportTarget] | None = None) -> list[str]:
    """Every data queue: incoming, export queues (per export_config), shards, areas, datamap.

    ``targets`` defaults to the export configs of ``res``.
    """
    names = [keyspace.INCOMING, keyspace.CELL_AREAS, *(q.name for q in station_queues())]
    names += [keyspace.datamap_queue(shard) for shard in DATAMAP_SHARD_IDS]
    if targets is None:
        targets, _ = res.targets()
    for target in targets:
        names.extend(target.queues(res.redis))
    return names


def rename_legacy_keys(res: Resources) -> int:
    """Move an older version's untagged queue keys (:func:`keyspace.rename_legacy_keys`)."""
    moved = keyspace.rename_legacy_keys(res.redis, data_queue_names(res))
    if moved:
        log.warning("moved %d Redis keys of an older version to their tagged names", moved)
    return moved


def _monitor_queues(res: Resources) -> int:
    names = data_queue_names(res)
    with res.redis.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.llen(name)
        sizes = pipe.execute()
    for name, size in zip(names, sizes, strict=True):
        tags = {"queue": name, "queue_type": "data", "data_type": keyspace.data_type(name)}
        res.metrics.gauge("queue", size, tags=tags)
    return 0


QUEUE_JOBS: tuple[Job, ...] = (
    Job("update_incoming", _incoming),
    Job("export_internal", _internal),
    Job("export_external", _external),
    Job("update_station", _stations),
    Job("update_cellarea", _cellareas),
    Job("update_datamap", _datamap),
)

RECLAIM = Job("reclaim", _reclaim, period_s=30)

DAY_S = 86400


def _has_asset_bucket(settings: Settings) -> bool:
    return bool(settings.asset_bucket)


# Times of day are the original's (spec section 4), in UTC.
PERIODIC_JOBS: tuple[Job, ...] = (
    RECLAIM,
    Job("monitor_queues", _monitor_queues, period_s=60),
    Job("rate_control", _rate_control, period_s=60),
    Job("update_statcounter", _statcounter, period_s=600),
    Job("monitor_api_key_limits", _api_key_limits, period_s=600),
    Job("monitor_api_users", _api_users, period_s=600),
    Job("update_statregion", _statregion, period_s=DAY_S, offset_s=7 * 60),
    Job("cleanup", _cleanup, period_s=DAY_S, offset_s=17 * 60),
    Job("cell_export_diff", _cell_export(diff_window), period_s=3600, offset_s=3 * 60,
        enabled=_has_asset_bucket, drains=False),
    Job("cell_export_full", _cell_export(full_window), period_s=DAY_S, offset_s=37 * 60,
        enabled=_has_asset_bucket, drains=False),
)  # fmt: skip


def scheduled_jobs(settings: Settings) -> tuple[Job, ...]:
    """The periodic jobs the scheduler enqueues under ``settings``."""
    return tuple(job for job in PERIODIC_JOBS if job.enabled(settings))


def registered_jobs(settings: Settings) -> tuple[Job, ...]:
    """Every job a worker runs: the queue jobs, then the scheduled periodic ones."""
    return QUEUE_JOBS + scheduled_jobs(settings)


def periodic_job(name: str) -> Job | None:
    return next((job for job in PERIODIC_JOBS if job.name == name), None)


def run_job(job: Job, res: Resources) -> int:
    """Run a job, timing it; an error is logged (and sent to Sentry) and counts as no work."""
    started = time.perf_counter()
    try:
        return job.run(res)
    except Exception:
        log.exception("job %s failed; its batch stays queued for a retry", job.name)
        return 0
    finally:
        res.metrics.timing("task", (time.perf_counter() - started) * 1000, tags={"task": job.name})


def run_queue_jobs(res: Resources) -> int:
    """One pass over every queue job; return the items handled."""
    return sum(run_job(job, res) for job in QUEUE_JOBS)


def run_due_jobs(res: Resources, *, limit: int = 10) -> int:
    """Run periodic jobs the scheduler marked due; return how many ran."""
    ran = 0
    while ran < limit and (raw := res.redis.spop(keyspace.SCHEDULER_DUE)) is not None:
        name = decoded(cast(bytes, raw))  # SPOP without a count: one member
        job = periodic_job(name)
        if job is None:
            log.error("unknown periodic job %r in %s ignored", name, keyspace.SCHEDULER_DUE)
            continue
        run_job(job, res)
        ran += 1
    return ran


def claimed_elsewhere(res: Resources, targets: Sequence[ExportTarget] | None = None) -> int:
    """Items claimed by consumers and not yet acknowledged (in progress or orphaned).

    On a Redis Cluster, acknowledged batches whose output waits in an
    outbox count too (one each).
    """
    if targets is None:
        targets, _ = res.targets()
    reliable = [keyspace.INCOMING]
    for target in targets:
        reliable.extend(target.queues(res.redis))
    serial = [keyspace.CELL_AREAS, *(q.name for q in station_queues())]
    serial += [keyspace.datamap_queue(shard) for shard in DATAMAP_SHARD_IDS]
    held = 0
    for name in reliable:
        queue = ReliableQueue(res.redis, name)
        for raw in res.redis.smembers(queue.consumers_key):
            consumer = decoded(raw)
            held += int(res.redis.llen(queue.processing_key(consumer)))
    with res.redis.pipeline(transaction=False) as pipe:
        for name in serial:
            pipe.llen(SerialQueue(res.redis, name).inflight_key)
        held += sum(int(n) for n in pipe.execute())
    # On a Redis Cluster: acknowledged output not yet delivered to its queues.
    return held + outbox.pending(res.redis, [*reliable, *serial])


def run_periodic_jobs(res: Resources) -> None:
    """Run every periodic pipeline job once, now (``ichnaea process``)."""
    for job in scheduled_jobs(res.settings):
        if job.drains:
            run_job(job, res)
