"""The columnar station plan equals the per-station reference on random batches.

:func:`ichnaea.pipeline.stations.plan.plan_station_updates` decides a batch
on columns; ``reference_plan.py`` decides it one station group at a time,
as the spec reads. On random batches of every station type, with stored
rows in every state (no position, gnss or query positions near and far,
year-old ones, blocked recently, repeatedly or relearned, confirmed
today), observations of every source, usable or not, near the borders of
several regions, both give the same rows in the same order, value for
value and type for type, and the same counters, areas and actions.
"""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from ichnaea.enums import Radio
from ichnaea.geocode import Geocoder
from ichnaea.pipeline.stations.plan import plan_station_updates
from ichnaea.pipeline.stations.state import Action, StationType, station_key
from ichnaea.regions import RegionTable
from ichnaea.repositories.station_rows import LockedRows, station_table
from tests.pipeline.stations.reference_plan import plan_rows

NOW = datetime(2026, 5, 20, 8, 15, 30)
TODAY = NOW.date()
# A city, and two places where regions meet (Dover-Calais, Basel).
PLACES = [(51.5, -0.1), (51.0, 1.6), (47.56, 7.59)]
CASES = 120


@pytest.fixture(scope="module")
def geocoder() -> Iterator[Geocoder]:
    yield Geocoder.load(RegionTable.load())


def _maybe(rng: random.Random, value: Any, none: float = 0.2) -> Any:
    return None if rng.random() < none else value


def _identity(rng: random.Random, stype: StationType, radio: Radio, n: int) -> dict[str, Any]:
    if stype is StationType.cell:
        return {"radio": int(radio), "mcc": 234, "mnc": 30, "lac": 100 + n % 7, "cid": 5000 + n}
    return {"mac": f"{rng.getrandbits(40) | (2 << 40):012x}"}


def _stored(
    rng: random.Random, stype: StationType, key: bytes, ident: dict[str, Any], lat: float,
    lon: float,
) -> dict[str, Any]:  # fmt: skip
    """A stored row in any state."""
    far = rng.random() < 0.3
    s_lat = lat + (rng.uniform(-1, 1) * stype.max_dist_m / 50_000 if far else rng.gauss(0, 2e-4))
    s_lon = lon + rng.gauss(0, 2e-4)
    positioned = rng.random() > 0.15
    created = _maybe(rng, NOW - timedelta(days=rng.choice([1, 5, 20, 44, 45, 46, 200, 800])), 0.1)
    modified = _maybe(rng, NOW - timedelta(days=rng.choice([0, 3, 100, 366, 400])), 0.1)
    block_last = _maybe(rng, TODAY - timedelta(days=rng.choice([0, 1, 2, 30])), 0.6)
    row: dict[str, Any] = {
        stype.key_column: key,
        "lat": s_lat if positioned else None,
        "lon": s_lon if positioned else None,
        "max_lat": _maybe(rng, s_lat + 3e-4),
        "min_lat": _maybe(rng, s_lat - 3e-4),
        "max_lon": _maybe(rng, s_lon + 3e-4),
        "min_lon": _maybe(rng, s_lon - 3e-4),
        "radius": _maybe(rng, rng.randint(0, 900)),
        "region": rng.choice(["GB", "FR", "CH", "DE", None]),
        "samples": _maybe(rng, rng.choice([1, 3, 9, 10, 50, 4_294_967_290])),
        "source": rng.choice([3, 9, None]),
        "weight": _maybe(rng, rng.choice([0.5, 3.0, 12_000.0, 1e9])),
        "created": created,
        "modified": modified,
        "last_seen": _maybe(rng, TODAY - timedelta(days=rng.choice([0, 0, 1, 10]))),
        "block_first": _maybe(rng, TODAY - timedelta(days=rng.choice([0, 5, 90])), 0.6),
        "block_last": block_last,
        "block_count": _maybe(rng, rng.choice([0, 1, 2, 3, 254, 255]), 0.4),
    }
    if stype is StationType.cell:
        row |= {**ident, "psc": _maybe(rng, rng.randint(0, 511))}
    return row


