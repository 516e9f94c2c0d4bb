"""A seeded synthetic world: streets, stations, and the walks that observe them.

A world is one *shape* of town (``centre``, ``suburb``, ``highway``) and one
seed. Everything is laid out in local metres (x east, y north) around the
shape's origin, a point in Germany so that every position falls inside a
region the pipeline accepts, and converted to degrees only when a report is
written (:func:`to_lat_lon`, an equirectangular projection: exact enough
over the few tens of kilometres a world spans).

* **Streets** are a square grid (``street_spacing_m``); the highway is one
  street. Wi-Fi access points and Bluetooth beacons sit in the buildings
  beside the streets (5-40 m off the street), or for the highway in a few
  villages and service areas along the road. Cell sites stand on a regular
  grid (one LTE cell each, half of them a GSM cell too), grouped into
  location areas of a few kilometres.
* **Ranges** are drawn per station: Wi-Fi 30-100 m, Bluetooth 10-70 m,
  cells per shape (0.5-2 km in the centre up to 2-5 km on the highway). The
  range is where the mean received signal meets the receiver's sensitivity;
  :mod:`scans` turns it into a signal with log-distance path loss and
  log-normal shadowing.
* **Walks**: a device walks (or, on the highway, drives) along the streets,
  turning at random at crossings, and scans every ``scan_interval_s``.
  Teaching walks become submissions; query walks are drawn the same way but
  are never submitted.
* **Moved stations**: a share of the Wi-Fi access points, in groups of two
  or three with the beacons beside them (a household or a shop that
  moves), are taken ``move_km`` away, part way through. Phase 1 is the world
  before the move, phase 2 after it; a few teaching walks and one query walk
  pass each group's new place.

Same shape, seed and scale give the same world, bit for bit
(:func:`generate_world`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

METRES_PER_DEG_LAT = 111_320.0
WIFI = "wifi"
BLUE = "blue"
LTE = "lte"
GSM = "gsm"


@dataclass(frozen=True)
class Shape:
    """The parameters of one kind of town (sizes at scale 1)."""

    name: str
    origin_deg: tuple[float, float]
    width_m: float
    height_m: float
    street_spacing_m: float  # 0: one street along the x axis (highway)
    wifis: int
    blues: int
    cell_spacing_m: float
    cell_range_m: tuple[float, float]
    teach_walks: int
    query_walks: int
    scans_per_walk: int
    step_m: float  # distance between two scans of a walk
    villages: int = 0  # highway: stations cluster in this many villages


SHAPES: dict[str, Shape] = {
    shape.name: shape
    for shape in (
        # A dense centre: a 1.2 km square, streets every 100 m.
        Shape(
            name="centre", origin_deg=(52.520, 13.405), width_m=1200, height_m=1200,
            street_spacing_m=100, wifis=1400, blues=220, cell_spacing_m=500,
            cell_range_m=(500, 2000), teach_walks=90, query_walks=30, scans_per_walk=40,
            step_m=12,
        ),
        # A suburb: 2 km square, streets every 250 m, fewer networks.
        Shape(
            name="suburb", origin_deg=(52.420, 13.180), width_m=2000, height_m=2000,
            street_spacing_m=250, wifis=1100, blues=120, cell_spacing_m=1500,
            cell_range_m=(1000, 4000), teach_walks=90, query_walks=30, scans_per_walk=40,
            step_m=15,
        ),
        # A highway: 30 km of road, networks only in villages, driving at
        # about 100 km/h with a scan every 3 s.
        Shape(
            name="highway", origin_deg=(52.150, 13.000), width_m=30_000, height_m=600,
            street_spacing_m=0, wifis=500, blues=60, cell_spacing_m=3000,
            cell_range_m=(2000, 5000), teach_walks=60, query_walks=20, scans_per_walk=60,
            step_m=80, villages=10,
        ),
    )
}  # fmt: skip

WIFI_RANGE_M = (30.0, 100.0)
BLUE_RANGE_M = (10.0, 70.0)
MOVE_KM = (2.0, 8.0)


@dataclass(frozen=True)
class Stations:
    """Every station of one kind; ``pos_m[phase]`` is an (n, 2) array of x, y."""

    kind: str  # WIFI, BLUE, LTE or GSM
    ids: list[str]  # MAC (12 hex digits) or "mcc:mnc:lac:cid"
    pos1_m: np.ndarray  # (n, 2) before the move
    pos2_m: np.ndarray  # (n, 2) after the move
    range_m: np.ndarray  # (n,)
    moved: np.ndarray  # (n,) bool


@dataclass(frozen=True)
class Walk:
    """One device's track: true positions (metres), phase, and what it is for."""

    points_m: np.ndarray  # (k, 2)
    phase: int  # 1 or 2
    purpose: str  # "teach" or "query"
    near_move: int = -1  # index of the moved group it passes, or -1
    gnss_accuracy_m: float = 10.0


