"""Cell areas rebuilt from their cells (spec pipeline.md section 10)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from ichnaea import geo
from ichnaea.codecs import encode_areaid, encode_cellid
from ichnaea.enums import Radio
from ichnaea.geocode import Geocoder
from ichnaea.models.cell import CELL_TABLES, CellArea, CellAreaNr, area_table
from ichnaea.pipeline.stations.areas import update_areas
from ichnaea.regions import RegionTable
from tests._support import RecordingMetrics

NOW = datetime(2024, 5, 6, 12, 30, 0)
TODAY = NOW.date()
YESTERDAY = TODAY - timedelta(days=1)
LAT, LON = 51.5, -0.1


@pytest.fixture(scope="module")
def geocoder() -> Geocoder:
    return Geocoder.load(RegionTable.load())


@pytest.fixture
def engine(db_engine: Engine) -> Engine:
    """``db_engine`` with empty cell and area tables (they outlive each test)."""
    with db_engine.begin() as connection:
        for table in CELL_TABLES.values():
            connection.execute(sa.delete(table))
        connection.execute(sa.delete(CellArea))
        connection.execute(sa.delete(CellAreaNr))
    return db_engine


def add_cell(
    engine: Engine,
    area: tuple[Radio, int, int, int],
    cid: int,
    *,
    lat: float | None = LAT,
    lon: float | None = LON,
    radius: int | None = 1000,
    region: str | None = None,
    last_seen: date | None = TODAY,
    **box: float | None,
) -> None:
    """Add one cell; its box is its position unless ``box`` overrides a side."""
    radio, mcc, mnc, lac = area
    values: dict[str, Any] = {
        "cellid": encode_cellid(radio, mcc, mnc, lac, cid),
        "radio": int(radio),
        "mcc": mcc,
        "mnc": mnc,
        "lac": lac,
        "cid": cid,
        "lat": lat,
        "lon": lon,
        "max_lat": lat,
        "min_lat": lat,
        "max_lon": lon,
        "min_lon": lon,
        "radius": radius,
        "region": region,
        "last_seen": last_seen,
        "created": NOW - timedelta(days=10),
        "modified": NOW - timedelta(days=1),
        **box,
    }
    with engine.begin() as connection:
        connection.execute(sa.insert(CELL_TABLES[radio]).values(values))


def read_area(engine: Engine, area: tuple[Radio, int, int, int]) -> Any:
    table = area_table(area[0])
    with engine.connect() as connection:
        return connection.execute(
            sa.select(table).where(table.areaid == encode_areaid(*area))
        ).one_or_none()


def run(engine: Engine, geocoder: Geocoder, *areas: tuple[Radio, int, int, int]) -> int:
    return update_areas(
        engine,
        [encode_areaid(*area) for area in areas],
        geocoder=geocoder,
        now=NOW,
        metrics=RecordingMetrics(),
    )


GB_AREA = (Radio.gsm, 234, 10, 123)


def test_area_of_one_cell_is_that_cell(engine: Engine, geocoder: Geocoder) -> None:
    add_cell(engine, GB_AREA, 1, radius=1200, region="GB", last_seen=YESTERDAY)
    # Same network, other LAC: not part of the area.
    add_cell(engine, (Radio.gsm, 234, 10, 124), 2, lat=LAT + 1, radius=5000, region="GB")
    assert run(engine, geocoder, GB_AREA) == 1
    area = read_area(engine, GB_AREA)
    assert (area.radio, area.mcc, area.mnc, area.lac) == GB_AREA
    assert (area.lat, area.lon) == pytest.approx((LAT, LON))
    assert area.radius == 0
    assert area.region == "GB"
    assert area.avg_cell_radius == 1200
    assert area.num_cells == 1
    assert area.last_seen == YESTERDAY
    assert area.created == area.modified == NOW


def test_area_without_cells_is_deleted(engine: Engine, geocoder: Geocoder) -> None:
    add_cell(engine, GB_AREA, 1, region="GB")
    run(engine, geocoder, GB_AREA)
    assert read_area(engine, GB_AREA) is not None
    with engine.begin() as connection:
        connection.execute(sa.delete(CELL_TABLES[Radio.gsm]))
    assert run(engine, geocoder, GB_AREA) == 1
    assert read_area(engine, GB_AREA) is None


def test_area_of_only_unpositioned_cells_is_not_created(engine: Engine, geocoder: Geocoder) -> None:
    add_cell(engine, GB_AREA, 1, lat=None, lon=None)
    run(engine, geocoder, GB_AREA)
    assert read_area(engine, GB_AREA) is None


def test_cells_at_one_point_average_their_radii(engine: Engine, geocoder: Geocoder) -> None:
    add_cell(engine, GB_AREA, 1, radius=200, last_seen=TODAY)
    add_cell(engine, GB_AREA, 2, radius=300, last_seen=YESTERDAY)
    run(engine, geocoder, GB_AREA)
    area = read_area(engine, GB_AREA)
    assert area.radius == 0
    assert area.avg_cell_radius == 250
    assert area.num_cells == 2
    assert area.last_seen == TODAY


def test_centre_is_mean_of_positioned_cells_despite_missing_box_sides(
    engine: Engine, geocoder: Geocoder
) -> None:
    add_cell(engine, GB_AREA, 1, lat=LAT + 0.0002)
    add_cell(engine, GB_AREA, 2, lat=None, lon=None)
    add_cell(engine, GB_AREA, 3, lat=LAT, max_lat=None, min_lon=None)
    run(engine, geocoder, GB_AREA)
    area = read_area(engine, GB_AREA)
    assert area.lat == pytest.approx(LAT + 0.0001, abs=1e-9)
    assert area.lon == pytest.approx(LON, abs=1e-9)
    assert area.num_cells == 2
    # The box runs from LAT to LAT + 0.0002: about 11 m from the centre.
    expected = round(geo.distance_m(LAT + 0.0001, LON, LAT + 0.0002, LON))
    assert area.radius == expected == 11


def test_radius_reaches_the_farthest_box_corner(engine: Engine, geocoder: Geocoder) -> None:
    add_cell(engine, GB_AREA, 1, lat=LAT, lon=LON, max_lat=LAT + 0.01, max_lon=LON + 0.02)
    add_cell(engine, GB_AREA, 2, lat=LAT + 0.002, lon=LON + 0.004)
    run(engine, geocoder, GB_AREA)
    area = read_area(engine, GB_AREA)
    centre = (LAT + 0.001, LON + 0.002)
    assert (area.lat, area.lon) == pytest.approx(centre)
    corners = [(LAT + 0.01, LON + 0.02), (LAT, LON), (LAT + 0.01, LON), (LAT, LON + 0.02)]
    assert area.radius == round(max(geo.distance_m(*centre, *corner) for corner in corners))


def test_null_cell_radius_is_left_out_of_the_average_quirk_16_fixed(
    engine: Engine, geocoder: Geocoder
) -> None:
    add_cell(engine, GB_AREA, 1, radius=100)
    add_cell(engine, GB_AREA, 2, radius=None)
    run(engine, geocoder, GB_AREA)
    area = read_area(engine, GB_AREA)
    assert area.avg_cell_radius == 100
    assert area.num_cells == 2


def test_average_radius_is_null_when_no_cell_has_one(engine: Engine, geocoder: Geocoder) -> None:
    add_cell(engine, GB_AREA, 1, radius=None, last_seen=None)
    run(engine, geocoder, GB_AREA)
    area = read_area(engine, GB_AREA)
    assert area.avg_cell_radius is None
    assert area.last_seen is None
    assert area.num_cells == 1


@pytest.mark.parametrize(
    ("mcc", "centre", "regions", "expected"),
    [
        pytest.param(425, (32.2, 34.95), ["XW", "IL"], "IL", id="tie-xw-il-centre-decides"),
        pytest.param(330, (18.2, -66.5), ["PR", "PR", "US"], "PR", id="majority"),
        pytest.param(330, (18.2, -66.5), ["PR", "PR"], "PR", id="unanimous"),
        pytest.param(330, (18.2, -66.5), [None, None], None, id="all-null"),
        # MCC 204 is the Netherlands; the centre in Germany finds no region
        # for it, so the tie goes to null, which sorts first.
        pytest.param(204, (51.0, 10.0), [None, "NL"], None, id="tie-null-first"),
        # AT sorts first, but the centre in Germany is DE for MCC 262.
        pytest.param(262, (51.0, 10.0), ["AT", "DE"], "DE", id="tie-centre-overrides"),
    ],
)
def test_area_region_follows_majority_then_centre(
    engine: Engine,
    geocoder: Geocoder,
    mcc: int,
    centre: tuple[float, float],
    regions: list[str | None],
    expected: str | None,
) -> None:
    area = (Radio.lte, mcc, 1, 7)
    for cid, region in enumerate(regions, start=1):
        add_cell(engine, area, cid, lat=centre[0], lon=centre[1], region=region)
    run(engine, geocoder, area)
    assert read_area(engine, area).region == expected


def test_existing_area_is_updated_and_keeps_created(engine: Engine, geocoder: Geocoder) -> None:
    created = NOW - timedelta(days=30)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(CellArea).values(
                areaid=encode_areaid(*GB_AREA),
                radio=int(GB_AREA[0]),
                mcc=GB_AREA[1],
                mnc=GB_AREA[2],
                lac=GB_AREA[3],
                lat=10.0,
                lon=10.0,
                radius=9999,
                region="XX",
                avg_cell_radius=1,
                num_cells=9,
                created=created,
                modified=created,
                last_seen=created.date(),
            )
        )
    add_cell(engine, GB_AREA, 1, radius=400, region="GB")
    run(engine, geocoder, GB_AREA)
    area = read_area(engine, GB_AREA)
    assert area.created == created
    assert area.modified == NOW
    assert (area.lat, area.lon, area.radius) == (pytest.approx(LAT), pytest.approx(LON), 0)
    assert (area.region, area.avg_cell_radius, area.num_cells) == ("GB", 400, 1)
    assert area.last_seen == TODAY


def test_batch_with_duplicates_and_several_radios(engine: Engine, geocoder: Geocoder) -> None:
    wcdma_area = (Radio.wcdma, *GB_AREA[1:])
    add_cell(engine, GB_AREA, 1, radius=100)
    add_cell(engine, wcdma_area, 1, lat=LAT + 1, radius=300)
    add_cell(engine, wcdma_area, 2, lat=LAT + 1, radius=500)
    assert run(engine, geocoder, GB_AREA, wcdma_area, GB_AREA, wcdma_area) == 2
    assert read_area(engine, GB_AREA).avg_cell_radius == 100
    wcdma = read_area(engine, wcdma_area)
    assert (wcdma.num_cells, wcdma.avg_cell_radius) == (2, 400)
    assert wcdma.lat == pytest.approx(LAT + 1)


def test_nr_areas_with_24_bit_tacs_are_built_in_their_own_table(
    engine: Engine, geocoder: Geocoder
) -> None:
    small, large = (Radio.nr, 234, 10, 65535), (Radio.nr, 234, 10, 65535 + 65536)
    add_cell(engine, small, 2**35, radius=80, region="GB")
    add_cell(engine, large, 5, lat=LAT + 1, radius=90)
    add_cell(engine, large, 6, lat=LAT + 1.002, radius=110)
    add_cell(engine, (Radio.lte, 234, 10, 65535), 7)  # same numbers, other radio
    assert run(engine, geocoder, small, large) == 2
    area = read_area(engine, small)
    assert (area.num_cells, area.avg_cell_radius, area.region) == (1, 80, "GB")
    assert area.lat == pytest.approx(LAT)
    wide = read_area(engine, large)
    assert (wide.lac, wide.num_cells, wide.avg_cell_radius) == (131071, 2, 100)
    assert len(wide.areaid) == 9 and wide.lat == pytest.approx(LAT + 1.001)
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(CellArea)).scalar() == 0


def test_malformed_area_ids_are_skipped(engine: Engine, geocoder: Geocoder) -> None:
    add_cell(engine, GB_AREA, 1)
    cdma = encode_areaid(Radio.cdma, 234, 10, 123)
    handled = update_areas(
        engine,
        [b"\x00" * 3, cdma, b"\x09" + encode_areaid(*GB_AREA)[1:], encode_areaid(*GB_AREA)],
        geocoder=geocoder,
        now=NOW,
        metrics=RecordingMetrics(),
    )
    assert handled == 1
    assert read_area(engine, GB_AREA) is not None


def test_empty_batch_touches_nothing(engine: Engine, geocoder: Geocoder) -> None:
    assert run(engine, geocoder) == 0
    with engine.connect() as connection:
        assert connection.execute(sa.select(sa.func.count()).select_from(CellArea)).scalar() == 0


def reference_aggregate(cells: list[Any], mcc: int, geocoder: Geocoder) -> Any:
    """The aggregate of one area in plain Python, the obviously right version."""
    from ichnaea.pipeline.stations.areas import AreaAggregate, _area_region

    lat = sum(c.lat for c in cells) / len(cells)
    lon = sum(c.lon for c in cells) / len(cells)

    def side(name: str, pick: Any, centre: str) -> float:
        known = [getattr(c, name) for c in cells if getattr(c, name) is not None]
        return float(pick([getattr(c, centre) for c in cells] + known))

    box = (side("max_lat", max, "lat"), side("max_lon", max, "lon"),
           side("min_lat", min, "lat"), side("min_lon", min, "lon"))  # fmt: skip
    radii = [c.radius for c in cells if c.radius is not None]
    seen = [c.last_seen for c in cells if c.last_seen is not None]
    return AreaAggregate(
        lat=lat,
        lon=lon,
        radius=geo.circle_radius_m(lat, lon, *box),
        avg_cell_radius=round(sum(radii) / len(radii)) if radii else None,
        num_cells=len(cells),
        last_seen=max(seen) if seen else None,
        region=_area_region([c.region for c in cells], lat, lon, mcc=mcc, geocoder=geocoder),
    )


def test_batched_aggregates_agree_with_a_plain_reference(geocoder: Geocoder) -> None:
    import random
    from types import SimpleNamespace

    from ichnaea.pipeline.stations.areas import aggregate_areas

    rng = random.Random(7)
    groups, mccs = [], []
    for _ in range(200):
        base_lat, base_lon = rng.uniform(-60, 60), rng.uniform(-170, 170)
        cells = []
        for _ in range(rng.randint(1, 9)):
            lat, lon = base_lat + rng.uniform(-0.2, 0.2), base_lon + rng.uniform(-0.2, 0.2)
            maybe = lambda value: None if rng.random() < 0.2 else value  # noqa: E731
            spread = [rng.uniform(0, 0.05) for _ in range(4)]
            cells.append(SimpleNamespace(
                lat=lat, lon=lon,
                max_lat=maybe(lat + spread[0]), min_lat=maybe(lat - spread[1]),
                max_lon=maybe(lon + spread[2]), min_lon=maybe(lon - spread[3]),
                radius=maybe(rng.randint(0, 20_000)), region=rng.choice(["GB", "FR", None]),
                last_seen=maybe(TODAY - timedelta(days=rng.randint(0, 900))),
            ))  # fmt: skip
        groups.append(cells)
        mccs.append(rng.choice([234, 208, 262]))
    got = aggregate_areas(groups, mccs, geocoder=geocoder)
    want = [reference_aggregate(g, m, geocoder) for g, m in zip(groups, mccs, strict=True)]
    for mine, plain in zip(got, want, strict=True):
        assert mine.lat == pytest.approx(plain.lat, abs=1e-12)
        assert mine.lon == pytest.approx(plain.lon, abs=1e-12)
        assert abs(mine.radius - plain.radius) <= 1  # summation order may move a .5 case
        assert (mine.avg_cell_radius, mine.num_cells, mine.last_seen, mine.region) == (
            plain.avg_cell_radius,
            plain.num_cells,
            plain.last_seen,
            plain.region,
        )


def test_batched_aggregates_refuse_an_empty_group(geocoder: Geocoder) -> None:
    from ichnaea.pipeline.stations.areas import aggregate_areas

    assert aggregate_areas([], [], geocoder=geocoder) == []
    with pytest.raises(ValueError, match="at least one cell"):
        aggregate_areas([[]], [234], geocoder=geocoder)
    with pytest.raises(ValueError, match="MCCs"):
        aggregate_areas([[]], [], geocoder=geocoder)
