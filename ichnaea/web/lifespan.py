"""Resources of the web role, opened in the lifespan and reached through typed state.

Nothing here connects eagerly: the engine and Redis pool connect on first
use, so the web role starts and answers ``/__lbheartbeat__`` while the
database or Redis is down, and recovers on its own when they come back.
"""

from __future__ import annotations

import gc
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass

import httpx
import redis.asyncio
from sqlalchemy.engine import Engine
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.types import Scope

from ichnaea.api.context import STATE_KEY as API_STATE_KEY
from ichnaea.api.context import ApiState
from ichnaea.api.keys import ApiKeyCache
from ichnaea.api.locate import calibration
from ichnaea.api.locate.fallback import FallbackClient, make_http_client
from ichnaea.api.locate.service import LocateService
from ichnaea.api.usage import UsageRecorder
from ichnaea.broker.client import connect, connect_async
from ichnaea.config import Settings
from ichnaea.geocode import Geocoder
from ichnaea.geoip import GeoIPReader, default_geoip_path
from ichnaea.index.live import IndexSettings, LiveIndex
from ichnaea.metrics import Metrics, make_metrics
from ichnaea.objectstore import ObjectStore, asset_store
from ichnaea.regions import RegionTable
from ichnaea.repositories.session import create_engine

log = logging.getLogger(__name__)

STATE_KEY = "ichnaea"
# Reading a replica: how long an announced station is read again until the
# replica has the announced write (beyond that, the index's catch-up).
REPLICA_WAIT_S = 30.0


@dataclass(slots=True)
class AppState:
    settings: Settings
    db: Engine
    redis: redis.asyncio.Redis
    geoip: GeoIPReader
    regions: RegionTable
    http: httpx.AsyncClient
    metrics: Metrics
    api: ApiState
    # ASSET_BUCKET, read by the website (map tiles, cell exports); None when unset.
    assets: ObjectStore | None = None


def metrics_of(scope: Scope) -> Metrics | None:
    """The metrics client of the app serving ``scope`` (None outside the lifespan)."""
    state = scope.get("state", {}).get(STATE_KEY)
    return state.metrics if isinstance(state, AppState) else None


def app_state(request: Request) -> AppState:
    state: AppState = getattr(request.state, STATE_KEY)
    return state


def open_state(settings: Settings) -> AppState:
    # First: a value that names no store stops the start with its message.
    assets = asset_store(settings.asset_bucket, endpoint_url=settings.s3_endpoint_url)
    regions = RegionTable.load()
    geoip = GeoIPReader.open(settings.geoip_path or default_geoip_path(), regions)
    db = create_engine(
        settings.db_readonly_url,
        readonly=True,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_pool_size,
    )
    client = connect_async(settings)
    http = make_http_client()
    index = None
    if settings.station_index:
        index = LiveIndex(
            db,
            connect(settings),
            IndexSettings(
                directory=settings.index_dir,
                refresh_s=settings.station_index_refresh_ms / 1000,
                catchup_s=settings.station_index_catchup_s,
                max_overlay_rows=settings.station_index_max_overlay_rows,
                rebuild_s=settings.station_index_rebuild_s,
                not_before_ns=settings.web_started_ns,
                replica_wait_s=REPLICA_WAIT_S if settings.db_reads_replica else 0.0,
            ),
        )
        index.start()
    metrics = make_metrics(settings)
    service = LocateService(
        db=db,
        redis=client,
        geocoder=Geocoder.load(regions),
        fallback=FallbackClient(http, client),
        executor=ThreadPoolExecutor(settings.db_pool_size, thread_name_prefix="db"),
        max_queue_backlog=settings.max_queue_backlog,
        index=index,
        calibration=calibration.load(settings.locate_confidence),
    )
    return AppState(
        settings=settings,
        db=db,
        redis=client,
        geoip=geoip,
        regions=regions,
        http=http,
        metrics=metrics,
        api=ApiState(settings, service, geoip, ApiKeyCache(), metrics, UsageRecorder(client)),
        assets=assets,
    )


async def close_state(state: AppState) -> None:
    await state.api.usage.close()  # before Redis closes: nothing counted is lost
    await state.api.service.close()
    state.api.service.executor.shutdown(wait=False, cancel_futures=True)
    index = state.api.service.index
    if index is not None:
        index.close()
        index.client.close()
    await state.http.aclose()
    await state.redis.aclose()
    state.db.dispose()
    state.geoip.close()
    state.metrics.close()


def make_lifespan(settings: Settings):  # type: ignore[no-untyped-def]
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[dict[str, object]]:
        state = open_state(settings)
        # What start-up loaded (region shapes, GeoIP, code: ~130,000 objects)
        # lives as long as the process; frozen, the collector no longer walks
        # it on every full collection (44 ms each, a p99 spike under load).
        gc.collect()
        gc.freeze()
        for default in settings.embedded_defaults():
            log.info("embedded default in use: %s", default)
        try:
            yield {STATE_KEY: state, API_STATE_KEY: state.api}
        finally:
            await close_state(state)
            gc.unfreeze()  # an app of a test run is not the process's last

    return lifespan
