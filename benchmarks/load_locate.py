"""Load driver for the API: ``ichnaea web`` beside the framework limit app, same bodies.

    .venv/bin/python benchmarks/load_locate.py \
        --db mysql://root@127.0.0.1:3306/ichnaea_bench --redis redis://127.0.0.1:6379/9
    .venv/bin/python benchmarks/load_locate.py --quick     # a few seconds per scenario

It (re)creates the database, migrates it and seeds a synthetic city around
a few real ones: ``--wifis`` Wi-Fi access points (default 100,000) in places
of 20 (a building's worth, within about 30 m), ``--blues`` Bluetooth beacons
(default 1,000) in places of 10, and ``--cells`` LTE cells (default 10,000)
in sites of 6 (within about 1 km); each Wi-Fi place lies near one cell
site. The Redis database given is flushed. Then it starts ``ichnaea web``
(default configuration: request log on, query sampling as the key says)
and ``benchmarks/limit_app.py`` (bare Starlette + orjson: reads and parses
the body, answers a constant; see its docstring) with ``--processes``
processes each, on free ports.

Each scenario's bodies are built once and sent, byte for byte, to both:

* ``wifi``: ``/v1/geolocate`` with 2 to 20 access points of one place (and
  sometimes one or two unknown ones), with signal strengths;
* ``cell``: 1 to 6 cells of one site, with signal strengths;
* ``wifi+cell``: both, the place near the site;
* ``ip-only``: an empty body (a GeoIP answer);
* ``country``: ``/v1/country`` with an empty body;
* ``geosubmit``: ``/v2/geosubmit`` with one report (a GNSS position, the
  access points, beacons and cells seen there);
* ``lbheartbeat``: ``GET /__lbheartbeat__``.

Every request comes through ``X-Forwarded-For`` from a public, GeoIP-known
address (the loopback peer is a trusted proxy by default), as a phone's would.

For each scenario it drives ichnaea, then the limit app, then both again
(``--rounds`` rounds, default two, after a short warm-up of each), ``--connections`` keep-alive
HTTP/1.1 connections for ``--seconds`` seconds each time, and prints a table:
the median requests/s of the rounds, ichnaea's p50 and p99 latency (the
rounds' range), and ichnaea's share of the limit app's requests/s.
Every answer's status is checked; any non-200 is shown in the table.

The client is a minimal asyncio protocol on uvloop (pre-built requests,
no parsing beyond the status line and Content-Length) so that, on a small
machine, as much CPU as possible is left to the servers under test; its own
CPU use per run is printed (``client_cpu``: CPU seconds per wall second), as
a client near 1.0 caps the figure. So are the CPU µs each server's processes
spent per answered request (``server_cpu_us``, also in the table as ichnaea /
limit app), steadier than requests/s on a shared machine, and the CPU seconds
per wall second of the database and Redis servers (``storage_cpu``). Only
loopback addresses are used; every loop is bounded by time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import cast

import numpy as np
import redis
import sqlalchemy as sa
import uvloop
from _servers import free_port, fresh_database, wait_for_index, wait_ready

from ichnaea.codecs import encode_cellid, mac_shard_id
from ichnaea.config import load_settings
from ichnaea.enums import Radio
from ichnaea.models.api_key import ApiKey
from ichnaea.models.cell import CELL_TABLES
from ichnaea.models.station import BLUE_SHARDS, WIFI_SHARDS

CITIES = [(51.5, -0.1), (52.52, 13.40), (48.85, 2.35), (40.71, -74.0), (35.68, 139.69)]
KEY = "bench"
CLIENT_IP = "81.2.69.192"  # London in the bundled GeoIP database
WIFI_PER_PLACE = 20
BLUE_PER_PLACE = 10
CELLS_PER_SITE = 6
SCENARIOS = ("wifi", "cell", "wifi+cell", "ip-only", "country", "geosubmit", "lbheartbeat")
BODIES_PER_SCENARIO = 2000


@dataclass
class Site:
    """One cell site and the places near it (each a list of MACs seen together)."""

    lat: float
    lon: float
    cells: list[tuple[int, int, int, int]] = field(default_factory=list)  # LTE (mcc, mnc, lac, cid)
    wifi_places: list[list[str]] = field(default_factory=list)
    blue_places: list[list[str]] = field(default_factory=list)


def _mac(rng: random.Random) -> str:
    # A globally administered unicast address, as a real access point has.
    return f"{rng.getrandbits(48) & ~(0x03 << 40):012x}"


def _station(lat: float, lon: float, common: dict[str, object]) -> dict[str, object]:
    return {"lat": lat, "lon": lon, "max_lat": lat, "min_lat": lat,
            "max_lon": lon, "min_lon": lon, **common}  # fmt: skip


def seed(engine: sa.Engine, wifis: int, blues: int, cells: int, rng: random.Random) -> list[Site]:
    """Write the stations and the API key; return the sites the queries are drawn from."""
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    common = {
        "region": None,
        "samples": 50,
        "created": now.replace(year=now.year - 1),
        "modified": now,
        "last_seen": now.date(),
        "radius": 50,
        "weight": 50.0,
    }
    sites = []
    cell_rows = []
    for s in range(max(1, cells // CELLS_PER_SITE)):
        lat0, lon0 = CITIES[s % len(CITIES)]
        site = Site(lat0 + rng.uniform(-0.2, 0.2), lon0 + rng.uniform(-0.2, 0.2))
        for c in range(CELLS_PER_SITE):
            mcc, mnc, lac, cid = 234, 30, 1 + s // 20, 1 + s * CELLS_PER_SITE + c
            lat, lon = site.lat + rng.uniform(-0.01, 0.01), site.lon + rng.uniform(-0.01, 0.01)
            cell_rows.append(
                {
                    **_station(lat, lon, common),
                    "cellid": encode_cellid(Radio.lte, mcc, mnc, lac, cid),
                    "radio": int(Radio.lte),
                    "mcc": mcc,
                    "mnc": mnc,
                    "lac": lac,
                    "cid": cid,
                    "radius": rng.randint(1000, 3000),
                }
            )
            site.cells.append((mcc, mnc, lac, cid))
        sites.append(site)

    def places(
        count: int, per_place: int, spread: float, blue: bool
    ) -> dict[str, list[dict[str, object]]]:
        by_shard: dict[str, list[dict[str, object]]] = {}
        for p in range(max(1, count // per_place)):
            site = sites[p % len(sites)]
            lat0 = site.lat + rng.uniform(-0.005, 0.005)
            lon0 = site.lon + rng.uniform(-0.005, 0.005)
            macs = []
            for _ in range(per_place):
                mac = _mac(rng)
                lat, lon = lat0 + rng.uniform(-spread, spread), lon0 + rng.uniform(-spread, spread)
                by_shard.setdefault(mac_shard_id(mac), []).append(
                    {"mac": bytes.fromhex(mac), **_station(lat, lon, common)}
                )
                macs.append(mac)
            (site.blue_places if blue else site.wifi_places).append(macs)
        return by_shard

    wifi_rows = places(wifis, WIFI_PER_PLACE, 3e-4, blue=False)
    blue_rows = places(blues, BLUE_PER_PLACE, 1e-4, blue=True) if blues else {}
    with engine.begin() as conn:
        for shards, rows_by_shard in ((WIFI_SHARDS, wifi_rows), (BLUE_SHARDS, blue_rows)):
            for shard_id, rows in rows_by_shard.items():
                _insert(conn, shards[shard_id].__table__, rows)  # type: ignore[attr-defined]
        _insert(conn, CELL_TABLES[Radio.lte].__table__, cell_rows)  # type: ignore[attr-defined]
        conn.execute(
            ApiKey.__table__.insert().values(  # type: ignore[attr-defined]
                valid_key=KEY,
                maxreq=0,
                allow_locate=True,
                allow_region=True,
                allow_fallback=False,
                store_sample_locate=0,
                store_sample_submit=100,
            )
        )
    return sites


def _insert(conn: sa.Connection, table: sa.Table, rows: list[dict[str, object]]) -> None:
    for start in range(0, len(rows), 5000):
        conn.execute(table.insert(), rows[start : start + 5000])


def _wifis(site: Site, rng: random.Random) -> list[dict[str, object]]:
    place = rng.choice(site.wifi_places)
    seen = rng.sample(place, rng.randint(2, len(place)))
    if rng.random() < 0.2:  # a phone's hotspot or a new router nobody taught us yet
        seen[rng.randrange(len(seen)) :] = [_mac(rng) for _ in range(rng.randint(1, 2))]
        seen = seen[:WIFI_PER_PLACE]
    return [{"macAddress": m, "signalStrength": rng.randint(-95, -40)} for m in seen]


def _cells(site: Site, rng: random.Random, most: int = CELLS_PER_SITE) -> list[dict[str, object]]:
    return [
        {
            "radioType": "lte",
            "mobileCountryCode": mcc,
            "mobileNetworkCode": mnc,
            "locationAreaCode": lac,
            "cellId": cid,
            "signalStrength": rng.randint(-120, -70),
        }
        for mcc, mnc, lac, cid in rng.sample(site.cells, rng.randint(1, most))
    ]


def _report(site: Site, rng: random.Random) -> dict[str, object]:
    report: dict[str, object] = {
        "timestamp": int(time.time() * 1000) - rng.randint(0, 3_600_000),
        "position": {
            "latitude": round(site.lat + rng.uniform(-0.005, 0.005), 7),
            "longitude": round(site.lon + rng.uniform(-0.005, 0.005), 7),
            "accuracy": round(rng.uniform(3, 30), 1),
            "source": "gnss",
        },
        "wifiAccessPoints": _wifis(site, rng),
        "cellTowers": _cells(site, rng, 2),
    }
    if site.blue_places:
        blues = rng.choice(site.blue_places)
        report["bluetoothBeacons"] = [
            {"macAddress": m, "signalStrength": rng.randint(-100, -60)}
            for m in rng.sample(blues, rng.randint(1, len(blues)))
        ]
    return report


def scenario_bodies(name: str, sites: list[Site], rng: random.Random) -> list[bytes]:
    """The bodies of one scenario, drawn once (an empty list for a GET without body)."""
    if name in ("ip-only", "country"):
        return [b"{}"]
    if name == "lbheartbeat":
        return [b""]
    bodies = []
    for _ in range(BODIES_PER_SCENARIO):
        site = rng.choice(sites)
        if name == "wifi":
            body: dict[str, object] = {"wifiAccessPoints": _wifis(site, rng)}
        elif name == "cell":
            body = {"cellTowers": _cells(site, rng)}
        elif name == "wifi+cell":
            body = {"cellTowers": _cells(site, rng), "wifiAccessPoints": _wifis(site, rng)}
        elif name == "geosubmit":
            body = {"items": [_report(site, rng)]}
        else:
            raise ValueError(f"unknown scenario {name!r}")
        bodies.append(json.dumps(body).encode())
    return bodies


def requests_for(name: str, bodies: list[bytes]) -> list[bytes]:
    """Whole HTTP/1.1 requests, the same bytes for both servers."""
    if name == "lbheartbeat":
        return [b"GET /__lbheartbeat__ HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"]
    path = {"country": "/v1/country", "geosubmit": "/v2/geosubmit"}.get(name, "/v1/geolocate")
    return [
        (
            f"POST {path}?key={KEY} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Content-Type: application/json\r\nX-Forwarded-For: {CLIENT_IP}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    ]


class _Connection(asyncio.Protocol):
    """One keep-alive connection: send a request, read its answer, send the next."""

    def __init__(self, run: _Run, first: int) -> None:
        self.run = run
        self.next = first
        self.buffer = b""
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        requests = self.run.requests
        self.sent_at = time.perf_counter()
        self.transport.write(requests[self.next % len(requests)])
        self.next += 1

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            length = 0
            if (at := head.find(b"\r\ncontent-length:")) >= 0:
                line_end = head.find(b"\r\n", at + 2)
                length = int(head[at + 17 : line_end if line_end >= 0 else len(head)])
            if len(self.buffer) < end + 4 + length:
                return
            status = int(head[9:12])
            self.buffer = self.buffer[end + 4 + length :]
            now = time.perf_counter()
            self.run.latencies.append(now - self.sent_at)
            self.run.statuses[status] = self.run.statuses.get(status, 0) + 1
            assert self.transport is not None
            if now >= self.run.deadline:
                self.transport.close()
                return
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if time.perf_counter() < self.run.deadline:
            self.run.broken += 1
        if not self.closed.done():
            self.closed.set_result(None)


@dataclass
class _Run:
    requests: list[bytes]
    deadline: float
    latencies: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)
    broken: int = 0


async def _keep_busy(port: int, run: _Run, rng: random.Random) -> None:
    loop = asyncio.get_running_loop()
    while time.perf_counter() < run.deadline:
        conn = _Connection(run, rng.randrange(len(run.requests)))
        transport, _ = await loop.create_connection(lambda: conn, "127.0.0.1", port)  # noqa: B023
        try:
            # Bounded: a server that stops answering ends the run, not the script.
            await asyncio.wait_for(conn.closed, run.deadline - time.perf_counter() + 10)
        except TimeoutError:
            transport.abort()
            run.broken += 1
            return


async def _drive(port: int, requests: list[bytes], connections: int, seconds: float) -> _Run:
    run = _Run(requests, time.perf_counter() + seconds)
    rng = random.Random(port)
    await asyncio.gather(*(_keep_busy(port, run, rng) for _ in range(connections)))
    return run


@dataclass
class Figures:
    """One run against one server."""

    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    broken: int  # connections the server closed before the end of the run
    client_cpu: float  # the load client's CPU seconds per wall second
    # The server's processes' CPU µs per answered request: steadier than
    # requests/s on a shared machine, and comparable between the two apps.
    server_cpu_us: float = float("nan")
    # CPU seconds per wall second of the database and Redis servers.
    storage_cpu: float = float("nan")


_TICK_S = 1 / os.sysconf("SC_CLK_TCK")
STORAGE_COMMANDS = frozenset(("mariadbd", "mysqld", "redis-server"))


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU seconds of ``pids`` so far (those that still run)."""
    total = 0.0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) * _TICK_S  # utime, stime
    return total


