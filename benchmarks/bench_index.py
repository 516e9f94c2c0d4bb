"""Station index benchmark: build time, file size and lookup latency for N Wi-Fi stations.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_index.py --stations 1000000
    PYTHONPATH=. .venv/bin/python benchmarks/bench_index.py --stations 10000000 \
        --db mysql+mysqldb://root@127.0.0.1:3306/ichnaea_bench_index

A plain script (not collected by pytest). Steps:

1. Source: an SQLite file in a scratch directory (default) or the database
   at ``--db``; its tables are created from the models if missing, and the
   Wi-Fi shard tables are filled with ``--stations`` random stations
   (uniform random MACs, positions, radius, samples, region, dates; one in
   50 without a position, one in 100 blocked), shard by shard through the
   driver's ``executemany``. ``--reuse`` skips this when the Wi-Fi tables
   already hold the rows.
2. Build: ``build_index`` into ``--index-dir`` (default: the scratch
   directory), timed; prints rows, file size, bytes per record and the
   peak resident memory of this process after the build (``ru_maxrss``,
   which includes step 1's).
3. Open: ``open_index`` (map and CRC check of every file), timed.
4. Lookup: ``--repeat`` lookups of 20 MACs (18 known, 2 unknown, a new
   random pick each time) through ``StationIndex.macs``; prints the median
   and 99th percentile per call, and the same for the database path
   (``fetch_macs`` through one ``StationReader``) over ``--db-repeat``
   calls for comparison.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import sqlalchemy as sa

from ichnaea.codecs import MAC_SHARD_IDS
from ichnaea.index.build import build_index
from ichnaea.index.format import file_name
from ichnaea.index.reader import open_index
from ichnaea.models.base import Base
from ichnaea.models.station import WIFI_SHARDS
from ichnaea.repositories.session import create_engine
from ichnaea.repositories.stations import StationReader, fetch_macs

REGIONS = ["DE", "GB", "FR", "US", "BR", "JP", "IN", "ZA"]
INSERT_BATCH = 20_000


def _shard_macs(rng: np.random.Generator, shard: int, count: int) -> np.ndarray:
    """``count`` unique random MACs whose fifth hex digit is ``shard``."""
    raw = rng.integers(0, 2**48, size=int(count * 1.01) + 16, dtype=np.uint64)
    # Force the fifth hex digit (bits 28..31 of the 48-bit value).
    raw = (raw & ~np.uint64(0xF << 28)) | np.uint64(shard << 28)
    return np.unique(raw)[:count]


def generate(engine: sa.Engine, stations: int, seed: int) -> list[bytes]:
    """Fill the Wi-Fi shards; return a sample of the MACs written (for the lookups)."""
    rng = np.random.default_rng(seed)
    today = date.today()
    sample: list[bytes] = []
    conn = engine.raw_connection()
    marker = "%s" if engine.dialect.paramstyle in ("format", "pyformat") else "?"
    try:
        for shard_index, shard_id in enumerate(MAC_SHARD_IDS):
            table = WIFI_SHARDS[shard_id].__tablename__
            count = stations // 16 + (1 if shard_index < stations % 16 else 0)
            macs = _shard_macs(rng, shard_index, count)
            keys = [int(m).to_bytes(6, "big") for m in macs]
            sample += keys[:: max(1, count // 500)]
            lat = rng.uniform(-60, 70, count)
            lon = rng.uniform(-180, 180, count)
            unlocated = rng.random(count) < 0.02
            age = rng.integers(0, 1000, count)
            blocked_ago = np.where(rng.random(count) < 0.01, rng.integers(0, 3, count), -1)
            rows = [
                (
                    keys[i],
                    None if unlocated[i] else float(lat[i]),
                    None if unlocated[i] else float(lon[i]),
                    int(rng_radius),
                    REGIONS[i % len(REGIONS)],
                    int(age[i]) + 1,
                    (today - timedelta(days=int(age[i]))).isoformat() + " 08:00:00",
                    (today - timedelta(days=int(age[i]) // 2)).isoformat() + " 09:30:00",
                    (today - timedelta(days=int(age[i]) // 3)).isoformat(),
                    None
                    if blocked_ago[i] < 0
                    else (today - timedelta(days=int(blocked_ago[i]))).isoformat(),
                    0 if blocked_ago[i] < 0 else 1,
                )
                for i, rng_radius in enumerate(rng.integers(10, 500, count))
            ]
            sql = (
                f"INSERT INTO {table} (mac, lat, lon, radius, region, samples, created, "
                f"modified, last_seen, block_last, block_count) VALUES "
                f"({', '.join([marker] * 11)})"
            )
            cursor = conn.cursor()
            for start in range(0, len(rows), INSERT_BATCH):
                cursor.executemany(sql, rows[start : start + INSERT_BATCH])
            cursor.close()
            conn.commit()
            print(f"  generated shard {shard_id}: {count:,} rows", flush=True)
    finally:
        conn.close()
    return sample


def _percentiles(samples_ns: list[int]) -> str:
    ordered = sorted(samples_ns)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"median {statistics.median(ordered) / 1000:.1f} µs, p99 {p99 / 1000:.1f} µs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stations", type=int, default=1_000_000)
    parser.add_argument("--db", help="database URL (default: an SQLite file in a scratch dir)")
    parser.add_argument("--index-dir", type=Path)
    parser.add_argument("--reuse", action="store_true", help="keep the rows already there")
    parser.add_argument("--repeat", type=int, default=20_000)
    parser.add_argument("--db-repeat", type=int, default=500)
    parser.add_argument("--seed", type=int, default=9)
    args = parser.parse_args()
    if not 1 <= args.stations <= 10_000_000:
        parser.error("--stations must be between 1 and 10,000,000")

    scratch = Path(tempfile.mkdtemp(prefix="bench_index_"))
    url = args.db or f"sqlite:///{scratch / 'source.sqlite'}"
    index_dir = args.index_dir or scratch / "index"
    engine = create_engine(url, pooled=False)
    Base.metadata.create_all(engine)
    print(f"source {engine.url.render_as_string(hide_password=True)}, index {index_dir}")

    if args.reuse:
        with engine.connect() as conn:
            sample = [
                bytes(r[0])
                for s in WIFI_SHARDS.values()
                for r in conn.execute(sa.select(s.__table__.c.mac).limit(40))
            ]
    else:
        started = time.perf_counter()
        sample = generate(engine, args.stations, args.seed)
        print(f"generate: {args.stations:,} rows in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    build_index(engine, index_dir)
    build_s = time.perf_counter() - started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    index = open_index(index_dir)
    open_s = time.perf_counter() - started
    header = index.header("wifi")
    size = (index_dir / file_name("wifi")).stat().st_size
    print(
        f"build: {header.count:,} located Wi-Fi rows in {build_s:.1f} s "
        f"({header.count / build_s:,.0f} rows/s); wifi.idx {size / 1e6:.1f} MB, "
        f"{size / max(header.count, 1):.1f} bytes/row (record {header.record_size}); "
        f"peak RSS {rss_mb:.0f} MB"
    )
    print(f"open (map + CRC of all four files): {open_s * 1000:.1f} ms")

    rng = np.random.default_rng(args.seed + 1)
    today = date.today()

    def query() -> list[bytes]:
        known = [sample[i] for i in rng.choice(len(sample), 18, replace=False)]
        return known + [rng.bytes(6) for _ in range(2)]

    queries = [query() for _ in range(args.repeat)]
    found = 0
    times: list[int] = []
    for keys in queries:
        t0 = time.perf_counter_ns()
        rows = index.macs("wifi", keys, today=today)
        times.append(time.perf_counter_ns() - t0)
        found += len(rows)
    print(f"index lookup, 20 MACs: {_percentiles(times)} ({found / len(queries):.1f} found/call)")

    times = []
    with StationReader(engine) as reader:
        for keys in queries[: args.db_repeat]:
            t0 = time.perf_counter_ns()
            fetch_macs(reader, "wifi", keys, today=today)
            times.append(time.perf_counter_ns() - t0)
    print(f"database lookup (fetch_macs), 20 MACs: {_percentiles(times)}")
    engine.dispose()


if __name__ == "__main__":
    main()
