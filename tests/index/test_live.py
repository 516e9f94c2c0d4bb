"""The live station index: the same answers as the database, kept fresh, never a damaged file.

Each test drives a :class:`~ichnaea.index.live.LiveIndex` step by step
(``open()``, ``refresh()``; the background thread is not started) against
the real backends: MariaDB with the Redis server, SQLite with the embedded
Redis.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

from ichnaea.api.locate.query import BlueLookup, CellLookup, Query, WifiLookup
from ichnaea.api.locate.result import Position
from ichnaea.api.locate.sources import internal
from ichnaea.breaker import CircuitBreaker
from ichnaea.broker import keyspace
from ichnaea.codecs import decode_cellid, mac_shard_id
from ichnaea.geocode import Geocoder
from ichnaea.index import changes, live
from ichnaea.index.build import build_index
from ichnaea.index.format import HEADER_BYTES, file_name
from ichnaea.index.live import IndexSettings, LiveIndex
from ichnaea.index.reader import open_index
from ichnaea.models.station import WIFI_SHARDS
from ichnaea.regions import RegionTable
from ichnaea.repositories.session import create_engine
from tests.fixtures_app import Backend
from tests.index._stations import NOW, Seeded, random_mac, remove_stations, seed_stations

CENTRE = (51.5, -0.1)


@pytest.fixture
def engine(backend: Backend) -> Iterator[Engine]:
    engine = create_engine(backend.db_url, pooled=False)
    remove_stations(engine)
    try:
        yield engine
    finally:
        remove_stations(engine)
        engine.dispose()


@pytest.fixture
def make_index(
    engine: Engine, backend_redis: redis.Redis, tmp_path: Path
) -> Iterator[type[LiveIndex]]:
    made: list[LiveIndex] = []

    def make(**options: float) -> LiveIndex:
        settings = IndexSettings(directory=tmp_path / "index", **options)  # type: ignore[arg-type]
        index = LiveIndex(engine, backend_redis, settings)
        made.append(index)
        return index

    yield make  # type: ignore[misc]
    for index in made:
        index.close()


def _wifi_row(mac: bytes, lat: float, lon: float, **values: object) -> dict[str, object]:
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    row: dict[str, object] = {
        "mac": mac,
        "lat": lat,
        "lon": lon,
        "radius": 10,
        "region": "GB",
        "samples": 5,
        "created": now,
        "modified": now,
        "last_seen": now.date(),
    }
    row.update(values)
    return row


def _write_wifi(engine: Engine, *rows: dict[str, object]) -> None:
    with engine.begin() as conn:
        for row in rows:
            table = WIFI_SHARDS[mac_shard_id(bytes(row["mac"]).hex())].__table__  # type: ignore[arg-type]
            conn.execute(sa.delete(table).where(table.c.mac == row["mac"]))  # type: ignore[attr-defined]
            conn.execute(sa.insert(table).values(**row))  # type: ignore[attr-defined]


def _found(index: LiveIndex, *macs: bytes) -> dict[bytes, tuple[float, float]]:
    rows = index.macs("wifi", list(macs), today=datetime.now(UTC).date())
    found = zip(rows.keys, rows.lat, rows.lon, strict=True)
    return {key: (float(lat), float(lon)) for key, lat, lon in found}


# -- the same answers as the database path --------------------------------


def _random_query(rng: random.Random, seeded: Seeded, api_type: str) -> Query:
    def signal(lo: int, hi: int) -> int | None:
        return None if rng.random() < 0.2 else rng.randint(lo, hi)

    wifi = [
        WifiLookup(mac=mac.hex(), signal=signal(-95, -35), age=rng.choice([None, 0, 1500]))
        for mac in rng.sample(seeded.wifi, rng.randint(0, 14))
        + [random_mac(rng) for _ in range(rng.randint(0, 2))]
    ]
    blue = [
        BlueLookup(mac=mac.hex(), signal=signal(-100, -50))
        for mac in rng.sample(seeded.blue, rng.randint(0, 5))
    ]
    cells = []
    for _, key in rng.sample(seeded.cell, rng.randint(0, 4)):
        cell = decode_cellid(key)
        cells.append(
            CellLookup(
                radio=cell.radio,
                mcc=cell.mcc,
                mnc=cell.mnc,
                lac=cell.lac,
                cid=cell.cid,
                signal=signal(-120, -60),
            )
        )
    # An area-only query: the cells' area, without the cell.
    areas = [
        CellLookup(radio=c.radio, mcc=c.mcc, mnc=c.mnc, lac=c.lac)
        for c in cells
        if rng.random() < 0.5
    ]
    if rng.random() < 0.3:
        cells = []
    return Query(api_type=api_type, wifi=wifi, blue=blue, cell=cells, cell_area=cells + areas)


def _same(got: float, want: float) -> bool:
    # Rows with NULL in every nullable column still give numbers, never NaN
    # (tests/api/locate/test_score.py names the decision).
    assert math.isfinite(got) and math.isfinite(want), (got, want)
    return got == want


def assert_same_positions(got: list[Position], want: list[Position]) -> None:
    """Equal, exactly: the stations lie on the index's 1e-7 degree grid (see
    ``seed_stations``), so both paths hold the same doubles, and both give
    the rows in key order (the positions depend on the order: the
    least-squares refinement of two stations can end 2e-6 degree apart for
    the two orders). Only ``modified`` differs (the index keeps whole
    seconds), which the score reads in whole days.
    """
    assert len(got) == len(want)
    for a, b in zip(
        sorted(got, key=lambda p: sorted(p.used_networks)),
        sorted(want, key=lambda p: sorted(p.used_networks)),
        strict=True,
    ):
        assert sorted(a.used_networks) == sorted(b.used_networks)
        assert a.fallback == b.fallback
        assert _same(a.lat, b.lat), (a, b)
        assert _same(a.lon, b.lon), (a, b)
        assert _same(a.accuracy, b.accuracy), (a, b)
        assert _same(a.score, b.score), (a, b)


def test_locate_and_region_from_the_index_equal_the_database_path(
    engine: Engine, make_index: type[LiveIndex]
) -> None:
    rng = random.Random(11)
    seeded = seed_stations(engine, rng, centre=CENTRE, spread_deg=0.004)
    index = make_index()
    index.open()
    geocoder = Geocoder.load(RegionTable.load())
    breaker = CircuitBreaker()
    answered = 0
    for _ in range(200):
        query = _random_query(rng, seeded, "locate")
        from_db = internal.search_positions(engine, breaker, query, NOW)
        from_index = internal.search_positions_in(index, query, NOW)
        assert_same_positions(from_index, from_db)
        answered += bool(from_db)
        region_query = _random_query(rng, seeded, "region")
        want = internal.search_regions(engine, breaker, region_query, geocoder, NOW)
        got = internal.search_regions_in(index, region_query, geocoder, NOW)
        assert len(got) == len(want)
        for a, b in zip(
            sorted(got, key=lambda r: r.region_code),
            sorted(want, key=lambda r: r.region_code),
            strict=True,
        ):
            assert a.region_code == b.region_code
            assert _same(a.score, b.score)
    assert breaker.closed
    # The comparison covered real answers, not only empty ones.
    assert answered > 50


# -- kept fresh ----------------------------------------------------------


def test_announced_changes_are_answered_after_one_refresh(
    engine: Engine, make_index: type[LiveIndex]
) -> None:
    index = make_index(catchup_s=3600)
    stay, move, drop, new = (
        b"\x10\x00\x00\x00\x00\x01",
        b"\x10\x00\x00\x00\x00\x02",
        b"\x20" * 6,
        b"\x30" * 6,
    )
    _write_wifi(
        engine,
        _wifi_row(stay, 51.5, -0.1),
        _wifi_row(move, 51.5, -0.1),
        _wifi_row(drop, 51.5, -0.1),
    )
    index.open()
    assert set(_found(index, stay, move, drop, new)) == {stay, move, drop}

    _write_wifi(engine, _wifi_row(move, 52.0, 0.2), _wifi_row(new, 51.6, -0.2))
    with engine.begin() as conn:
        table = WIFI_SHARDS[mac_shard_id(drop.hex())].__table__
        conn.execute(sa.delete(table).where(table.c.mac == drop))  # type: ignore[attr-defined]
    index.refresh()  # nothing announced yet: still the old state
    assert _found(index, move)[move] == pytest.approx((51.5, -0.1))
    changes.announce(index._redis, "wifi", [move, new, drop])
    index.refresh()
    found = _found(index, stay, move, drop, new)
    assert set(found) == {stay, move, new}
    assert found[move] == pytest.approx((52.0, 0.2))
    assert found[new] == pytest.approx((51.6, -0.2))
    assert index.status()["overlay_rows"] == 3


def test_a_station_losing_its_position_leaves_the_index(
    engine: Engine, make_index: type[LiveIndex]
) -> None:
    mac = b"\x40" * 6
    _write_wifi(engine, _wifi_row(mac, 51.5, -0.1))
    index = make_index(catchup_s=3600)
    index.open()
    assert mac in _found(index, mac)
    _write_wifi(engine, _wifi_row(mac, None, None))  # type: ignore[arg-type]
    changes.announce(index._redis, "wifi", [mac])
    index.refresh()
    assert _found(index, mac) == {}


def test_a_host_that_missed_the_announcements_catches_up_from_the_database(
    engine: Engine, make_index: type[LiveIndex], backend_redis: redis.Redis
) -> None:
    index = make_index(catchup_s=3600)
    index.open()
    first, second = b"\x50" * 6, b"\x51" * 6
    changes.announce(backend_redis, "wifi", [b"\x99" * 6])  # something to be missed after
    index.refresh()
    _write_wifi(engine, _wifi_row(first, 48.0, 11.0))  # committed, announcement lost
    index.refresh()
    assert _found(index, first) == {}  # no announcement, catch-up not due
    # Redis restarted (or the stream was trimmed past this reader): the
    # next entry shows that entries were missed, and the reader catches up.
    backend_redis.delete(keyspace.STATION_CHANGES)
    _write_wifi(engine, _wifi_row(second, 48.1, 11.1))
    changes.announce(backend_redis, "blue", [b"\x01" * 6])
    index.refresh()
    assert set(_found(index, first, second)) == {first, second}


def test_the_periodic_catch_up_finds_unannounced_changes(
    engine: Engine, make_index: type[LiveIndex]
) -> None:
    index = make_index(catchup_s=0.2)
    index.open()
    mac = b"\x60" * 6
    _write_wifi(engine, _wifi_row(mac, 40.0, -3.0))
    time.sleep(0.25)
    index.refresh()
    assert _found(index, mac) == {mac: pytest.approx((40.0, -3.0))}


def test_redis_down_keeps_serving_and_catches_up_when_it_returns(
    engine: Engine,
    make_index: type[LiveIndex],
    backend_redis: redis.Redis,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    index = make_index(catchup_s=3600)
    index.open()

    def down(*args: object, **kwargs: object) -> None:
        raise redis.ConnectionError("Redis is down")

    mac = b"\x61" * 6
    with monkeypatch.context() as patch:
        patch.setattr(changes, "read_changes", down)
        patch.setattr(changes, "latest_id", down)
        _write_wifi(engine, _wifi_row(mac, 40.0, -3.0))
        index.refresh()
        index.refresh()
        assert index.ready and _found(index, mac) == {}
    index.refresh()  # follows again, and reads what passed meanwhile
    assert mac in _found(index, mac)


def test_a_full_overlay_is_folded_into_a_new_generation(
    engine: Engine, make_index: type[LiveIndex]
) -> None:
    index = make_index(catchup_s=3600, max_overlay_rows=1)
    macs = [bytes([0x70, 0, 0, 0, 0, i]) for i in range(3)]
    index.open()
    old = index.status()["generation"]
    _write_wifi(engine, *(_wifi_row(mac, 45.0, 7.0 + i / 1000) for i, mac in enumerate(macs)))
    changes.announce(index._redis, "wifi", macs)
    index.refresh()  # three overlay rows: a rebuild starts in its own thread
    assert index._builder is not None
    index._builder.join(timeout=60)
    index.refresh()  # maps the new generation; the overlay rows it holds are dropped
    status = index.status()
    assert status["generation"] > old
    assert status["overlay_rows"] == 0
    assert set(_found(index, *macs)) == set(macs)


# -- damaged files ------------------------------------------------------------


def test_a_corrupt_index_file_is_rebuilt_at_open_never_served(
    engine: Engine, make_index: type[LiveIndex], tmp_path: Path
) -> None:
    mac = b"\x80" * 6
    _write_wifi(engine, _wifi_row(mac, 51.0, 0.5))
    directory = tmp_path / "index"
    build_index(engine, directory)
    path = directory / file_name("wifi")
    damaged = bytearray(path.read_bytes())
    damaged[HEADER_BYTES + 3] ^= 0xFF  # a byte of the first key: a different MAC
    path.write_bytes(bytes(damaged))
    index = make_index()
    index.open()
    assert _found(index, mac) == {mac: pytest.approx((51.0, 0.5))}
    assert open_index(directory).header("wifi").count == 1  # rebuilt, verified


def test_a_damaged_replacement_is_not_mapped_the_old_generation_serves_and_it_is_rebuilt(
    engine: Engine, make_index: type[LiveIndex], tmp_path: Path
) -> None:
    mac = b"\x81" * 6
    _write_wifi(engine, _wifi_row(mac, 51.0, 0.5))
    index = make_index(catchup_s=3600)
    index.open()
    path = tmp_path / "index" / file_name("wifi")
    truncated = path.read_bytes()[:-7]
    replacement = path.with_suffix(".new")
    replacement.write_bytes(truncated)
    replacement.replace(path)  # a new inode: the refresher looks at it
    old = index.status()["generation"]
    index.refresh()  # not mapped; a rebuild starts in its own thread
    assert _found(index, mac) == {mac: pytest.approx((51.0, 0.5))}
    assert index.status()["state"] == "ready"
    assert index._builder is not None
    index._builder.join(timeout=60)
    index.refresh()  # the rebuilt, verified files are mapped
    assert index.status()["generation"] > old
    assert _found(index, mac) == {mac: pytest.approx((51.0, 0.5))}


def test_status_reports_state_age_and_counts(engine: Engine, make_index: type[LiveIndex]) -> None:
    _write_wifi(engine, _wifi_row(b"\x90" * 6, 51.0, 0.5))
    index = make_index()
    assert index.status() == {"up": False, "state": "starting"}
    index.open()
    status = index.status()
    assert status["up"] is True and status["state"] == "ready"
    assert status["stations"] == 1
    assert 0 <= status["age_s"] < 60
    assert status["overlay_rows"] == 0
    assert 0 <= status["refreshed_s_ago"] < 60


def test_a_new_start_rebuilds_the_index_of_an_earlier_run(
    engine: Engine, make_index: type[LiveIndex], tmp_path: Path
) -> None:
    gone, kept = b"\x91" * 6, b"\x92" * 6
    _write_wifi(engine, _wifi_row(gone, 51.0, 0.5), _wifi_row(kept, 51.0, 0.6))
    build_index(engine, tmp_path / "index")  # an earlier run's index
    with engine.begin() as conn:  # deleted since, by hand: nothing announced
        table = WIFI_SHARDS[mac_shard_id(gone.hex())].__table__
        conn.execute(sa.delete(table).where(table.c.mac == gone))  # type: ignore[attr-defined]
    reused = make_index()  # not_before_ns=0: the files are reused...
    reused.open()
    assert gone in _found(reused, gone)  # ...and serve the deleted station
    fresh = make_index(not_before_ns=time.time_ns())  # what `ichnaea web` passes
    fresh.open()
    assert set(_found(fresh, gone, kept)) == {kept}


def test_announcements_are_kept_while_the_database_fails_and_applied_after(
    engine: Engine, make_index: type[LiveIndex], monkeypatch: pytest.MonkeyPatch
) -> None:
    index = make_index(catchup_s=3600)
    index.open()
    mac = b"\x93" * 6
    _write_wifi(engine, _wifi_row(mac, 47.0, 8.0))
    changes.announce(index._redis, "wifi", [mac])

    def down(*args: object, **kwargs: object) -> None:
        raise OperationalError("SELECT", (), Exception("Lost connection"))

    with monkeypatch.context() as patch:
        patch.setattr(live, "rows_by_keys", down)
        with pytest.raises(OperationalError):
            index.refresh()
        assert _found(index, mac) == {}
    index.refresh()  # the same announcement, read again
    assert _found(index, mac) == {mac: pytest.approx((47.0, 8.0))}
