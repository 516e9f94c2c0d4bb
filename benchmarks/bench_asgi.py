"""CPU per request of the web app itself, in process: ichnaea's ASGI app beside the limit app.

    .venv/bin/python benchmarks/bench_asgi.py --db mysql://root@127.0.0.1:3306/ichnaea_bench_asgi
    .venv/bin/python benchmarks/bench_asgi.py --scenarios wifi --profile /tmp/wifi.prof

The HTTP load (``load_locate.py``) measures what a client sees, with the
server, the client and everything else on a 2-core machine sharing the
CPUs; its figures move by a factor of two between runs. This script takes
the server and the network out: it seeds the same synthetic city as
``load_locate.py`` (same generator, same bodies), opens ichnaea's app
with its lifespan (default configuration: station index, request log
on, written to ``/dev/null`` as a handler's stream would be), and calls
the ASGI app directly, ``--concurrency`` requests at a time on one
uvloop event loop, with the scope, ``receive`` and ``send`` a server
would give. Then it does the same with the limit app
(``benchmarks/limit_app.py``).

It prints, per scenario, the CPU time per request of each app (process
CPU time over the requests, so the Redis and database servers' own work
is not counted, but the index refresher thread's is) and ichnaea's cost
as a multiple of the limit app's. What uvicorn adds per request (HTTP
parsing, the transport) is in neither figure: add it to both when
comparing with the HTTP load's shares. ``--profile FILE`` writes a
cProfile of ichnaea's runs (read it with ``python -m pstats`` or
snakeviz).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import logging
import os
import random
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
import uvloop
from _servers import fresh_database
from limit_app import app as limit_app
from load_locate import CLIENT_IP, KEY, SCENARIOS, scenario_bodies, seed

from ichnaea.config import load_settings
from ichnaea.logging import configure_logging
from ichnaea.web.app import create_app

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
App = Callable[[Scope, Receive, Callable[..., Awaitable[None]]], Awaitable[None]]

PATHS = {"country": "/v1/country", "geosubmit": "/v2/geosubmit", "lbheartbeat": "/__lbheartbeat__"}


def scopes(name: str, bodies: list[bytes]) -> list[tuple[Scope, bytes]]:
    """What uvicorn would hand the app for the load's requests (headers as it lower-cases them)."""
    path = PATHS.get(name, "/v1/geolocate")
    out = []
    for body in bodies:
        get = name == "lbheartbeat"
        headers = [(b"host", b"127.0.0.1")]
        if not get:
            headers += [
                (b"content-type", b"application/json"),
                (b"x-forwarded-for", CLIENT_IP.encode()),
                (b"content-length", str(len(body)).encode()),
            ]
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "server": ("127.0.0.1", 8000),
            "client": ("127.0.0.1", 50000),
            "scheme": "http",
            "method": "GET" if get else "POST",
            "root_path": "",
            "path": path,
            "raw_path": path.encode(),
            "query_string": b"" if get else f"key={KEY}".encode(),
            "headers": headers,
        }
        out.append((scope, body))
    return out