def storage_pids() -> list[int]:
    """The database and Redis servers of this machine (by command name)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "comm").read_text().strip() in STORAGE_COMMANDS:
                    pids.append(int(entry.name))
            except OSError:
                continue
    return pids


def drive(
    port: int, requests: list[bytes], connections: int, seconds: float, server_pid: int = 0
) -> Figures:
    """Keep ``connections`` connections busy for ``seconds``; requests/s, latency, statuses.

    With ``server_pid``, also the CPU its processes and the storage servers used.
    """
    servers = [server_pid, *_children(server_pid)] if server_pid else []
    storage = storage_pids()
    server_cpu, storage_cpu = cpu_seconds(servers), cpu_seconds(storage)
    cpu, start = time.process_time(), time.perf_counter()
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        run = runner.run(_drive(port, requests, connections, seconds))
    elapsed = time.perf_counter() - start
    server_cpu = cpu_seconds(servers) - server_cpu
    storage_cpu = cpu_seconds(storage) - storage_cpu
    lat_ms = np.array(run.latencies or [float("nan")]) * 1000
    return Figures(
        requests=len(run.latencies),
        rps=round(len(run.latencies) / elapsed, 1),
        p50_ms=round(float(np.percentile(lat_ms, 50)), 1),
        p99_ms=round(float(np.percentile(lat_ms, 99)), 1),
        statuses=run.statuses,
        broken=run.broken,
        client_cpu=round((time.process_time() - cpu) / elapsed, 2),
        server_cpu_us=round(1e6 * server_cpu / max(len(run.latencies), 1), 1)
        if servers
        else float("nan"),
        storage_cpu=round(storage_cpu / elapsed, 2),
    )


def _start(
    command: list[str], env: dict[str, str], log: Path
) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    with log.open("ab") as out:
        proc = subprocess.Popen([*command, "--port", str(port)], env=env, stdout=out, stderr=out)
    try:
        wait_ready(port)
    except RuntimeError:
        proc.terminate()
        raise
    return proc, port


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        for child in (task / "children").read_text().split():
            found += [int(child), *_children(int(child))]
    return found


def resident_memory(pid: int) -> list[str]:
    """``VmRSS`` (anonymous + file-backed, the mapped index among them) of ``pid``'s processes."""
    lines = []
    for process in [pid, *_children(pid)]:
        try:
            status = Path(f"/proc/{process}/status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        names = ("VmRSS", "RssAnon", "RssFile")
        parts = ", ".join(f"{name} {fields[name].strip()}" for name in names)
        lines.append(f"pid {process}: {parts}")
    return lines


def _span(values: list[float]) -> str:
    low, high = min(values), max(values)
    return f"{low:,.1f}" if low == high else f"{low:,.1f}-{high:,.1f}"


def _non_200(runs: list[Figures]) -> str:
    bad: dict[str, int] = {}
    for run in runs:
        for status, count in run.statuses.items():
            if status != 200:
                bad[str(status)] = bad.get(str(status), 0) + count
        if run.broken:
            bad["broken"] = bad.get("broken", 0) + run.broken
    return ", ".join(f"{k}: {v:,}" for k, v in sorted(bad.items())) or "none"


def table(results: dict[str, dict[str, list[Figures]]]) -> str:
    """The Markdown table: medians of the rounds, ichnaea's latency span, the share."""
    lines = [
        "| workload | ichnaea req/s | p50 ms | p99 ms | limit app req/s | share "
        "| server CPU µs/req | non-200 |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, by_app in results.items():
        ours = statistics.median(r.rps for r in by_app["ichnaea"])
        limit = statistics.median(r.rps for r in by_app["limit"])
        lines.append(
            f"| {name} | {ours:,.0f} | {_span([r.p50_ms for r in by_app['ichnaea']])} "
            f"| {_span([r.p99_ms for r in by_app['ichnaea']])} | {limit:,.0f} "
            f"| {100 * ours / limit:.1f} % "
            f"| {statistics.median(r.server_cpu_us for r in by_app['ichnaea']):.0f} / "
            f"{statistics.median(r.server_cpu_us for r in by_app['limit']):.0f} "
            f"| {_non_200(by_app['ichnaea'] + by_app['limit'])} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", default="mysql://root@127.0.0.1:3306/ichnaea_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--wifis", type=int, default=100_000)
    parser.add_argument("--blues", type=int, default=1_000)
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=15.0, help="per run")
    parser.add_argument(
        "--rounds",
        type=int,
        default=2,
        help="rounds per scenario, each ichnaea then the limit app; the table shows medians",
    )
    parser.add_argument("--warmup", type=float, default=2.0, help="seconds, per app and scenario")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: 2 s per run, 0.5 s warm-up, 5,000 Wi-Fi"
    )
    parser.add_argument(
        "--log-level",
        help="LOGGING_LEVEL of ichnaea web [default: its own, INFO: request log on]",
    )
    parser.add_argument(
        "--server-log",
        type=Path,
        default=Path(os.devnull),
        help="where both servers' output goes (the request log is large) [default: discarded]",
    )
    parser.add_argument(
        "--no-index",
        action="store_true",
        help="STATION_INDEX=false: station lookups from the database per request",
    )
    parser.add_argument(
        "--limit-reuse-port",
        action="store_true",
        help="run the limit app's processes as `ichnaea web` runs its own: one SO_REUSEPORT "
        "socket each (default: uvicorn's supervisor, one shared socket)",
    )
    parser.add_argument("--json", type=Path, help="also write every run's figures here")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.warmup = 2.0, 0.5
        args.wifis, args.blues, args.cells = 5_000, 200, 600
    scenarios = args.scenarios.split(",")
    if unknown := set(scenarios) - set(SCENARIOS):
        parser.error(f"unknown scenarios: {', '.join(sorted(unknown))}")
    rng = random.Random(42)

    env = {**os.environ, "DB_READWRITE_URI": args.db, "DB_READONLY_URI": args.db}
    env["REDIS_URI"] = args.redis
    if args.log_level:
        env["LOGGING_LEVEL"] = args.log_level
    # A fresh index directory: one left by an earlier run holds other stations.
    index_dir = Path(tempfile.mkdtemp(prefix="ichnaea-bench-index-"))
    env["STATION_INDEX"] = "false" if args.no_index else "true"
    env["STATION_INDEX_DIR"] = str(index_dir)
    settings = load_settings(env)
    redis.Redis.from_url(args.redis).flushdb()
    fresh_database(settings)
    db = sa.create_engine(settings.db_readwrite_url)
    start = time.perf_counter()
    sites = seed(db, args.wifis, args.blues, args.cells, rng)
    db.dispose()
    print(
        f"seeded {args.wifis} Wi-Fi, {args.blues} Bluetooth and {args.cells} cells "
        f"in {time.perf_counter() - start:.1f} s",
        file=sys.stderr,
    )

    here = Path(__file__).resolve().parent
    processes = ["--processes", str(args.processes)]
    limit_options = ["--reuse-port"] if args.limit_reuse_port else []
    servers: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    results: dict[str, dict[str, list[Figures]]] = {}
    try:
        servers["ichnaea"] = _start(
            [sys.executable, "-m", "ichnaea", "web", *processes], env, args.server_log
        )
        if not args.no_index:
            started = time.perf_counter()
            wait_for_index(servers["ichnaea"][1], args.processes)
            print(f"station index up in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        servers["limit"] = _start(
            [sys.executable, str(here / "limit_app.py"), *processes, *limit_options],
            env,
            args.server_log,
        )
        for scenario in scenarios:
            requests = requests_for(scenario, scenario_bodies(scenario, sites, rng))
            results[scenario] = {"ichnaea": [], "limit": []}
            for _, port in servers.values():
                drive(port, requests, args.connections, args.warmup)
            for round_ in range(1, args.rounds + 1):
                for app, (proc, port) in servers.items():
                    run = drive(port, requests, args.connections, args.seconds, proc.pid)
                    results[scenario][app].append(run)
                    print(f"{scenario} {app} round {round_}: {run}", file=sys.stderr)
        memory = resident_memory(servers["ichnaea"][0].pid)
        print("ichnaea web processes, resident memory:", file=sys.stderr)
        for line in memory:
            print(f"  {line}", file=sys.stderr)
    finally:
        for proc, _ in servers.values():
            proc.send_signal(signal.SIGTERM)
        for proc, _ in servers.values():
            proc.wait(30)
        shutil.rmtree(index_dir, ignore_errors=True)
    print(table(results))
    if args.json:
        summary = {"machine": os.uname().nodename, "cores": os.cpu_count(), "args": vars(args)}
        runs = {
            s: {a: [asdict(r) for r in rs] for a, rs in apps.items()} for s, apps in results.items()
        }
        args.json.write_text(json.dumps({**summary, "results": runs}, indent=2, default=str))


if __name__ == "__main__":
    main()
