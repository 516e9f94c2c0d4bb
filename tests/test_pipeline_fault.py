"""Fault injection: worker processes SIGKILLed mid-batch lose and double nothing.

The same reports are processed twice from the same queue contents: once
undisturbed, in one process, and once by a real ``ichnaea worker`` pool
whose worker processes are killed with SIGKILL while they hold claimed
batches (the pool restarts them), after which ``ichnaea process`` reclaims
what the dead processes left and finishes. The station tables must match:

* exactly: the same stations, and for each its sample count (which equals
  the number of reports that saw it: nothing lost, nothing counted twice),
  region, source, block state and last_seen;
* to 1e-9 (degrees, relative weight) and 1 m of radius: positions, bounding
  boxes, weights. Batch boundaries differ between the two runs (they depend
  on timing), and a weighted mean summed in another grouping differs in
  the last bits of a double; the data never comes near a blocking decision,
  so nothing else may differ.
"""

from __future__ import annotations

import math
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
import redis
import sqlalchemy as sa

from ichnaea.broker import keyspace
from ichnaea.broker.client import connect_url
from ichnaea.broker.queue import encode_item
from ichnaea.codecs import encode_cellid, encode_mac, mac_shard_id
from ichnaea.config import load_settings
from ichnaea.models.all import metadata
from ichnaea.repositories.session import create_engine
from ichnaea.worker.jobs import Resources, claimed_elsewhere, run_periodic_jobs, run_queue_jobs
from tests._support import pool_workers
from tests.fixtures_app import Backend
from tests.test_pipeline_end_to_end import role_env, stop, wipe

# Also on a Redis Cluster (the outbox of ichnaea.broker.outbox carries the output).
pytestmark = [pytest.mark.slow, pytest.mark.redis_cluster]

SITES = 40
REPORTS = 600
KILLS = 3
EXACT = ("samples", "region", "source", "block_first", "block_last", "block_count", "last_seen")
CLOSE = ("lat", "lon", "max_lat", "min_lat", "max_lon", "min_lon")


