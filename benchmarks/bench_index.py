"""Station index benchmark: build time, file size and lookup latency for N Wi-Fi stations.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_index.py --stations 1000000
    PYTHONPATH=. .venv/bin/python benchmarks/bench_index.py --stations 10000000 \
        --db mysql+mysqldb://root@127.0.0.1:3306/ichnaea_bench_index

A plain script (not collected by pytest). Steps:

1. Source: an SQLite file in a scratch directory (default) or the database
   at ``--db`` (which must exist; MariaDB needs ``local_infile`` on the
   server); its tables are created from the models if missing, and the
   (empty) Wi-Fi shard tables are filled with ``--stations`` random
   stations (uniform random MACs, positions, radius, samples, region,
   dates; one in 50 without a position, one in 100 blocked). Shard by
   shard, in a child process: the shard's columns are drawn with NumPy, its
   four secondary indexes dropped, its rows written in key order in one
   transaction (SQLite: ``executemany`` in batches, with ``journal_mode``
   and ``synchronous`` OFF on the generating connection; MariaDB: a
   tab-separated file through ``LOAD DATA LOCAL INFILE``), then the
   indexes created again; one progress line per shard. About 100,000
   rows/s on MariaDB and 200,000 on SQLite on the 2-core benchmark
   machine. ``--reuse`` skips this when the Wi-Fi tables already hold the
   rows (the lookups then use 640 MACs read back from random points of the
   key space).
2. Build: ``build_index`` into ``--index-dir`` (default: the scratch
   directory), timed (wall clock, and this process's CPU time, which
   leaves out the database server's); prints rows, file size, bytes per
   record and the peak resident memory of this process after the build
   (``ru_maxrss``; step 1 ran in a child process and is not included).
3. Open: ``open_index`` (map and CRC check of every file), timed.
4. Lookup: ``--repeat`` lookups of 20 MACs (18 known, 2 unknown, a new
   random pick each time) through ``StationIndex.macs``; prints the median
   and 99th percentile per call, and the same for the database path
   (``fetch_macs`` through one ``StationReader``) over ``--db-repeat``
   calls for comparison.
"""

from __future__ import annotations

import argparse
import multiprocessing
import resource
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.schema import CreateIndex, DropIndex

from ichnaea.codecs import MAC_SHARD_IDS
from ichnaea.index.build import build_index
from ichnaea.index.format import file_name
from ichnaea.index.reader import open_index
from ichnaea.models.base import Base
from ichnaea.models.station import WIFI_SHARDS
from ichnaea.repositories.session import create_engine, is_sqlite
from ichnaea.repositories.stations import StationReader, fetch_macs

REGIONS = ["DE", "GB", "FR", "US", "BR", "JP", "IN", "ZA"]
SQLITE_BATCH = 50_000
STATION_COLUMNS = (
    "mac", "lat", "lon", "radius", "region", "samples",
    "created", "modified", "last_seen", "block_last", "block_count",
)  # fmt: skip


def _shard_macs(rng: np.random.Generator, shard: int, count: int) -> np.ndarray:
    """``count`` unique random MACs whose fifth hex digit is ``shard``, sorted."""
    raw = rng.integers(0, 2**48, size=int(count * 1.01) + 16, dtype=np.uint64)
    # Force the fifth hex digit (bits 28..31 of the 48-bit value).
    raw = (raw & ~np.uint64(0xF << 28)) | np.uint64(shard << 28)
    return np.unique(raw)[:count]