class Lifespan:
    """Run an app's lifespan as a server does; the state it yields is copied into each scope."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.state: dict[str, Any] = {}
        self._in: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._out: asyncio.Queue[dict[str, Any]] = asyncio.Queue()

    async def __aenter__(self) -> Lifespan:
        scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": self.state}
        self._task = asyncio.create_task(self.app(scope, self._in.get, self._out.put))
        await self._in.put({"type": "lifespan.startup"})
        message = await self._out.get()
        if message["type"] != "lifespan.startup.complete":
            raise RuntimeError(f"lifespan start-up failed: {message}")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._in.put({"type": "lifespan.shutdown"})
        await self._out.get()
        await self._task


async def call(app: App, scope: Scope, body: bytes, state: dict[str, Any]) -> int:
    """One request through the app; its status."""
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if sent:
            await asyncio.sleep(3600)  # a real server's receive waits for a disconnect
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app({**scope, "state": state.copy()}, receive, send)
    return status


async def run(
    app: App, requests: list[tuple[Scope, bytes]], state: dict[str, Any], n: int, concurrency: int
) -> tuple[float, dict[int, int]]:
    """CPU seconds per request over ``n`` requests, and the statuses seen."""
    statuses: dict[int, int] = {}
    per_task = n // concurrency

    async def worker(offset: int) -> None:
        for i in range(per_task):
            scope, body = requests[(offset + i * concurrency) % len(requests)]
            status = await call(app, scope, body, state)
            statuses[status] = statuses.get(status, 0) + 1

    start = time.process_time()
    await asyncio.gather(*(worker(k) for k in range(concurrency)))
    return (time.process_time() - start) / (per_task * concurrency), statuses


async def wait_for_index(state: dict[str, Any], timeout_s: float = 600) -> None:
    index = state["api"].service.index
    deadline = time.monotonic() + timeout_s
    while index is not None and not index.ready:
        if time.monotonic() > deadline:
            raise RuntimeError("the station index was not ready in time")
        await asyncio.sleep(0.05)


async def bench(args: argparse.Namespace, env: dict[str, str], sites: list[Any]) -> None:
    settings = load_settings(env)
    configure_logging(settings.logging_level, role="web")
    # The request log goes where a deployment's would, minus the disk: a stream.
    for handler in logging.getLogger().handlers:
        if hasattr(handler, "setStream"):
            old = handler.setStream(open(os.devnull, "w"))  # noqa: SIM115 - lives as long as the run
            if isinstance(old, io.TextIOWrapper) and old is not sys.stderr:
                old.detach()  # the logging wrapper of stderr's buffer: stderr stays open
    ichnaea = create_app(settings)
    rng = random.Random(7)
    profile = cProfile.Profile() if args.profile else None
    rows = []
    async with Lifespan(ichnaea) as life, Lifespan(limit_app) as limit:
        await wait_for_index(life.state)
        for name in args.scenarios.split(","):
            requests = scopes(name, scenario_bodies(name, sites, rng))
            figures: dict[str, list[float]] = {"ichnaea": [], "limit": []}
            for _ in range(args.rounds):
                for label, app, state in (
                    ("ichnaea", ichnaea, life.state),
                    ("limit", limit_app, limit.state),
                ):
                    await run(app, requests, state, args.requests // 10, args.concurrency)
                    if profile is not None and label == "ichnaea":
                        profile.enable()
                    cpu, statuses = await run(app, requests, state, args.requests, args.concurrency)
                    if profile is not None and label == "ichnaea":
                        profile.disable()
                    if set(statuses) != {200}:
                        print(f"{name} {label}: statuses {statuses}", file=sys.stderr)
                    figures[label].append(cpu * 1e6)
            best = {label: min(values) for label, values in figures.items()}
            rows.append((name, best["ichnaea"], best["limit"]))
            print(
                f"{name}: ichnaea {best['ichnaea']:.1f} µs, limit {best['limit']:.1f} µs "
                f"(rounds: {figures})",
                file=sys.stderr,
            )
    print("| workload | ichnaea µs CPU/request | limit app µs | ratio |")
    print("| --- | ---: | ---: | ---: |")
    for name, mine, theirs in rows:
        print(f"| {name} | {mine:.1f} | {theirs:.1f} | {mine / theirs:.1f}x |")
    if profile is not None:
        profile.dump_stats(args.profile)
        print(f"profile written to {args.profile}", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", default="mysql://root@127.0.0.1:3306/ichnaea_bench_asgi")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--wifis", type=int, default=20_000)
    parser.add_argument("--blues", type=int, default=200)
    parser.add_argument("--cells", type=int, default=2_000)
    parser.add_argument("--requests", type=int, default=20_000, help="per round and app")
    parser.add_argument("--rounds", type=int, default=3, help="the best round is shown")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--profile", type=Path, help="write a cProfile of ichnaea's runs here")
    args = parser.parse_args()
    env = {**os.environ, "DB_READWRITE_URI": args.db, "DB_READONLY_URI": args.db}
    env["REDIS_URI"] = args.redis
    env["STATION_INDEX_DIR"] = tempfile.mkdtemp(prefix="ichnaea-bench-asgi-")
    env["ICHNAEA_WEB_STARTED_NS"] = str(time.time_ns())
    settings = load_settings(env)
    redis.Redis.from_url(args.redis).flushdb()
    fresh_database(settings)
    db = sa.create_engine(settings.db_readwrite_url)
    sites = seed(db, args.wifis, args.blues, args.cells, random.Random(42))
    db.dispose()
    uvloop.run(bench(args, env, sites))


if __name__ == "__main__":
    main()
