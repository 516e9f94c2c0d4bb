"""The internal source when the database fails: it contributes nothing and opens the breaker."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, ProgrammingError

from ichnaea.api.locate.query import CellLookup, Query, WifiLookup
from ichnaea.api.locate.sources import internal
from ichnaea.breaker import CircuitBreaker
from ichnaea.enums import Radio
from ichnaea.geocode import Geocoder
from ichnaea.regions import RegionTable
from ichnaea.repositories.session import create_engine
from ichnaea.repositories.stations import StationReader

UNREACHABLE_MYSQL = "mysql+mysqldb://root@127.0.0.1:1/location"
NOW = datetime(2026, 12, 6, 12, 0)
WIFIS = [WifiLookup(mac="a0b1c2d3e4f5"), WifiLookup(mac="a0b1c2d3e4f6")]


@pytest.fixture
def unreachable() -> Iterator[Engine]:
    engine = create_engine(UNREACHABLE_MYSQL, readonly=True)
    yield engine
    engine.dispose()


@pytest.fixture
def geocoder() -> Geocoder:
    return Geocoder.load(RegionTable.load())


def lost_connection() -> DBAPIError:
    return DBAPIError.instance(
        "SELECT", (), OSError("Lost connection"), OSError, connection_invalidated=True
    )


def test_search_positions_with_an_unreachable_database_opens_the_breaker(
    unreachable: Engine,
) -> None:
    breaker = CircuitBreaker()
    query = Query(api_type="locate", wifi=list(WIFIS))
    assert internal.search_positions(unreachable, breaker, query, NOW) == []
    assert not breaker.closed


def test_search_regions_with_an_unreachable_database_opens_the_breaker(
    unreachable: Engine, geocoder: Geocoder
) -> None:
    breaker = CircuitBreaker()
    query = Query(api_type="region", wifi=list(WIFIS))
    assert internal.search_regions(unreachable, breaker, query, geocoder, NOW) == []
    assert not breaker.closed


def test_connection_lost_mid_request_opens_the_breaker_and_skips_the_rest(
    db_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise lost_connection()

    cells_asked: list[Query] = []

    def cells(conn: object, query: Query, now: datetime) -> list[object]:
        cells_asked.append(query)
        return []

    monkeypatch.setattr(StationReader, "macs", fail)
    monkeypatch.setattr(internal, "_cell_positions", cells)
    breaker = CircuitBreaker()
    cell = CellLookup(radio=Radio.lte, mcc=234, mnc=30, lac=2, cid=1234)
    query = Query(api_type="locate", wifi=list(WIFIS), cell=[cell])
    assert internal.search_positions(db_engine, breaker, query, NOW) == []
    assert not breaker.closed
    assert cells_asked == []


def test_a_failing_statement_is_no_outage_and_keeps_the_breaker_closed(
    db_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    def fail(*args: object, **kwargs: object) -> None:
        raise ProgrammingError("SELECT", (), Exception("no such table"))

    monkeypatch.setattr(StationReader, "macs", fail)
    breaker = CircuitBreaker()
    assert internal.search_positions(db_engine, breaker, Query("locate", wifi=WIFIS), NOW) == []
    assert breaker.closed