def _shard_columns(
    rng: np.random.Generator, shard: int, count: int, today: date
) -> dict[str, list[Any]]:
    """The columns of ``count`` random stations of one shard, in key order.

    ``mac`` holds the MACs as integers; NULLs are ``None``.
    """
    macs = _shard_macs(rng, shard, count)
    unlocated = rng.random(count) < 0.02
    lat = rng.uniform(-60, 70, count).astype(object)
    lon = rng.uniform(-180, 180, count).astype(object)
    lat[unlocated] = None
    lon[unlocated] = None
    age = rng.integers(0, 1000, count)
    blocked = rng.random(count) < 0.01
    blocked_ago = rng.integers(0, 3, count)
    # Dates as strings, looked up by age in days rather than formatted per row.
    days = np.array([(today - timedelta(days=d)).isoformat() for d in range(1000)], dtype=object)
    block_last = days[blocked_ago]
    block_last[~blocked] = None
    return {
        "mac": macs.tolist(),
        "lat": lat.tolist(),
        "lon": lon.tolist(),
        "radius": rng.integers(10, 500, count).tolist(),
        "region": [REGIONS[i % len(REGIONS)] for i in range(count)],
        "samples": (age + 1).tolist(),
        "created": (days[age] + " 08:00:00").tolist(),
        "modified": (days[age // 2] + " 09:30:00").tolist(),
        "last_seen": days[age // 3].tolist(),
        "block_last": block_last.tolist(),
        "block_count": blocked.astype(int).tolist(),
    }


def _insert_sqlite(cursor: Any, table: str, columns: dict[str, list[Any]]) -> None:
    """executemany in batches, inside the caller's transaction."""
    keys = [m.to_bytes(6, "big") for m in columns["mac"]]
    rows = list(zip(keys, *(columns[c] for c in STATION_COLUMNS[1:]), strict=True))
    sql = (
        f"INSERT INTO {table} ({', '.join(STATION_COLUMNS)}) "
        f"VALUES ({', '.join('?' * len(STATION_COLUMNS))})"
    )
    for start in range(0, len(rows), SQLITE_BATCH):
        cursor.executemany(sql, rows[start : start + SQLITE_BATCH])


def _load_mysql(cursor: Any, table: str, columns: dict[str, list[Any]], scratch: Path) -> None:
    """Write the rows as a tab-separated file and ``LOAD DATA LOCAL INFILE`` it."""
    text = [[f"{m:012x}" for m in columns["mac"]]] + [
        ["\\N" if v is None else str(v) for v in columns[c]] for c in STATION_COLUMNS[1:]
    ]
    path = scratch / f"{table}.tsv"
    with path.open("w") as out:
        out.writelines("\t".join(row) + "\n" for row in zip(*text, strict=True))
    try:
        cursor.execute(
            f"LOAD DATA LOCAL INFILE '{path}' INTO TABLE {table} "
            f"(@mac, {', '.join(STATION_COLUMNS[1:])}) SET mac = UNHEX(@mac)"
        )
    finally:
        path.unlink()


def generate(url: str, stations: int, seed: int, scratch: Path) -> list[bytes]:
    """Fill the Wi-Fi shards; return a sample of the MACs written (for the lookups).

    Each shard's secondary indexes are dropped before its rows go in and
    created again afterwards (a sorted build instead of random-order
    inserts into four B-trees); the rows go in in key order, in one
    transaction per shard.
    """
    mysql = not is_sqlite(url)
    engine = create_engine(
        make_url(url).update_query_dict({"local_infile": "1"}) if mysql else url, pooled=False
    )
    rng = np.random.default_rng(seed)
    today = date.today()
    sample: list[bytes] = []
    conn = engine.raw_connection()
    cursor = conn.cursor()
    if mysql:
        cursor.execute("SET SESSION unique_checks = 0, foreign_key_checks = 0")
    else:
        # This connection only: no rollback journal, no fsync.
        cursor.execute("PRAGMA journal_mode = OFF")
        cursor.execute("PRAGMA synchronous = OFF")
    started = time.perf_counter()
    written = 0
    try:
        for shard_index, shard_id in enumerate(MAC_SHARD_IDS):
            table = WIFI_SHARDS[shard_id].__table__
            count = stations // 16 + (1 if shard_index < stations % 16 else 0)
            columns = _shard_columns(rng, shard_index, count, today)
            sample += [m.to_bytes(6, "big") for m in columns["mac"][:: max(1, count // 500)]]
            for index in table.indexes:
                cursor.execute(str(DropIndex(index).compile(dialect=engine.dialect)))
            if mysql:
                _load_mysql(cursor, table.name, columns, scratch)
            else:
                cursor.execute("BEGIN")
                _insert_sqlite(cursor, table.name, columns)
            conn.commit()
            loaded = time.perf_counter()
            for index in sorted(table.indexes, key=lambda i: i.name or ""):
                cursor.execute(str(CreateIndex(index).compile(dialect=engine.dialect)))
            conn.commit()
            written += count
            now = time.perf_counter()
            elapsed = now - started
            print(
                f"  shard {shard_id}: {count:,} rows (indexes {now - loaded:.1f} s);"
                f" {written:,} rows in {elapsed:.0f} s, {written / elapsed:,.0f} rows/s",
                flush=True,
            )
    finally:
        cursor.close()
        conn.close()
        engine.dispose()
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
        # 40 MACs per shard, each the first at or after a random point, so
        # that the lookups spread over the whole key space.
        points = np.random.default_rng(args.seed).bytes(6 * 40 * 16)
        with engine.connect() as conn:
            found = [
                conn.execute(
                    sa.select(mac).where(mac >= points[6 * i : 6 * i + 6]).order_by(mac).limit(1)
                ).scalar()
                for i, mac in enumerate(
                    s.__table__.c.mac for s in WIFI_SHARDS.values() for _ in range(40)
                )
            ]
        sample = [bytes(m) for m in found if m is not None]
    else:
        started = time.perf_counter()
        # In a child process, so that ru_maxrss below is the build's alone.
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            sample = pool.submit(generate, url, args.stations, args.seed, scratch).result()
        print(f"generate: {args.stations:,} rows in {time.perf_counter() - started:.1f} s")

    started = time.perf_counter()
    cpu_started = time.process_time()
    build_index(engine, index_dir)
    build_s = time.perf_counter() - started
    build_cpu_s = time.process_time() - cpu_started
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    index = open_index(index_dir)
    open_s = time.perf_counter() - started
    header = index.header("wifi")
    size = (index_dir / file_name("wifi")).stat().st_size
    print(
        f"build: {header.count:,} located Wi-Fi rows in {build_s:.1f} s, "
        f"{build_cpu_s:.1f} s CPU ({header.count / build_s:,.0f} rows/s); "
        f"wifi.idx {size / 1e6:.1f} MB, "
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
