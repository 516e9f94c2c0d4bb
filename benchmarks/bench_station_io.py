"""CPU of the pipeline's reads and writes around MariaDB: the worker's side and the server's.

    .venv/bin/python benchmarks/bench_station_io.py \
        [--db mysql://root@127.0.0.1:3306/ichnaea_bench_pipeline] [--rounds 3]

Run it after ``load_pipeline.py`` (its database has the stations). Two
measures, each the best of ``--rounds``:

* ``read_for_update`` of 400 random Wi-Fi keys of shard 0, 150 times, in
  transactions: the worker's CPU (``time.process_time``) and the
  ``mariadbd`` process's (``/proc``), beside a plain ``SELECT`` of the same
  columns through the driver (what the read cost before it asked the server
  for one JSON array per row).
* ``update_datamap`` of 24 batches of 500 grid keys of one shard (12
  inserting them, 12 re-dating them a day later): the worker's CPU.

The server's CPU is only meaningful on a quiet machine; compare two trees
by alternating runs (``PYTHONPATH`` on a worktree with its own build).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import time
from datetime import date

from ichnaea.codecs import datamap_shard_id, decode_datamap_grid, encode_datamap_grid
from ichnaea.metrics import Metrics
from ichnaea.pipeline.public.datamap import update_datamap
from ichnaea.repositories.session import create_engine
from ichnaea.repositories.station_rows import read_for_update, station_table


def server_cpu_s() -> float:
    """CPU seconds of the local mariadbd so far (0 if it is not found)."""
    found = subprocess.run(["pgrep", "-x", "mariadbd"], capture_output=True, text=True).stdout
    if not found.split():
        return 0.0
    with open(f"/proc/{found.split()[0]}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--db", default="mysql://root@127.0.0.1:3306/ichnaea_bench_pipeline")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    engine = create_engine(args.db)
    with engine.connect() as conn:
        keys = [row[0] for row in conn.exec_driver_sql("SELECT mac FROM wifi_shard_0 LIMIT 3000")]
    if len(keys) < 400:
        raise SystemExit(f"{args.db}: wifi_shard_0 has {len(keys)} rows; run load_pipeline.py")
    rng = random.Random(1)
    columns = ",".join(f"`{column.name}`" for column in station_table("wifi", "0").columns)

    def reads(plain: bool) -> tuple[float, float]:
        worker = server = float("inf")
        for _ in range(args.rounds):
            cpu = 0.0
            served = server_cpu_s()
            for _ in range(150):
                chosen = sorted(rng.sample(keys, 400))
                with engine.begin() as conn:
                    start = time.process_time()
                    if plain:
                        in_list = ",".join(f"X'{key.hex()}'" for key in chosen)
                        sql = f"SELECT {columns} FROM wifi_shard_0 WHERE mac IN ({in_list})"
                        conn.exec_driver_sql(sql).cursor.fetchall()
                    else:
                        read_for_update(conn, "wifi", "0", chosen)
                    cpu += time.process_time() - start
            worker = min(worker, cpu)
            server = min(server, server_cpu_s() - served)
        return worker, server

    for name, plain in (("read_for_update", False), ("plain SELECT", True)):
        worker, server = reads(plain)
        print(f"{name}: 150 reads of 400 rows, worker {worker:.2f} s, server {server:.2f} s CPU")

    grids: list[bytes] = []
    shard = datamap_shard_id(*decode_datamap_grid(encode_datamap_grid(5000, 5000)))
    while len(grids) < 6000:
        grid = encode_datamap_grid(rng.randint(1000, 60000), rng.randint(1000, 170000))
        if datamap_shard_id(*decode_datamap_grid(grid)) == shard:
            grids.append(grid)
    best = float("inf")
    for _ in range(args.rounds):
        with engine.begin() as conn:
            conn.exec_driver_sql(f"DELETE FROM datamap_{shard}")
        start = time.process_time()
        for day in (date(2026, 12, 6), date(2026, 12, 7)):
            for at in range(0, len(grids), 500):
                update_datamap(engine, shard, grids[at : at + 500], today=day, metrics=Metrics())
        best = min(best, time.process_time() - start)
    print(f"update_datamap: 24 batches of 500 grid keys, worker {best * 1e3:.0f} ms CPU")


if __name__ == "__main__":
    main()