def _observation(
    rng: random.Random, stype: StationType, ident: dict[str, Any], lat: float, lon: float
) -> dict[str, Any]:
    spread = stype.max_dist_m / 111_000 * (2.0 if rng.random() < 0.15 else 0.05)
    observation: dict[str, Any] = {
        **ident,
        "lat": _maybe(rng, lat + rng.uniform(-spread, spread), 0.03),
        "lon": lon + rng.uniform(-spread, spread),
        "accuracy": _maybe(rng, rng.choice([2.0, 10.0, 40.0, 200.0, 5000.0]), 0.1),
        "age": _maybe(rng, rng.randint(-40_000, 2_000), 0.3),
        "speed": _maybe(rng, rng.choice([0.0, 5.0, 80.0]), 0.5),
        "signal": _maybe(rng, rng.randint(-110, -40), 0.3),
        "source": rng.choice([None, 0, 3, 6, 9, 9]),
    }
    if stype is StationType.cell:
        observation["psc"] = _maybe(rng, rng.randint(0, 511), 0.5)
    return observation


def _batch(
    rng: random.Random,
) -> tuple[StationType, list[dict[str, Any]], list[dict[str, Any]], tuple[str, ...]]:
    stype = rng.choice(list(StationType))
    radio = rng.choice([Radio.gsm, Radio.wcdma, Radio.lte, Radio.nr])
    shard = radio.name if stype is StationType.cell else "0"
    columns = tuple(column.name for column in station_table(stype.name, shard).columns)
    stations = []
    for n in range(rng.randint(1, 40)):
        ident = _identity(rng, stype, radio, n)
        lat0, lon0 = rng.choice(PLACES)
        stations.append((ident, lat0 + rng.uniform(-0.05, 0.05), lon0 + rng.uniform(-0.08, 0.08)))
    stored = [
        _stored(rng, stype, station_key(stype, ident), ident, lat, lon)
        for ident, lat, lon in stations
        if rng.random() < 0.6
    ]
    observations = [
        _observation(rng, stype, *rng.choice(stations)) for _ in range(rng.randint(1, 120))
    ]
    return stype, observations, stored, columns


def _same(a: Any, b: Any) -> bool:
    if type(a) is not type(b):
        return False
    if isinstance(a, float) and math.isnan(a):
        return math.isnan(b)
    return bool(a == b)


@pytest.mark.parametrize("seed", range(CASES))
def test_the_columnar_plan_equals_the_per_station_reference(seed: int, geocoder: Geocoder) -> None:
    stype, observations, stored, columns = _batch(random.Random(seed))
    existing = {row[stype.key_column]: row for row in stored}
    full = {key: {name: row.get(name) for name in columns} for key, row in existing.items()}
    expected, expected_rows = plan_rows(
        stype, observations, full, columns, now=NOW, today=TODAY, geocoder=geocoder
    )
    locked = LockedRows.from_mappings(columns, stype.key_column, stored)
    plan = plan_station_updates(
        stype, observations, locked, now=NOW, today=TODAY, geocoder=geocoder
    )

    assert len(plan.rows) == len(expected_rows)
    for got, want in zip(plan.rows, expected_rows, strict=True):
        differ = [
            (name, g, w) for name, g, w in zip(columns, got, want, strict=True) if not _same(g, w)
        ]
        assert not differ, differ
    assert (plan.inserted, plan.confirmed) == (len(expected.inserts), len(expected.confirms))
    assert plan.confirms == expected.confirms
    assert plan.actions == expected.actions
    assert list(plan.actions) == list(expected.actions)  # in the same order
    assert (plan.obs_count, plan.new, plan.block, plan.confirm) == (
        expected.obs_count,
        expected.new,
        expected.block,
        expected.confirm,
    )
    assert plan.area_ids == expected.area_ids


def test_the_random_batches_reach_every_action(geocoder: Geocoder) -> None:
    """The comparison above means something only if its batches reach every action."""
    seen = set()
    for seed in range(CASES):
        stype, observations, stored, columns = _batch(random.Random(seed))
        locked = LockedRows.from_mappings(columns, stype.key_column, stored)
        plan = plan_station_updates(
            stype, observations, locked, now=NOW, today=TODAY, geocoder=geocoder
        )
        seen |= {(stype, action) for action in plan.actions.values()}
    assert seen == {(stype, action) for stype in StationType for action in Action}
