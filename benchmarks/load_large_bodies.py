"""Load driver: ``/__lbheartbeat__`` latency and web memory while large bodies arrive.

    .venv/bin/python benchmarks/load_large_bodies.py \
        --db mysql://root@127.0.0.1:3306/ichnaea_bench_bodies --redis redis://127.0.0.1:6379/12

It (re)creates the database, migrates it and adds an API key, starts
``ichnaea web`` with ``--processes`` processes on a free port, then for each
scenario sends ``--bodies`` concurrent requests of about 2 MB each, one per
connection:

* ``locate``: ``/v1/geolocate`` with ``--networks`` Wi-Fi networks (default
  35,000, unknown to the database);
* ``geosubmit``: ``/v2/geosubmit`` with ``--reports`` reports (default
  16,000, one Wi-Fi network each);
* ``geosubmit-wide``: ``/v2/geosubmit`` with 1,000 reports of 50 Wi-Fi
  networks each (as many reports as one submission may hold since issue 8).

Meanwhile one more connection asks ``/__lbheartbeat__`` every 20 ms; its
latency (p50, p99, max) is what a load balancer sees while the big bodies
are parsed. The peak resident memory (VmHWM) of the web processes is read
from ``/proc`` at the end of each scenario, and the statuses of the big
requests are counted. The Redis database given is flushed before each
scenario. Only loopback addresses are used; every loop is bounded by time.
This is a measurement, not a test: it asserts nothing.
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
from pathlib import Path

import numpy as np
import redis
import sqlalchemy as sa
from _servers import free_port, fresh_database, wait_ready

from ichnaea.config import load_settings
from ichnaea.models.api_key import ApiKey

KEY = "bench"


def locate_body(networks: int, rng: random.Random) -> bytes:
    wifis = [
        {"macAddress": f"{rng.getrandbits(48):012x}", "signalStrength": rng.randint(-99, -30)}
        for _ in range(networks)
    ]
    return json.dumps({"wifiAccessPoints": wifis}).encode()


def geosubmit_body(reports: int, rng: random.Random, networks: int = 1) -> bytes:
    items = [
        {
            "position": {"latitude": 51.5 + rng.random() / 10, "longitude": -0.1},
            "wifiAccessPoints": [
                {"macAddress": f"{rng.getrandbits(48):012x}"} for _ in range(networks)
            ],
        }
        for _ in range(reports)
    ]
    return json.dumps({"items": items}).encode()


def request(path: str, body: bytes, port: int) -> bytes:
    head = (
        f"POST {path}?key={KEY} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    status = int((await reader.readline()).split()[1])
    length = 0
    while (line := await reader.readline()) not in (b"\r\n", b""):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    await reader.readexactly(length)
    return status


async def big_request(port: int, raw: bytes, statuses: dict[int, int], timeout_s: float) -> None:
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            writer.write(raw)
            await writer.drain()
            status = await asyncio.wait_for(read_response(reader), timeout_s)
        finally:
            writer.close()
    except (TimeoutError, OSError, ValueError, IndexError):
        status = 0  # no answer: timed out or the connection was dropped
    statuses[status] = statuses.get(status, 0) + 1


async def heartbeats(port: int, stop: asyncio.Event, latencies: list[float]) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    raw = f"GET /__lbheartbeat__ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode()
    try:
        while not stop.is_set():
            start = time.perf_counter()
            writer.write(raw)
            await read_response(reader)
            latencies.append(time.perf_counter() - start)
            await asyncio.sleep(0.02)
    finally:
        writer.close()


async def scenario(
    port: int, raws: list[bytes], timeout_s: float
) -> tuple[dict[int, int], list[float], float]:
    statuses: dict[int, int] = {}
    latencies: list[float] = []
    stop = asyncio.Event()
    probe = asyncio.create_task(heartbeats(port, stop, latencies))
    await asyncio.sleep(0.5)  # a few idle heartbeats first
    start = time.perf_counter()
    await asyncio.gather(*(big_request(port, raw, statuses, timeout_s) for raw in raws))
    elapsed = time.perf_counter() - start
    stop.set()
    await probe
    return statuses, latencies, elapsed


def descendants(pid: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        todo.extend(children.get(current, []))
    return found


def peak_rss_mb(pid: int) -> dict[int, float]:
    """VmHWM of the server and its children, in MiB."""
    peaks = {}
    for proc in descendants(pid):
        try:
            for line in Path(f"/proc/{proc}/status").read_text().splitlines():
                if line.startswith("VmHWM:"):
                    peaks[proc] = round(int(line.split()[1]) / 1024, 1)
        except OSError:
            continue
    return peaks


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", default="mysql://root@127.0.0.1:3306/ichnaea_bench_bodies")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/12")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--bodies", type=int, default=100)
    parser.add_argument("--networks", type=int, default=35_000)
    parser.add_argument("--reports", type=int, default=16_000)
    parser.add_argument("--scenarios", default="locate,geosubmit,geosubmit-wide")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per big request")
    args = parser.parse_args()
    rng = random.Random(42)

    env = {**os.environ, "DB_READWRITE_URI": args.db, "REDIS_URI": args.redis}
    settings = load_settings(env)
    fresh_database(settings)
    db = sa.create_engine(settings.db_readwrite_url)
    with db.begin() as conn:
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
    db.dispose()
    queue = redis.Redis.from_url(args.redis)

    bodies = {
        "locate": ("/v1/geolocate", [locate_body(args.networks, rng) for _ in range(4)]),
        "geosubmit": ("/v2/geosubmit", [geosubmit_body(args.reports, rng) for _ in range(4)]),
        "geosubmit-wide": (
            "/v2/geosubmit",
            [geosubmit_body(1000, rng, networks=50) for _ in range(4)],
        ),
    }
    results: dict[str, object] = {}
    for name in args.scenarios.split(","):
        queue.flushdb()
        port = free_port()
        # A fresh server per scenario, so its peak memory is this scenario's.
        command = ["-m", "ichnaea", "web", "--port", str(port), "--processes", str(args.processes)]
        server = subprocess.Popen(
            [sys.executable, *command],
            env={**env, "DB_READONLY_URI": args.db, "LOGGING_LEVEL": "WARNING"},
        )
        try:
            wait_ready(port)
            idle_rss = peak_rss_mb(server.pid)
            path, samples = bodies[name]
            raws = [request(path, samples[i % len(samples)], port) for i in range(args.bodies)]
            statuses, latencies, elapsed = asyncio.run(scenario(port, raws, args.timeout))
            beat_ms = np.array(latencies) * 1000
            results[name] = {
                "body_bytes": len(samples[0]),
                "elapsed_s": round(elapsed, 1),
                "statuses": statuses,
                "heartbeats": len(latencies),
                "heartbeat_p50_ms": round(float(np.percentile(beat_ms, 50)), 1),
                "heartbeat_p99_ms": round(float(np.percentile(beat_ms, 99)), 1),
                "heartbeat_max_ms": round(float(beat_ms.max()), 1),
                "rss_before_mb": idle_rss,
                "peak_rss_mb": peak_rss_mb(server.pid),
            }
            print(name, results[name], file=sys.stderr)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(60)
    queue.flushdb()
    queue.close()
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