@dataclass
class World:
    shape: Shape
    seed: int
    stations: dict[str, Stations]
    walks: list[Walk]
    move_groups: list[list[tuple[str, int]]] = field(default_factory=list)

    def to_lat_lon(self, xy_m: np.ndarray) -> np.ndarray:
        return to_lat_lon(self.shape.origin_deg, xy_m)


def to_lat_lon(origin_deg: tuple[float, float], xy_m: np.ndarray) -> np.ndarray:
    """(n, 2) metres east/north of ``origin_deg`` → (n, 2) latitude, longitude."""
    lat0, lon0 = origin_deg
    xy = np.asarray(xy_m, dtype=float).reshape(-1, 2)
    lat = lat0 + xy[:, 1] / METRES_PER_DEG_LAT
    lon = lon0 + xy[:, 0] / (METRES_PER_DEG_LAT * math.cos(math.radians(lat0)))
    return np.column_stack([lat, lon])


def _scaled(shape: Shape, scale: float) -> Shape:
    """Counts scale with ``scale``; the geometry does not (density changes)."""

    def count(n: int) -> int:
        return max(1, round(n * scale))

    return Shape(
        shape.name, shape.origin_deg, shape.width_m, shape.height_m, shape.street_spacing_m,
        count(shape.wifis), count(shape.blues), shape.cell_spacing_m, shape.cell_range_m,
        count(shape.teach_walks), count(shape.query_walks), shape.scans_per_walk,
        shape.step_m, shape.villages,
    )  # fmt: skip