def make_reports() -> tuple[list[dict[str, Any]], Counter[tuple[str, bytes]]]:
    """Reports around SITES places, and how many reports saw each station."""
    rng = random.Random(42)
    seen: Counter[tuple[str, bytes]] = Counter()
    reports = []
    for n in range(REPORTS):
        site = n % SITES
        lat = 51.0 + site * 0.01 + rng.uniform(-2e-4, 2e-4)
        lon = -0.5 + site * 0.01 + rng.uniform(-2e-4, 2e-4)
        wifis = [f"{site:02x}{k:02x}{(site * 7 + k) % 16:x}0a1b2c3" for k in range(3)]
        blue = f"{site:02x}ff{site % 16:x}0123456"
        cell = {"radioType": "lte", "mobileCountryCode": 234, "mobileNetworkCode": 10,
                "locationAreaCode": 1 + site // 10, "cellId": 1000 + site}  # fmt: skip
        reports.append(
            {
                "position": {"latitude": lat, "longitude": lon, "accuracy": 5 + n % 20},
                "wifiAccessPoints": [
                    {"macAddress": m, "signalStrength": -60 - (n + k) % 30}
                    for k, m in enumerate(wifis)
                ],
                "bluetoothBeacons": [{"macAddress": blue}],
                "cellTowers": [cell],
            }
        )
        for mac in wifis:
            seen[(f"wifi_shard_{mac_shard_id(mac)}", encode_mac(mac))] += 1
        seen[(f"blue_shard_{mac_shard_id(blue)}", encode_mac(blue))] += 1
        seen[("cell_lte", encode_cellid(3, 234, 10, 1 + site // 10, 1000 + site))] += 1
    return reports, seen


def enqueue(client: redis.Redis, reports: list[dict[str, Any]]) -> None:
    items = [encode_item({"api_key": None, "source": "gnss", "report": r}) for r in reports]
    client.rpush(keyspace.INCOMING, *items)


def snapshot(db_url: str) -> dict[tuple[str, bytes], dict[str, Any]]:
    engine = create_engine(db_url, pooled=False)
    rows: dict[tuple[str, bytes], dict[str, Any]] = {}
    with engine.connect() as conn:
        for table in metadata.sorted_tables:
            if table.name.startswith(("wifi_shard_", "blue_shard_", "cell_")) and (
                not table.name.startswith("cell_area")
            ):
                (key,) = table.primary_key.columns
                for row in conn.execute(sa.select(table)).mappings():
                    rows[(table.name, bytes(row[key.name]))] = dict(row)
    engine.dispose()
    return rows


def claim_holders(client: redis.Redis) -> set[int]:
    """Pids of the consumers holding claimed batches (consumer ids are host:pid:time)."""
    owners: set[bytes] = set()
    for key in client.scan_iter(match="*:consumers", count=500):
        owners.update(client.smembers(key))
    for key in client.scan_iter(match="*:lease", count=500):
        value = client.get(key)
        if value is not None:
            owners.add(value)
    return {_pid(owner) for owner in owners}


def _pid(owner: bytes) -> int:
    return int(owner.split(b":")[1])


def held_by(client: redis.Redis, pid: int) -> bool:
    """Whether the (dead) consumer ``pid`` left claimed items behind: a non-empty
    processing list, or the lease of a batch in flight."""
    for key in client.scan_iter(match=f"*:processing:*:{pid}:*", count=500):
        if client.llen(key):
            return True
    for key in client.scan_iter(match="*:lease", count=500):
        owner = client.get(key)
        name = key.decode().removesuffix(":lease")
        if owner is not None and _pid(owner) == pid and client.exists(f"{name}:inflight"):
            return True
    return False


def test_sigkilled_workers_leave_the_same_stations_quirk_11_fixed(
    backend: Backend, tmp_path: Path
) -> None:
    reports, seen = make_reports()
    env = role_env(backend, tmp_path / "data", QUEUE_LEASE_S="2", STATION_BATCH="40")
    client = connect_url(backend.redis_url)

    # 1. Undisturbed, in this process.
    wipe(backend.db_url)
    client.flushdb()
    enqueue(client, reports)
    settings = load_settings(env)
    engine = create_engine(backend.db_url, pooled=False)
    res = Resources(settings, engine, client, drain=True)
    run_periodic_jobs(res)
    while run_queue_jobs(res):
        pass
    assert claimed_elsewhere(res) == 0
    engine.dispose()
    expected = snapshot(backend.db_url)
    assert {key: row["samples"] for key, row in expected.items()} == dict(seen)

    # 2. A real worker pool, its processes killed while they hold batches.
    wipe(backend.db_url)
    client.flushdb()
    enqueue(client, reports)
    log = tmp_path / "worker.log"
    kills = 0
    killed: set[int] = set()
    with log.open("wb") as out:
        pool = subprocess.Popen(
            [sys.executable, "-m", "ichnaea", "worker", "--processes", "2"],
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        checker = Resources(settings, create_engine(backend.db_url, pooled=False), client)
        deadline = time.monotonic() + 120
        # A consumer registered on a queue may be between batches when the
        # kill lands: kill until KILLS kills, at least one of them leaving
        # claimed items behind (so that something must be reclaimed).
        left_items = 0
        while (kills < KILLS or not left_items) and time.monotonic() < deadline:
            assert pool.poll() is None, log.read_text()
            # A killed process keeps its lease (and stays a zombie) for a while.
            holding = sorted((claim_holders(client) & set(pool_workers(pool.pid))) - killed)
            if holding:
                victim = random.choice(holding)
                os.kill(victim, signal.SIGKILL)
                killed.add(victim)
                kills += 1
                time.sleep(0.05)  # let a command already sent land
                left_items += held_by(client, victim)
                time.sleep(0.15)  # the others go on meanwhile
            else:
                time.sleep(0.005)
        assert kills >= KILLS and left_items, (
            f"{kills} kills, {left_items} of them mid-batch:\n{log.read_text()}"
        )
        while log.read_text().count("restarting") < kills:
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
    finally:
        stop(pool)
    output = log.read_text()
    assert output.count("restarting") >= kills, output

    # 3. What the dead processes held is reclaimed and finished.
    finished = subprocess.run(
        [sys.executable, "-m", "ichnaea", "process"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert finished.returncode == 0, finished.stderr
    # The batches of the killed processes were taken up again by someone.
    # The pool's own periodic reclaim or `ichnaea process` may do it; both log it.
    recovered = sum(
        text.count("reclaimed") + text.count("left by a stopped worker")
        for text in (log.read_text(), finished.stderr)
    )
    assert recovered >= 1, log.read_text() + finished.stderr
    assert claimed_elsewhere(checker) == 0
    checker.db.dispose()
    got = snapshot(backend.db_url)
    wipe(backend.db_url)
    client.close()

    assert got.keys() == expected.keys()
    for key, want in expected.items():
        row = got[key]
        assert {c: row[c] for c in EXACT} == {c: want[c] for c in EXACT}, key
        for column in CLOSE:
            assert math.isclose(row[column], want[column], abs_tol=1e-9), (key, column)
        assert math.isclose(row["weight"], want["weight"], rel_tol=1e-9), key
        assert abs(row["radius"] - want["radius"]) <= 1, key
