"""Health and metadata endpoints: ``/__lbheartbeat__``, ``/__heartbeat__``, ``/__version__``,
``/contribute.json``.

``/__heartbeat__`` checks the three backends concurrently, each with a short
timeout, and answers 503 with the same body when any of them is down:

    {"database": {"up": true, "time": 2, "alembic_version": "..."},
     "geoip": {"up": true, "time": 0, "age_in_days": 4, "version": "..."},
     "redis": {"up": true, "time": 1}}

``time`` is milliseconds. A check that fails reports ``up: false``; one that
raises something unexpected reports ``up: null, time: -1`` (and is logged).

When the web role reads from a replica (``DB_READONLY_URI``), ``database``
also says whether it replicates and how far behind it is, without deciding
the status: ``"replica": {"running": true, "lag_s": 0}`` (``lag_s`` is the
server's ``Seconds_Behind_Master``, null while replication is stopped;
both null when the account may not ask).

With the station index on, ``station_index`` reports its state without
deciding the status (the database answers while the index is not up):
``{"up": true, "state": "ready", "generation": ..., "age_s": 812.4,
"stations": 123456, "overlay_rows": 17, "refreshed_s_ago": 0.31}``;
``state`` is ``starting``, ``building``, ``ready`` or ``failed`` (then
with ``error``), and a ``refreshed_s_ago`` far above the refresh interval
says the process no longer follows the pipeline's changes.
"""

from __future__ import annotations

import asyncio
import functools
import json
import logging
import time
from collections.abc import Awaitable, Callable
from importlib import metadata, resources
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import ichnaea
from ichnaea.broker.client import REDIS_ERRORS
from ichnaea.geoip import NULL_VERSION
from ichnaea.migrate import current_revision
from ichnaea.repositories.monitoring import read_replica_status
from ichnaea.web.lifespan import AppState, app_state

log = logging.getLogger(__name__)

CHECK_TIMEOUT_S = 5.0


async def lbheartbeat(request: Request) -> Response:
    return JSONResponse({"status": "OK"})


def _elapsed_ms(start: float) -> int:
    return round((time.perf_counter() - start) * 1000)


def _check_database_sync(state: AppState) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        with state.db.connect() as conn:
            conn.execute(text("SELECT 1"))
            revision = current_revision(conn)
            replica = read_replica_status(conn)
    except SQLAlchemyError as exc:
        log.warning("heartbeat: database down: %s", exc.__class__.__name__)
        return {"up": False, "time": 0, "alembic_version": "unknown"}
    result: dict[str, Any] = {"up": True, "time": _elapsed_ms(start), "alembic_version": revision}
    if replica is not None:
        # Reported, not deciding the status: a replica that lags or stopped
        # still answers (the station index serves what it read).
        result["replica"] = replica
    return result


async def _check_database(state: AppState) -> dict[str, Any]:
    return await run_in_threadpool(_check_database_sync, state)


async def _check_geoip(state: AppState) -> dict[str, Any]:
    start = time.perf_counter()
    if not state.geoip.ping():
        return {"up": False, "time": 0, "age_in_days": -1, "version": NULL_VERSION}
    return {
        "up": True,
        "time": _elapsed_ms(start),
        "age_in_days": state.geoip.age_in_days(),
        "version": state.geoip.version,
    }


async def _check_redis(state: AppState) -> dict[str, Any]:
    start = time.perf_counter()
    try:
        await state.redis.ping()
    except REDIS_ERRORS as exc:
        log.warning("heartbeat: redis down: %s", exc.__class__.__name__)
        return {"up": False, "time": 0}
    return {"up": True, "time": _elapsed_ms(start)}


async def _guarded(name: str, check: Callable[[], Awaitable[dict[str, Any]]]) -> dict[str, Any]:
    try:
        return await asyncio.wait_for(check(), CHECK_TIMEOUT_S)
    except TimeoutError:
        log.warning("heartbeat: %s check timed out after %ss", name, CHECK_TIMEOUT_S)
        return {"up": False, "time": 0}
    except Exception:  # a check must never take the heartbeat down; logged, reported as null
        log.exception("heartbeat: %s check raised", name)
        return {"up": None, "time": -1}


async def heartbeat(request: Request) -> Response:
    state = app_state(request)
    names = ("database", "geoip", "redis")
    checks = (
        lambda: _check_database(state),
        lambda: _check_geoip(state),
        lambda: _check_redis(state),
    )
    results = await asyncio.gather(*(_guarded(n, c) for n, c in zip(names, checks, strict=True)))
    body = dict(zip(names, results, strict=True))
    status = 200 if all(r["up"] is True for r in results) else 503
    index = state.api.service.index
    if index is not None:
        # Reported, never failing the check: until the index is up the
        # database answers the lookups.
        body["station_index"] = index.status()
    return JSONResponse(body, status_code=status)


def version_info(version_file: Path | None) -> dict[str, str]:
    """Build information: ``version.json`` when present, else the package metadata."""
    candidates = [version_file] if version_file else [Path.cwd() / "version.json"]
    for path in candidates:
        if path is not None and path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            return {k: str(data.get(k, "")) for k in ("source", "version", "commit", "build")}
    try:
        urls = metadata.metadata("ichnaea").get_all("Project-URL") or []
    except metadata.PackageNotFoundError:
        urls = []
    source = next((u.split(",", 1)[1].strip() for u in urls if "," in u), "unknown")
    return {"source": source, "version": ichnaea.__version__, "commit": "unknown", "build": ""}


async def version(request: Request) -> Response:
    return JSONResponse(version_info(app_state(request).settings.version_file))


@functools.cache
def _contribute_json() -> bytes:
    return (resources.files("ichnaea") / "data" / "contribute.json").read_bytes()


async def contribute(request: Request) -> Response:
    """The project's metadata (https://www.contributejson.org): served as shipped."""
    return Response(_contribute_json(), media_type="application/json")
