"""Randomised stations written through the real models, committed, and removed again.

Every kind the index holds: Wi-Fi and Bluetooth over all shards, cells of
every stored radio (NR with its 17-byte keys), both area tables; some rows
without a position, some blocked, NULL in every nullable column, and keys
ending in zero bytes (which a fixed-width bytes column must not lose).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from ichnaea.codecs import encode_areaid, encode_cellid, mac_shard_id
from ichnaea.enums import Radio
from ichnaea.models.cell import AREA_TABLES, CELL_TABLES, area_table
from ichnaea.models.station import BLUE_SHARDS, WIFI_SHARDS

TODAY = date(2026, 12, 6)
NOW = datetime(2026, 12, 6, 12, 0, 0)
REGIONS = ["DE", "GB", "FR", "US", None]
STORED_RADIOS = (Radio.gsm, Radio.wcdma, Radio.lte, Radio.nr)


@dataclass
class Seeded:
    """The keys written, by kind (cells as ``(radio, key)``)."""

    wifi: list[bytes] = field(default_factory=list)
    blue: list[bytes] = field(default_factory=list)
    cell: list[tuple[Radio, bytes]] = field(default_factory=list)
    area: list[bytes] = field(default_factory=list)


def _maybe(rng: random.Random, value: Any, null_share: float = 0.15) -> Any:
    return None if rng.random() < null_share else value


def _station_values(
    rng: random.Random, centre: tuple[float, float] | None = None, spread_deg: float = 0.01
) -> dict[str, Any]:
    created = NOW - timedelta(days=rng.randint(0, 900), seconds=rng.randint(0, 86_399))
    blocked_ago = rng.choice([0, 1, 2, 3, 40, 400])
    return {
        "lat": _maybe(rng, _coordinate(rng, centre, 0, 90.0, spread_deg), 0.1),
        "lon": _maybe(rng, _coordinate(rng, centre, 1, 180.0, spread_deg), 0.1),
        "radius": _maybe(rng, rng.randint(0, 20_000)),
        "region": rng.choice(REGIONS),
        "samples": _maybe(rng, rng.randint(1, 10_000)),
        "created": _maybe(rng, created),
        "modified": _maybe(
            rng, NOW - timedelta(days=rng.randint(0, 30), microseconds=rng.randint(0, 10**6))
        ),
        "last_seen": _maybe(rng, TODAY - timedelta(days=rng.randint(0, 60))),
        "block_last": _maybe(rng, TODAY - timedelta(days=blocked_ago), 0.6),
        "block_count": _maybe(rng, rng.choice([0, 0, 1, 2, 5, 255])),
    }


def _coordinate(
    rng: random.Random, centre: tuple[float, float] | None, axis: int, limit: float, spread: float
) -> float:
    if centre is None:
        return rng.uniform(-limit, limit)
    # On the index's 1e-7 degree grid: both paths then hold the same doubles.
    return round(centre[axis] + rng.uniform(-spread, spread), 7)


def random_mac(rng: random.Random) -> bytes:
    mac = rng.randbytes(6)
    # One in eight ends in a zero byte.
    return mac[:5] + b"\0" if rng.random() < 0.125 else mac


def random_cell(rng: random.Random, radio: Radio) -> tuple[int, int, int, int]:
    mcc, mnc = rng.choice([(234, 30), (262, 1), (310, 410)])
    if radio is Radio.nr:
        lac, cid = rng.randint(0, 2**24 - 1), rng.randint(0, 2**36 - 1)
    else:
        lac, cid = rng.randint(0, 2**16 - 1), rng.randint(0, 2**28 - 1)
    if rng.random() < 0.125:
        cid &= ~0xFF  # a key ending in a zero byte
    return mcc, mnc, lac, cid


def seed_stations(
    engine: Engine,
    rng: random.Random,
    *,
    scale: int = 1,
    centre: tuple[float, float] | None = None,
    spread_deg: float = 0.01,
) -> Seeded:
    """Write about ``scale`` times 700 random stations and commit them.

    Positions are anywhere on Earth, or with ``centre`` within
    ``spread_deg`` of it (so that queries find clusters) and on the index's
    1e-7 degree grid (so that the index stores them exactly).
    """
    seeded = Seeded()
    objects: list[Any] = []
    for kind, shards, count in (("wifi", WIFI_SHARDS, 300), ("blue", BLUE_SHARDS, 150)):
        macs = {random_mac(rng) for _ in range(count * scale)}
        for mac in macs:
            shard = shards[mac_shard_id(mac.hex())]
            objects.append(shard(mac=mac, **_station_values(rng, centre, spread_deg)))
        getattr(seeded, kind).extend(macs)
    for radio in STORED_RADIOS:
        cells = {random_cell(rng, radio) for _ in range(50 * scale)}
        for mcc, mnc, lac, cid in cells:
            key = encode_cellid(radio, mcc, mnc, lac, cid)
            table = CELL_TABLES[radio]
            values = _station_values(rng, centre, spread_deg)
            objects.append(
                table(cellid=key, radio=int(radio), mcc=mcc, mnc=mnc, lac=lac, cid=cid, **values)
            )
            seeded.cell.append((radio, key))
        areas = {(mcc, mnc, lac) for mcc, mnc, lac, _ in cells}
        for mcc, mnc, lac in areas:
            key = encode_areaid(radio, mcc, mnc, lac)
            values = _station_values(rng, centre, spread_deg)
            objects.append(
                area_table(radio)(
                    areaid=key,
                    radio=int(radio),
                    mcc=mcc,
                    mnc=mnc,
                    lac=lac,
                    lat=values["lat"],
                    lon=values["lon"],
                    radius=_maybe(rng, rng.randint(-10, 100_000)),
                    region=values["region"],
                    avg_cell_radius=_maybe(rng, rng.randint(0, 5000)),
                    num_cells=_maybe(rng, rng.randint(1, 500)),
                    created=values["created"],
                    modified=values["modified"],
                    last_seen=values["last_seen"],
                )
            )
            seeded.area.append(key)
    with Session(engine) as session, session.begin():
        session.add_all(objects)
    return seeded


def station_tables() -> list[Any]:
    return [
        *(s.__table__ for s in WIFI_SHARDS.values()),
        *(s.__table__ for s in BLUE_SHARDS.values()),
        *(c.__table__ for c in CELL_TABLES.values()),
        *(a.__table__ for a in AREA_TABLES),
    ]


def remove_stations(engine: Engine) -> None:
    with engine.begin() as conn:
        for table in station_tables():
            conn.execute(delete(table))
