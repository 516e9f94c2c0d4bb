"""Load driver for the data pipeline: submit reports over HTTP, then time the workers.

    .venv/bin/python benchmarks/load_pipeline.py \
        --db mysql://root@127.0.0.1:3306/ichnaea_bench_pipeline --redis redis://127.0.0.1:6379/13

1. (Re)creates and migrates the database, empties the Redis database.
2. Starts ``ichnaea web`` (``--web-processes``) and posts ``--reports``
   reports (default 50,000) to ``/v2/geosubmit``, ``--per-request`` per
   body, over ``--connections`` keep-alive connections; prints submit
   requests/s and reports/s. Every answer must be 200.
3. Stops the web role, starts ``ichnaea worker`` (``--workers``
   processes) and waits until every queue is empty and no batch is held;
   prints the wall time and observations/s processed into the station
   tables (the observation count is the sum of the daily stat counters the
   station updater increments, checked against the station rows' samples).
4. With ``--profile N``: re-submits N reports and runs every stage in this
   process under cProfile, printing where the time goes by stage and by
   function.

Each report carries ``--wifis`` Wi-Fi access points, one cell and one
Bluetooth beacon, drawn from a fixed population of stations placed
around a few cities (about four reports per station), so the updater sees
the mix of new stations and updates a real deployment sees.
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from typing import Any

import redis
import sqlalchemy as sa

from ichnaea.config import load_settings
from ichnaea.models.all import metadata
from ichnaea.models.api_key import ApiKey

sys.path.insert(0, os.path.dirname(__file__))
from _servers import free_port, fresh_database, wait_ready

CITIES = [(51.5, -0.1), (52.52, 13.40), (48.85, 2.35), (40.71, -74.0), (35.68, 139.69)]
KEY = "bench"


def population(reports: int, wifis_per_report: int, rng: random.Random) -> list[dict[str, Any]]:
    """Sites with their stations; each report is taken at one site."""
    sites = []
    for n in range(max(1, reports // 4)):
        lat0, lon0 = CITIES[n % len(CITIES)]
        lat = lat0 + rng.uniform(-0.2, 0.2)
        lon = lon0 + rng.uniform(-0.3, 0.3)
        sites.append(
            {
                "lat": lat,
                "lon": lon,
                "wifis": [
                    f"{rng.getrandbits(48) | (2 << 40):012x}" for _ in range(wifis_per_report + 2)
                ],
                "blue": f"{rng.getrandbits(48) | (2 << 40):012x}",
                "cell": {
                    "radioType": rng.choice(["gsm", "wcdma", "lte"]),
                    "mobileCountryCode": 234,
                    "mobileNetworkCode": 10,
                    "locationAreaCode": 1 + n % 500,
                    "cellId": 1 + n // 4,
                },
            }
        )
    return sites


def make_report(site: dict[str, Any], wifis: int, rng: random.Random) -> dict[str, Any]:
    return {
        "timestamp": int(time.time() * 1000),
        "position": {
            "latitude": site["lat"] + rng.uniform(-3e-4, 3e-4),
            "longitude": site["lon"] + rng.uniform(-3e-4, 3e-4),
            "accuracy": rng.uniform(3, 40),
            "source": "gnss",
        },
        "wifiAccessPoints": [
            {"macAddress": mac, "signalStrength": rng.randint(-95, -40)}
            for mac in rng.sample(site["wifis"], wifis)
        ],
        "cellTowers": [dict(site["cell"], signalStrength=rng.randint(-110, -60))],
        "bluetoothBeacons": [{"macAddress": site["blue"], "signalStrength": -70}],
    }


def bodies(args: argparse.Namespace, rng: random.Random) -> list[bytes]:
    sites = population(args.reports, args.wifis, rng)
    reports = [make_report(rng.choice(sites), args.wifis, rng) for _ in range(args.reports)]
    return [
        json.dumps({"items": reports[i : i + args.per_request]}).encode()
        for i in range(0, len(reports), args.per_request)
    ]


async def _send(port: int, queue: list[bytes], statuses: dict[int, int]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        while queue:
            body = queue.pop()
            writer.write(
                (
                    f"POST /v2/geosubmit?key={KEY} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                    f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
                ).encode()
                + body
            )
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def submit_all(port: int, requests: list[bytes], connections: int) -> dict[int, int]:
    statuses: dict[int, int] = {}
    queue = list(reversed(requests))
    await asyncio.gather(*(_send(port, queue, statuses) for _ in range(connections)))
    return statuses


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (0 if it is gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pids_of(name: str) -> list[int]:
    found = subprocess.run(["pidof", name], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found]


def children_of(pid: int) -> list[int]:
    """Every descendant of ``pid`` (the worker pool forks its processes from
    a fork server, a child of the supervisor)."""
    found = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    children = [int(child) for child in found.split()]
    return [*children, *(grand for child in children for grand in children_of(child))]


def station_samples(engine: sa.Engine) -> int:
    total = 0
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name.startswith(
                ("wifi_shard_", "blue_shard_", "cell_")
            ) and not table.name.startswith("cell_area"):
                total += int(
                    conn.execute(
                        sa.select(sa.func.coalesce(sa.func.sum(table.c.samples), 0))
                    ).scalar_one()
                )
    return total


def counted_observations(client: redis.Redis) -> int:
    day = datetime.now(UTC).strftime("%Y%m%d")
    return sum(
        int(client.get(f"statcounter_{kind}_{day}") or 0) for kind in ("wifi", "cell", "blue")
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", default="mysql://root@127.0.0.1:3306/ichnaea_bench_pipeline")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/13")
    parser.add_argument("--reports", type=int, default=50_000)
    parser.add_argument("--per-request", type=int, default=50)
    parser.add_argument("--wifis", type=int, default=5)
    parser.add_argument("--web-processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--connections", type=int, default=16)
    parser.add_argument("--profile", type=int, default=0, metavar="N")
    parser.add_argument(
        "--profile-sort",
        default="tottime",
        help="pstats orders, comma-separated (e.g. tottime,cumulative)",
    )
    parser.add_argument("--profile-lines", type=int, default=25)
    args = parser.parse_args()
    rng = random.Random(42)

    env = {**os.environ, "DB_READWRITE_URI": args.db, "DB_READONLY_URI": args.db,
           "REDIS_URI": args.redis, "LOGGING_LEVEL": "WARNING",
           "MAX_QUEUE_BACKLOG": str(10 * args.reports)}  # fmt: skip
    settings = load_settings(env)
    fresh_database(settings)
    db = sa.create_engine(settings.db_readwrite_url)
    with db.begin() as conn:
        conn.execute(sa.insert(ApiKey).values(valid_key=KEY, allow_locate=True))
    client = redis.Redis.from_url(args.redis)
    db_index = client.connection_pool.connection_kwargs.get("db", 0)
    me = client.client_id()
    others = [c for c in client.client_list() if int(c["db"]) == db_index and int(c["id"]) != me]
    if others:
        # A worker left over from an earlier run would share the work and
        # inflate the figures.
        raise SystemExit(f"other clients use Redis db {db_index}: {others}")
    client.flushdb()
    requests = bodies(args, rng)
    results: dict[str, Any] = {}

    port = free_port()
    web = subprocess.Popen(
        [sys.executable, "-m", "ichnaea", "web", "--port", str(port),
         "--processes", str(args.web_processes)], env=env)  # fmt: skip
    try:
        wait_ready(port)
        start = time.perf_counter()
        statuses = asyncio.run(submit_all(port, requests, args.connections))
        elapsed = time.perf_counter() - start
    finally:
        web.send_signal(signal.SIGTERM)
        web.wait(30)
    results["submit"] = {
        "requests": len(requests),
        "reports": args.reports,
        "seconds": round(elapsed, 2),
        "requests_per_s": round(len(requests) / elapsed, 1),
        "reports_per_s": round(args.reports / elapsed, 1),
        "statuses": statuses,
    }
    print("submit", results["submit"], file=sys.stderr)

    servers = {name: pids_of(name) for name in ("mariadbd", "redis-server")}
    server_cpu_before = {n: sum(cpu_seconds(p) for p in pids) for n, pids in servers.items()}
    start = time.perf_counter()
    worker = subprocess.Popen(
        [sys.executable, "-m", "ichnaea", "worker", "--processes", str(args.workers)], env=env
    )
    try:
        last = -1
        expected = args.reports * (args.wifis + 2)
        stations_s = None
        while True:
            time.sleep(0.5)
            pending = sum(
                int(client.llen(key)) for key in client.scan_iter("update_*") if b":" not in key
            )
            pending += sum(
                int(client.llen(key))
                for key in client.scan_iter("queue_export_*")
                if b":" not in key
            )
            held = sum(int(client.llen(key)) for key in client.scan_iter("*:inflight"))
            held += sum(int(client.llen(key)) for key in client.scan_iter("*:processing:*"))
            done = counted_observations(client)
            if stations_s is None and done >= expected:
                stations_s = time.perf_counter() - start
            if done != last:
                now = time.perf_counter() - start
                print(f"... {now:6.1f} s  {done} observations, {pending} queued", file=sys.stderr)
                last = done
            if pending == 0 and held == 0 and done > 0:
                break
        elapsed = time.perf_counter() - start
        worker_cpu = sum(cpu_seconds(pid) for pid in [worker.pid, *children_of(worker.pid)])
        server_cpu = {
            name: round(sum(cpu_seconds(p) for p in pids) - server_cpu_before[name], 1)
            for name, pids in servers.items()
        }
    finally:
        worker.send_signal(signal.SIGTERM)
        worker.wait(60)
    observations = counted_observations(client)
    samples = station_samples(db)
    results["process"] = {
        "workers": args.workers,
        "seconds": round(elapsed, 2),
        "observations": observations,
        "station_samples": samples,
        "observations_per_s": round(observations / elapsed, 1),
        # Every observation in the station tables (cell areas may still be pending).
        "stations_seconds": round(stations_s or elapsed, 2),
        "observations_per_s_into_stations": round(observations / (stations_s or elapsed), 1),
        "reports_per_s": round(args.reports / elapsed, 1),
        # Where the machine's CPU went while the workers ran.
        "cpu_seconds": {"workers": round(worker_cpu, 1), **server_cpu},
        "observations_per_worker_cpu_s": round(observations / max(worker_cpu, 1e-9), 1),
    }
    print("process", results["process"], file=sys.stderr)

    if args.profile:
        results["profile"] = profile(args, env, client, db, rng)
    db.dispose()
    print(json.dumps({"machine": os.uname().nodename, "cores": os.cpu_count(),
                      "args": vars(args), "results": results}, indent=2))  # fmt: skip


def profile(args: argparse.Namespace, env: dict[str, str], client: redis.Redis,
            db: sa.Engine, rng: random.Random) -> dict[str, Any]:  # fmt: skip
    """Run every stage in this process under cProfile on ``--profile`` fresh reports."""
    from ichnaea.broker import keyspace
    from ichnaea.broker.queue import encode_item
    from ichnaea.worker.jobs import QUEUE_JOBS, Resources, run_job

    sites = population(args.profile, args.wifis, rng)
    items = [encode_item({"api_key": KEY, "source": "gnss",
                          "report": make_report(rng.choice(sites), args.wifis, rng)})
             for _ in range(args.profile)]  # fmt: skip
    client.rpush(keyspace.INCOMING, *items)
    res = Resources(load_settings(env), db, client, drain=True)
    res.geocoder  # noqa: B018 - loaded before timing
    by_stage: dict[str, float] = {}
    profiler = cProfile.Profile()
    profiler.enable()
    while True:
        handled = 0
        for job in QUEUE_JOBS:
            start = time.perf_counter()
            n = run_job(job, res)
            by_stage[job.name] = by_stage.get(job.name, 0.0) + time.perf_counter() - start
            handled += n
        if not handled:
            break
    profiler.disable()
    out = io.StringIO()
    for order in args.profile_sort.split(","):
        pstats.Stats(profiler, stream=out).sort_stats(order).print_stats(args.profile_lines)
    print(out.getvalue(), file=sys.stderr)
    return {
        "reports": args.profile,
        "seconds_by_stage": {k: round(v, 2) for k, v in by_stage.items()},
    }


if __name__ == "__main__":
    main()
