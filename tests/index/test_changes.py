"""The station-change announcements: their format, gap detection, and who announces.

Every writer of station rows announces what it changed: the station
updater (through the pipeline), the cell-area job and ``ichnaea import
cells``. Each test runs on the Redis server and on the embedded Redis.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import redis

from ichnaea.broker import keyspace
from ichnaea.codecs import encode_areaid, encode_cellid, encode_mac
from ichnaea.enums import Radio
from ichnaea.geocode import Geocoder
from ichnaea.index import changes
from ichnaea.pipeline.public.cellimport import import_cells
from ichnaea.regions import RegionTable
from tests._support import RecordingMetrics
from tests.fixtures_pipeline import Pipeline
from tests.pipeline.public.test_cellimport import HEADER, SPEC_ROWS, write_csv

NR_CELL = encode_cellid(Radio.nr, 310, 410, 2**24 - 1, 2**36 - 1)  # 17 bytes
NR_AREA = encode_areaid(Radio.nr, 310, 410, 2**24 - 1)  # 9 bytes


def test_keys_of_every_width_come_back_as_announced(backend_redis: redis.Redis) -> None:
    gsm = encode_cellid(Radio.gsm, 234, 30, 2, 0x100)  # 11 bytes, ending in a zero byte
    area = encode_areaid(Radio.lte, 234, 30, 2)  # 7 bytes
    changes.announce(backend_redis, "wifi", [b"\x01\x02\x03\x04\x05\x00"])
    changes.announce(backend_redis, "cell", [gsm, NR_CELL, gsm])
    changes.announce(backend_redis, "area", [area, NR_AREA])
    changes.announce(backend_redis, "blue", [])  # nothing: no entry
    found = changes.read_changes(backend_redis, changes.START_ID)
    assert found.keys == {
        "wifi": {b"\x01\x02\x03\x04\x05\x00"},
        "cell": {gsm, NR_CELL},
        "area": {area, NR_AREA},
    }
    assert not found.missed
    assert backend_redis.xlen(keyspace.STATION_CHANGES) == 3
    # Read again from where the reader stopped: nothing new.
    again = changes.read_changes(backend_redis, found.last_id)
    assert again.keys == {} and again.last_id == found.last_id and not again.missed


def test_the_write_time_comes_back_per_key_newest_first(backend_redis: redis.Redis) -> None:
    one, two = b"\x01" * 6, b"\x02" * 6
    changes.announce(backend_redis, "wifi", [one, two], at=1_800_000_000)
    changes.announce(backend_redis, "wifi", [two], at=1_800_000_005)
    changes.announce(backend_redis, "wifi", [one])  # a writer that states no time
    found = changes.read_changes(backend_redis, changes.START_ID)
    assert found.keys == {"wifi": {one, two}}
    assert found.written == {"wifi": {one: 1_800_000_000, two: 1_800_000_005}}


def test_a_reader_behind_the_trimmed_stream_knows_it_missed_entries(
    backend_redis: redis.Redis,
) -> None:
    changes.announce(backend_redis, "wifi", [b"\x01" * 6])
    seen = changes.read_changes(backend_redis, changes.START_ID).last_id
    changes.announce(backend_redis, "wifi", [b"\x02" * 6])
    changes.announce(backend_redis, "wifi", [b"\x03" * 6])
    # The entry after `seen` is gone:
    backend_redis.xtrim(keyspace.STATION_CHANGES, maxlen=1, approximate=False)
    found = changes.read_changes(backend_redis, seen)
    assert found.missed
    assert found.keys == {"wifi": {b"\x03" * 6}}


def test_the_pipeline_announces_the_stations_and_areas_it_wrote(pipeline: Pipeline) -> None:
    wifi = ["0a0b0c0d0e01", "0a0b0c0d0e02"]
    cell = {"radioType": "lte", "mobileCountryCode": 262, "mobileNetworkCode": 1,
            "locationAreaCode": 7, "cellId": 4242}  # fmt: skip
    report = {
        "position": {"latitude": 52.5, "longitude": 13.4, "accuracy": 10.0},
        "wifiAccessPoints": [{"macAddress": mac} for mac in wifi],
        "cellTowers": [cell],
    }
    pipeline.submit([report])
    pipeline.run()
    found = changes.read_changes(pipeline.redis, changes.START_ID)
    assert found.keys == {
        "wifi": {encode_mac(mac) for mac in wifi},
        "cell": {encode_cellid(Radio.lte, 262, 1, 7, 4242)},
        "area": {encode_areaid(Radio.lte, 262, 1, 7)},
    }


def test_a_cell_import_announces_its_cells_and_areas(pipeline: Pipeline, tmp_path: Path) -> None:
    path = write_csv(tmp_path / "cells.csv.gz", [HEADER, *SPEC_ROWS])
    import_cells(
        pipeline.engine,
        pipeline.redis,
        path,
        geocoder=Geocoder.load(RegionTable.load()),
        metrics=RecordingMetrics(),
        now=datetime(2026, 11, 30, 12, 0),
    )
    found = changes.read_changes(pipeline.redis, changes.START_ID)
    assert found.keys["cell"] == {
        encode_cellid(Radio.wcdma, 202, 1, 2120, 12842),
        encode_cellid(Radio.gsm, 208, 10, 30014, 20669),
        encode_cellid(Radio.lte, 202, 1, 2120, 12842),
    }
    assert found.keys["area"] == {
        encode_areaid(Radio.wcdma, 202, 1, 2120),
        encode_areaid(Radio.gsm, 208, 10, 30014),
        encode_areaid(Radio.lte, 202, 1, 2120),
    }
