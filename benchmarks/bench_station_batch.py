"""CPU of one station batch outside the database: decode, plan, rows, upsert text.

    .venv/bin/python benchmarks/bench_station_batch.py [--rounds 7] [--batches 40]

The worker's station stage spends most of its CPU around two statements:
decoding the queued observations, planning the row changes, merging them
with the rows it read and formatting the upsert's VALUES text. This times
exactly that path, with the database's part replaced by the rows the
driver would return (tuples in table order, with ``datetime`` and ``date``
values), on batches shaped like ``load_pipeline.py``'s: 500 Wi-Fi
observations naming about 400 stations, 60 % of them already known, one to
three observations each. It prints microseconds per batch and per
observation, the best of ``--rounds``, and the length and a hash of the SQL
text, so that two versions can be compared for speed and for output.
"""

from __future__ import annotations

import argparse
import hashlib
import random
import time
from datetime import datetime, timedelta
from typing import Any

from ichnaea import _fast
from ichnaea.geocode import Geocoder
from ichnaea.pipeline.stations.plan import plan_station_updates
from ichnaea.pipeline.stations.state import StationType
from ichnaea.pipeline.stations.updater import StationQueue, StationStage, encode_observation
from ichnaea.regions import RegionTable
from ichnaea.repositories.station_rows import LockedRows, station_table

NOW = datetime(2026, 12, 7, 12, 0, 0)


def make_batch(rng: random.Random, size: int) -> tuple[list[bytes], list[tuple[Any, ...]]]:
    """Queued observations (wire form) of one Wi-Fi shard, and the rows the read returns."""
    stations = []
    for _ in range(int(size * 0.8)):
        lat, lon = 51.5 + rng.uniform(-0.2, 0.2), -0.1 + rng.uniform(-0.3, 0.3)
        stations.append((f"{rng.getrandbits(44) | (2 << 44):012x}", lat, lon))
    items = []
    for i in range(size):
        mac, lat, lon = stations[i % len(stations)] if i < len(stations) else rng.choice(stations)
        items.append(
            encode_observation(
                {
                    "mac": mac,
                    "lat": lat + rng.gauss(0, 0.0003),
                    "lon": lon + rng.gauss(0, 0.0003),
                    "accuracy": rng.uniform(3, 60),
                    "age": rng.randint(-3000, 0),
                    "speed": None,
                    "signal": rng.randint(-95, -45),
                    "source": 1,
                }
            )
        )
    table = station_table("wifi", "0")
    columns = [column.name for column in table.columns]
    rows = []
    for mac, lat, lon in stations[: int(len(stations) * 0.6)]:
        created = NOW - timedelta(days=rng.randint(1, 300))
        values = {
            "mac": bytes.fromhex(mac), "lat": lat, "lon": lon, "max_lat": lat + 0.0004,
            "min_lat": lat - 0.0004, "max_lon": lon + 0.0006, "min_lon": lon - 0.0006,
            "radius": rng.randint(10, 200), "region": "GB", "samples": rng.randint(1, 30),
            "source": 1, "weight": rng.uniform(1, 30), "created": created,
            "modified": created + timedelta(hours=5), "last_seen": (NOW - timedelta(days=2)).date(),
            "block_first": None, "block_last": None, "block_count": None,
        }  # fmt: skip
        rows.append(tuple(values[name] for name in columns))
    return items, rows


def cpu_path(
    queue: StationQueue, items: list[bytes], rows: list[tuple[Any, ...]], geocoder: Geocoder,
    now: datetime,
) -> str:  # fmt: skip
    """What the station stage computes for one batch, minus the statements' round trips."""
    decode = StationStage(queue, None, None, geocoder, None).decode  # type: ignore[arg-type]
    decoded = [decode(item) for item in items]
    observations = [obs for obs, _ in decoded]
    keys = [key for _, key in decoded]
    table = station_table(queue.stype.name, queue.shard)
    columns = tuple(column.name for column in table.columns)
    at = columns.index(queue.stype.key_column)
    existing = LockedRows(columns, rows, {bytes(values[at]): i for i, values in enumerate(rows)})
    plan = plan_station_updates(
        queue.stype, observations, existing, now=now, today=now.date(), geocoder=geocoder,
        keys=keys,
    )  # fmt: skip
    text: str = _fast.mysql_values(plan.rows)
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--batches", type=int, default=40)
    parser.add_argument("--size", type=int, default=500)
    args = parser.parse_args()
    rng = random.Random(7)
    batches = [make_batch(rng, args.size) for _ in range(args.batches)]
    geocoder = Geocoder.load(RegionTable.load())
    queue = StationQueue(StationType.wifi, "0")
    best = float("inf")
    digest = hashlib.sha256()
    length = 0
    for r in range(args.rounds):
        start = time.process_time()
        texts = [cpu_path(queue, items, rows, geocoder, NOW) for items, rows in batches]
        best = min(best, time.process_time() - start)
        if r == 0:
            for text in texts:
                digest.update(text.encode())
                length += len(text)
    per_batch = best / args.batches * 1e6
    print(
        f"{per_batch:,.0f} µs per batch of {args.size}, {per_batch / args.size:.2f} µs per "
        f"observation; SQL text {length:,} characters, sha256 {digest.hexdigest()[:16]}"
    )


if __name__ == "__main__":
    main()
