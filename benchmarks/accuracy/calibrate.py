"""Fit the radius calibration (``ichnaea/data/radius_calibration.json``) on training worlds.

    .venv/bin/python benchmarks/accuracy/calibrate.py --seeds 1,2,5,6,7,8 \
        --samples /tmp/cal.npz --write
    .venv/bin/python benchmarks/accuracy/calibrate.py --samples /tmp/cal.npz   # refit, no teaching

The shipped table was written by the first command (18 worlds, about
6 minutes on a 2-core machine); seeds 3 and 4 are kept for the held-out
check.

For every shape and seed, a fresh service is taught the world exactly as
:mod:`run` does; then, instead of asking over HTTP, every held-out query is
searched in this process against the service's database
(``ichnaea.api.locate.sources.internal.search_positions``), which gives
*every* internal result of the query (not only the best one) with its
network type, the number of networks it used and its unbounded spread
(``Position.spread_m``). Each result is measured against the true point.

For each type and band of networks used, the fit is the quantile regression
of the error on the spread at the confidence (68 % and 95 %): the slope on
a grid of 0.01, the intercept the exact quantile of what the slope leaves,
the pair that minimises the pinball loss. The intercept is never below 0.
The service chooses its answer by the 95 % radii whatever confidence it
states (``ichnaea.api.locate.service``), so the 95 % table is fitted first,
on the answers it chooses itself, and the 68 % one on the answers the 95 %
one chooses, its line nowhere above the 95 % lines that apply to the same
numbers of networks over the spreads a result can have
(``REACHABLE_SPREAD_M``), so that it never states the larger radius. A band with fewer than
``--min-samples`` results is merged into the band below it.

Printed: the table, and per query type of :mod:`scans` the share of the
answers (``best_position`` of the calibrated results, as the service picks)
inside their radius on these training worlds. ``--write`` replaces the table
file; ``--samples PATH`` keeps the measured results (``.npz``) and reuses
them when the file exists, so a refit does not teach again. The held-out
check is :mod:`run` on other seeds, against the service itself.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.accuracy.run import progress, teach_world
from benchmarks.accuracy.scans import build_plan
from benchmarks.accuracy.score import haversine_m
from benchmarks.accuracy.service import Service
from benchmarks.accuracy.world import SHAPES, generate_world
from ichnaea.api.locate import calibration
from ichnaea.api.locate.query import Query
from ichnaea.api.locate.result import DataSource, Position, best_position
from ichnaea.api.locate.schemas import parse_locate_request
from ichnaea.api.locate.sources import internal
from ichnaea.breaker import CircuitBreaker
from ichnaea.repositories.session import create_engine

# Bands of networks used, per type: the lower bounds, descending.
BANDS = {"wifi": (10, 6, 4, 3, 2, 1), "blue": (4, 3, 2, 1), "cell": (3, 2, 1), "area": (3, 2, 1)}
# Bounds of the radius per type: no answer claims better than the floor
# (a few metres of GNSS error in what taught it) or worse than the ceiling.
BOUNDS = {
    "wifi": (10.0, 2_000.0),
    "blue": (10.0, 500.0),
    "cell": (100.0, 50_000.0),
    "area": (500.0, 500_000.0),
}
SLOPES = np.arange(0.0, 4.0001, 0.01)
# The spreads a result of each type can have (tests/api/locate/
# test_calibration.py holds the 95 % radius above the 68 % one over them): a
# cell or area group's is at least its smallest bounded radius, 1 km.
REACHABLE_SPREAD_M = {
    "wifi": (0.0, 500.0),
    "blue": (0.0, 200.0),
    "cell": (1_000.0, 100_000.0),
    "area": (1_000.0, 500_000.0),
}
FIT_KINDS = ("wifi", "blue", "cell", "area", "mixed")
FIT_ROUNDS = 3
KIND_CODES = {kind: i for i, kind in enumerate(calibration.KINDS)}


@dataclass
class Samples:
    """Every internal result of every query: what calibration sees, and its error."""

    query: np.ndarray  # index of the query it answers (global over the worlds)
    query_kind: np.ndarray  # the query's type (scans), as a string
    kind: np.ndarray  # calibration.KINDS code
    networks: np.ndarray
    spread_m: np.ndarray
    error_m: np.ndarray
    score: np.ndarray
    lat: np.ndarray
    lon: np.ndarray

    def save(self, path: Path) -> None:
        np.savez_compressed(path, **self.__dict__)

    @classmethod
    def load(cls, path: Path) -> Samples:
        with np.load(path) as data:
            return cls(**{name: data[name] for name in data.files})


def measure(service: Service, queries: list[Any], first_query: int) -> list[tuple]:
    """(query, query kind, kind, networks, spread, error, score, lat, lon) per internal result."""
    engine = create_engine(service.db_url, pooled=False)
    breaker = CircuitBreaker()
    now = datetime.now(UTC).replace(tzinfo=None)
    rows = []
    try:
        for number, q in enumerate(queries, start=first_query):
            query = Query.build(
                parse_locate_request(q.body), api_type="locate", ip=None, geoip=None
            )
            for p in internal.search_positions(engine, breaker, query, now):
                error = haversine_m(q.truth_deg[0], q.truth_deg[1], p.lat, p.lon)
                kind = calibration.kind_of(p)
                assert kind is not None
                rows.append((number, q.kind, KIND_CODES[kind], len(p.used_networks),
                             p.spread_m, error, p.score, p.lat, p.lon))  # fmt: skip
    finally:
        engine.dispose()
    return rows


def collect(args: argparse.Namespace) -> tuple[Samples, dict[int, tuple[str, tuple[float, float]]]]:
    rows: list[tuple] = []
    truths: dict[int, tuple[str, tuple[float, float]]] = {}
    for shape in args.shape_list:
        for seed in args.seed_list:
            world = generate_world(shape, seed, scale=args.scale)
            plan = build_plan(world)
            label = f"{shape}/{seed}"
            progress(f"{label}: {len(plan.phase1) + len(plan.phase2)} reports, "
                     f"{len(plan.queries)} queries")  # fmt: skip
            with Service(mysql_url=args.mysql, redis_url=args.redis) as service:
                teach_world(service, plan, label)
                mark = time.monotonic()
                first = len(truths)
                rows += measure(service, plan.queries, first)
                for i, q in enumerate(plan.queries, start=first):
                    truths[i] = (q.kind, q.truth_deg)
                progress(f"{label}: measured in {time.monotonic() - mark:.1f} s")
    columns = list(zip(*rows, strict=True))
    samples = Samples(*(np.asarray(c) for c in columns))
    return samples, truths


def fit_band(
    spread: np.ndarray,
    error: np.ndarray,
    tau: float,
    below: list[tuple[float, float]] = (),  # type: ignore[assignment]
    spreads: tuple[float, float] = (0.0, 0.0),
) -> tuple[float, float]:
    """(intercept, slope) minimising the pinball loss at ``tau``, the intercept not
    below 0 and the line nowhere in the range ``spreads`` above the lines ``below``
    (the higher confidence's (intercept, slope) rows)."""
    best: tuple[float, float, float] | None = None
    for slope in SLOPES:
        # Under a line at both ends of the spreads is under it in between.
        highest = min([np.inf] + [i + (s - slope) * spread for i, s in below for spread in spreads])
        if highest < 0.0:
            continue
        residual = error - slope * spread
        # Not below 0 (a radius grows with the spread and never goes negative
        # for a small one) nor above the higher confidence's line; for a
        # fixed slope, clamping the loss's optimum is the constrained optimum
        # (the loss is convex in the intercept).
        intercept = min(highest, max(0.0, float(np.quantile(residual, tau))))
        r = residual - intercept
        loss = float(np.sum(np.where(r >= 0, tau * r, (tau - 1) * r)))
        if best is None or loss < best[0]:
            best = (loss, intercept, float(slope))
    assert best is not None
    return best[1], best[2]


def fit(
    samples: Samples,
    confidence: int,
    min_samples: int,
    above: calibration.Calibration | None = None,
) -> dict[str, Any]:
    """The tables of one confidence, fitted on the answers the service would give.

    The service answers the best of a query's results by the 95 % radii, and
    the best is the one that claims the smallest radius within the winning
    group: a fit on every result would be too optimistic for the chosen ones
    (the winner's curse: cells of several groups). Without ``above`` (the
    95 % fit) the fit runs again on the results its own table chooses,
    ``FIT_ROUNDS`` times; with it, once on the results ``above`` chooses,
    never above its lines. The query types in ``FIT_KINDS``
    teach the fit (mixed ones too: there a Wi-Fi answer competes with a cell
    one); the moved ones measure stale stations, which no radius can know
    about.
    """
    fitting = np.isin(samples.query_kind, FIT_KINDS)
    if above is not None:
        return fit_round(samples, fitting & chosen_by(samples, above), confidence, min_samples,
                         above)  # fmt: skip
    tables = fit_round(samples, fitting, confidence, min_samples, None)
    for _ in range(FIT_ROUNDS):
        cal = calibration.Calibration(confidence, {
            kind: calibration.table_from(t, kind) for kind, t in tables.items()
        })  # fmt: skip
        tables = fit_round(samples, fitting & chosen_by(samples, cal), confidence, min_samples,
                           None)  # fmt: skip
    return tables


def chosen_by(samples: Samples, cal: calibration.Calibration) -> np.ndarray:
    """Mask of the results ``cal``'s radii make the answers."""
    chosen = np.zeros(len(samples.query), bool)
    chosen[list(answered(samples, cal).values())] = True
    return chosen


def fit_round(samples: Samples, use: np.ndarray, confidence: int, min_samples: int,
              above: calibration.Calibration | None) -> dict[str, Any]:  # fmt: skip
    tau = confidence / 100
    tables: dict[str, Any] = {}
    for kind, code in KIND_CODES.items():
        mine = (samples.kind == code) & use
        spread = np.nan_to_num(samples.spread_m[mine])
        error, networks = samples.error_m[mine], samples.networks[mine]
        rows = []
        upper = None  # networks below the previous (higher) band
        pending = np.zeros(len(error), bool)
        for low in BANDS[kind]:
            band = (networks >= low) & (True if upper is None else networks < upper)
            pending |= band
            upper = low
            if pending.sum() < min_samples and low != 1:
                continue  # too few: merged into the band below
            if pending.sum() == 0:
                intercept, slope = 0.0, 1.0  # nothing measured: the spread as it is
            elif above is None:
                intercept, slope = fit_band(spread[pending], error[pending], tau)
            else:
                # Every row of ``above`` that applies to some number of
                # networks this row applies to bounds it, up to the spread
                # where that row reaches the ceiling.
                lowest = int(min(networks[pending])) if low != 1 else 1
                highest = rows[-1]["min_networks"] if rows else np.inf
                rows_above = _applying(above.tables[kind].rows, lowest, highest)
                ceiling = BOUNDS[kind][1]
                least, most = REACHABLE_SPREAD_M[kind]
                most = max(
                    min(most, (ceiling - row.intercept_m) / row.slope) if row.slope > 0 else most
                    for row in rows_above
                )
                intercept, slope = fit_band(
                    spread[pending], error[pending], tau,
                    [(row.intercept_m, row.slope) for row in rows_above], (least, most),
                )  # fmt: skip
            rows.append({"min_networks": int(min(networks[pending], default=low)) if low != 1
                         else 1, "intercept_m": round(intercept, 1), "slope": round(slope, 2),
                         "samples": int(pending.sum())})  # fmt: skip
            pending[:] = False
        floor, ceiling = BOUNDS[kind]
        tables[kind] = {"floor_m": floor, "ceiling_m": ceiling, "rows": rows}
    return tables


def _applying(
    rows: tuple[calibration.Row, ...], lowest: int, highest: float
) -> list[calibration.Row]:
    """The rows (descending ``min_networks``) that apply to some number of networks
    in [lowest, highest)."""
    out = []
    upper = np.inf  # a row applies up to the next higher row's min_networks
    for row in rows:
        if row.min_networks < highest and upper > lowest:
            out.append(row)
        upper = row.min_networks
    return out


def answered(samples: Samples, cal: calibration.Calibration) -> dict[int, int]:
    """The sample index of the calibrated best result per query, as the service picks it."""
    by_query: dict[int, list[Position]] = {}
    index_of: dict[int, int] = {}
    kinds = calibration.KINDS
    for i in range(len(samples.query)):
        kind = kinds[samples.kind[i]]
        p = Position(float(samples.lat[i]), float(samples.lon[i]), 0.0, float(samples.score[i]),
                     DataSource.internal, "lacf" if kind == "area" else None,
                     [(kind, b"", False)] * int(samples.networks[i]),
                     float(samples.spread_m[i]))  # fmt: skip
        by_query.setdefault(int(samples.query[i]), []).append(p)
        index_of[id(p)] = i
    out = {}
    for query, results in by_query.items():
        calibrated = cal.apply(results)
        best = best_position(calibrated)
        if best is not None:
            out[query] = index_of[id(results[calibrated.index(best)])]
    return out


def report(samples: Samples, truths: dict[int, tuple[str, tuple[float, float]]],
           cal: calibration.Calibration, chooser: calibration.Calibration) -> str:  # fmt: skip
    """The share of each query type's answers (chosen by ``chooser``'s radii, as the
    service chooses by the 95 % ones) inside ``cal``'s radius."""
    best = answered(samples, chooser)
    counts: dict[str, list[int]] = {}
    kinds = calibration.KINDS
    for query, (kind, _) in truths.items():
        i = best.get(query)
        if i is None:
            continue
        table = cal.tables[kinds[samples.kind[i]]]
        inside = samples.error_m[i] <= table.radius(samples.spread_m[i], samples.networks[i])
        c = counts.setdefault(kind, [0, 0])
        c[0] += 1
        c[1] += inside
    lines = [f"confidence {cal.confidence} %, training worlds:", "| query | answers | inside |",
             "| --- | ---: | ---: |"]  # fmt: skip
    for kind, (n, inside) in counts.items():
        lines.append(f"| {kind} | {n:,} | {100 * inside / n:.1f} % |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="1,2")
    parser.add_argument("--shapes", default="centre,suburb,highway", help=", ".join(SHAPES))
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--mysql")
    parser.add_argument("--redis")
    parser.add_argument("--min-samples", type=int, default=300)
    parser.add_argument("--samples", type=Path, help="keep (or reuse) the measured results here")
    parser.add_argument("--write", action="store_true", help=f"replace {calibration.TABLE_PATH}")
    args = parser.parse_args(argv)
    args.seed_list = [int(s) for s in args.seeds.split(",") if s]
    args.shape_list = [s for s in args.shapes.split(",") if s]
    truths_path = args.samples.with_suffix(".truths.json") if args.samples else None
    if args.samples and args.samples.exists() and truths_path and truths_path.exists():
        samples = Samples.load(args.samples)
        saved = json.loads(truths_path.read_text())
        truths = {int(k): (v[0], (v[1][0], v[1][1])) for k, v in saved["truths"].items()}
        args.seeds, args.shapes = saved["seeds"], saved["shapes"]
        progress(f"reusing {len(samples.query):,} results from {args.samples}")
    else:
        samples, truths = collect(args)
        if args.samples:
            samples.save(args.samples)
            assert truths_path is not None
            truths_path.write_text(json.dumps({"seeds": args.seeds, "shapes": args.shapes,
                                               "truths": truths}))  # fmt: skip
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                            text=True, check=False).stdout.strip()  # fmt: skip
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, check=False).stdout.strip()  # fmt: skip
    document: dict[str, Any] = {
        "about": "Written by benchmarks/accuracy/calibrate.py (ichnaea/api/locate/calibration.py)",
        "fitted": {"commit": commit + ("+uncommitted" if dirty else ""),
                   "utc": datetime.now(UTC).isoformat(timespec="seconds"),
                   "seeds": args.seeds, "shapes": args.shapes, "results": len(samples.query)},
        "confidence": {},
    }  # fmt: skip
    # The highest confidence first: it chooses the answers, and bounds the others.
    top: calibration.Calibration | None = None
    for confidence in sorted(calibration.CONFIDENCES, reverse=True):
        tables = fit(samples, confidence, args.min_samples, top)
        document["confidence"][str(confidence)] = tables
        cal = calibration.Calibration(confidence, {
            kind: calibration.table_from(t, kind) for kind, t in tables.items()
        })  # fmt: skip
        top = top or cal
        print(json.dumps(tables, indent=1))
        print(report(samples, truths, cal, top) + "\n")
    if args.write:
        calibration.TABLE_PATH.write_text(json.dumps(document, indent=2) + "\n")
        progress(f"wrote {calibration.TABLE_PATH}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
