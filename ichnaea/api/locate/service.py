"""The locate searchers: run the sources in order, pick the best answer.

Position search (``/v1/geolocate``) asks, in order, the internal station
data, GeoIP and the key's external fallback provider; each source sees the
results gathered so far (the fallback runs only if they are not good
enough). Region search (``/v1/country``) asks internal data and GeoIP.

Side effect of a position search (spec locate.md 3.10): when the internal
data found a position and not every network of the query was already
confirmed today, the query is — subject to the key's and the global
sampling rates — queued as a ``query``-source report for the data
pipeline. That path never fails the request: a Redis error only skips the
report (quirk Q5 fixed: the original answered 500 when reading the global
sample rate failed).

The service also queues the submit API's reports (:meth:`queue_reports`),
so both APIs measure the backlog one way (``ichnaea.pipeline.ingest.backlog``).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, TypeVar

import redis
import redis.asyncio
import sentry_sdk
from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from ichnaea.api.keys import ApiKey
from ichnaea.api.locate.calibration import Calibration
from ichnaea.api.locate.calibration import load as load_calibration
from ichnaea.api.locate.fallback import FallbackClient
from ichnaea.api.locate.query import Query
from ichnaea.api.locate.result import Position, Region, best_position, best_region
from ichnaea.api.locate.sources import fallback, geoip, internal
from ichnaea.breaker import CircuitBreaker
from ichnaea.broker import keyspace
from ichnaea.broker.client import REDIS_ERRORS
from ichnaea.broker.queue import GroupPusher, encode_item
from ichnaea.geocode import Geocoder
from ichnaea.index.live import LiveIndex
from ichnaea.pipeline.ingest.backlog import EXPORT_TARGETS_TTL_S, waiting_elsewhere_async
from ichnaea.pipeline.ingest.incoming import ExportTarget, load_targets
from ichnaea.privacy import strip_opted_out

log = logging.getLogger(__name__)

SAMPLE_RATE_TTL_S = 1.0

T = TypeVar("T")


@dataclass(slots=True)
class LocateService:
    """The collaborators of a search; one per process, built in the lifespan."""

    db: Engine
    redis: redis.asyncio.Redis
    geocoder: Geocoder
    fallback: FallbackClient
    # Shared by the key lookup and the station lookups of this process.
    db_breaker: CircuitBreaker = field(default_factory=CircuitBreaker)
    max_queue_backlog: int = 1_000_000
    # Database work runs here, off the event loop; sized like the DB pool.
    executor: ThreadPoolExecutor = field(default_factory=lambda: ThreadPoolExecutor(20))
    # The station index; None when disabled. Not ready yet: the database answers.
    index: LiveIndex | None = None
    # The radius our own answers state (LOCATE_CONFIDENCE).
    calibration: Calibration = field(default_factory=load_calibration)
    # The radii the best answer is chosen by: 95 %, whatever is stated.
    choosing: Calibration = field(default_factory=load_calibration)
    _sample_rate: float = 100.0
    _sample_rate_read_at: float = -math.inf
    # The export configs, for the backlog measure (their queues count).
    _export_targets: list[ExportTarget] = field(default_factory=list)
    _export_targets_read_at: float = -math.inf
    _export_targets_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    _incoming: GroupPusher | None = None

    async def run_blocking(self, func: Callable[..., T], *args: Any) -> T:
        """Run blocking (database) work in this service's thread pool.

        A plain executor hop: cheaper per call than Starlette's/anyio's
        threadpool helper, which matters on the locate hot path.
        """
        return await asyncio.get_running_loop().run_in_executor(self.executor, func, *args)

    async def locate(self, query: Query, api_key: ApiKey, *, now: datetime) -> Position | None:
        results: list[Position] = []
        if query.has_network_data:
            if self.index is not None and self.index.ready:
                found = internal.search_positions_in(self.index, query, now)
            else:
                found = await self.run_blocking(
                    internal.search_positions, self.db, self.db_breaker, query, now
                )
            # The query report keeps the original's radius: the pipeline's
            # observation weights were set for it (spec pipeline.md 8).
            if api_key.store_sample_locate:  # else never sampled: nothing to decide
                await self._store_query(query, api_key, found)
            results += self.choosing.apply(found)
        if geoip.should_search(query):
            results += geoip.search_position(query)
        if fallback.should_search(query, api_key, results):
            results += await fallback.search(self.fallback, query, api_key)
        best = best_position(results)
        if best is None or self.calibration.confidence == self.choosing.confidence:
            return best
        # Chosen by the 95 % radii, stated at LOCATE_CONFIDENCE: the
        # narrower 68 % radii would split a Wi-Fi answer from the cells
        # around it more often and let the cells win (calibration.py).
        return self.calibration.apply([best])[0]

    async def region(self, query: Query, *, now: datetime) -> Region | None:
        results: list[Region] = []
        if query.has_network_data:
            if self.index is not None and self.index.ready:
                results += internal.search_regions_in(self.index, query, self.geocoder, now)
            else:
                results += await self.run_blocking(
                    internal.search_regions, self.db, self.db_breaker, query, self.geocoder, now
                )
        if geoip.should_search(query):
            results += geoip.search_region(query)
        return best_region(results)

    async def _global_sample_rate(self) -> float:
        """The operator's global sampling rate (0-100), re-read at most once a second."""
        now = time.monotonic()
        if now - self._sample_rate_read_at < SAMPLE_RATE_TTL_S:
            return self._sample_rate
        raw = await self.redis.get(keyspace.SAMPLE_RATE)
        try:
            rate = 100.0 if raw is None else float(raw)
        except ValueError:
            rate = 100.0
        self._sample_rate, self._sample_rate_read_at = rate, now
        return rate

    async def _targets(self) -> list[ExportTarget]:
        """The export configs, re-read at most every ``EXPORT_TARGETS_TTL_S``.

        When the database cannot be read, the last ones read are used (none
        before the first read): the submit API keeps working without it.
        """
        if self._export_targets_fresh():
            return self._export_targets
        if self._export_targets_lock.locked() and self._export_targets_read_at > -math.inf:
            return self._export_targets  # being refreshed: the previous ones serve meanwhile
        # Before the first read completes, requests wait for it: answering
        # them with no targets would not count the export queues.
        async with self._export_targets_lock:
            if self._export_targets_fresh():
                return self._export_targets
            try:
                self._export_targets = await self.run_blocking(_read_targets, self.db)
                self._export_targets_read_at = time.monotonic()
            except SQLAlchemyError as exc:
                self.db_breaker.failed()  # the next try waits for the breaker
                log.warning("export configs not read, database unavailable: %s", type(exc).__name__)
        return self._export_targets

    def _export_targets_fresh(self) -> bool:
        age_s = time.monotonic() - self._export_targets_read_at
        return age_s < EXPORT_TARGETS_TTL_S or not self.db_breaker.closed

    async def queue_reports(self, encoded: list[bytes], *, limit: int) -> bool:
        """Queue encoded report items on ``update_incoming``, all or none; False past the limit.

        ``limit`` bounds the waiting reports after the push (see
        ``ichnaea.pipeline.ingest.backlog``). Concurrent calls share one Redis
        round trip (:class:`ichnaea.broker.queue.GroupPusher`); each returns once
        its own push is acknowledged. Redis errors propagate.
        """
        if self._incoming is None:
            self._incoming = GroupPusher(self.redis, keyspace.INCOMING, self._waiting_elsewhere)
        return await self._incoming.push(encoded, limit=limit)

    async def close(self) -> None:
        """Close what the service opened itself (the queue pusher's connection)."""
        if self._incoming is not None:
            await self._incoming.close()

    async def _waiting_elsewhere(self) -> int:
        targets = await self._targets()
        return await waiting_elsewhere_async(self.redis, targets, besides=keyspace.INCOMING)

    async def _store_query(self, query: Query, api_key: ApiKey, found: list[Position]) -> None:
        best = best_position(found)
        if best is None:
            return
        seen: dict[str, set[bytes]] = {"area": set(), "blue": set(), "cell": set(), "wifi": set()}
        for kind, key, seen_today in best.used_networks:
            if seen_today:
                seen[kind].add(key)
        if seen == query.networks():
            return  # every network was already confirmed today
        try:
            if not api_key.store_sample("locate", await self._global_sample_rate()):
                return
            report = strip_opted_out(query.json())  # never stored: ichnaea.privacy
            report["position"] = {
                "latitude": best.lat,
                "longitude": best.lon,
                "accuracy": best.accuracy,
                "source": "query",
            }
            item = {"api_key": api_key.valid_key, "source": "query", "report": report}
            # Query reports are the first to go when the pipeline falls behind.
            await self.queue_reports([encode_item(item)], limit=self.max_queue_backlog // 2)
        except REDIS_ERRORS as exc:
            log.warning("query report not stored, redis unavailable: %s", exc.__class__.__name__)
            sentry_sdk.capture_exception(exc)


def _read_targets(db: Engine) -> list[ExportTarget]:
    with Session(db) as session:
        return load_targets(session)
