"""The station index answers as the database path does, and never serves a damaged file.

Randomised stations are written through the models into MariaDB and
SQLite, the index is built from them, and for randomised queries (found,
unknown, duplicated, unlocated, blocked, mixed) the index's rows equal
``fetch_macs`` / ``fetch_cells`` / ``fetch_areas`` field by field; the only
differences allowed are the format's rounding: positions to 1e-7 degree,
``modified`` to the whole second.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal
from sqlalchemy.engine import Engine

from ichnaea.codecs import encode_areaid, encode_cellid
from ichnaea.enums import Radio
from ichnaea.index.build import build_index, ensure_index
from ichnaea.index.format import HEADER_BYTES, CorruptIndexError, file_name
from ichnaea.index.reader import StationIndex, open_index
from ichnaea.repositories.session import create_engine
from ichnaea.repositories.stations import (
    AreaRows,
    StationReader,
    StationRows,
    fetch_areas,
    fetch_cells,
    fetch_macs,
)
from tests.index._stations import (
    STORED_RADIOS,
    TODAY,
    Seeded,
    random_cell,
    random_mac,
    remove_stations,
    seed_stations,
)

# Half a unit of the stored 1e-7 degree, plus float noise.
COORD_ATOL = 0.5e-7 + 1e-12


@pytest.fixture
def seeded(db_engine: Engine) -> Iterator[Seeded]:
    remove_stations(db_engine)
    try:
        yield seed_stations(db_engine, random.Random(9))
    finally:
        remove_stations(db_engine)


def _sorted(rows: StationRows | AreaRows) -> dict[str, object]:
    order = sorted(range(len(rows.keys)), key=rows.keys.__getitem__)
    out: dict[str, object] = {"keys": [rows.keys[i] for i in order]}
    out["region"] = [rows.region[i] for i in order]
    for name in rows.__slots__:  # type: ignore[attr-defined]
        if name not in ("keys", "region", "score"):
            out[name] = getattr(rows, name)[order]
    return out


def assert_same_rows(index: StationRows | AreaRows, db: StationRows | AreaRows) -> None:
    got, want = _sorted(index), _sorted(db)
    assert got["keys"] == want["keys"]
    assert got["region"] == want["region"]
    for name in got:
        if name in ("keys", "region"):
            continue
        have, expected = np.asarray(got[name]), np.asarray(want[name])
        if name in ("lat", "lon"):
            assert_allclose(have, expected, rtol=0, atol=COORD_ATOL, err_msg=name)
        elif name == "modified_s":
            assert_array_equal(have, np.floor(expected), err_msg=name)
        else:
            assert_array_equal(have, expected, err_msg=name)


def _pick(rng: random.Random, known: list[bytes], unknown: list[bytes]) -> list[bytes]:
    shape = rng.choice(["found", "unknown", "mixed", "empty"])
    if shape == "empty":
        return []
    keys = rng.sample(known, rng.randint(1, 20)) if shape != "unknown" else []
    if shape != "found":
        keys += rng.sample(unknown, rng.randint(1, min(5, len(unknown))))
    if keys and rng.random() < 0.3:
        keys.append(keys[0])  # a key asked twice comes back once
    rng.shuffle(keys)
    return keys


def test_index_rows_equal_database_rows_for_random_queries(
    db_engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    build_index(db_engine, tmp_path, page_rows=37, chunk_rows=50)
    index = open_index(tmp_path)
    rng = random.Random(90)
    cell_radio = {key: radio for radio, key in seeded.cell}
    unknown_cells = [
        encode_cellid(r, *random_cell(rng, r)) for r in STORED_RADIOS for _ in range(5)
    ]
    unknown_areas = [encode_areaid(r, 999, 99, rng.randint(0, 2**16 - 1)) for r in STORED_RADIOS]
    found_any = {"wifi": 0, "blue": 0, "cell": 0, "area": 0}
    with StationReader(db_engine) as reader:
        for _ in range(40):
            for kind in ("wifi", "blue"):
                keys = _pick(rng, getattr(seeded, kind), [random_mac(rng) for _ in range(5)])
                db = fetch_macs(reader, kind, keys, today=TODAY)
                assert_same_rows(index.macs(kind, keys, today=TODAY), db)
                found_any[kind] += len(db)
            cells = _pick(rng, list(cell_radio), unknown_cells)
            radios = {**cell_radio, **{k: Radio(k[0]) for k in unknown_cells}}
            db = fetch_cells(reader, [(radios[k], k) for k in cells], today=TODAY)
            assert_same_rows(index.cells(cells, today=TODAY), db)
            found_any["cell"] += len(db)
            areas = _pick(rng, seeded.area, unknown_areas)
            db_areas = fetch_areas(reader, areas)
            assert_same_rows(index.areas(areas), db_areas)
            found_any["area"] += len(db_areas)
    # The comparison saw real rows of every kind, not only empty answers.
    assert all(count > 20 for count in found_any.values()), found_any


def test_index_drops_blocked_stations_like_the_database_path(
    db_engine: Engine, seeded: Seeded, tmp_path: Path
) -> None:
    build_index(db_engine, tmp_path)
    index = open_index(tmp_path)
    keys = seeded.wifi
    with StationReader(db_engine) as reader:
        db = fetch_macs(reader, "wifi", keys, today=TODAY)
    rows = index.macs("wifi", keys, today=TODAY)
    located = index.header("wifi").count
    # Some located stations are blocked and left out by both paths alike.
    assert 0 < len(rows) < located
    assert sorted(rows.keys) == sorted(db.keys)


@pytest.fixture
def built(migrated_sqlite_url: str, tmp_path: Path) -> Iterator[Path]:
    engine = create_engine(migrated_sqlite_url, pooled=False)
    remove_stations(engine)
    try:
        seed_stations(engine, random.Random(3))
        build_index(engine, tmp_path)
        yield tmp_path
    finally:
        remove_stations(engine)
        engine.dispose()


def _flip(path: Path, at: int) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("kind", ["wifi", "cell", "area"])
@pytest.mark.parametrize(
    ("where", "message"),
    [
        (HEADER_BYTES + 5, "payload checksum"),  # inside the records
        (-1, "payload checksum"),  # inside the region table
        (20, "header checksum"),  # the record count
        (0, "not a station index"),  # the magic
    ],
    ids=["record", "region-table", "header", "magic"],
)
def test_open_rejects_a_file_with_a_flipped_byte(
    built: Path, kind: str, where: int, message: str
) -> None:
    path = built / file_name(kind)
    open_index(built)
    _flip(path, where if where >= 0 else path.stat().st_size + where)
    with pytest.raises(CorruptIndexError, match=message):
        open_index(built)


@pytest.mark.parametrize("keep", [0, 10, HEADER_BYTES, -1], ids=["empty", "10", "header", "-1"])
def test_open_rejects_a_truncated_file(built: Path, keep: int) -> None:
    path = built / file_name("wifi")
    data = path.read_bytes()
    path.write_bytes(data[:keep])
    with pytest.raises(CorruptIndexError, match=r"shorter than the header|truncated"):
        open_index(built)


def test_open_rejects_a_missing_file(built: Path) -> None:
    (built / file_name("blue")).unlink()
    with pytest.raises(CorruptIndexError, match="cannot be opened"):
        open_index(built)


def test_ensure_index_rebuilds_a_corrupt_file(built: Path, migrated_sqlite_url: str) -> None:
    before = open_index(built)
    _flip(built / file_name("wifi"), HEADER_BYTES + 1)
    engine = create_engine(migrated_sqlite_url, pooled=False)
    try:
        after: StationIndex = ensure_index(engine, built)
    finally:
        engine.dispose()
    assert after.generation > before.generation
    assert after.header("wifi").count == before.header("wifi").count
