"""Locates per second through ``/v1/geolocate/batch`` against the same queries as single calls.

    .venv/bin/python benchmarks/load_batch.py \
        --db mysql://root@127.0.0.1:3306/ichnaea_bench_batch --redis redis://127.0.0.1:6379/11

It (re)creates and seeds the database the way ``load_locate.py`` does
(``--wifis`` access points in groups of three near each other, around a few
cities; the key ``bench`` without limit or query sampling), starts ``ichnaea
web`` with ``--processes`` processes on a free port, and builds
``--batches`` times ``--batch-size`` realistic Wi-Fi queries: the three known
access points of one group plus 5 to 17 networks the database does not know
(8 to 20 in all, each with a signal strength), as a phone's scan returns
them. Then, after a warm-up, it times

* batch: the queries as ``--batches`` batch requests over
  ``--batch-connections`` keep-alive connections;
* single: the same queries as single ``/v1/geolocate`` calls over
  ``--connections`` keep-alive connections;

and prints locates per second of each, the latency of the requests
(p50/p99: of a whole batch, of a single call) and the answers' statuses.
Every answer must be a 200, and every batch item a position: a run that
finds fewer positions in the batches than in the single calls says so.

The client is ``load_locate.py``'s minimal HTTP/1.1 client idea (pre-built
requests, status line and Content-Length only), here sending a fixed list
of requests instead of running for a time. Loopback only; the number of
requests bounds every loop.
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
from collections.abc import Iterator

import numpy as np
import redis
import sqlalchemy as sa
from _servers import free_port, fresh_database, wait_ready
from load_locate import KEY, Site, seed

from ichnaea.config import load_settings

WEB = [sys.executable, "-m", "ichnaea", "web"]
CLIENT_IP = "10.0.0.1"  # no GeoIP answer: every position comes from the Wi-Fi data


def wifi_queries(sites: list[Site], rng: random.Random, n: int) -> list[dict[str, object]]:
    places = [place for site in sites for place in site.wifi_places]
    queries = []
    for _ in range(n):
        macs = rng.sample(rng.choice(places), 3)  # three known networks of one place
        macs += [f"{rng.getrandbits(48):012x}" for _ in range(rng.randint(5, 17))]
        rng.shuffle(macs)
        queries.append(
            {
                "considerIp": False,
                "wifiAccessPoints": [
                    {"macAddress": mac, "signalStrength": rng.randint(-95, -40)} for mac in macs
                ],
            }
        )
    return queries


def request(path: str, body: bytes, port: int) -> bytes:
    head = (
        f"POST {path}?key={KEY} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nX-Forwarded-For: {CLIENT_IP}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _connection(
    port: int,
    pending: Iterator[bytes],
    latencies: list[float],
    statuses: dict[int, int],
    bodies: list[bytes],
) -> None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 24)
    try:
        for raw in pending:  # shared by the connections: each request is sent once
            start = time.perf_counter()
            writer.write(raw)
            status = int((await reader.readline()).split()[1])
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line[:15].lower() == b"content-length:":
                    length = int(line[15:])
            bodies.append(await reader.readexactly(length))
            latencies.append(time.perf_counter() - start)
            statuses[status] = statuses.get(status, 0) + 1
    finally:
        writer.close()


async def send_all(port: int, requests: list[bytes], connections: int) -> dict[str, object]:
    """Send every request once over ``connections`` keep-alive connections."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    bodies: list[bytes] = []
    pending = iter(requests)
    start = time.perf_counter()
    await asyncio.gather(
        *(
            _connection(port, pending, latencies, statuses, bodies)
            for _ in range(min(connections, len(requests)))
        )
    )
    elapsed = time.perf_counter() - start
    lat_ms = np.array(latencies) * 1000
    return {
        "requests": len(requests),
        "seconds": round(elapsed, 2),
        "p50_ms": round(float(np.percentile(lat_ms, 50)), 1),
        "p99_ms": round(float(np.percentile(lat_ms, 99)), 1),
        "statuses": statuses,
        "_bodies": bodies,
    }


def found_in_batches(bodies: list[bytes]) -> int:
    return sum("location" in item for body in bodies for item in json.loads(body)["results"])


def found_in_singles(bodies: list[bytes]) -> int:
    return sum(b'"location"' in body for body in bodies)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--db", default="mysql://root@127.0.0.1:3306/ichnaea_bench_batch")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/11")
    parser.add_argument("--wifis", type=int, default=100_000)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--batches", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--batch-connections", type=int, default=2)
    parser.add_argument("--connections", type=int, default=32)
    args = parser.parse_args()
    rng = random.Random(42)

    env = {**os.environ, "DB_READWRITE_URI": args.db, "REDIS_URI": args.redis}
    settings = load_settings(env)
    redis.Redis.from_url(args.redis).flushdb()
    fresh_database(settings)
    db = sa.create_engine(settings.db_readwrite_url)
    seeded = seed(db, args.wifis, 0, 0, rng)
    db.dispose()

    queries = wifi_queries(seeded, rng, args.batches * args.batch_size)
    warm_up = wifi_queries(seeded, rng, args.batch_size)
    size = args.batch_size

    port = free_port()
    server = subprocess.Popen(
        [*WEB, "--port", str(port), "--processes", str(args.processes)],
        env={**env, "DB_READONLY_URI": args.db, "LOGGING_LEVEL": "WARNING"},
    )

    def batches(items: list[dict[str, object]]) -> list[bytes]:
        return [
            request(
                "/v1/geolocate/batch", json.dumps({"queries": items[i : i + size]}).encode(), port
            )
            for i in range(0, len(items), size)
        ]

    def singles(items: list[dict[str, object]]) -> list[bytes]:
        return [request("/v1/geolocate", json.dumps(q).encode(), port) for q in items]

    results: dict[str, dict[str, object]] = {}
    try:
        wait_ready(port)
        asyncio.run(send_all(port, batches(warm_up), args.batch_connections))
        asyncio.run(send_all(port, singles(warm_up), args.connections))
        batch = asyncio.run(send_all(port, batches(queries), args.batch_connections))
        batch["found"] = found_in_batches(batch.pop("_bodies"))  # type: ignore[arg-type]
        single = asyncio.run(send_all(port, singles(queries), args.connections))
        single["found"] = found_in_singles(single.pop("_bodies"))  # type: ignore[arg-type]
        for label, result in (("batch", batch), ("single", single)):
            result["locates_per_s"] = round(len(queries) / float(result["seconds"]), 1)  # type: ignore[arg-type]
            results[label] = result
            print(label, result, file=sys.stderr)
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(30)
    print(
        json.dumps(
            {
                "machine": os.uname().nodename,
                "cores": os.cpu_count(),
                "load_average": os.getloadavg(),
                "args": vars(args),
                "queries": len(queries),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
