"""What a device hears at a point, and the submissions and queries made of it.

Received signal follows the log-distance path-loss model with log-normal
shadowing::

    signal_dbm = p0_dbm - 10 * n * log10(max(d_m, 1)) + N(0, sigma_db)

with ``p0_dbm`` chosen per station so that the mean signal equals the
receiver's sensitivity at the station's range (:mod:`world`); a station is
heard when its signal is at or above the sensitivity. Shadowing is drawn
independently for every scan and station. A device reports at most the
``MAX_HEARD`` strongest stations of each kind.

A submission carries the position the GNSS receiver reported: the true one
plus Gaussian noise whose 68 % radius is the walk's accuracy (3-15 m), and
that accuracy in ``position.accuracy``. A query carries no position; its
truth is the true point of the scan.

Query types (one scan can give several):

* ``wifi``, ``blue``, ``cell``: only that kind of network from the scan;
* ``area``: the scan's cells, each with a cell id no station has, so only
  its location area can answer (a "lacf" answer);
* ``mixed``: everything the scan heard, when it heard at least two kinds;
* ``blue2``: the ``blue`` queries with at least two beacons that some
  submission heard (the case issue 11 asks to answer 90 % of the time);
* ``moved``: a scan at a moved group's new place that hears at least one
  moved station, everything it heard;
* ``moved_wifi``: the same scan with only its Wi-Fi and Bluetooth networks
  (moved or not): with no cell to answer, an answer more than 1 km off
  can only come from a stale station position;
* ``moved_only``: the same scan with only the moved stations, when it
  heard two or more of them (answerable only from the new place).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from benchmarks.accuracy.world import BLUE, GSM, LTE, WIFI, Stations, Walk, World

# Path-loss exponent, shadowing (dB), sensitivity (dBm) and the range the
# API accepts for the signal (dBm), per kind.
RADIO: dict[str, tuple[float, float, float, tuple[int, int]]] = {
    WIFI: (3.0, 6.0, -92.0, (-100, -25)),
    BLUE: (2.5, 5.0, -100.0, (-127, -30)),
    LTE: (3.5, 8.0, -120.0, (-140, -50)),
    GSM: (3.5, 8.0, -108.0, (-113, -55)),
}
MAX_HEARD = {WIFI: 30, BLUE: 10, LTE: 6, GSM: 6}
# 68 % of a 2-D Gaussian error lies within 1.515 sigma (per axis).
R68_PER_SIGMA = 1.515


@dataclass(frozen=True)
class Heard:
    """One scan: the indices heard per kind and their signals."""

    truth_m: np.ndarray  # (2,)
    heard: dict[str, list[tuple[int, int]]]  # kind -> [(station index, signal dBm)]


@dataclass(frozen=True)
class Query:
    kind: str
    body: dict[str, Any]
    truth_deg: tuple[float, float]


def hear(world: World, point_m: np.ndarray, phase: int, rng: np.random.Generator) -> Heard:
    """The stations a device at ``point_m`` hears in ``phase``, strongest first."""
    heard: dict[str, list[tuple[int, int]]] = {}
    for kind, stations in world.stations.items():
        exponent, sigma, sensitivity, (low, high) = RADIO[kind]
        pos = stations.pos1_m if phase == 1 else stations.pos2_m
        distance = np.maximum(np.hypot(*(pos - point_m).T), 1.0)
        p0 = sensitivity + 10 * exponent * np.log10(stations.range_m)
        signal = p0 - 10 * exponent * np.log10(distance) + rng.normal(0, sigma, len(distance))
        audible = np.flatnonzero(signal >= sensitivity)
        strongest = audible[np.argsort(-signal[audible])][: MAX_HEARD[kind]]
        heard[kind] = [(int(i), int(np.clip(round(signal[i]), low, high))) for i in strongest]
    return Heard(np.asarray(point_m, float), heard)


def _entries(stations: dict[str, Stations], heard: Heard, kinds: set[str]) -> dict[str, Any]:
    """The v1/v2 network lists of a report or query (only non-empty ones)."""
    wifis = [
        {"macAddress": stations[WIFI].ids[i], "signalStrength": s}
        for i, s in heard.heard.get(WIFI, [])
        if WIFI in kinds
    ]
    blues = [
        {"macAddress": stations[BLUE].ids[i], "signalStrength": s}
        for i, s in heard.heard.get(BLUE, [])
        if BLUE in kinds
    ]
    cells = []
    for kind in (LTE, GSM):
        if kind not in kinds:
            continue
        for i, s in heard.heard.get(kind, []):
            mcc, mnc, lac, cid = (int(v) for v in stations[kind].ids[i].split(":"))
            cells.append({
                "radioType": kind, "mobileCountryCode": mcc, "mobileNetworkCode": mnc,
                "locationAreaCode": lac, "cellId": cid, "signalStrength": s,
            })  # fmt: skip
    lists = (("wifiAccessPoints", wifis), ("bluetoothBeacons", blues), ("cellTowers", cells))
    return {key: entries for key, entries in lists if entries}


def _unknown_cells(networks: dict[str, Any]) -> dict[str, Any]:
    """The cells of ``networks`` with cell ids no station of a world has (:mod:`world`
    numbers LTE cells from 1,280,001 and GSM cells from 20,000, a few thousand each)."""
    cells = [
        {**cell, "cellId": cell["cellId"] + (100_000_000 if cell["radioType"] == LTE else 40_000)}
        for cell in networks.get("cellTowers", [])
    ]
    return {"cellTowers": cells} if cells else {}


def walk_scans(world: World, walk: Walk, rng: np.random.Generator) -> list[Heard]:
    return [hear(world, point, walk.phase, rng) for point in walk.points_m]


def report(
    world: World, scan: Heard, accuracy_m: float, rng: np.random.Generator
) -> dict[str, Any] | None:
    """A v2 geosubmit item for ``scan`` (no timestamp yet), its position blurred by GNSS noise."""
    networks = _entries(world.stations, scan, {WIFI, BLUE, LTE, GSM})
    if not networks:
        return None
    noisy = scan.truth_m + rng.normal(0, accuracy_m / R68_PER_SIGMA, 2)
    lat, lon = world.to_lat_lon(noisy)[0]
    return {
        "position": {
            "latitude": round(float(lat), 7),
            "longitude": round(float(lon), 7),
            "accuracy": round(accuracy_m, 1),
            "source": "gnss",
        },
        **networks,
    }


def queries(world: World, scan: Heard, *, near_move: bool, known: dict[str, set[int]]
            ) -> list[Query]:  # fmt: skip
    """The queries one held-out scan gives (see the module docstring for the kinds)."""
    lat, lon = world.to_lat_lon(scan.truth_m)[0]
    truth = (float(lat), float(lon))
    # No IP answer may stand in for a station answer; area answers (lacf) may.
    base = {"considerIp": False, "fallbacks": {"ipf": False, "lacf": True}}
    out: list[Query] = []

    def add(kind: str, networks: dict[str, Any]) -> None:
        if networks:
            out.append(Query(kind, {**base, **networks}, truth))

    everything = _entries(world.stations, scan, {WIFI, BLUE, LTE, GSM})
    if near_move:
        moved = Heard(scan.truth_m, {
            kind: [(i, s) for i, s in scan.heard.get(kind, [])
                   if world.stations[kind].moved[i]]
            for kind in (WIFI, BLUE)
        })  # fmt: skip
        heard_moved = sum(len(v) for v in moved.heard.values())
        if heard_moved >= 1:
            add("moved", everything)
            add("moved_wifi", _entries(world.stations, scan, {WIFI, BLUE}))
        if heard_moved >= 2:
            add("moved_only", _entries(world.stations, moved, {WIFI, BLUE}))
        return out
    add("wifi", _entries(world.stations, scan, {WIFI}))
    add("blue", _entries(world.stations, scan, {BLUE}))
    add("cell", _entries(world.stations, scan, {LTE, GSM}))
    add("area", _unknown_cells(_entries(world.stations, scan, {LTE, GSM})))
    if len(everything) >= 2:
        add("mixed", everything)
    if sum(1 for i, _ in scan.heard.get(BLUE, []) if i in known[BLUE]) >= 2:
        add("blue2", _entries(world.stations, scan, {BLUE}))
    return out


@dataclass(frozen=True)
class Plan:
    """What the harness sends: two phases of submissions, then the queries.

    ``age_ms`` of a report is how long before the teaching started it was
    taken: phase 1 one to two weeks before, phase 2 the last day. The
    pipeline itself dates stations by its own clock, not by these.
    """

    phase1: list[tuple[int, dict[str, Any]]]  # (age_ms, report without timestamp)
    phase2: list[tuple[int, dict[str, Any]]]
    queries: list[Query]


def build_plan(world: World) -> Plan:
    """Every scan of every walk, drawn from the world's seed (deterministic)."""
    rng = np.random.default_rng([world.seed, 7])
    phases: dict[int, list[tuple[int, dict[str, Any]]]] = {1: [], 2: []}
    held_out: list[tuple[Heard, bool]] = []
    known: dict[str, set[int]] = {WIFI: set(), BLUE: set(), LTE: set(), GSM: set()}
    day_ms = 86_400_000
    for walk in world.walks:
        scans = walk_scans(world, walk, rng)
        if walk.purpose == "query":
            held_out.extend((scan, walk.near_move >= 0) for scan in scans)
            continue
        start_ms = int(rng.integers(7 * day_ms, 14 * day_ms) if walk.phase == 1
                       else rng.integers(3_600_000, day_ms))  # fmt: skip
        for n, scan in enumerate(scans):
            accuracy = float(np.clip(walk.gnss_accuracy_m * rng.uniform(0.8, 1.25), 3, 15))
            item = report(world, scan, accuracy, rng)
            if item is None:
                continue
            phases[walk.phase].append((start_ms - n * 10_000, item))
            for kind, entries in scan.heard.items():
                known[kind].update(i for i, _ in entries)
    out = [
        query
        for scan, near_move in held_out
        for query in queries(world, scan, near_move=near_move, known=known)
    ]
    return Plan(phases[1], phases[2], out)
