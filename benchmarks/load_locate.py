"""Load driver for the locate API: seed stations, start ``ichnaea web``, measure.

    .venv/bin/python benchmarks/load_locate.py \
        --db mysql://root@127.0.0.1:3306/ichnaea_bench --redis redis://127.0.0.1:6379/9

It (re)creates the database, migrates it, seeds ``--wifis`` Wi-Fi access
points (default 100,000) and ``--cells`` cells (default 10,000) around a few
cities, starts ``ichnaea web`` with ``--processes`` processes on a free port,
then for each scenario (IP only, 3 Wi-Fi, 1 cell, mixed) keeps
``--connections`` keep-alive HTTP/1.1 connections busy for ``--seconds``
seconds and prints requests/s and p50/p90/p99 latency.

The client is a minimal asyncio HTTP/1.1 client (pre-built requests, no
parsing beyond the status line and Content-Length) so that, on a small
machine, as much CPU as possible is left to the server under test. Every
response's status is checked: a scenario with any non-200 answer reports it.
Only loopback addresses are used; every loop is bounded by time.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import sqlalchemy as sa
from _servers import free_port, wait_ready

from ichnaea.codecs import encode_cellid, mac_shard_id
from ichnaea.config import load_settings
from ichnaea.enums import Radio
from ichnaea.migrate import migrate
from ichnaea.models.api_key import ApiKey
from ichnaea.models.cell import CELL_TABLES
from ichnaea.models.station import WIFI_SHARDS

CITIES = [(51.5, -0.1), (52.52, 13.40), (48.85, 2.35), (40.71, -74.0), (35.68, 139.69)]
KEY = "bench"


@dataclass
class Seeded:
    wifi_groups: list[list[str]]  # 3 MACs of access points near each other
    cells: list[tuple[int, int, int, int]]  # (mcc, mnc, lac, cid) of LTE cells


def seed(engine: sa.Engine, wifis: int, cells: int, rng: random.Random) -> Seeded:
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    created = now.replace(year=now.year - 1)
    common = {
        "region": None,
        "samples": 50,
        "created": created,
        "modified": now,
        "last_seen": now.date(),
        "radius": 50,
        "weight": 50.0,
    }
    by_shard: dict[str, list[dict[str, object]]] = {}
    groups: list[list[str]] = []
    for g in range(wifis // 3):
        lat0, lon0 = CITIES[g % len(CITIES)]
        lat0 += rng.uniform(-0.2, 0.2)
        lon0 += rng.uniform(-0.2, 0.2)
        group = []
        for _ in range(3):
            mac = f"{rng.getrandbits(48):012x}"
            lat, lon = lat0 + rng.uniform(-5e-4, 5e-4), lon0 + rng.uniform(-5e-4, 5e-4)
            row = {
                "mac": bytes.fromhex(mac),
                "lat": lat,
                "lon": lon,
                "max_lat": lat,
                "min_lat": lat,
                "max_lon": lon,
                "min_lon": lon,
                **common,
            }
            by_shard.setdefault(mac_shard_id(mac), []).append(row)
            group.append(mac)
        groups.append(group)
    cell_keys = []
    cell_rows = []
    for i in range(cells):
        lat0, lon0 = CITIES[i % len(CITIES)]
        mcc, mnc, lac, cid = 234, 30, 1 + i // 100, 1 + i
        lat, lon = lat0 + rng.uniform(-0.3, 0.3), lon0 + rng.uniform(-0.3, 0.3)
        cell_rows.append(
            {
                "cellid": encode_cellid(Radio.lte, mcc, mnc, lac, cid),
                "radio": int(Radio.lte),
                "mcc": mcc,
                "mnc": mnc,
                "lac": lac,
                "cid": cid,
                "lat": lat,
                "lon": lon,
                "max_lat": lat,
                "min_lat": lat,
                "max_lon": lon,
                "min_lon": lon,
                **common,
                "radius": 2000,
            }
        )
        cell_keys.append((mcc, mnc, lac, cid))
    with engine.begin() as conn:
        for shard_id, rows in by_shard.items():
            table = WIFI_SHARDS[shard_id].__table__
            for start in range(0, len(rows), 5000):
                conn.execute(table.insert(), rows[start : start + 5000])  # type: ignore[attr-defined]
        table = CELL_TABLES[Radio.lte].__table__
        for start in range(0, len(cell_rows), 5000):
            conn.execute(table.insert(), cell_rows[start : start + 5000])  # type: ignore[attr-defined]
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
    return Seeded(groups, cell_keys)


def scenario_bodies(name: str, seeded: Seeded, rng: random.Random, n: int = 2000) -> list[bytes]:
    bodies = []
    for _ in range(n):
        if name == "ip-only":
            body: dict[str, object] = {}
        elif name == "3-wifi":
            group = rng.choice(seeded.wifi_groups)
            body = {
                "wifiAccessPoints": [
                    {"macAddress": m, "signalStrength": rng.randint(-90, -40)} for m in group
                ]
            }
        elif name == "1-cell":
            mcc, mnc, lac, cid = rng.choice(seeded.cells)
            body = {
                "cellTowers": [
                    {
                        "radioType": "lte",
                        "mobileCountryCode": mcc,
                        "mobileNetworkCode": mnc,
                        "locationAreaCode": lac,
                        "cellId": cid,
                    }
                ]
            }
        else:  # mixed: a cell plus the three access points of one group
            mcc, mnc, lac, cid = rng.choice(seeded.cells)
            group = rng.choice(seeded.wifi_groups)
            body = {
                "cellTowers": [
                    {
                        "radioType": "lte",
                        "mobileCountryCode": mcc,
                        "mobileNetworkCode": mnc,
                        "locationAreaCode": lac,
                        "cellId": cid,
                    }
                ],
                "wifiAccessPoints": [{"macAddress": m} for m in group],
            }
        bodies.append(json.dumps(body).encode())
    return bodies


def requests_for(bodies: list[bytes], port: int, ip: str) -> list[bytes]:
    return [
        (
            f"POST /v1/geolocate?key={KEY} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nX-Forwarded-For: {ip}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode()
        + body
        for body in bodies
    ]


async def _connection(
    port: int,
    requests: list[bytes],
    deadline: float,
    latencies: list[float],
    statuses: dict[int, int],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    i = random.randrange(len(requests))
    try:
        while time.perf_counter() < deadline:
            start = time.perf_counter()
            writer.write(requests[i % len(requests)])
            i += 1
            status_line = await reader.readline()
            status = int(status_line.split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def drive(
    port: int, requests: list[bytes], connections: int, seconds: float
) -> dict[str, object]:
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    deadline = time.perf_counter() + seconds
    start = time.perf_counter()
    await asyncio.gather(
        *(_connection(port, requests, deadline, latencies, statuses) for _ in range(connections))
    )
    elapsed = time.perf_counter() - start
    lat_ms = np.array(latencies) * 1000
    return {
        "requests": len(latencies),
        "rps": round(len(latencies) / elapsed, 1),
        "p50_ms": round(float(np.percentile(lat_ms, 50)), 1),
        "p90_ms": round(float(np.percentile(lat_ms, 90)), 1),
        "p99_ms": round(float(np.percentile(lat_ms, 99)), 1),
        "statuses": statuses,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", default="mysql://root@127.0.0.1:3306/ichnaea_bench")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/9")
    parser.add_argument("--wifis", type=int, default=100_000)
    parser.add_argument("--cells", type=int, default=10_000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--scenarios", default="ip-only,3-wifi,1-cell,mixed")
    parser.add_argument(
        "--log-level",
        default="WARNING",
        help="LOGGING_LEVEL of the server; INFO adds the per-request log line, to stderr",
    )
    args = parser.parse_args()
    rng = random.Random(42)

    env = {**os.environ, "DB_READWRITE_URI": args.db, "REDIS_URI": args.redis}
    settings = load_settings(env)
    engine = sa.create_engine(settings.db_ddl_url.rsplit("/", 1)[0])
    name = settings.db_ddl_url.rsplit("/", 1)[1].split("?")[0]
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    engine.dispose()
    migrate(settings, echo=lambda line: print(line, file=sys.stderr))
    db = sa.create_engine(settings.db_readwrite_url)
    start = time.perf_counter()
    seeded = seed(db, args.wifis, args.cells, rng)
    print(
        f"seeded {args.wifis} wifis and {args.cells} cells in {time.perf_counter() - start:.1f}s",
        file=sys.stderr,
    )

    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ichnaea",
            "web",
            "--port",
            str(port),
            "--processes",
            str(args.processes),
        ],
        env={**env, "DB_READONLY_URI": args.db, "LOGGING_LEVEL": args.log_level},
        stderr=subprocess.DEVNULL if args.log_level != "WARNING" else None,
    )
    results: dict[str, object] = {}
    try:
        wait_ready(port)
        for name in args.scenarios.split(","):
            ip = "81.2.69.192" if name == "ip-only" else "10.0.0.1"
            requests = requests_for(scenario_bodies(name, seeded, rng), port, ip)
            asyncio.run(drive(port, requests, args.connections, 2.0))  # warm-up
            results[name] = asyncio.run(drive(port, requests, args.connections, args.seconds))
            print(name, results[name], file=sys.stderr)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    print(
        json.dumps(
            {
                "machine": os.uname().nodename,
                "cores": os.cpu_count(),
                "args": vars(args),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