def _street_points(shape: Shape, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` building positions beside the streets (or in the highway's villages)."""
    if shape.street_spacing_m == 0:
        centres = rng.uniform(0.05, 0.95, shape.villages) * shape.width_m
        x = centres[rng.integers(0, shape.villages, n)] + rng.normal(0, 250, n)
        y = shape.height_m / 2 + rng.choice([-1, 1], n) * rng.uniform(15, 200, n)
        return np.column_stack([np.clip(x, 0, shape.width_m), y])
    along = rng.uniform(0, 1, n)
    vertical = rng.random(n) < 0.5
    lines_x = int(shape.width_m // shape.street_spacing_m) + 1
    lines_y = int(shape.height_m // shape.street_spacing_m) + 1
    offset = rng.choice([-1, 1], n) * rng.uniform(5, 40, n)
    x = np.where(
        vertical,
        rng.integers(0, lines_x, n) * shape.street_spacing_m + offset,
        along * shape.width_m,
    )
    y = np.where(
        vertical,
        along * shape.height_m,
        rng.integers(0, lines_y, n) * shape.street_spacing_m + offset,
    )
    return np.column_stack([x, y])


def _macs(n: int, rng: np.random.Generator, prefix: int) -> list[str]:
    """``n`` distinct, valid, locally administered MACs (the first octet says which kind)."""
    tails = rng.choice(2**40, size=n, replace=False)
    return [f"{prefix:02x}{int(t):010x}" for t in tails]


def _cells(shape: Shape, rng: np.random.Generator) -> tuple[Stations, Stations]:
    # Sites cover the world and a margin around it: cells outside are heard too.
    margin = shape.cell_range_m[1] / 2
    xs = np.arange(-margin, shape.width_m + margin, shape.cell_spacing_m)
    ys = np.arange(-margin, shape.height_m + margin, shape.cell_spacing_m)
    if shape.street_spacing_m == 0:
        ys = np.array([shape.height_m / 2 + 400.0])
    sites = np.array([(x, y) for x in xs for y in ys], dtype=float)
    sites += rng.normal(0, shape.cell_spacing_m / 8, sites.shape)
    n = len(sites)
    # Location areas: a 6 km grid over the world.
    lacs = 1000 + (sites[:, 0] // 6000).astype(int) * 10 + (sites[:, 1] // 6000).astype(int)
    ranges = rng.uniform(*shape.cell_range_m, n)
    lte_ids = [f"262:1:{lac}:{(5000 + i) * 256 + 1}" for i, lac in enumerate(lacs)]
    lte = Stations(LTE, lte_ids, sites, sites, ranges, np.zeros(n, bool))
    has_gsm = rng.random(n) < 0.5
    gsm_ids = [f"262:2:{lac}:{20000 + i}" for i, lac in enumerate(lacs) if has_gsm[i]]
    gsm_pos = sites[has_gsm]
    gsm = Stations(GSM, gsm_ids, gsm_pos, gsm_pos, ranges[has_gsm] * 1.5,
                   np.zeros(len(gsm_ids), bool))  # fmt: skip
    return lte, gsm


def _walk(shape: Shape, rng: np.random.Generator, scans: int) -> np.ndarray:
    """A street walk: along the grid, turning at random at crossings."""
    if shape.street_spacing_m == 0:
        start = rng.uniform(0, shape.width_m)
        sign = rng.choice([-1.0, 1.0])
        x = start + sign * shape.step_m * np.arange(scans)
        x = np.abs(x) % (2 * shape.width_m)  # bounce off the ends
        x = np.where(x > shape.width_m, 2 * shape.width_m - x, x)
        return np.column_stack([x, np.full(scans, shape.height_m / 2)])
    spacing = shape.street_spacing_m
    nx = int(shape.width_m // spacing)
    ny = int(shape.height_m // spacing)
    node = np.array([rng.integers(0, nx + 1), rng.integers(0, ny + 1)])
    heading = np.array([1, 0]) if rng.random() < 0.5 else np.array([0, 1])
    position = node * spacing + (heading * rng.uniform(0, spacing))
    points = []
    travelled_in_segment = float(np.dot(position - node * spacing, heading))
    for _ in range(scans):
        points.append(position.copy())
        travelled_in_segment += shape.step_m
        while travelled_in_segment >= spacing:
            travelled_in_segment -= spacing
            node = node + heading
            options = [
                h for h in ([1, 0], [-1, 0], [0, 1], [0, -1])
                if 0 <= node[0] + h[0] <= nx and 0 <= node[1] + h[1] <= ny
                and not (h[0] == -heading[0] and h[1] == -heading[1])
            ]  # fmt: skip
            keep = [h for h in options if h[0] == heading[0] and h[1] == heading[1]]
            if keep and rng.random() < 0.7:
                heading = np.array(keep[0])
            elif options:
                heading = np.array(options[rng.integers(0, len(options))])
            else:
                heading = -heading
        position = node * spacing + heading * travelled_in_segment
    return np.array(points, dtype=float)


def _pass_by(centre_m: np.ndarray, rng: np.random.Generator, scans: int) -> np.ndarray:
    """A short straight walk passing within 40 m of ``centre_m``, a scan every 10 m."""
    angle = rng.uniform(0, 2 * math.pi)
    along = np.array([math.cos(angle), math.sin(angle)])
    across = np.array([-along[1], along[0]])
    offsets = (np.arange(scans) - (scans - 1) / 2) * 10.0
    return centre_m + np.outer(offsets, along) + across * rng.uniform(-40, 40)


def _move_groups(
    wifi_pos: np.ndarray, blue_pos: np.ndarray, share: float, rng: np.random.Generator
) -> tuple[list[list[tuple[str, int]]], np.ndarray]:
    """Pick groups of 2-3 nearby access points (plus beacons within 30 m) that move."""
    groups: list[list[tuple[str, int]]] = []
    vectors = []
    taken: set[int] = set()
    target = round(share * len(wifi_pos))
    moved = 0
    for anchor in rng.permutation(len(wifi_pos)):
        if moved >= target:
            break
        if int(anchor) in taken:
            continue
        distance = np.hypot(*(wifi_pos - wifi_pos[anchor]).T)
        size = int(rng.integers(2, 4))
        near = [int(i) for i in np.argsort(distance)[:size] if int(i) not in taken]
        if len(near) < 2:
            continue
        taken.update(near)
        moved += len(near)
        group = [(WIFI, i) for i in near]
        if len(blue_pos):
            blue_distance = np.hypot(*(blue_pos - wifi_pos[anchor]).T)
            group += [(BLUE, int(i)) for i in np.flatnonzero(blue_distance < 30)]
        bearing = rng.uniform(0, 2 * math.pi)
        km = rng.uniform(*MOVE_KM)
        groups.append(group)
        vectors.append(km * 1000 * np.array([math.cos(bearing), math.sin(bearing)]))
    return groups, np.array(vectors).reshape(-1, 2)


def generate_world(
    shape_name: str, seed: int, *, scale: float = 1.0, moved_share: float = 0.03
) -> World:
    """The world of ``shape_name`` for ``seed``; ``scale`` multiplies every count.

    ``moved_share`` is the share of Wi-Fi access points that move (with the
    beacons beside them); each group gets three teaching walks and one query
    walk past its new place, phase 2.
    """
    shape = _scaled(SHAPES[shape_name], scale)
    rng = np.random.default_rng([seed, sorted(SHAPES).index(shape_name)])
    wifi_pos = _street_points(shape, shape.wifis, rng)
    blue_pos = _street_points(shape, shape.blues, rng)
    wifi_range = rng.uniform(*WIFI_RANGE_M, shape.wifis)
    blue_range = rng.uniform(*BLUE_RANGE_M, shape.blues)
    groups, vectors = _move_groups(wifi_pos, blue_pos, moved_share, rng)
    wifi_new, blue_new = wifi_pos.copy(), blue_pos.copy()
    wifi_moved = np.zeros(shape.wifis, bool)
    blue_moved = np.zeros(shape.blues, bool)
    for group, vector in zip(groups, vectors, strict=True):
        for kind, index in group:
            (wifi_new if kind == WIFI else blue_new)[index] += vector
            (wifi_moved if kind == WIFI else blue_moved)[index] = True
    lte, gsm = _cells(shape, rng)
    stations = {
        WIFI: Stations(WIFI, _macs(shape.wifis, rng, 0x02), wifi_pos, wifi_new,
                       wifi_range, wifi_moved),
        BLUE: Stations(BLUE, _macs(shape.blues, rng, 0x06), blue_pos, blue_new,
                       blue_range, blue_moved),
        LTE: lte,
        GSM: gsm,
    }  # fmt: skip
    walks = []
    for purpose, count in (("teach", shape.teach_walks), ("query", shape.query_walks)):
        for n in range(count):
            # Two thirds of the teaching walks happen before the move; queries after it.
            phase = 1 if purpose == "teach" and n < count * 2 // 3 else 2
            walks.append(
                Walk(
                    _walk(shape, rng, shape.scans_per_walk),
                    phase,
                    purpose,
                    gnss_accuracy_m=float(rng.uniform(3, 15)),
                )
            )
    for g, group in enumerate(groups):
        kind, index = group[0]
        centre = wifi_new[index]
        for purpose, count in (("teach", 3), ("query", 1)):
            for _ in range(count):
                walks.append(
                    Walk(
                        _pass_by(centre, rng, 15),
                        2,
                        purpose,
                        near_move=g,
                        gnss_accuracy_m=float(rng.uniform(3, 15)),
                    )
                )
    return World(shape, seed, stations, walks, groups)
