"""The GeoIP source: a coarse position or region from the client's IP address.

It answers whenever the query has an IP the database knows and the client
allows IP fallback (``ipf``). The answer is marked ``"fallback": "ipf"``
unless the query carried no network data at all (then GeoIP *is* the
answer, not a fallback).
"""

from __future__ import annotations

from ichnaea.api.locate.query import Query
from ichnaea.api.locate.result import DataSource, Position, Region


def _fallback(query: Query) -> str | None:
    return None if query.geoip_only else "ipf"


def should_search(query: Query) -> bool:
    return query.ipf and query.ip is not None


def search_position(query: Query) -> list[Position]:
    record = query.geoip
    if record is None:
        return []
    return [
        Position(
            record.lat,
            record.lon,
            record.radius_m,
            record.score,
            DataSource.geoip,
            _fallback(query),
        )
    ]


def search_region(query: Query) -> list[Region]:
    record = query.geoip
    if record is None:
        return []
    return [
        Region(
            record.region_code,
            record.region_name,
            record.region_radius_m,
            record.score,
            DataSource.geoip,
            _fallback(query),
        )
    ]
