"""The accuracy harness: teach a running Ichnaea a synthetic world, then score its answers.

    .venv/bin/python benchmarks/accuracy/run.py --seeds 1,2 --shapes centre,suburb,highway
    .venv/bin/python benchmarks/accuracy/run.py --seeds 3 --scale 0.5 --json out.json
    .venv/bin/python benchmarks/accuracy/run.py --mysql mysql://root@127.0.0.1:3306/ichnaea_acc \
        --redis redis://127.0.0.1:6379/13

For every shape and seed (:mod:`world`, :mod:`scans`), with a service of its
own (:mod:`service`; embedded SQLite and Redis in a temporary directory
unless ``--mysql``/``--redis``):

1. ``ichnaea migrate``, an API key, ``ichnaea web`` (one process);
2. phase 1: the submissions taken before the moves go to ``/v2/geosubmit``,
   then ``ichnaea process`` drains the pipeline;
3. phase 2: the submissions taken after the moves (including a few walks
   past every moved group's new place), drained the same way;
4. the web role is restarted, so that its station index is built from the
   database as it now stands, and the held-out queries (walks never
   submitted) are asked through ``/v1/geolocate/batch`` with
   ``considerIp: false`` and no IP fallback (cell-area answers are allowed);
5. every answer is scored against the true point (:mod:`score`).

Why phases and not timestamps: the station updater dates stations by its
own clock ("now" when the batch runs), never by a report's ``timestamp``
(spec pipeline.md 9.1, 9.6), and blocking counts days from those dates
(9.2). A report's timestamp only has to be plausible. So "before the
move" and "after the move" are two drains in that order; all of it happens
on one day by the service's clock, so a station blocked in phase 2 is
still blocked when the queries come (``block_last`` is today, and a
station created today stays blocked once blocked). Moves are drawn
between 2 and 8 km: an access point moved more than the Wi-Fi consistency
distance (5 km) is blocked; one moved less is averaged with its old place
(the "change" transition), so its answers land between the two; a beacon
(100 m) is always blocked. Simulating days between the phases (ageing the
stations' dates) is not done.

Output: progress on stderr, then a Markdown table per shape and seed and
one pooled over every world, per query type: ``n`` queries, ``found``
share answered, ``median``/``p90`` error in metres over the answers,
``inside`` share of answers whose accuracy radius holds the true point,
``>1 km`` share of answers more than a kilometre off, ``lacf`` share of
cell-area answers (definitions in :mod:`score`, query types in :mod:`scans`).
``--json PATH`` writes the same figures with the settings and timings.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    # Run as a script: make the repository importable.
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from benchmarks.accuracy.scans import Plan, build_plan
from benchmarks.accuracy.score import Outcome, by_kind, outcome
from benchmarks.accuracy.service import Service
from benchmarks.accuracy.teach import drain, locate, submit
from benchmarks.accuracy.world import SHAPES, generate_world

KINDS = ("wifi", "blue", "blue2", "cell", "area", "mixed", "moved", "moved_wifi", "moved_only")


def progress(message: str) -> None:
    print(f"[{datetime.now(UTC):%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def teach_world(service: Service, plan: Plan, label: str) -> dict[str, float]:
    """Phases 1 and 2 of the plan, each submitted and drained; seconds per phase."""
    timings = {}
    for name, reports in (("phase1", plan.phase1), ("phase2", plan.phase2)):
        mark = time.monotonic()
        submit(service, reports)
        drain(service)
        timings[f"{name}_s"] = time.monotonic() - mark
        progress(f"{label}: {name} taught and drained in {timings[name + '_s']:.1f} s")
    return timings


def run_world(
    shape: str, seed: int, args: argparse.Namespace
) -> tuple[list[Outcome], dict[str, Any]]:
    """Teach one world to a fresh service and score its queries."""
    started = time.monotonic()
    world = generate_world(shape, seed, scale=args.scale, moved_share=args.moved_share)
    plan = build_plan(world)
    stations = {kind: len(s.ids) for kind, s in world.stations.items()}
    progress(
        f"{shape}/{seed}: {stations}, {len(world.move_groups)} moved groups, "
        f"{len(plan.phase1)} + {len(plan.phase2)} reports, {len(plan.queries)} queries"
    )
    timings: dict[str, float] = {}
    with Service(mysql_url=args.mysql, redis_url=args.redis) as service:
        timings["start_s"] = time.monotonic() - started
        timings.update(teach_world(service, plan, f"{shape}/{seed}"))
        mark = time.monotonic()
        service.restart_web()
        answers = locate(service, plan.queries)
        timings["locate_s"] = time.monotonic() - mark
    outcomes = [
        outcome(query.kind, query.truth_deg, answer)
        for query, answer in zip(plan.queries, answers, strict=True)
    ]
    timings["total_s"] = time.monotonic() - started
    progress(f"{shape}/{seed}: scored in {timings['total_s']:.1f} s in all")
    info = {
        "shape": shape,
        "seed": seed,
        "stations": stations,
        "moved_groups": len(world.move_groups),
        "reports": [len(plan.phase1), len(plan.phase2)],
        "timings": {k: round(v, 1) for k, v in timings.items()},
        "figures": by_kind(outcomes, KINDS),
    }
    return outcomes, info


def _cell(value: Any, percent: bool = False) -> str:
    if value is None:
        return "-"
    if percent:
        return f"{100 * value:.1f} %"
    return f"{value:,.0f}" if value >= 10 else f"{value:.1f}"


def markdown(rows: list[tuple[str, dict[str, dict[str, Any]]]]) -> str:
    """One table: a row per (label, query type)."""
    lines = [
        "| world | query | n | found | median m | p90 m | inside | >1 km | lacf |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for label, figures in rows:
        for kind, f in figures.items():
            lines.append(
                f"| {label} | {kind} | {f['n']:,} | {_cell(f['found'], True)} "
                f"| {_cell(f['median_m'])} | {_cell(f['p90_m'])} | {_cell(f['inside'], True)} "
                f"| {_cell(f['far_1km'], True)} | {_cell(f['lacf'], True)} |"
            )
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seeds", default="1,2", help="comma-separated seeds")
    parser.add_argument("--shapes", default="centre,suburb,highway", help=", ".join(SHAPES))
    parser.add_argument("--scale", type=float, default=1.0, help="multiplies every count")
    parser.add_argument("--moved-share", type=float, default=0.03,
                        help="share of Wi-Fi access points that move")  # fmt: skip
    parser.add_argument("--mysql", help="a MySQL URL whose database is dropped and rebuilt")
    parser.add_argument("--redis", help="a Redis URL whose database is flushed (use db >= 13)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    args.seed_list = [int(s) for s in args.seeds.split(",") if s]
    args.shape_list = [s for s in args.shapes.split(",") if s]
    unknown = set(args.shape_list) - set(SHAPES)
    if unknown:
        parser.error(f"unknown shapes: {', '.join(sorted(unknown))}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.monotonic()
    pooled: list[Outcome] = []
    worlds = []
    for shape in args.shape_list:
        for seed in args.seed_list:
            outcomes, info = run_world(shape, seed, args)
            pooled.extend(outcomes)
            worlds.append(info)
    rows = [(f"{w['shape']}/{w['seed']}", w["figures"]) for w in worlds]
    total = by_kind(pooled, KINDS)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=False
    ).stdout.strip()
    print(f"Per world:\n\n{markdown(rows)}\n")
    print(f"Pooled over every world:\n\n{markdown([('all', total)])}")
    elapsed = time.monotonic() - started
    progress(f"done in {elapsed:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({
            "commit": commit,
            "utc": datetime.now(UTC).isoformat(timespec="seconds"),
            "argv": sys.argv[1:] if argv is None else argv,
            "elapsed_s": round(elapsed, 1),
            "worlds": worlds,
            "pooled": total,
        }, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
