"""CPU of the internal exporter's transform: queued reports → encoded observations.

    .venv/bin/python benchmarks/bench_internal_batch.py [--rounds 5] [--reports 5000]
    .venv/bin/python benchmarks/bench_internal_batch.py --python-path

What the internal stage computes between its claim and its acknowledgement,
without Redis: decode the queued export items (gzip, JSON), flatten,
validate and de-duplicate them (``transform_batch``, in batches of 500 as
the stage takes them) and encode every observation for its shard queue. The
reports are ``load_pipeline.py``'s (five Wi-Fi networks, a cell and a beacon
each), with a fixed timestamp, so the output is the same from run to run:
the script prints microseconds per report and per observation (the best of
``--rounds``) and a hash of the encoded observations, so that two versions
can be compared for speed and for output. The collector runs at the worker
processes' threshold (``ichnaea.worker.process.GC_THRESHOLD``; before
session 14 this script ran at Python's default, which made its figures
larger and noisier).

``--python-path`` times the transform alone both ways in one process,
alternately: the compiled path (``ichnaea/_fast/_reports.pyx``) and the
Python path it hands odd input to (the kernels patched to hand back
everything), the same reports and the same output.
"""

from __future__ import annotations

import argparse
import gc
import hashlib
import os
import random
import sys
import time
from typing import Any

from ichnaea import _fast
from ichnaea.broker.queue import decode_object, encode_item
from ichnaea.geocode import Geocoder
from ichnaea.pipeline.ingest.observations import transform_batch
from ichnaea.pipeline.stations.updater import encode_observation
from ichnaea.regions import RegionTable
from ichnaea.worker.process import GC_THRESHOLD

sys.path.insert(0, os.path.dirname(__file__))
import load_pipeline

BATCH = 500


def encoded_observations(raw: list[bytes], geocoder: Geocoder) -> list[bytes]:
    items: list[Any] = [decode_object(item) for item in raw]
    out: list[bytes] = []
    for start in range(0, len(items), BATCH):
        batch = transform_batch(items[start : start + BATCH], geocoder)
        for observations in batch.observations.values():
            out.extend(encode_observation(obs) for obs in observations)
    return out


KERNELS = ("position_fields", "flat_entries", "add_observations")


def transform_seconds(items: list[Any], geocoder: Geocoder, rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.process_time()
        for first in range(0, len(items), BATCH):
            transform_batch(items[first : first + BATCH], geocoder)
        best = min(best, time.process_time() - start)
    return best


def compare_paths(raw: list[bytes], geocoder: Geocoder, rounds: int) -> None:
    items: list[Any] = [decode_object(item) for item in raw]
    observations = sum(
        len(queue)
        for first in range(0, len(items), BATCH)
        for queue in transform_batch(items[first : first + BATCH], geocoder).observations.values()
    )
    compiled = {name: getattr(_fast, name) for name in KERNELS}
    for _ in range(rounds):
        for name, kernel in compiled.items():
            setattr(_fast, name, kernel)
        fast = transform_seconds(items, geocoder, 3)
        for name in KERNELS:
            setattr(_fast, name, lambda *args: None)
        slow = transform_seconds(items, geocoder, 3)
        print(
            f"transform: compiled {fast / observations * 1e6:.2f} µs per observation, "
            f"Python path {slow / observations * 1e6:.2f} ({slow / fast:.2f} times)"
        )
    for name, kernel in compiled.items():
        setattr(_fast, name, kernel)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--reports", type=int, default=5000)
    parser.add_argument("--python-path", action="store_true")
    args = parser.parse_args()
    gc.set_threshold(GC_THRESHOLD, 20, 20)
    rng = random.Random(3)
    sites = load_pipeline.population(2000, 5, rng)
    now = time.time
    time.time = lambda: 1.7e9  # the reports' timestamp, fixed
    try:
        reports = [
            load_pipeline.make_report(rng.choice(sites), 5, rng) for _ in range(args.reports)
        ]
    finally:
        time.time = now
    raw = [encode_item({"api_key": "bench", "source": "gnss", "report": r}) for r in reports]
    geocoder = Geocoder.load(RegionTable.load())
    encoded_observations(raw[:BATCH], geocoder)  # warm-up: the geocoder's first calls
    if args.python_path:
        compare_paths(raw, geocoder, args.rounds)
        return
    best = float("inf")
    output: list[bytes] = []
    for _ in range(args.rounds):
        start = time.process_time()
        output = encoded_observations(raw, geocoder)
        best = min(best, time.process_time() - start)
    digest = hashlib.sha256(b"\n".join(output)).hexdigest()[:16]
    print(
        f"{best / args.reports * 1e6:.1f} µs per report, {best / len(output) * 1e6:.2f} µs per "
        f"observation ({len(output):,} observations, sha256 {digest})"
    )


if __name__ == "__main__":
    main()
